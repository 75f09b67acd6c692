"""`facecloud models pull`: download the liveness weights from their public origin into the model folder.

Each file is streamed to a temporary name beside its destination, SHA-256-checked and only then renamed into
place, so an interrupted or tampered download never leaves a file the service would load. Files already
present with the right digest are left alone (the command is idempotent)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from facecloud.cli_common import DataDir, print_json, settings_for
from facecloud.vision.liveness import ORIGIN_BASE_URL, WEIGHTS, WeightFile, sha256_of

MAX_WEIGHT_BYTES = 16 * 1024 * 1024  # each file is ~1.8 MB; refuse anything wildly larger
TIMEOUT_S = 60.0


class PullError(RuntimeError):
    pass


def pull(
    model_dir: Path,
    base_url: str = ORIGIN_BASE_URL,
    timeout_s: float = TIMEOUT_S,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Download each liveness weight missing from model_dir (or failing its digest); the verified paths."""
    model_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for weight in WEIGHTS:
            target = model_dir / weight.name
            if target.is_file() and sha256_of(target) == weight.sha256:
                log(f"{weight.name}: present, sha256 ok")
            else:
                _download(client, base_url.rstrip("/") + "/" + weight.name, weight, target)
                log(f"{weight.name}: downloaded, sha256 ok")
            result[weight.name] = target
    return result


def _download(client: httpx.Client, url: str, weight: WeightFile, target: Path) -> None:
    partial = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    size = 0
    try:
        with client.stream("GET", url) as response, partial.open("wb") as out:
            if response.status_code != 200:
                raise PullError(f"GET {url} answered HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_WEIGHT_BYTES:
                    raise PullError(f"GET {url}: more than {MAX_WEIGHT_BYTES} bytes, not a MiniFASNet weight file")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != weight.sha256:
            raise PullError(f"{url} has sha256 {digest.hexdigest()}, expected {weight.sha256}: not installed")
        partial.replace(target)
    except httpx.HTTPError as error:
        raise PullError(f"GET {url} failed: {error}") from error
    finally:
        partial.unlink(missing_ok=True)


def add_pull_command(models_app: typer.Typer) -> None:
    """Adds `pull` to the `facecloud models` sub-typer."""

    @models_app.command("pull")
    def models_pull(
        model_dir: Annotated[
            Path | None,
            typer.Option(
                "--model-dir",
                help="Where to put the weights (default: $FACECLOUD_MODEL_DIR, then <data-dir>/models).",
            ),
        ] = None,
        base_url: Annotated[
            str,
            typer.Option(
                "--base-url",
                help="Folder URL serving the .pth files (a mirror); they are SHA-256-checked either way.",
            ),
        ] = ORIGIN_BASE_URL,
        timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.")] = TIMEOUT_S,
        data_dir: DataDir = None,
    ) -> None:
        """Download the static-liveness weights (MiniFASNet, Apache-2.0) from their origin; SHA-256-check."""
        target = model_dir or settings_for(data_dir, None).resolved_model_dir
        try:
            paths = pull(target, base_url, timeout, log=lambda line: typer.echo(line, err=True))
        except (PullError, OSError) as error:
            typer.echo(f"models pull failed: {error}", err=True)
            raise typer.Exit(1) from error
        print_json({name: str(path) for name, path in paths.items()})
