"""Progress bars with an ETA on the long commands: on a terminal's stderr only, so stdout stays the JSON result."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from facecloud.cli import app
from facecloud.cli_progress import counting, progress_bar
from tests.conftest import DATA, need_data

runner = CliRunner()


def test_the_bar_shows_count_elapsed_and_eta_on_a_terminal() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    with progress_bar("embedding", console=terminal) as report:
        step = counting(report, 3)
        for _ in range(3):
            step()
    drawn = screen.getvalue()
    assert "embedding" in drawn and "3/3" in drawn and "ETA" in drawn and "elapsed" in drawn


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    screen = io.StringIO()
    with progress_bar("embedding", 2, console=Console(file=screen, force_terminal=False)) as report:
        report(2, None)
    assert screen.getvalue() == ""


def test_rebuild_index_reports_per_group_and_prints_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gallery", "rebuild-index", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["face_entries"] == 0


def test_eval_lfw_reports_each_image(tmp_path: Path) -> None:
    need_data("lfw-dev")
    from facecloud.config import Settings
    from facecloud.vision.evaluation import evaluate_lfw
    from facecloud.vision.pipeline import Pipeline

    lines = (DATA / "lfw-dev" / "pairs.csv").read_text().splitlines()
    pairs = tmp_path / "pairs.csv"
    root = DATA / "lfw-dev"
    chosen = [
        next(r for r in lines[1:] if r.startswith(f"{fold},{same},")) for fold in (1, 2) for same in (0, 1)
    ]  # both folds, a genuine and an impostor pair each: the protocol needs them
    rows = [",".join([*r.split(",")[:2], *(str(root / p) for p in r.split(",")[2:])]) for r in chosen]
    pairs.write_text("\n".join([lines[0], *rows]) + "\n")
    heard: list[tuple[int, int | None]] = []
    pipeline = Pipeline.from_settings(Settings.from_env(data_dir=tmp_path))
    result = evaluate_lfw(pipeline, pairs, flip=False, progress=lambda done, total: heard.append((done, total)))
    assert heard[0] == (0, result["images"]) and heard[-1] == (result["images"], result["images"])
    assert len(heard) == result["images"] + 1
