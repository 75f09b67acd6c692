"""One base for "a model = a file + a class" (insightface's model zoo style): what every ONNX model shares.

- `sha256_of`: the checksum of a weight file (streamed) or of bytes in memory;
- `inference_session`: a session for an ONNX graph (path or bytes) as `Inference` says: ONNX Runtime's CUDA provider
  where onnxruntime-gpu has it, else OpenVINO on the CPU (`OpenVinoSession`, the default) or ONNX Runtime's CPU
  provider (`ort_session`); all three answer ONNX Runtime's `get_inputs()` / `run(outputs, feeds)`;
- `OnnxModel`: a lazily built, thread-safe session; a model class keeps only its pre- and post-processing.

Why OpenVINO on the CPU: on the 2-core test machine it runs the convolutional models 2-3x faster than ONNX Runtime
with the same float32 arithmetic (SFace crop + mirror 18.5 vs 48 ms, MiniFASNet 1.1 vs 3.9 ms; outputs within 5e-6).

Sessions are safe to run from many threads at once, so one session per model is enough; the lock only guards the
first build."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx
    import onnxruntime

ModelSource = str | Path | bytes
ENGINES = ("openvino", "onnxruntime")
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


def session_providers(available: list[str], sizes_vary: bool = False) -> list[str | tuple[str, dict[str, str]]]:
    """The providers a session asks for. cuDNN's default exhaustive search benchmarks every convolution algorithm
    on the first run of each new input shape, so a graph fed many sizes (the detector: one per photo size) takes
    cuDNN's heuristic choice instead."""
    if not sizes_vary:
        return list(available)
    return [(p, {"cudnn_conv_algo_search": "HEURISTIC"}) if p == "CUDAExecutionProvider" else p for p in available]


def ort_session(
    model: ModelSource, threads: int = 1, dequantize: bool = False, sizes_vary: bool = False
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of a .onnx path or serialized graph, `threads` per call, CUDA first.

    dequantize: for a graph whose weights are stored quantized (DequantizeLinear on constants, e.g. OpenCV Zoo's
    int8bq models): the weights are dequantized once, when the session is built, instead of on every run (ONNX
    Runtime keeps such nodes by default, for its own int8 kernels); the arithmetic stays float32.
    sizes_vary: the graph's input size changes from call to call (`session_providers`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if dequantize:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    source = model if isinstance(model, bytes) else str(model)
    providers = session_providers(available_providers(), sizes_vary)
    return ort.InferenceSession(source, sess_options=options, providers=providers)


def float_graph(model: ModelSource) -> bytes:
    """The graph with weights stored quantized (DequantizeLinear on constants: OpenCV Zoo's int8bq blocks and
    per-tensor biases) turned into plain float32 weights, dequantized once here with numpy: OpenVINO reads no
    block-wise DequantizeLinear, and ONNX Runtime refuses per-tensor ones that carry a block size (YuNet's biases)."""
    import onnx

    graph = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
    return _dequantized(graph).SerializeToString()


def _dequantized(graph: onnx.ModelProto) -> onnx.ModelProto:
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    kept, folded = [], {}
    for node in graph.graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input if name):
            folded[node.output[0]] = _dequantize(node, [constants[name] if name else None for name in node.input])
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input} | {output.name for output in graph.graph.output}
    initializers = [init for init in graph.graph.initializer if init.name in used and init.name not in folded]
    initializers += [numpy_helper.from_array(value, name) for name, value in folded.items() if name in used]
    del graph.graph.node[:]
    graph.graph.node.extend(kept)
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(initializers)
    return graph


def _dequantize(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> np.ndarray:
    """ONNX's DequantizeLinear, (x - zero_point) * scale, per tensor, per axis or per block of `block_size`."""
    import onnx

    x, scale = inputs[0].astype(np.float32), inputs[1].astype(np.float32)
    zero_point = inputs[2].astype(np.float32) if len(inputs) > 2 and inputs[2] is not None else np.zeros_like(scale)
    if scale.size > 1:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        axis = attributes.get("axis", 1) % x.ndim
        block = attributes.get("block_size", 0)
        if block:
            blocks = np.arange(x.shape[axis]) // block
            scale, zero_point = scale.take(blocks, axis), zero_point.take(blocks, axis)
        else:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    else:
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
    return ((x - zero_point) * scale).astype(np.float32)


# pybind11 builds OpenVINO's numpy bridge lazily, on the first conversion, in a C++ static initializer that runs
# Python code: a second thread making its own first conversion meanwhile holds the GIL and waits on that static, while
# the first waits for the GIL (both stopped for ever in data_dispatcher's `tensor.data`, seen 5 times in 12 fresh
# processes running SFace and ResNet side by side). So each session's first call runs alone in the process.
_FIRST_CALLS = threading.Lock()


@cache
def _openvino_core() -> Any:
    import openvino

    return openvino.Core()


class OpenVinoSession:
    """An OpenVINO model compiled for the CPU behind ONNX Runtime's session interface. Up to `calls` calls run at
    once (one stream each, `threads` threads per stream); each call borrows an infer request from an idle pool."""

    def __init__(self, model: ModelSource, threads: int = 1, calls: int = 1) -> None:
        core = _openvino_core()
        graph = core.read_model(model, b"") if isinstance(model, bytes) else core.read_model(str(model))
        self._compiled = core.compile_model(
            graph,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": "f32",  # not bf16, which OpenVINO picks on CPUs that have it
                "NUM_STREAMS": calls,
                "INFERENCE_NUM_THREADS": calls * threads,
                "ENABLE_CPU_PINNING": False,  # the cores are shared with the other worker processes
            },
        )
        self._inputs = [SimpleNamespace(name=port.get_any_name()) for port in self._compiled.inputs]
        self._outputs = {port.get_any_name(): port for port in self._compiled.outputs}
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._called = False

    def get_inputs(self) -> list[SimpleNamespace]:
        return self._inputs

    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        if self._called:
            return self._run(output_names, feeds)
        with _FIRST_CALLS:
            results = self._run(output_names, feeds)
            self._called = True
        return results

    def _run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            results = request.infer(feeds)  # copies the outputs out of the request's buffers
            names = list(self._outputs) if output_names is None else output_names
            return [results[self._outputs[name]] for name in names]
        finally:
            self._idle.put(request)


@dataclass(frozen=True)
class Inference:
    """How sessions run: threads per call, calls at once (the process's share of the cores), the CPU engine."""

    threads: int = 1
    calls: int = 1
    engine: str = "openvino"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"inference engine {self.engine!r}: one of {', '.join(ENGINES)}")


def inference_session(model: ModelSource, inference: Inference = Inference(), dequantize: bool = False) -> Any:
    """A session of an ONNX graph: ONNX Runtime with CUDA where installed, else the CPU engine `inference` names.
    dequantize: see `ort_session` (OpenVINO gets the float graph)."""
    if inference.engine == "openvino" and not has_cuda():
        return OpenVinoSession(float_graph(model) if dequantize else model, inference.threads, inference.calls)
    return ort_session(model, inference.threads, dequantize)


class OnnxModel:
    """A model file and its session, built on first use. `source` is the file (path or bytes) or a function
    giving it, for models whose graph is built or converted when first needed."""

    def __init__(self, source: ModelSource | Callable[[], ModelSource], inference: Inference = Inference()) -> None:
        self._source = source
        self.inference = inference
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                source = self._source() if callable(self._source) else self._source
                self._session = inference_session(source, self.inference)
            return self._session

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> list[Any]:
        return self.session.run(outputs, feeds)
