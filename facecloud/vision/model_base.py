"""One base for "a model = a file + a class" (insightface's model zoo style): what every ONNX model shares.

- `sha256_of`: the checksum of a weight file (streamed) or of bytes in memory;
- `ort_session`: an ONNX Runtime session from a path or bytes, CUDA first where onnxruntime-gpu has it, else CPU,
  with the thread count the settings give (facecloud.vision.pipeline.inference_threads);
- `OnnxModel`: a lazily built, thread-safe session; a model class keeps only its pre- and post-processing.

ONNX Runtime sessions are safe to run from many threads at once, so one session per model is enough; the lock
only guards the first build."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnxruntime

ModelSource = str | Path | bytes
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_HASH_BLOCK = 1 << 20


def sha256_of(source: Path | bytes) -> str:
    """Hex SHA-256 of a file (read in blocks, so large weights never sit whole in memory) or of bytes."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with Path(source).open("rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers to use, best first: CUDA when the installed build has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in PREFERRED_PROVIDERS if p in available]


def has_cuda() -> bool:
    """ONNX Runtime's CUDA provider is installed (onnxruntime-gpu with a usable CUDA)."""
    return "CUDAExecutionProvider" in available_providers()


def ort_session(model: ModelSource, threads: int = 1, dequantize: bool = False) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of a .onnx path or serialized graph, `threads` per call, CUDA first.

    dequantize: for a graph whose weights are stored quantized (DequantizeLinear on constants, e.g. OpenCV Zoo's
    int8bq models): the weights are dequantized once, when the session is built, instead of on every run (ONNX
    Runtime keeps such nodes by default, for its own int8 kernels); the arithmetic stays float32."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if dequantize:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=available_providers())


class OnnxModel:
    """A model file and its session, built on first use. `source` is the file (path or bytes) or a function
    giving it, for models whose graph is built or converted when first needed."""

    def __init__(self, source: ModelSource | Callable[[], ModelSource], threads: int = 1) -> None:
        self._source = source
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def session(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._session is None:
                source = self._source() if callable(self._source) else self._source
                self._session = ort_session(source, self.threads)
            return self._session

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> list[Any]:
        return self.session.run(outputs, feeds)
