"""MiniFASNet (Silent-Face-Anti-Spoofing) without PyTorch: read the .pth state dicts, build the ONNX graph.

The network, as its authors describe it, is a slim MobileFaceNet for 80x80 crops:
  conv1      3x3/2 conv-bn-prelu                       80 -> 40
  conv2_dw   3x3 depthwise conv-bn-prelu
  conv_23    depthwise block, stride 2 (no shortcut)   40 -> 20
  conv_3     residual depthwise blocks
  conv_34    depthwise block, stride 2                 20 -> 10
  conv_4     residual depthwise blocks
  conv_45    depthwise block, stride 2                 10 -> 5
  conv_5     residual depthwise blocks
  conv_6_sep 1x1 conv-bn-prelu to 512
  conv_6_dw  5x5 global depthwise conv-bn (no activation) -> 512x1x1
  linear 512 -> 128 (no bias), bn (1-d), prob 128 -> 3 (no bias); class 1 is "live".
A depthwise block is 1x1 conv-bn-prelu (expand), 3x3 depthwise conv-bn-prelu, 1x1 conv-bn (project); the
residual ones add their input back. V1SE puts a squeeze-excitation module (global average pool, 1x1
conv-bn-relu, 1x1 conv-bn, sigmoid, scale) on the last block of each residual stage, before the addition.
Channel widths differ per block (the models are pruned), so every width is read from the weights. The
Fourier-spectrum branch is used in training only and is not in the released files.

Batch-norm is folded into the preceding convolution or linear layer; the graph takes BGR crops in 0..255 (the
authors feed raw pixel values, no mean/std) as float32 NCHW and returns the 3-class logits and softmax.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import uuid
import zipfile
from pathlib import Path

import numpy as np

BN_EPS = 1e-5  # PyTorch's BatchNorm default, which the authors kept
OPSET = 17
INPUT_NAME = "crop"
STAGES = ("conv_23", "conv_3", "conv_34", "conv_4", "conv_45", "conv_5")

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# ----------------------------------------------------------------------------------------------------
# Reading a PyTorch state dict with a restricted unpickler (no torch, no arbitrary classes).


class _Storage:
    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)
        self.array: np.ndarray | None = None


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _TensorRef:
    """A tensor whose storage bytes may not be read yet (the legacy format stores them after the pickle)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise ValueError("tensor storage missing from the checkpoint")
        if not self.size:
            return np.array(data[self.offset])
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride)
        )
        return np.array(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: object):
    return _TensorRef(storage, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: tuple) -> _Storage:
        _, storage_type, key, _location, _numel, *_ = pid
        return self.storages.setdefault(str(key), _Storage(storage_type.dtype))


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .pth state dict, as numpy arrays, keys without the DataParallel 'module.' prefix."""
    storages: dict[str, _Storage] = {}
    read = _read_zip_format if zipfile.is_zipfile(path) else _read_legacy_format
    refs = read(path, storages)
    return {key.removeprefix("module."): ref.materialise() for key, ref in refs.items()}


def _read_legacy_format(path: Path, storages: dict[str, _Storage]) -> dict[str, _TensorRef]:
    with open(path, "rb") as file:
        for _ in range(3):  # magic number, protocol version, system info
            _StateDictUnpickler(file, storages).load()
        refs = _StateDictUnpickler(file, storages).load()
        keys = _StateDictUnpickler(file, storages).load()
        for key in keys:
            storage = storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            raw = file.read(count * storage.dtype.itemsize)
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return refs


def _read_zip_format(path: Path, storages: dict[str, _Storage]) -> dict[str, _TensorRef]:
    with zipfile.ZipFile(path) as archive:
        pickle_name = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
        root = pickle_name.removesuffix("data.pkl")
        refs = _StateDictUnpickler(io.BytesIO(archive.read(pickle_name)), storages).load()
        for key, storage in storages.items():
            storage.array = np.frombuffer(archive.read(f"{root}data/{key}"), dtype=storage.dtype.newbyteorder("<"))
    return refs


# ----------------------------------------------------------------------------------------------------
# Building the ONNX graph.


class _GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs: object) -> str:
        from onnx import helper

        out = self._name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def _bn_scale_shift(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        w = self.weights
        scale = w[f"{prefix}.weight"] / np.sqrt(w[f"{prefix}.running_var"] + BN_EPS)
        return scale, w[f"{prefix}.bias"] - w[f"{prefix}.running_mean"] * scale

    def conv_bn(self, x: str, conv: str, bn: str, stride: int = 1, activation: str | None = None) -> str:
        """Convolution (no bias) with its batch-norm folded in; groups, kernel, padding follow the weights."""
        kernel = self.weights[f"{conv}.weight"]
        out_ch, in_per_group, kh, kw = kernel.shape
        groups = out_ch if in_per_group == 1 and out_ch > 1 and kh > 1 else 1
        scale, shift = self._bn_scale_shift(bn)
        # 3x3 convolutions keep the size ("same"); the 5x5 global depthwise one covers the whole 5x5 map.
        pad = 1 if kh == 3 else 0
        y = self.node(
            "Conv",
            [x, self.const(f"{conv}.w", kernel * scale[:, None, None, None]), self.const(f"{conv}.b", shift)],
            conv,
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=groups,
        )
        if activation == "prelu":
            slope = self.weights[f"{conv.rsplit('.', 1)[0]}.prelu.weight"]
            y = self.node("PRelu", [y, self.const(f"{conv}.slope", slope.reshape(-1, 1, 1))], f"{conv}.prelu")
        elif activation is not None:
            y = self.node(activation, [y], f"{conv}.{activation.lower()}")
        return y

    def conv_block(self, x: str, prefix: str, stride: int = 1, prelu: bool = True) -> str:
        return self.conv_bn(x, f"{prefix}.conv", f"{prefix}.bn", stride, "prelu" if prelu else None)

    def squeeze_excite(self, x: str, prefix: str) -> str:
        pooled = self.node("GlobalAveragePool", [x], f"{prefix}.pool")
        hidden = self.conv_bn(pooled, f"{prefix}.fc1", f"{prefix}.bn1", activation="Relu")
        gate = self.conv_bn(hidden, f"{prefix}.fc2", f"{prefix}.bn2", activation="Sigmoid")
        return self.node("Mul", [x, gate], f"{prefix}.scale")

    def depthwise_block(self, x: str, prefix: str, stride: int, residual: bool) -> str:
        y = self.conv_block(x, f"{prefix}.conv")
        y = self.conv_block(y, f"{prefix}.conv_dw", stride)
        y = self.conv_block(y, f"{prefix}.project", prelu=False)
        if not residual:
            return y
        if f"{prefix}.se_module.fc1.weight" in self.weights:
            y = self.squeeze_excite(y, f"{prefix}.se_module")
        return self.node("Add", [x, y], f"{prefix}.add")

    def stage(self, x: str, prefix: str) -> str:
        if f"{prefix}.conv.conv.weight" in self.weights:  # a single downsampling block
            return self.depthwise_block(x, prefix, stride=2, residual=False)
        index = 0
        while f"{prefix}.model.{index}.conv.conv.weight" in self.weights:
            x = self.depthwise_block(x, f"{prefix}.model.{index}", stride=1, residual=True)
            index += 1
        if index == 0:
            raise ValueError(f"weights lack stage {prefix}")
        return x

    def linear(self, x: str, prefix: str, bn: str | None = None) -> str:
        weight = self.weights[f"{prefix}.weight"]
        bias = self.weights.get(f"{prefix}.bias", np.zeros(weight.shape[0], np.float32))
        if bn is not None:
            scale, shift = self._bn_scale_shift(bn)
            weight, bias = weight * scale[:, None], bias * scale + shift
        return self.node(
            "Gemm", [x, self.const(f"{prefix}.w", weight), self.const(f"{prefix}.b", bias)], prefix, transB=1
        )


def build_onnx(weights: dict[str, np.ndarray], input_size: int = 80):
    """The inference graph of a MiniFASNet state dict (V1, V2, V1SE, V2SE).

    Input `crop` (N,3,H,W) float32 BGR 0..255; outputs `logits` and `probabilities` (N,classes)."""
    from onnx import TensorProto, checker, helper

    expected_kernel = (input_size + 15) // 16
    if weights["conv_6_dw.conv.weight"].shape[2:] != (expected_kernel, expected_kernel):
        raise ValueError(f"these weights are not for {input_size}x{input_size} inputs")
    g = _GraphBuilder(weights)
    x = g.conv_block(INPUT_NAME, "conv1", stride=2)
    x = g.conv_block(x, "conv2_dw")
    for stage in STAGES:
        x = g.stage(x, stage)
    x = g.conv_block(x, "conv_6_sep")
    x = g.conv_block(x, "conv_6_dw", prelu=False)
    x = g.node("Flatten", [x], "flatten", axis=1)
    x = g.linear(x, "linear", bn="bn")
    logits = g.linear(x, "prob")
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    g.nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], name="probabilities", axis=1))
    classes = weights["prob.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes,
        "minifasnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes]),
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facecloud")
    model.ir_version = 8
    checker.check_model(model)
    return model


def convert(pth: Path, onnx_path: Path, input_size: int = 80) -> None:
    """One-time conversion of a .pth file to an .onnx file (written atomically)."""
    import onnx

    model = build_onnx(read_state_dict(pth), input_size)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    partial = onnx_path.with_name(f".{onnx_path.name}.{uuid.uuid4().hex}.partial")  # workers may race: each own
    onnx.save_model(model, str(partial))
    partial.replace(onnx_path)
