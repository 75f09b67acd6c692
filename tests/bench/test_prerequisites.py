"""A bench on a fresh clone: a missing input is one line naming the command to run first, and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / name), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_search_without_features_says_which_bench_writes_them(tmp_path: Path) -> None:
    features = tmp_path / "lfw_dev_features.npz"
    done = run_bench("search.py", "--features", str(features))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"search.py: {features} is missing: run `.venv/bin/python bench/fit_calibration.py --features {features}` first"
    ]


def test_cluster_without_postgres_names_the_server_and_the_option() -> None:
    done = run_bench("cluster.py", "--postgres-url", "postgresql+psycopg://postgres@127.0.0.1:1/test")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "cluster.py: nothing listens at 127.0.0.1:1 (postgresql): start that server first, or pass --postgres-url"
    ]
