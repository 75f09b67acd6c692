"""Options every `facecloud` command takes, and the runtime they open. Parts' CLIs import these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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


def settings_for(data_dir: Path | None, database_url: str | None) -> Settings:
    return Settings.from_env(data_dir=data_dir, database_url=database_url)


def open_runtime(data_dir: Path | None, database_url: str | None) -> Runtime:
    return Runtime(settings_for(data_dir, database_url))


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(error: ApiError) -> None:
    typer.echo(json.dumps({"Error": {"Code": error.code, "Message": error.message_for("en-US")}}), err=True)
    raise typer.Exit(1)
