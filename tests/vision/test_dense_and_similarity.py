"""AnalyzeDenseLandmarks and DetectFaceSimilarity through the official SDK, on real photos."""

from __future__ import annotations

import csv

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models

from facecloud.actions.similarity import similarity_score
from facecloud.vision.dense_landmarks import PARTS
from tests.conftest import need_data
from tests.vision.test_analysis_actions import b64, typed

# The documented point counts (docs/landmarks.md), written out so the test checks the documentation.
DENSE_COUNTS = {
    "LeftEye": 16,
    "RightEye": 16,
    "LeftEyeBrow": 14,
    "RightEyeBrow": 14,
    "MouthOutside": 20,
    "MouthInside": 20,
    "Nose": 24,
    "LeftPupil": 5,
    "RightPupil": 5,
    "CentralAxis": 28,
    "Chin": 15,
    "LeftEyeBags": 18,
    "RightEyeBags": 18,
    "Forehead": 20,
}


def _span(points, axis: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    values = [getattr(p, axis) for p in points]
    return min(values), max(values)


def five_faces() -> str:
    return b64(need_data("detection-counts", "images", "000_5.jpg"))


def test_dense_landmarks_have_the_documented_parts_in_place(client) -> None:  # type: ignore[no-untyped-def]
    image = five_faces()
    response = client.AnalyzeDenseLandmarks(typed(models.AnalyzeDenseLandmarksRequest, {"Image": image}))
    assert response.FaceModelVersion == "3.0" and response.ImageWidth > 0
    assert len(response.DenseFaceShapeSet) == 5  # five faces in this photo, at most 5 returned
    assert set(PARTS) == set(DENSE_COUNTS)
    for shape in response.DenseFaceShapeSet:
        margin = 0.3 * max(shape.Width, shape.Height)
        for part, size in DENSE_COUNTS.items():
            points = getattr(shape, part)
            assert len(points) == size, part
            for point in points:
                assert shape.X - margin <= point.X <= shape.X + shape.Width + margin
                assert shape.Y - margin <= point.Y <= shape.Y + shape.Height + margin
        # Layout: image-left eye left of the image-right one, each pupil inside its eye, brows above the eyes,
        # eye bags below them, forehead above the brows, the inner lip inside the outer, the chin lowest.
        left_x, right_x = _span(shape.LeftEye, "X"), _span(shape.RightEye, "X")
        assert left_x[1] < right_x[0]
        assert left_x[0] <= shape.LeftPupil[0].X <= left_x[1]
        assert right_x[0] <= shape.RightPupil[0].X <= right_x[1]
        assert _span(shape.LeftEyeBrow, "Y")[0] < _span(shape.LeftEye, "Y")[0]
        assert _span(shape.LeftEyeBags, "Y")[1] > _span(shape.LeftEye, "Y")[1]
        assert _span(shape.Forehead, "Y")[0] < _span(shape.RightEyeBrow, "Y")[0]
        outer_x, inner_x = _span(shape.MouthOutside, "X"), _span(shape.MouthInside, "X")
        assert outer_x[0] <= inner_x[0] and inner_x[1] <= outer_x[1]
        assert _span(shape.Chin, "Y")[1] >= _span(shape.MouthOutside, "Y")[1]
    largest = client.AnalyzeDenseLandmarks(typed(models.AnalyzeDenseLandmarksRequest, {"Image": image, "Mode": 1}))
    assert len(largest.DenseFaceShapeSet) == 1


def test_dense_landmarks_accept_only_version_3(client) -> None:  # type: ignore[no-untyped-def]
    request = {"Image": five_faces(), "FaceModelVersion": "2.0"}
    with pytest.raises(TencentCloudSDKException) as err:
        client.AnalyzeDenseLandmarks(typed(models.AnalyzeDenseLandmarksRequest, request))
    assert err.value.code == "InvalidParameterValue.FaceModelVersionIllegal"


def _pairs(same: str, count: int) -> list[tuple[str, str]]:
    lfw = need_data("lfw-dev")
    with (lfw / "pairs.csv").open() as rows:
        chosen = [row for row in csv.DictReader(rows) if row["same"] == same][:count]
    return [(b64(lfw / row["img1"]), b64(lfw / row["img2"])) for row in chosen]


def test_similarity_separates_the_same_person_from_others_at_70(client) -> None:  # type: ignore[no-untyped-def]
    for same, expect_same in (("1", True), ("0", False)):
        for a, b in _pairs(same, 3):
            request = typed(models.DetectFaceSimilarityRequest, {"ImageA": a, "ImageB": b})
            score = client.DetectFaceSimilarity(request).Score
            assert 0 <= score <= 100
            assert (score >= 70) == expect_same, (same, score)


def test_similarity_scale_puts_far_1e_4_at_70() -> None:
    assert similarity_score(50.0) == 70.0  # CompareFace 50 = FAR 1e-4
    assert similarity_score(40.0) == 60.0 and similarity_score(90.0) == 100.0
    assert similarity_score(0.0) == 0.0 and similarity_score(5.0) == 15.0
