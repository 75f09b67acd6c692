"""YuNet on ONNX Runtime answers as OpenCV's own cv2.FaceDetectorYN does, on real photos of every size the
detector feeds it (downscaled photos, crowds, LFW crops, the padded canvas of a border-cut face, no face at all)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecloud.config import Settings
from facecloud.vision import zoo
from facecloud.vision.detector import NMS_THRESHOLD, SCORE_THRESHOLD, TOP_K
from facecloud.vision.yunet import YuNet
from tests.conftest import need_data


def photos() -> list[tuple[str, np.ndarray]]:
    counts = sorted((need_data("detection-counts") / "images").glob("*.jpg"))[:8]
    voc = sorted((need_data("detection-voc") / "images").glob("*.jpg"))[:4]
    lfw = sorted((need_data("lfw-dev") / "lfw-deepfunneled").rglob("*.jpg"))[:4]
    found = []
    for path in counts + voc + lfw:
        bgr = cv2.imread(str(path))
        scale = min(1.0, 960 / max(bgr.shape[:2]))
        found.append((path.name, cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)))
    face = found[-1][1]
    found.append(("tight crop on a grey canvas", cv2.copyMakeBorder(face[60:190, 70:180], 110, 110, 110, 110, 0)))
    found.append(("odd size, no face", np.full((37, 53, 3), 90, np.uint8)))
    return found


@pytest.fixture(scope="module")
def model_path(vision_settings: Settings):  # type: ignore[no-untyped-def]
    return zoo.path(vision_settings, zoo.YUNET)


def test_the_same_faces_as_opencvs_face_detector(model_path) -> None:  # type: ignore[no-untyped-def]
    ours = YuNet(model_path, SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K)
    opencv = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K)
    faces_seen = 0
    for name, bgr in photos():
        opencv.setInputSize((bgr.shape[1], bgr.shape[0]))
        expected = opencv.detect(bgr)[1]
        found = ours.detect(bgr)
        if expected is None:
            assert found is None, name
            continue
        assert found is not None and found.shape == expected.shape, name
        order = np.argsort(-expected[:, 14]), np.argsort(-found[:, 14])
        np.testing.assert_allclose(found[order[1]], expected[order[0]], atol=2e-3, err_msg=name)
        faces_seen += len(found)
    assert faces_seen >= 30  # the comparison covered crowds, not only single faces
