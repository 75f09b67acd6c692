"""Vision fixtures: the registry weights are fetched once per session (a no-op when already cached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facecloud.config import Settings
from facecloud.vision import zoo
from facecloud.vision.pipeline import Pipeline
from tests.conftest import test_settings


@pytest.fixture(scope="session")
def vision_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = test_settings(tmp_path_factory.mktemp("vision"))
    zoo.fetch(settings, log=lambda line: None)
    return settings


@pytest.fixture(scope="session")
def pipeline(vision_settings: Settings) -> Pipeline:
    return Pipeline.from_settings(vision_settings)


@pytest.fixture(scope="session", autouse=True)
def _registry_models(vision_settings: Settings) -> Path:
    return zoo.models_dir(vision_settings)
