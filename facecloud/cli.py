"""The `facecloud` command. Each part may add its own commands in facecloud/<part>/cli.py: `register(app)`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Annotated

import typer

from facecloud.cli_common import (
    AccountRef,
    DatabaseUrl,
    DataDir,
    fail,
    failing_on_errors,
    open_runtime,
    print_for_account,
    print_json,
    settings_for,
)
from facecloud.errors import ApiError

app = typer.Typer(no_args_is_help=True, help="facecloud: a self-hosted face recognition cloud (Tencent IAI API 3.0).")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts of the cloud.")
keys_app = typer.Typer(no_args_is_help=True, help="API key pairs (SecretId/SecretKey).")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")

PARTS_WITH_COMMANDS = ("billing", "vision", "gallery", "console")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_level: str = "info",
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (chain): serve HTTPS instead of HTTP.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Start the HTTP service (SQLite in the data folder unless --database-url names a server); HTTPS with --tls-*."""
    import tempfile

    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        fail(
            ApiError(
                "InvalidParameter", "--tls-cert and --tls-key go together.", "--tls-cert 与 --tls-key 须同时给出。"
            )
        )
    settings = settings_for(data_dir, database_url)
    open_runtime(data_dir, database_url).close()  # migrate once, before the workers start
    os.environ["FACECLOUD_DATA_DIR"] = str(settings.data_dir)
    if database_url:
        os.environ["FACECLOUD_DATABASE_URL"] = database_url
    os.environ["FACECLOUD_WORKERS"] = str(workers)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="facecloud-metrics-")
    uvicorn.run(
        "facecloud.gateway.asgi:app",
        http="facecloud.gateway.http:NoDelayHttpProtocol",
        loop="uvloop",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Option("--name")], data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Create an account and print its AppId, SecretId and SecretKey (shown once)."""
    print_json(open_runtime(data_dir, database_url).accounts.create(name).as_json())


@accounts_app.command("list")
def accounts_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    runtime = open_runtime(data_dir, database_url)
    print_json(
        [
            {
                "AppId": a.app_id,
                "Name": a.name,
                "Status": a.status,
                "CreatedAt": a.created_at,
                "Keys": runtime.accounts.keys(a.id),
            }
            for a in runtime.accounts.list()
        ]
    )


def _set_status(account: str, status: str, data_dir: DataDir, database_url: DatabaseUrl) -> None:
    runtime = open_runtime(data_dir, database_url)
    with failing_on_errors():
        info = runtime.accounts.find(account)
        runtime.accounts.set_status(info.id, status)
    print_json({"AppId": info.app_id, "Status": status})


@accounts_app.command("disable")
def accounts_disable(account: AccountRef, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Disable an account: its keys stop working; its data is kept."""
    _set_status(account, "disabled", data_dir, database_url)


@accounts_app.command("enable")
def accounts_enable(account: AccountRef, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    _set_status(account, "active", data_dir, database_url)


@keys_app.command("rotate")
def keys_rotate(
    account: AccountRef,
    keep_old: Annotated[bool, typer.Option(help="Keep the old keys active while clients roll over.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a new key pair (and disable the old ones unless --keep-old)."""
    print_for_account(
        account,
        data_dir,
        database_url,
        lambda runtime, account_id: runtime.accounts.rotate_key(account_id, keep_old).as_json(),
    )


@keys_app.command("list")
def keys_list(account: AccountRef, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    print_for_account(account, data_dir, database_url, lambda runtime, account_id: runtime.accounts.keys(account_id))


def _register_parts() -> None:
    for part in PARTS_WITH_COMMANDS:
        try:
            module = importlib.import_module(f"facecloud.{part}.cli")
        except ModuleNotFoundError as exc:
            if exc.name != f"facecloud.{part}.cli":
                raise
            continue
        module.register(app)


_register_parts()


def main() -> None:
    app()
