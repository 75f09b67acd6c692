"""ASGI entry for uvicorn workers: each worker process builds its runtime from the environment."""

from facecloud.config import Settings
from facecloud.gateway.app import create_app
from facecloud.gateway.logs import configure
from facecloud.runtime import Runtime

configure()
_settings = Settings.from_env()
app = create_app(Runtime(_settings, migrate=False), workers=int(__import__("os").environ.get("FACECLOUD_WORKERS", "1")))
