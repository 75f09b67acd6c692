"""Detection on real photos: hand-drawn boxes, multi-face counts, rotation search, embeddings."""

from __future__ import annotations

import csv
import io
from functools import partial

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from facecloud.vision.detector import largest_detection_scale
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


def test_downscale_maps_back_exactly_and_keeps_the_area_average() -> None:
    """An integer step first for reductions of 4x and more: a point lands where the returned scales say, though the
    step drops a row and a column, and the pixels stay close to a one-step area resize (a real photo, 4.2x and 7.3x)."""
    from facecloud.vision.detector import downscale

    canvas = np.zeros((4005, 2003, 3), np.uint8)  # odd sizes: the 2x step drops the last row and column
    cv2.circle(canvas, (1500, 3400), 12, (255, 255, 255), -1)
    for target in (960, 1920):  # with the integer step, and without
        small, scales = downscale(canvas, target / 4005)
        assert max(small.shape[:2]) in (target - 1, target)
        ys, xs = np.nonzero(small[:, :, 0])
        weights = small[ys, xs, 0].astype(float)
        centre = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)]) + 0.5
        assert np.abs(centre / scales - 0.5 - np.array([1500, 3400])).max() < 0.2

    photo = cv2.imread(str(need_data("detection-counts") / "images" / "004_A.jpg"))
    for target in (960, 550):
        factor = target / max(photo.shape[:2])
        small, scales = downscale(photo, factor)
        direct = cv2.resize(photo, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(scales - factor).max() / factor < 0.002
        assert np.abs(small.astype(int) - direct.astype(int)).mean() < 0.5
    assert downscale(photo, 1.0)[0] is photo


def test_a_large_jpeg_decoded_for_detection_only_gives_the_same_faces(pipeline: Pipeline) -> None:
    """A 12-MP phone photo whose boxes alone are asked for is decoded at half its size (libjpeg's scaled decode):
    the same faces, in the photo's own pixels, also when its EXIF orientation turns it; it has no full pixels."""
    photo = ImageOps.exif_transpose(Image.open(need_data("detection-counts") / "images" / "004_A.jpg"))
    photo = photo.convert("RGB").resize((2976, 3968), Image.Resampling.LANCZOS)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown upright only once the orientation is applied
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    for picture, extra in ((photo, {}), (stored, {"exif": exif.tobytes()})):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=92, **extra)
        whole = decode_bytes(buffer.getvalue())
        small = decode_bytes(buffer.getvalue(), detection_scale=partial(largest_detection_scale, min_face_size=34))
        assert (small.width, small.height) == (whole.width, whole.height) == (2976, 3968)
        assert small.pixels.shape[:2] == (1984, 1488)
        with pytest.raises(ValueError):
            small.bgr  # noqa: B018
        expected = pipeline.detect(whole, max_faces=5, min_face_size=34)
        found = pipeline.detect(small, max_faces=5, min_face_size=34)
        assert len(found) == len(expected) == 1
        for a, b in zip(found, expected, strict=True):
            assert iou((a.x, a.y, a.width, a.height), (b.x, b.y, b.width, b.height)) > 0.97
            assert np.abs(a.landmarks - b.landmarks).max() < 0.01 * b.width
