"""One settings object, read from the environment (FACECLOUD_*) and passed in, never imported as a global."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facecloud"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./facecloud-data")
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # Folder holding the weights no registry carries (the liveness .pth files); default: the copies the package ships.
    model_dir: Path | None = None
    # Registry-fetched weights and converted models live here (never in the repository).
    cache_dir: Path = field(default_factory=_default_cache_dir)
    # Key that encrypts SecretKeys at rest (urlsafe base64 Fernet key); empty: <data_dir>/master.key is created.
    master_key: str = ""
    billing_timezone: str = "Asia/Shanghai"
    signature_window_s: int = 300
    # "window" (Tencent's rule): any correctly signed request within the clock window is served.
    # "strict": a signature already seen never serves a write or billable call again (docs/security.md says what
    # ordinary call sequences that refuses).
    replay_mode: str = "window"
    redis_url: str = ""
    # Vector index backend: "embedded" (in-process) or "milvus" (milvus_uri: a server URL or a milvus-lite file).
    vector_backend: str = "embedded"
    milvus_uri: str = ""
    # Names of the Milvus collections start with this (several installations or test runs can share one server).
    milvus_collection_prefix: str = "facecloud_"
    # Request limits, before parsing.
    max_body_bytes: int = 8 * 1024 * 1024
    # Rate limits (queries per second per account and action group).
    rate_limit_qps: int = 50
    rate_limit_qps_live_accurate: int = 5
    # Deadlines: the whole body must arrive within body_read_timeout_s; the rest of the request (signature, rate
    # limit, the action) answers within request_timeout_s (FailedOperation.RequestTimeout, never billed). 0: none.
    body_read_timeout_s: float = 30.0
    request_timeout_s: float = 60.0
    operator_password: str = ""
    # Console session cookie "Secure" flag: "auto" (when the request came over https), "always" or "never".
    console_secure_cookie: str = "auto"
    webhook_url: str = ""
    # Comma-separated CIDRs that Url inputs may reach although private (SSRF allow-list).
    url_allow_cidrs: str = ""
    url_fetch_timeout_s: float = 5.0
    # Threads per model call; 0 lets the vision package choose for the machine.
    inference_threads: int = 0
    # The CPU's engine for the ONNX models: "openvino" (2-3x faster here) or "onnxruntime". Where onnxruntime-gpu
    # has CUDA, ONNX Runtime runs them on the GPU whatever this says.
    inference_engine: str = "openvino"
    # Worker processes of `facecloud serve` (it sets FACECLOUD_WORKERS): each takes its share of the cores.
    workers: int = 1
    # Requests doing model work at once per worker process (0: its share of the cores), and how many more may
    # wait per action before RequestLimitExceeded (facecloud/gateway/scheduler.py).
    model_work_slots: int = 0
    model_work_queue: int = 32
    # Light calls (DetectFace, DetectLiveFace, AnalyzeFace) doing model work at once per worker (0: as many as
    # model_work_slots). More shortens their waits at part load and costs throughput at saturation (docs/vision.md).
    light_work_slots: int = 0
    # Nice steps of the threads that run heavy model work (CompareFace, searches, enrolment), so that light calls
    # take the core from them at once; 0 runs everything at the server's priority (facecloud/priority.py).
    heavy_work_nice: int = 10
    # Longer side in pixels of the JPEG thumbnail kept per enrolled face (the console shows it); 0 keeps none.
    face_thumbnail_px: int = 96

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'facecloud.db').resolve()}"

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"FACECLOUD_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.type, raw)
        return cls(**values).with_overrides(**overrides)


def _coerce(type_name: object, raw: str) -> object:
    kind = str(type_name)
    if "Path" in kind:
        return Path(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw
