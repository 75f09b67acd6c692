"""Detection on real photos: hand-drawn boxes, multi-face counts, rotation search, embeddings."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline
from tests.conftest import need_data


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def test_hand_drawn_boxes_are_found(pipeline: Pipeline) -> None:
    folder = need_data("detection-voc")
    with (folder / "boxes.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for name in ("images/2007_007763.jpg", "images/2008_002506.jpg"):
        truth = [tuple(float(r[k]) for k in "xywh") for r in rows if r["image"] == name]
        img = decode_bytes((folder / name).read_bytes())
        faces = pipeline.detect(img, max_faces=120, min_face_size=20)
        boxes = [(f.x, f.y, f.width, f.height) for f in faces]
        assert len(faces) == len(truth), name
        for box in truth:
            assert max(iou(box, found) for found in boxes) >= 0.4, (name, box)
        for face in faces:  # inside the image, 5 landmarks inside the box (loosely)
            assert face.x >= 0 and face.x + face.width <= img.width and face.y + face.height <= img.height
            assert face.landmarks.shape == (5, 2)
            cx, cy = face.landmarks[2]
            assert face.x <= cx <= face.x + face.width and face.y <= cy <= face.y + face.height


def test_multi_face_counts_and_order(pipeline: Pipeline) -> None:
    folder = need_data("detection-counts", "images")
    for name, count in (("015_6.jpg", 6), ("010_2.jpg", 2), ("017_0.jpg", 0)):
        img = decode_bytes((folder / name).read_bytes())
        faces = pipeline.detect(img, max_faces=120, min_face_size=20)
        assert len(faces) == count, name
        areas = [f.area for f in faces]
        assert areas == sorted(areas, reverse=True)
    assert len(pipeline.detect(decode_bytes((folder / "015_6.jpg").read_bytes()), max_faces=3)) == 3


def test_rotation_search_reports_the_original_frame(pipeline: Pipeline) -> None:
    path = need_data("lfw-dev", "lfw-deepfunneled", "Abel_Pacheco", "Abel_Pacheco_0001.jpg")
    upright = decode_bytes(path.read_bytes())
    reference = pipeline.detect(upright)[0]
    turned_bgr = cv2.rotate(upright.bgr, cv2.ROTATE_90_COUNTERCLOCKWISE)
    turned = decode_bytes(cv2.imencode(".png", turned_bgr)[1].tobytes(), need_rotate=True)
    assert pipeline.detect(decode_bytes(cv2.imencode(".png", turned_bgr)[1].tobytes())) == []
    face = pipeline.detect(turned)[0]
    # The same face, in the turned image's coordinates: rotate the reference box the same way.
    h, w = upright.height, upright.width
    expected = (reference.y, w - reference.x - reference.width, reference.height, reference.width)
    assert iou((face.x, face.y, face.width, face.height), expected) > 0.6
    # And the embedding of the rotated face matches the upright one.
    similarity = float(pipeline.embed(turned, face) @ pipeline.embed(upright, reference))
    assert similarity > 0.8
    assert h == w == 250


def test_embeddings_are_unit_128d(pipeline: Pipeline) -> None:
    path = need_data("lfw-dev", "lfw-deepfunneled", "Abel_Pacheco", "Abel_Pacheco_0001.jpg")
    img = decode_bytes(path.read_bytes())
    vector = pipeline.embed(img, pipeline.largest_face(img))
    assert vector.shape == (128,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
