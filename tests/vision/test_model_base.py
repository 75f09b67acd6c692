"""The shared model base (one session builder, one checksum) and the OpenCV replacements of hand-written
geometry: NMS and the similarity-transform estimate, checked against plain reference computations."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from facecloud.vision import zoo
from facecloud.vision.alignment import similarity_from
from facecloud.vision.detector import DetectedFace, _iou, _non_max_suppression
from facecloud.vision.embedder import sface_batch, sface_for_onnxruntime
from facecloud.vision.image import decode_bytes
from facecloud.vision.model_base import (
    Inference,
    OnnxModel,
    OpenVinoSession,
    available_providers,
    float_graph,
    has_cuda,
    inference_session,
    ort_session,
    session_providers,
    sha256_of,
)
from facecloud.vision.pipeline import Pipeline
from tests.conftest import REPO, need_data


def test_sha256_of_file_and_bytes_agree(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # larger than one read block
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_of(path) == expected
    assert sha256_of(data) == expected


# Two OpenVINO sessions of a one-node graph make their first calls at the same moment, in a fresh process (where
# pybind11's numpy bridge is not built yet); before the fix, 5-7 of 12 such processes stopped for ever here.
FIRST_CALLS_AT_ONCE = r"""
import faulthandler, threading
import numpy as np
from onnx import TensorProto, helper
from facecloud.vision.model_base import OpenVinoSession

faulthandler.dump_traceback_later(60, exit=True)
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
graph = helper.make_model(
    helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]),
    opset_imports=[helper.make_opsetid("", 13)],
).SerializeToString()
sessions = [OpenVinoSession(graph) for _ in range(2)]
barrier = threading.Barrier(2)


def first_call(session):
    barrier.wait()
    session.run(None, {"x": np.ones((1, 4), np.float32)})


threads = [threading.Thread(target=first_call, args=(s,)) for s in sessions]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("both answered", flush=True)
"""


def test_first_calls_of_two_openvino_sessions_at_once_do_not_deadlock() -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_CALLS_AT_ONCE],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0 and "both answered" in out, err[-4000:]


def test_sessions_take_the_thread_count_and_prefer_cuda(pipeline: Pipeline) -> None:
    assert available_providers()[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert available_providers()[0] == "CUDAExecutionProvider"
    session = ort_session(pipeline.model_path(zoo.AGE), threads=1)
    assert session.get_providers() == available_providers()
    assert session.get_session_options().intra_op_num_threads == 1


def test_a_graph_fed_many_sizes_takes_cudnns_heuristic_algorithm_choice() -> None:
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert session_providers(both) == both
    assert session_providers(both, sizes_vary=True) == [
        ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}),
        "CPUExecutionProvider",
    ]
    assert session_providers(["CPUExecutionProvider"], sizes_vary=True) == ["CPUExecutionProvider"]


def test_openvino_runs_the_quantized_sface_as_onnx_runtime_does(pipeline: Pipeline) -> None:
    """The CPU engine's features match ONNX Runtime's on a real aligned face, in a batch with its mirror, from
    several threads at once (each call borrows its own infer request)."""
    from concurrent.futures import ThreadPoolExecutor

    graph = sface_for_onnxruntime(pipeline.model_path(zoo.SFACE))
    engine = OpenVinoSession(float_graph(graph), threads=1, calls=2)
    reference = ort_session(graph, threads=1, dequantize=True)
    img = decode_bytes(need_data("lfw-dev/lfw-deepfunneled/Aaron_Patterson/Aaron_Patterson_0001.jpg").read_bytes())
    crop = pipeline.embedder.align(img.bgr, pipeline.detector.detect(img.bgr)[0])
    batch = sface_batch([crop, crop[:, ::-1]])
    name = reference.get_inputs()[0].name
    assert engine.get_inputs()[0].name == name
    expected = reference.run(None, {name: batch})[0]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.run(None, {name: batch})[0], range(8)))
    for features in results:
        assert features.shape == expected.shape == (2, 128)
        assert np.abs(features - expected).max() < 1e-3 * np.abs(expected).max()


def test_float_graph_dequantizes_per_tensor_per_axis_and_per_block_as_onnx_runtime_does() -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weights = rng.integers(-128, 127, (4, 6), dtype=np.int8)
    forms = {  # name: (scale, zero point, attributes)
        "tensor": (np.float32(0.02), np.int8(3), {}),
        "axis": (rng.random(6, dtype=np.float32), rng.integers(-5, 5, 6, dtype=np.int8), {"axis": 1}),
        "block": (
            rng.random((2, 6), dtype=np.float32),
            rng.integers(-5, 5, (2, 6), dtype=np.int8),
            {"axis": 0, "block_size": 2},
        ),
    }
    for form, (scale, zero_point, attributes) in forms.items():
        graph = helper.make_graph(
            [
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], **attributes),
                helper.make_node("Mul", ["x", "w"], ["y"]),
            ],
            form,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 6])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 6])],
            [numpy_helper.from_array(v, n) for n, v in (("q", weights), ("s", scale), ("z", zero_point))],
        )
        # IR 10 is opset 21's own; the onnx package's newer default is refused by older ONNX Runtimes (1.31).
        model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()
        folded = float_graph(model)
        assert b"DequantizeLinear" not in folded, form
        x = np.ones((4, 6), np.float32)
        expected = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        found = ort.InferenceSession(folded, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(found, expected, err_msg=form)


def test_the_engine_follows_the_settings(pipeline: Pipeline) -> None:
    path = pipeline.model_path(zoo.GENDER)
    on_cpu = OpenVinoSession if not has_cuda() else ort.InferenceSession
    assert isinstance(inference_session(path, Inference(engine="openvino")), on_cpu)
    assert isinstance(inference_session(path, Inference(engine="onnxruntime")), ort.InferenceSession)
    with pytest.raises(ValueError, match="inference engine"):
        Inference(engine="tensorrt")


def test_onnx_model_builds_its_session_once(pipeline: Pipeline) -> None:
    path = pipeline.model_path(zoo.GENDER)
    model = OnnxModel(lambda: path.read_bytes())
    first = model.session
    assert model.session is first
    probabilities = model.run({"images": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert probabilities.shape == (1, 2)
    assert abs(float(probabilities.sum()) - 1.0) < 1e-5


def _least_squares_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The textbook estimate: [a -b tx; b a ty] solving the 2N linear equations by least squares."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def test_similarity_matches_least_squares_on_real_landmarks(pipeline: Pipeline) -> None:
    from facecloud.vision.faceapi_resnet import YUNET_TEMPLATE_150

    folder = need_data("lfw-dev", "lfw-deepfunneled")
    photos = sorted(folder.glob("A*/*.jpg"))[:20]
    worst = 0.0
    for photo in photos:
        img = decode_bytes(photo.read_bytes())
        face = pipeline.detect(img)[0]
        points = face.landmarks.astype(np.float64)
        reference = _least_squares_similarity(points, YUNET_TEMPLATE_150)
        matrix = similarity_from(points, YUNET_TEMPLATE_150)
        mapped = np.c_[points, np.ones(5)] @ matrix.T
        expected = np.c_[points, np.ones(5)] @ reference.T
        worst = max(worst, float(np.abs(mapped - expected).max()))
    assert worst < 1e-4  # pixels of the 150x150 chip


def _face(x: int, y: int, side: int, score: float) -> DetectedFace:
    return DetectedFace(x, y, side, side, score, np.zeros((5, 2), np.float32))


def test_nms_keeps_the_best_of_each_overlapping_cluster() -> None:
    faces = [
        _face(0, 0, 100, 0.9),
        _face(10, 10, 100, 0.95),  # IoU 0.68 with the first: suppresses it
        _face(300, 300, 50, 0.85),
        _face(330, 300, 50, 0.99),  # IoU 0.25 with the one before: both stay
    ]
    kept = _non_max_suppression(faces)
    assert kept == [faces[3], faces[1], faces[2]]
    assert _iou(faces[0], faces[1]) > 0.3 > _iou(faces[2], faces[3])
    assert _non_max_suppression([]) == []
