"""Faces that fill the frame or are cut by its border, as a phone's front camera gives them.

The crops are made from ../shared/data/verify-deepface photos (not the LFW photos the padding was chosen on):
tightly around the 5 landmarks, forehead cut at the eyebrows and chin just below the mouth, scaled to 480 px."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline
from tests.conftest import need_data

CROP_SIDE, CROP_TOP, CROP_BOTTOM = 0.4, 0.3, 0.3  # margins, in eye distances, around the landmarks
SELFIE_PX = 480


def border_cut(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    eyes = float(np.linalg.norm(landmarks[0] - landmarks[1]))
    x0 = max(0, int(landmarks[:, 0].min() - CROP_SIDE * eyes))
    x1 = int(landmarks[:, 0].max() + CROP_SIDE * eyes)
    y0 = max(0, int(landmarks[:2, 1].mean() - CROP_TOP * eyes))
    y1 = int(landmarks[3:, 1].mean() + CROP_BOTTOM * eyes)
    crop = bgr[y0:y1, x0:x1]
    factor = SELFIE_PX / max(crop.shape[:2])
    return cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def selfies(pipeline: Pipeline) -> dict[str, np.ndarray]:
    folder = need_data("verify-deepface", "images")
    crops = {}
    for path in sorted(folder.glob("*.jpg")):
        img = decode_bytes(path.read_bytes())
        faces = pipeline.detect(img, max_faces=1, min_face_size=34)
        if faces:
            crops[path.name] = border_cut(img.bgr, faces[0].landmarks)
    assert len(crops) >= 20
    return crops


def png_b64(bgr: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", bgr)[1].tobytes()).decode()


def test_faces_cut_by_the_border_are_found(pipeline: Pipeline, selfies: dict[str, np.ndarray]) -> None:
    plain = [name for name, bgr in selfies.items() if pipeline.detector._detect_upright(bgr, 34)]
    found = {name: pipeline.detector.detect(bgr, max_faces=1, min_face_size=34) for name, bgr in selfies.items()}
    # The crops are hard: the plain search misses most of them.
    assert len(plain) <= len(selfies) // 2, (len(plain), len(selfies))
    missed = [name for name, faces in found.items() if not faces]
    assert len(missed) <= len(selfies) // 20, missed
    for name, faces in found.items():
        if not faces:
            continue
        face, height, width = faces[0], *selfies[name].shape[:2]
        assert face.x >= 0 and face.x + face.width <= width and face.y >= 0 and face.y + face.height <= height
        assert face.width >= 0.6 * width, (name, face)  # the face fills the frame
        left_eye, right_eye = face.landmarks[1], face.landmarks[0]
        assert 0 <= right_eye[0] < left_eye[0] <= width and 0 <= right_eye[1] <= height / 2, (name, face)


def test_nothing_is_found_on_a_blank_or_textured_image(pipeline: Pipeline) -> None:
    rng = np.random.default_rng(0)
    blank = np.full((480, 360, 3), 127, np.uint8)
    noise = rng.integers(0, 256, (480, 360, 3), dtype=np.uint8)
    assert pipeline.detector.detect(blank) == []
    assert pipeline.detector.detect(noise) == []


def test_actions_accept_a_border_cut_selfie(client, selfies: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    name = "img20.jpg"  # pairs.csv: img20 and img21 are the same person
    selfie = png_b64(selfies[name])
    other = base64.b64encode(need_data("verify-deepface", "images", "img21.jpg").read_bytes()).decode()
    detected = client.call_json("DetectFace", {"Image": selfie})["Response"]
    assert len(detected["FaceInfos"]) == 1
    assert detected["FaceInfos"][0]["Width"] >= 0.6 * detected["ImageWidth"]
    compared = client.call_json("CompareFace", {"ImageA": selfie, "ImageB": other})["Response"]
    assert compared["Score"] > 50, compared
