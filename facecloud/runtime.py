"""Everything a process needs, built once from Settings and passed in (no module globals).

Parts are built lazily, so a CLI command or a test only pays for what it touches."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from facecloud.accounts import Accounts
from facecloud.accounts.secrets import SecretBox, load_or_create_master_key
from facecloud.config import Settings
from facecloud.db import Database

if TYPE_CHECKING:
    from facecloud.billing import Billing
    from facecloud.gallery import Gallery
    from facecloud.gallery.versions import VersionJobs
    from facecloud.vision.pipeline import Pipeline


class Runtime:
    def __init__(self, settings: Settings, migrate: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url)
        if migrate:
            self.db.migrate()

    @cached_property
    def accounts(self) -> Accounts:
        key = load_or_create_master_key(self.settings.master_key, self.settings.data_dir)
        return Accounts(self.db, SecretBox(key))

    @cached_property
    def billing(self) -> Billing:
        from facecloud.billing import Billing

        return Billing(self.db, self.settings)

    @cached_property
    def vision(self) -> Pipeline:
        from facecloud.vision.pipeline import Pipeline

        return Pipeline.from_settings(self.settings)

    @cached_property
    def gallery(self) -> Gallery:
        from facecloud.gallery import Gallery

        return Gallery(self.db, self.settings)

    @cached_property
    def version_jobs(self) -> VersionJobs:
        """Face model upgrade jobs; their worker thread starts with them (and resumes unfinished ones)."""
        import os

        from facecloud.gallery.versions import BATCH, VersionJobs
        from facecloud.vision.versions import VERSIONS, FaceCrops

        models = self.vision.models

        def embed_crops(crops: list[tuple[bytes, bytes]], version: str) -> list:
            return [models.embed_crops(FaceCrops.from_png(*pair), version) for pair in crops]

        batch = int(os.environ.get("FACECLOUD_VERSION_JOB_BATCH", BATCH))
        pause_s = float(os.environ.get("FACECLOUD_VERSION_JOB_PAUSE_S", 0))
        jobs = VersionJobs(self.gallery, embed_crops, VERSIONS, batch=batch, pause_s=pause_s)
        jobs.start_worker()
        return jobs

    def resume_version_jobs(self) -> None:
        """At start: a job left running by a stopped process goes on here (cheap when there is none)."""
        from facecloud.gallery.versions import has_running_jobs

        if has_running_jobs(self.db):
            _ = self.version_jobs

    def close(self) -> None:
        if "version_jobs" in self.__dict__:
            self.version_jobs.stop_worker()
        if "gallery" in self.__dict__:
            self.gallery.close()  # saves the embedded vector index next to the database
        self.db.dispose()
