"""Face detection with YuNet (OpenCV Zoo, int8 weights; facecloud.vision.yunet runs it).

Large images are detected on a downscaled copy and the results mapped back; the scale is chosen so that
the smallest face asked for (MinFaceSize) still spans enough pixels for YuNet."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.yunet import YuNet

# Chosen on detection-voc / detection-counts (bench/detection.py): lower lets background blobs of large
# portraits through, higher starts losing faces; NMS at 0.3 keeps neighbouring faces in crowds apart.
SCORE_THRESHOLD = 0.8
NMS_THRESHOLD = 0.3
TOP_K = 5000
# Detect on at most DETECT_LONG_SIDE pixels on the long side (speed; YuNet also misses faces that fill a
# very large input). Only when the smallest face asked for would shrink below MIN_DETECTABLE_PX is a larger
# copy searched too (up to MAX_DETECT_LONG_SIDE), for the small faces only.
DETECT_LONG_SIDE = 960
MAX_DETECT_LONG_SIDE = 1920
MIN_DETECTABLE_PX = 10
SMALL_FACE_AT_COARSE_PX = 40
# Landmark refinement for the embedding: faces are enlarged to about this size, with this much context.
REFINE_FACE_PX = 200
REFINE_CONTEXT = 2.5
REFINE_MAX_SHIFT = 0.15  # of the face size, mean over the 5 points
# YuNet misses a face that fills the frame or is cut by its border (a phone's front camera at arm's length):
# when nothing is found, the image is searched again in the middle of a grey canvas three times its size
# (padded by its long side on every side), at most PADDED_LONG_SIDE px. Chosen on border-cut crops of LFW
# photos other than the tests' (docs/vision.md): a padding of 0.25 or 0.5 finds a third of the tightest crops,
# 1.0 nearly all.
BORDER_PAD_FRACTION = 1.0
BORDER_PAD_GREY = (127, 127, 127)
PADDED_LONG_SIDE = 640
# On the padded canvas YuNet also reads some sideways faces as upright ones with made-up landmarks (4% of
# 90-degree-turned LFW photos at 0.8); border-cut faces score higher. At 0.88: 99.2% of 240 border-cut crops
# found, 0 of 209 turned photos.
PADDED_SCORE_THRESHOLD = 0.88


@dataclass(frozen=True)
class DetectedFace:
    x: int
    y: int
    width: int
    height: int
    score: float
    # Right eye, left eye, nose tip, right and left mouth corners (YuNet's order), in image pixels, float.
    landmarks: np.ndarray  # shape (5, 2) float32

    @property
    def area(self) -> int:
        return self.width * self.height

    def rescaled(self, factors: np.ndarray, width: int, height: int) -> DetectedFace:
        """The face in an image resized by factors (x, y) to width x height (box clipped to it, landmarks not)."""
        fx, fy = (float(f) for f in factors)
        x0, y0 = max(round(self.x * fx), 0), max(round(self.y * fy), 0)
        x1, y1 = min(round((self.x + self.width) * fx), width), min(round((self.y + self.height) * fy), height)
        points = (self.landmarks * factors).astype(np.float32)
        return replace(self, x=x0, y=y0, width=x1 - x0, height=y1 - y0, landmarks=points)

    def as_yunet_row(self) -> np.ndarray:
        """The 15-number row cv2.FaceRecognizerSF.alignCrop expects (box, 5 points, score)."""
        return np.array(
            [self.x, self.y, self.width, self.height, *self.landmarks.reshape(-1), self.score],
            dtype=np.float32,
        )


class FaceDetector:
    """Thread-safe."""

    def __init__(self, model_path: Path, score_threshold: float = SCORE_THRESHOLD, threads: int = 1) -> None:
        self._net = YuNet(model_path, score_threshold, NMS_THRESHOLD, TOP_K, threads)

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime's providers running the network, best first."""
        return self._net.providers

    def detect(
        self, bgr: np.ndarray, max_faces: int = 1, min_face_size: int = 34, try_rotations: bool = False
    ) -> list[DetectedFace]:
        """Faces at least min_face_size px (longer box side), largest first, at most max_faces.

        With try_rotations, when no face is found upright the image is also searched rotated by 90/180/270
        degrees; boxes are reported in the original frame (the axis-aligned box around the rotated one)."""
        faces = self._detect_upright(bgr, min_face_size) or self._detect_padded(bgr, min_face_size)
        if not faces and try_rotations:
            for code in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE):
                rotated = cv2.rotate(bgr, code)
                found = self._detect_upright(rotated, min_face_size)
                if found:
                    faces = [_unrotate(face, code, bgr.shape[1], bgr.shape[0]) for face in found]
                    break
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces[:max_faces]

    def _detect_upright(self, bgr: np.ndarray, min_face_size: int) -> list[DetectedFace]:
        height, width = bgr.shape[:2]
        coarse, fine = detection_scales(width, height, min_face_size)
        faces = self._detect_at(bgr, coarse)
        if fine is not None:
            # The fine pass only answers for faces too small for the coarse one (big faces filling a
            # large input come out badly), then overlapping boxes are merged.
            small_limit = SMALL_FACE_AT_COARSE_PX / coarse
            faces += [f for f in self._detect_at(bgr, fine) if max(f.width, f.height) < small_limit]
            faces = _non_max_suppression(faces)
        return [f for f in faces if max(f.width, f.height) >= min_face_size]

    def _detect_padded(self, bgr: np.ndarray, min_face_size: int) -> list[DetectedFace]:
        """Faces found on a canvas padded on every side, boxes clipped back to the image; landmarks keep
        their true position, which may lie outside the image (a cut-off chin's mouth corners)."""
        height, width = bgr.shape[:2]
        small, scales = downscale(bgr, PADDED_LONG_SIDE / ((1 + 2 * BORDER_PAD_FRACTION) * max(height, width)))
        pad = max(1, round(BORDER_PAD_FRACTION * max(small.shape[:2])))
        canvas = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=BORDER_PAD_GREY)
        found = (_shift_into(face, pad, scales, width, height) for face in self._detect_at(canvas, 1.0))
        return [
            face
            for face in found
            if face is not None
            and face.score >= PADDED_SCORE_THRESHOLD
            and max(face.width, face.height) >= min_face_size
        ]

    def _detect_at(self, bgr: np.ndarray, scale: float) -> list[DetectedFace]:
        height, width = bgr.shape[:2]
        small, scales = downscale(bgr, scale)
        rows = self._net.detect(small)
        if rows is None:
            return []
        return [f for f in (_to_face(row, scales, width, height) for row in rows) if f is not None]

    def refine_landmarks(self, bgr: np.ndarray, face: DetectedFace) -> DetectedFace:
        """The same face with its 5 landmarks measured again on an enlarged crop around it.

        YuNet places landmarks more precisely on faces of ~200 px than on the ~100 px faces of typical photos;
        alignment for the embedding uses the refined points (LFW: 99.33% -> 99.37%, docs/vision.md). Faces
        already that large, or not found again, are returned unchanged."""
        side = max(face.width, face.height)
        scale = REFINE_FACE_PX / max(side, 1)
        if scale < 1.25:
            return face
        cx, cy = face.x + face.width / 2, face.y + face.height / 2
        half = REFINE_CONTEXT * side / 2
        height, width = bgr.shape[:2]
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(width, int(cx + half)), min(height, int(cy + half))
        crop = cv2.resize(bgr[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        rows = self._net.detect(crop)
        if rows is None:
            return face
        mapped = [_to_face(row, np.array([scale, scale]), x1 - x0, y1 - y0) for row in rows]
        candidates = [
            replace(f, x=f.x + x0, y=f.y + y0, landmarks=f.landmarks + np.float32([x0, y0]))
            for f in mapped
            if f is not None
        ]
        best = max(candidates, key=lambda f: _iou(f, face), default=None)
        if best is None or _iou(best, face) < 0.5:
            return face
        # A re-measurement, not a new guess: points that moved far (e.g. a sideways face found by the rotation
        # search, which YuNet misreads upright) are ignored.
        moved = float(np.linalg.norm(best.landmarks - face.landmarks, axis=1).mean())
        return replace(face, landmarks=best.landmarks) if moved <= REFINE_MAX_SHIFT * side else face


def detection_scales(width: int, height: int, min_face_size: int) -> tuple[float, float | None]:
    """The coarse scale (long side <= DETECT_LONG_SIDE) and, when the smallest face asked for would be too
    small there, a finer one (long side <= MAX_DETECT_LONG_SIDE)."""
    long_side = max(width, height)
    # Not smaller for large minimum face sizes: the face model versions' PCA and calibrations were fitted on
    # faces detected at this scale, and a smaller one moved the landmarks enough to change masked-face scores.
    coarse = min(1.0, DETECT_LONG_SIDE / long_side)
    if min_face_size <= 0 or min_face_size * coarse >= MIN_DETECTABLE_PX:
        return coarse, None
    fine = min(1.0, MAX_DETECT_LONG_SIDE / long_side, MIN_DETECTABLE_PX / min_face_size)
    return coarse, (fine if fine > coarse * 1.25 else None)


def largest_detection_scale(width: int, height: int, min_face_size: int) -> float:
    """The largest scale detect() resizes a width x height image to (rotations and the padded pass use less)."""
    coarse, fine = detection_scales(width, height, min_face_size)
    return max(coarse, fine or 0.0)


def downscale(bgr: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """bgr resized by about `scale` (area averaging; unchanged when scale >= 1), and the scales (x, y) it was
    really resized by.

    OpenCV's area resampling is several times faster at an integer factor, so for reductions of 4x and more an
    integer step goes first, leaving at least 2x to the exact resampler: a last step near 1x blurs (7x then 1.04x
    moved a box by 6% of the face against the one-step resize), 2x and more keeps the pixels close to it. The
    integer step drops the last rows and columns that do not fill a whole block (fewer than the step); the scales
    returned map what is left exactly."""
    if scale >= 1.0:
        return bgr, np.ones(2)
    height, width = bgr.shape[:2]
    step = int(0.5 / scale)
    if step >= 2:
        height, width = height - height % step, width - width % step
        bgr = cv2.resize(bgr[:height, :width], (width // step, height // step), interpolation=cv2.INTER_AREA)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = bgr if size == (bgr.shape[1], bgr.shape[0]) else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return small, np.array([size[0] / width, size[1] / height])


def _non_max_suppression(faces: list[DetectedFace], threshold: float = NMS_THRESHOLD) -> list[DetectedFace]:
    """The highest-scoring faces among those overlapping by IoU above threshold (OpenCV's NMSBoxes)."""
    if not faces:
        return []
    boxes = [(f.x, f.y, f.width, f.height) for f in faces]
    kept = cv2.dnn.NMSBoxes(boxes, [f.score for f in faces], score_threshold=0.0, nms_threshold=threshold)
    return [faces[int(i)] for i in np.asarray(kept).reshape(-1)]


def _iou(a: DetectedFace, b: DetectedFace) -> float:
    """Intersection over union of two boxes (refine_landmarks matches a re-detected face with it)."""
    ix = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    return inter / max(a.area + b.area - inter, 1)


def _to_face(row: np.ndarray, scales: np.ndarray, width: int, height: int) -> DetectedFace | None:
    """A YuNet row found on the image resized by scales (x, y), in the width x height frame."""
    inverse = 1.0 / scales
    x0, y0, w, h = (float(v) for v in row[:4] * np.tile(inverse, 2))
    x1, y1 = min(x0 + w, width), min(y0 + h, height)
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    landmarks = (row[4:14].reshape(5, 2) * inverse).astype(np.float32)
    left, top = int(round(x0)), int(round(y0))
    return DetectedFace(left, top, int(round(x1)) - left, int(round(y1)) - top, float(row[14]), landmarks)


def _shift_into(face: DetectedFace, pad: int, scales: np.ndarray, width: int, height: int) -> DetectedFace | None:
    """A face found on a canvas of the image resized by scales (x, y) and padded by `pad`, in the original
    width x height frame (box clipped to it, landmarks not)."""
    shifted = replace(face, x=face.x - pad, y=face.y - pad, landmarks=face.landmarks - np.float32([pad, pad]))
    mapped = shifted.rescaled(1 / scales, width, height)
    return mapped if mapped.width >= 1 and mapped.height >= 1 else None


def _unrotate(face: DetectedFace, code: int, width: int, height: int) -> DetectedFace:
    """Map a face found in cv2.rotate(image, code) back to the original width x height frame."""
    corners = np.array([[face.x, face.y], [face.x + face.width, face.y + face.height]], dtype=np.float32)
    corners = _unrotate_points(corners, code, width, height)
    points = _unrotate_points(face.landmarks, code, width, height)
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    left, top = int(round(max(x0, 0))), int(round(max(y0, 0)))
    right, bottom = int(round(min(x1, width))), int(round(min(y1, height)))
    return replace(face, x=left, y=top, width=right - left, height=bottom - top, landmarks=points.astype(np.float32))


def _unrotate_points(points: np.ndarray, code: int, width: int, height: int) -> np.ndarray:
    u, v = points[:, 0], points[:, 1]
    if code == cv2.ROTATE_90_CLOCKWISE:  # rotated (u, v) came from original (v, H - u)
        return np.stack([v, height - u], axis=1)
    if code == cv2.ROTATE_180:
        return np.stack([width - u, height - v], axis=1)
    return np.stack([width - v, u], axis=1)  # ROTATE_90_COUNTERCLOCKWISE
