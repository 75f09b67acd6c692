"""MediaPipe Face Landmarker models (face_landmarker.task) run with LiteRT, without the mediapipe package.

(Over 400 lines on purpose: the three models of one .task archive are read and used together, and about a third of
the file is MediaPipe's index tables written out.)

The .task file is a zip of three TFLite models and the face-geometry metadata; one small class per model:
- `MeshModel` (face_landmarks_detector.tflite): a 256x256 RGB crop in [0, 1] -> 478 points (468 mesh + 10
  iris) and a face-presence logit. The crop is MediaPipe's face ROI: a square around the face, rotated so the
  eyes are level, 1.5x the face size (the RectTransformation scale of MediaPipe's face graphs).
- `BlendshapeModel` (face_blendshapes.tflite): 146 of the 478 points (MediaPipe's kLandmarksSubsetIdxs), x/y
  in image pixels -> 52 ARKit-style blendshape scores in [0, 1].
- `HeadPoseModel` (geometry_pipeline_metadata_landmarks.binarypb): the canonical 3-D face and the weights of
  the landmarks MediaPipe's Procrustes alignment uses; a weighted similarity fit of the canonical face onto
  the 3-D mesh gives the head rotation, reported as pitch/yaw/roll in degrees.

ROI: a first pass uses the detector's box (centre, longer side) and its eye points (rotation); a second pass
uses MediaPipe's own tracking rule, the box around the first pass's 478 points rotated by the eye line (points
33 -> 263), which centres the crop on the mesh (bench/landmarks.py:
NME 6.50 % with it, 6.68 % without, on the 10 sample faces; it costs a second mesh run).
"""

from __future__ import annotations

import math
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

MESH_INPUT = 256
ROI_SCALE = 1.5
# First pass: YuNet's box is about the size of the mesh's own bounding box, so MediaPipe's 1.5 applies.
DETECTOR_ROI_SCALE = 1.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473

# face_blendshapes_graph.cc, kLandmarksSubsetIdxs: the 146 points the blendshape model reads.
BLENDSHAPE_LANDMARKS = (
    0,
    1,
    4,
    5,
    6,
    7,
    8,
    10,
    13,
    14,
    17,
    21,
    33,
    37,
    39,
    40,
    46,
    52,
    53,
    54,
    55,
    58,
    61,
    63,
    65,
    66,
    67,
    70,
    78,
    80,
    81,
    82,
    84,
    87,
    88,
    91,
    93,
    95,
    103,
    105,
    107,
    109,
    127,
    132,
    133,
    136,
    144,
    145,
    146,
    148,
    149,
    150,
    152,
    153,
    154,
    155,
    157,
    158,
    159,
    160,
    161,
    162,
    163,
    168,
    172,
    173,
    176,
    178,
    181,
    185,
    191,
    195,
    197,
    234,
    246,
    249,
    251,
    263,
    267,
    269,
    270,
    276,
    282,
    283,
    284,
    285,
    288,
    291,
    293,
    295,
    296,
    297,
    300,
    308,
    310,
    311,
    312,
    314,
    317,
    318,
    321,
    323,
    324,
    332,
    334,
    336,
    338,
    356,
    361,
    362,
    365,
    373,
    374,
    375,
    377,
    378,
    379,
    380,
    381,
    382,
    384,
    385,
    386,
    387,
    388,
    389,
    390,
    397,
    398,
    400,
    402,
    405,
    409,
    415,
    454,
    466,
    468,
    469,
    470,
    471,
    472,
    473,
    474,
    475,
    476,
    477,
)
BLENDSHAPE_NAMES = (
    "_neutral",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
)


class FaceBox(Protocol):
    """What the mesh needs of a detection (facecloud.vision.detector.DetectedFace fits)."""

    x: int
    y: int
    width: int
    height: int
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose, right and left mouth corners


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side, rotation (radians, image y down)."""

    cx: float
    cy: float
    size: float
    angle: float

    def to_crop(self) -> np.ndarray:
        """2x3 affine matrix mapping image pixels into the MESH_INPUT x MESH_INPUT crop."""
        scale = MESH_INPUT / self.size
        cos, sin = math.cos(self.angle) * scale, math.sin(self.angle) * scale
        half = MESH_INPUT / 2
        return np.array(
            [
                [cos, sin, half - cos * self.cx - sin * self.cy],
                [-sin, cos, half + sin * self.cx - cos * self.cy],
            ],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class FaceMesh:
    points: np.ndarray  # (478, 3) float32: x, y in image pixels, z (relative depth) in the same pixel scale
    presence: float  # the model's face-presence probability
    roi: Roi

    @property
    def xy(self) -> np.ndarray:
        return self.points[:, :2]


@dataclass(frozen=True)
class HeadPose:
    pitch: float  # degrees, positive = face turned down (chin lowered), negative = face up
    yaw: float  # degrees, positive = face turned towards the image's right
    roll: float  # degrees, positive = face tilted clockwise in the image


def roi_from_box(face: FaceBox) -> Roi:
    right_eye, left_eye = face.landmarks[0], face.landmarks[1]
    angle = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
    return Roi(
        face.x + face.width / 2,
        face.y + face.height / 2,
        max(face.width, face.height) * DETECTOR_ROI_SCALE,
        angle,
    )


def roi_from_points(xy: np.ndarray) -> Roi:
    """MediaPipe's landmarks-to-ROI rule: the image-axis box of the points, rotated by the outer eye corners."""
    right_eye, left_eye = xy[RIGHT_EYE_OUTER], xy[LEFT_EYE_OUTER]
    angle = math.atan2(float(left_eye[1] - right_eye[1]), float(left_eye[0] - right_eye[0]))
    low, high = xy.min(axis=0), xy.max(axis=0)
    centre = (low + high) / 2
    # Sides measured in the rotated frame, as RectTransformation does before scaling and squaring
    # (square_long).
    cos, sin = math.cos(angle), math.sin(angle)
    rotated = (xy - centre) @ np.array([[cos, -sin], [sin, cos]])
    side = float((rotated.max(axis=0) - rotated.min(axis=0)).max())
    return Roi(float(centre[0]), float(centre[1]), side * ROI_SCALE, angle)


class _TfliteModel:
    """A LiteRT interpreter per thread (an Interpreter is not safe to share between threads)."""

    def __init__(self, model: bytes, threads: int) -> None:
        self._model = model
        self._threads = threads
        self._local = threading.local()

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._model, num_threads=self._threads)
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
        return interpreter

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        interpreter = self._interpreter()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


class MeshModel:
    """face_landmarks_detector.tflite: 478 points from a rotated square crop."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        self._net = _TfliteModel(model, threads)

    def run(self, bgr: np.ndarray, roi: Roi) -> FaceMesh:
        matrix = roi.to_crop()
        crop = cv2.warpAffine(
            bgr, matrix, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        tensor = (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)[None]
        outputs = self._net.invoke(tensor)
        raw = next(o for o in outputs if o.size == 478 * 3).reshape(478, 3).astype(np.float64)
        flag = float(next(o for o in outputs if o.size == 1 and o.ndim == 4).reshape(()))
        inverse = cv2.invertAffineTransform(matrix)
        xy = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = raw[:, 2] * roi.size / MESH_INPUT
        points = np.column_stack([xy, z]).astype(np.float32)
        return FaceMesh(points, 1.0 / (1.0 + math.exp(-flag)), roi)


class BlendshapeModel:
    """face_blendshapes.tflite: 52 expression scores from 146 mesh points (x, y in image pixels)."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        self._net = _TfliteModel(model, threads)

    def run(self, mesh: FaceMesh) -> dict[str, float]:
        subset = mesh.xy[list(BLENDSHAPE_LANDMARKS)].astype(np.float32)[None]
        scores = self._net.invoke(subset)[0].reshape(-1)
        return {name: float(score) for name, score in zip(BLENDSHAPE_NAMES, scores, strict=True)}


class HeadPoseModel:
    """Head rotation by a weighted similarity (Procrustes) fit of MediaPipe's canonical face onto the 3-D mesh.

    The canonical face (centimetres, y up, z towards the viewer) is flipped to image axes (y down, z away), so
    that a frontal, upright face gives the identity rotation."""

    def __init__(self, canonical: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> None:
        self._reference = canonical[indices] * np.array([1.0, -1.0, -1.0])
        self._indices = indices
        self._weights = weights / weights.sum()

    def run(self, mesh: FaceMesh) -> HeadPose:
        target = mesh.points[self._indices].astype(np.float64)
        rotation = _weighted_rotation(self._reference, target, self._weights)
        return _euler_degrees(rotation)


def _weighted_rotation(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum w |s R^T - t|^2 up to scale and translation (weighted Kabsch).

    Hand-written on purpose: OpenCV's estimators (estimateAffine3D, estimateAffinePartial2D) take no per-point
    weights, and MediaPipe's Procrustes alignment weights its landmarks."""
    w = weights[:, None]
    src = source - (w * source).sum(axis=0)
    dst = target - (w * target).sum(axis=0)
    u, _, vt = np.linalg.svd((w * dst).T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _euler_degrees(rotation: np.ndarray) -> HeadPose:
    # rotation maps face axes (x: subject's left, y: down, z: away from the camera) into the image frame.
    # R = Rz(roll) Ry(yaw) Rx(pitch) in image axes.
    yaw = math.asin(max(-1.0, min(1.0, -rotation[2, 0])))
    pitch = math.atan2(rotation[2, 1], rotation[2, 2])
    roll = math.atan2(rotation[1, 0], rotation[0, 0])
    return HeadPose(pitch=-math.degrees(pitch), yaw=-math.degrees(yaw), roll=math.degrees(roll))


@dataclass(frozen=True)
class _Geometry:
    canonical: np.ndarray  # (468, 3)
    indices: np.ndarray
    weights: np.ndarray


def _geometry_message_class() -> type:
    """MediaPipe's GeometryPipelineMetadata (geometry_pipeline_metadata.proto), the fields facecloud reads, declared
    for the protobuf library (the .task file ships the serialised message, not its schema)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    Field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="facecloud_geometry.proto", package="facecloud.mediapipe")
    mesh = file.message_type.add(name="Mesh3d")
    mesh.field.add(name="vertex_buffer", number=3, type=Field.TYPE_FLOAT, label=Field.LABEL_REPEATED)
    ref = file.message_type.add(name="WeightedLandmarkRef")
    ref.field.add(name="landmark_id", number=1, type=Field.TYPE_UINT32, label=Field.LABEL_OPTIONAL)
    ref.field.add(name="weight", number=2, type=Field.TYPE_FLOAT, label=Field.LABEL_OPTIONAL)
    metadata = file.message_type.add(name="GeometryPipelineMetadata")
    for name, number, message, label in (
        ("canonical_mesh", 1, "Mesh3d", Field.LABEL_OPTIONAL),
        ("procrustes_landmark_basis", 2, "WeightedLandmarkRef", Field.LABEL_REPEATED),
    ):
        type_name = f".facecloud.mediapipe.{message}"
        metadata.field.add(name=name, number=number, type=Field.TYPE_MESSAGE, type_name=type_name, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("facecloud.mediapipe.GeometryPipelineMetadata"))


def parse_geometry(data: bytes) -> _Geometry:
    """GeometryPipelineMetadata: canonical_mesh (vertex_buffer = x,y,z,u,v per vertex) and
    procrustes_landmark_basis (landmark_id, weight)."""
    message = _geometry_message_class().FromString(data)
    canonical = np.array(message.canonical_mesh.vertex_buffer, dtype=np.float64).reshape(-1, 5)[:, :3]
    basis = message.procrustes_landmark_basis
    indices = np.array([ref.landmark_id for ref in basis])
    weights = np.array([ref.weight for ref in basis], dtype=np.float64)
    return _Geometry(canonical, indices, weights)


class FaceLandmarker:
    """The three models of face_landmarker.task, loaded once (each interpreter is created per thread on use)."""

    def __init__(self, task_path: Path, threads: int = 1) -> None:
        with zipfile.ZipFile(task_path) as archive:
            self.mesh_model = MeshModel(archive.read("face_landmarks_detector.tflite"), threads)
            self.blendshape_model = BlendshapeModel(archive.read("face_blendshapes.tflite"), threads)
            geometry = parse_geometry(archive.read("geometry_pipeline_metadata_landmarks.binarypb"))
        self.pose_model = HeadPoseModel(geometry.canonical, geometry.indices, geometry.weights)

    def mesh(self, bgr: np.ndarray, face: FaceBox, refine: bool = True) -> FaceMesh:
        mesh = self.mesh_model.run(bgr, roi_from_box(face))
        if refine:
            mesh = self.mesh_model.run(bgr, roi_from_points(mesh.xy))
        return mesh

    def blendshapes(self, mesh: FaceMesh) -> dict[str, float]:
        return self.blendshape_model.run(mesh)

    def pose(self, mesh: FaceMesh) -> HeadPose:
        return self.pose_model.run(mesh)
