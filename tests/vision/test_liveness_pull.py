"""`facecloud models pull` against a loopback HTTP server standing in for the public origin."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecloud.cli import app
from facecloud.vision.liveness import WEIGHTS, sha256_of
from tests.conftest import LIVENESS_MODELS


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): a static file server on 127.0.0.1."""
    if not all((LIVENESS_MODELS / w.name).is_file() for w in WEIGHTS):
        pytest.skip(f"liveness weights not found in {LIVENESS_MODELS}")
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/anti_spoof_models/", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _serve_weights(served: Path, corrupt: str | None = None) -> None:
    folder = served / "anti_spoof_models"
    folder.mkdir(exist_ok=True)
    for weight in WEIGHTS:
        data = bytearray((LIVENESS_MODELS / weight.name).read_bytes())
        if weight.name == corrupt:
            data[len(data) // 2] ^= 0xFF
        (folder / weight.name).write_bytes(bytes(data))


def _pull(model_dir: Path, base_url: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, ["models", "pull", "--model-dir", str(model_dir), "--base-url", base_url, "--timeout", "10"]
    )


def test_pull_downloads_and_verifies(origin: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = origin
    _serve_weights(served)
    model_dir = tmp_path / "models"
    result = _pull(model_dir, base_url)
    assert result.exit_code == 0, result.output
    for weight in WEIGHTS:
        assert sha256_of(model_dir / weight.name) == weight.sha256
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(w.name for w in WEIGHTS)  # no partial files
    again = _pull(model_dir, base_url)  # idempotent: present files are kept
    assert again.exit_code == 0 and "present, sha256 ok" in again.output


def test_pull_refuses_a_wrong_checksum(origin: tuple[str, Path], tmp_path: Path) -> None:
    base_url, served = origin
    bad = WEIGHTS[1].name
    _serve_weights(served, corrupt=bad)
    model_dir = tmp_path / "models"
    result = _pull(model_dir, base_url)
    assert result.exit_code == 1
    assert "sha256" in result.output and bad in result.output
    assert not (model_dir / bad).exists()
    assert not any(p.name.endswith(".part") for p in model_dir.iterdir())


def test_pull_reports_a_missing_file(origin: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _served = origin  # nothing served: HTTP 404
    result = _pull(tmp_path / "models", base_url)
    assert result.exit_code == 1 and "HTTP 404" in result.output


def test_pull_defaults_to_the_configured_model_dir(
    origin: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = origin
    _serve_weights(served)
    monkeypatch.setenv("FACECLOUD_MODEL_DIR", str(tmp_path / "configured"))
    result = CliRunner().invoke(app, ["models", "pull", "--base-url", base_url])
    assert result.exit_code == 0, result.output
    assert all((tmp_path / "configured" / w.name).is_file() for w in WEIGHTS)
    shutil.rmtree(tmp_path / "configured")
