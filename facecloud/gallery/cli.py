"""`facecloud eval search` (rank-1 identification on LFW) and `facecloud gallery rebuild-index`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from facecloud.cli_common import DatabaseUrl, DataDir, open_runtime, print_json, settings_for
from facecloud.cli_progress import counting, progress_bar

gallery_app = typer.Typer(no_args_is_help=True, help="The gallery of groups, persons and faces.")


def search_eval(
    lfw: Annotated[Path, typer.Option("--lfw", help="lfw-dev folder (holding lfw-deepfunneled/).")],
    backend: Annotated[str, typer.Option(help="Vector index: embedded or milvus (milvus-lite file).")] = "embedded",
    cache: Annotated[Path | None, typer.Option(help="Cache the LFW embeddings in this .npz file.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Rank-1 identification on LFW: one enrolled photo per person with >= 2 photos, the others probes, all
    other people distractors; searched through the gallery with the service's embeddings."""
    from facecloud.gallery.evaluation import rank1_identification
    from facecloud.gallery.lfw import lfw_images, load_lfw_embeddings, pipeline_embedder
    from facecloud.vision.pipeline import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline.from_settings(settings_for(data_dir, None))
    embed = pipeline_embedder(pipeline)
    with progress_bar("embedding LFW images") as report:
        total = 0 if cache is not None and cache.exists() else len(lfw_images(lfw))
        step = counting(report, total)

        def embed_and_count(path: Path):  # type: ignore[no-untyped-def]
            vector = embed(path)
            step()
            return vector

        embeddings, labels, _ = load_lfw_embeddings(lfw, embed_and_count, cache)
    result = rank1_identification(embeddings, labels, backend)
    result["images_embedded"] = int(len(labels))
    result["total_s"] = round(time.perf_counter() - started, 1)
    print_json(result)


@gallery_app.command("rebuild-index")
def rebuild_index(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Rebuild the vector index from the database (and save it next to it)."""
    runtime = open_runtime(data_dir, database_url)
    started = time.perf_counter()
    with progress_bar("rebuilding the index (groups)") as report:
        faces = runtime.gallery.rebuild(progress=report)
    print_json({"face_entries": faces, "seconds": round(time.perf_counter() - started, 1)})
    runtime.gallery.close()


def register(app: typer.Typer) -> None:
    app.add_typer(gallery_app, name="gallery")
    for group in app.registered_groups:
        if group.name == "eval" and group.typer_instance is not None:
            group.typer_instance.command("search")(search_eval)
            return
    eval_app = typer.Typer(no_args_is_help=True, help="Accuracy evaluations on public data.")
    eval_app.command("search")(search_eval)
    app.add_typer(eval_app, name="eval")
