"""Options every `facecloud` command takes, and the runtime they open. Parts' CLIs import these."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.runtime import Runtime

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default: $FACECLOUD_DATA_DIR, then ./facecloud-data)."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL of a server database (default: SQLite in the data folder)."),
]
AccountRef = Annotated[str, typer.Argument(help="AppId, SecretId or name")]


def settings_for(data_dir: Path | None, database_url: str | None) -> Settings:
    return Settings.from_env(data_dir=data_dir, database_url=database_url)


def open_runtime(data_dir: Path | None, database_url: str | None) -> Runtime:
    return Runtime(settings_for(data_dir, database_url))


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(error: ApiError) -> NoReturn:
    typer.echo(json.dumps({"Error": {"Code": error.code, "Message": error.message_for("en-US")}}), err=True)
    raise typer.Exit(1)


@contextmanager
def failing_on_errors(bad_values: bool = False) -> Iterator[None]:
    """An ApiError (and with bad_values, a ValueError from parsing an option) ends the command through fail()."""
    try:
        yield
    except ApiError as error:
        fail(error)
    except ValueError as error:
        if not bad_values:
            raise
        fail(ApiError("InvalidParameterValue", str(error)))


def account_id_of(runtime: Runtime, ref: str) -> int:
    """The id of the account an AppId, SecretId or name names; fails the command when none does."""
    try:
        return runtime.accounts.find(ref).id
    except ApiError as error:
        fail(error)


def print_for_account(
    account: str, data_dir: Path | None, database_url: str | None, answer: Callable[[Runtime, int], object]
) -> None:
    """Prints what `answer` gives for the account that `account` (AppId, SecretId or name) names; an ApiError ends
    the command through fail()."""
    runtime = open_runtime(data_dir, database_url)
    account_id = account_id_of(runtime, account)
    with failing_on_errors():
        print_json(answer(runtime, account_id))
