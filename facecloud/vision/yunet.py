"""YuNet (OpenCV Zoo's face detector, 2023mar int8bq weights) on ONNX Runtime, answering like cv2.FaceDetectorYN.

Why not OpenCV's FaceDetectorYN: ONNX Runtime runs the same float32 network about 2.5x faster on one thread (the
detection-counts photos at up to 960 px: 17.6 vs 43.6 ms p50, the same faces within 1e-4 px, docs/vision.md), and
one session serves every thread at once (a FaceDetectorYN keeps per-input-size state: one net per call). The
decoding is FaceDetectorYN's (OpenCV 4.12, modules/objdetect/src/face_detect.cpp); tests/vision/test_yunet.py
compares the two on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from facecloud.vision.model_base import float_graph, ort_session

STRIDES = (8, 16, 32)
# The network halves its input five times; FaceDetectorYN pads the image (bottom and right, zeros) to this.
PAD_TO = 32
OUTPUTS = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]
# ONNX Runtime's memory arena keeps what the largest input needed: one fine pass over a 1920-px photo left ~240 MB
# per process. Runs on inputs above this many pixels hand their memory back afterwards; smaller ones (every
# coarse pass, at most 960 px on the long side) keep the arena, whose reuse makes them faster.
KEEP_ARENA_PIXELS = 960 * 960


def any_size_graph(model_path: Path) -> bytes:
    """The float graph with its fixed 640x640 input (and the outputs' anchor counts) made free; the recorded
    shapes of the tensors in between no longer hold, so they go too (ONNX Runtime infers them per input size)."""
    graph = onnx.load_from_string(float_graph(model_path))
    del graph.graph.value_info[:]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    return graph.SerializeToString()


class YuNet:
    """Thread-safe. `detect` gives FaceDetectorYN's rows: x, y, width, height, 5 landmarks (x, y), score."""

    def __init__(
        self, model_path: Path, score_threshold: float, nms_threshold: float, top_k: int, threads: int = 1
    ) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self._session = ort_session(any_size_graph(model_path), threads, sizes_vary=True)
        self._input = self._session.get_inputs()[0].name
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", _arenas(self._session))

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    def detect(self, bgr: np.ndarray) -> np.ndarray | None:
        height, width = bgr.shape[:2]
        padded = (-(-height // PAD_TO) * PAD_TO, -(-width // PAD_TO) * PAD_TO)
        blob = np.zeros((1, 3, *padded), np.float32)
        blob[0, :, :height, :width] = bgr.transpose(2, 0, 1)
        shrink = self._shrink if padded[0] * padded[1] > KEEP_ARENA_PIXELS else None
        outputs = dict(zip(OUTPUTS, self._session.run(OUTPUTS, {self._input: blob}, shrink), strict=True))
        found = [self._decode(outputs, stride, padded[1] // stride) for stride in STRIDES]
        faces = np.concatenate(found)
        if len(faces) == 0:
            return None
        return faces[self._non_max_suppression(faces)] if len(faces) > 1 else faces

    def _decode(self, outputs: dict[str, np.ndarray], stride: int, columns: int) -> np.ndarray:
        classes, objects = (np.clip(outputs[f"{kind}_{stride}"][0, :, 0], 0, 1) for kind in ("cls", "obj"))
        scores = np.sqrt(classes * objects)
        anchors = np.flatnonzero(scores >= self.score_threshold)
        cells = np.column_stack([anchors % columns, anchors // columns]).astype(np.float32)
        boxes = outputs[f"bbox_{stride}"][0, anchors]
        centres = (cells + boxes[:, :2]) * stride
        sizes = np.exp(boxes[:, 2:]) * stride
        points = (outputs[f"kps_{stride}"][0, anchors].reshape(-1, 5, 2) + cells[:, None, :]) * stride
        rows = [centres - sizes / 2, sizes, points.reshape(-1, 10), scores[anchors, None]]
        return np.concatenate(rows, axis=1).astype(np.float32)

    def _non_max_suppression(self, faces: np.ndarray) -> np.ndarray:
        boxes = [tuple(int(v) for v in face[:4]) for face in faces]  # FaceDetectorYN's integer boxes
        kept = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), self.score_threshold, self.nms_threshold, 1.0, self.top_k)
        return np.asarray(kept, dtype=np.int64).reshape(-1)


def _arenas(session: ort.InferenceSession) -> str:
    """The arenas to shrink: the CPU's, and the GPU's where the session runs on CUDA."""
    cuda = "CUDAExecutionProvider" in session.get_providers()
    return "cpu:0;gpu:0" if cuda else "cpu:0"
