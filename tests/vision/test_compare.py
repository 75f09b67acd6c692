"""CompareFace end to end through the official SDK, on real LFW photos."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models

from tests.conftest import need_data


def b64(*parts: str) -> str:
    return base64.b64encode(need_data("lfw-dev", "lfw-deepfunneled", *parts).read_bytes()).decode()


def compare(client, a: str, b: str, **extra: object) -> models.CompareFaceResponse:  # type: ignore[no-untyped-def]
    req = models.CompareFaceRequest()
    req.from_json_string(json.dumps({"ImageA": a, "ImageB": b, **extra}))
    return client.CompareFace(req)


# Pairs from LFW's own pairs.csv (fold 1): two genuine, two impostor.
SAME = [
    (("Abel_Pacheco", "Abel_Pacheco_0001.jpg"), ("Abel_Pacheco", "Abel_Pacheco_0004.jpg")),
    (("Akhmed_Zakayev", "Akhmed_Zakayev_0001.jpg"), ("Akhmed_Zakayev", "Akhmed_Zakayev_0003.jpg")),
]
DIFFERENT = [
    (("Abel_Pacheco", "Abel_Pacheco_0001.jpg"), ("Akhmed_Zakayev", "Akhmed_Zakayev_0001.jpg")),
    (("Akhmed_Zakayev", "Akhmed_Zakayev_0003.jpg"), ("Abel_Pacheco", "Abel_Pacheco_0004.jpg")),
]


def test_same_person_scores_above_50_and_different_below_40(client) -> None:  # type: ignore[no-untyped-def]
    for a, b in SAME:
        response = compare(client, b64(*a), b64(*b))
        assert response.Score > 50, (a, b, response.Score)
        assert response.FaceModelVersion == "3.0"
    for a, b in DIFFERENT:
        response = compare(client, b64(*a), b64(*b), FaceModelVersion="3.0", FaceMatchingStrategy=1)
        assert response.Score < 40, (a, b, response.Score)


def test_errors(client) -> None:  # type: ignore[no-untyped-def]
    face = b64("Abel_Pacheco", "Abel_Pacheco_0001.jpg")
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (120, 160, 200)).save(buffer, format="PNG")
    blank = base64.b64encode(buffer.getvalue()).decode()
    cases = [
        ({"ImageA": face, "ImageB": blank}, "InvalidParameterValue.NoFaceInPhoto"),
        ({"ImageA": face}, "InvalidParameterValue.ImageEmpty"),
        (
            {"ImageA": face, "ImageB": face, "FaceModelVersion": "9.0"},
            "InvalidParameterValue.FaceModelVersionIllegal",
        ),
    ]
    for body, code in cases:
        with pytest.raises(TencentCloudSDKException) as caught:
            client.call_json("CompareFace", body)
        assert caught.value.code == code


def test_quality_control_refuses_a_blurred_face_at_level_4(client) -> None:  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    raw = need_data("lfw-dev", "lfw-deepfunneled", "Abel_Pacheco", "Abel_Pacheco_0001.jpg").read_bytes()
    blurred = cv2.GaussianBlur(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), (0, 0), 6)
    blurred_b64 = base64.b64encode(cv2.imencode(".png", blurred)[1].tobytes()).decode()
    sharp = b64("Abel_Pacheco", "Abel_Pacheco_0004.jpg")
    assert compare(client, sharp, sharp, QualityControl=4).Score > 90
    with pytest.raises(TencentCloudSDKException) as caught:
        compare(client, sharp, blurred_b64, QualityControl=4)
    assert caught.value.code == "FailedOperation.FaceQualityNotQualified"
    assert compare(client, sharp, blurred_b64, QualityControl=1).Score > 0
