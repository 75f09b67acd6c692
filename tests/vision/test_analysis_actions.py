"""DetectFace, DetectFaceAttributes and AnalyzeFace end to end through the official SDK, on real photos."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models

from tests.conftest import need_data

GROUP_SIZES = {
    "FaceProfile": 21,
    "LeftEye": 8,
    "RightEye": 8,
    "LeftEyeBrow": 8,
    "RightEyeBrow": 8,
    "Mouth": 22,
    "Nose": 13,
    "LeftPupil": 1,
    "RightPupil": 1,
}


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def typed(request_cls, payload: dict):  # type: ignore[no-untyped-def]
    request = request_cls()
    request.from_json_string(json.dumps(payload))
    return request


@pytest.fixture(scope="module")
def counts() -> tuple[Path, dict]:
    folder = need_data("detection-counts")
    meta = json.loads((folder / "annotations.json").read_text())
    return folder / "images", {image["file"]: image for image in meta["images"]}


@pytest.fixture(scope="module")
def utk_adults() -> dict[str, tuple[Path, int]]:
    """The first adult (25-45) man and woman of labels.csv: a deterministic pick, not a chosen one."""
    folder = need_data("attributes-utk")
    picked: dict[str, tuple[Path, int]] = {}
    with (folder / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            if 25 <= int(row["age"]) <= 45 and row["gender"] not in picked:
                picked[row["gender"]] = (folder / row["image"], int(row["age"]))
    return picked


def test_detect_face_multi_face_boxes_contain_the_annotated_noses(client, counts) -> None:  # type: ignore[no-untyped-def]
    images, meta = counts
    info = meta["000_5.jpg"]
    response = client.DetectFace(
        typed(models.DetectFaceRequest, {"Image": b64(images / "000_5.jpg"), "MaxFaceNum": 10})
    )
    assert (response.ImageWidth, response.ImageHeight) == (info["width"], info["height"])
    assert response.FaceModelVersion == "3.0"
    assert len(response.FaceInfos) == info["n_faces"]
    areas = [f.Width * f.Height for f in response.FaceInfos]
    assert areas == sorted(areas, reverse=True)
    for nose_x, nose_y in info["noses"]:
        assert any(f.X <= nose_x <= f.X + f.Width and f.Y <= nose_y <= f.Y + f.Height for f in response.FaceInfos)
    # Not asked for: attributes and quality are present but null (the SDK parses them into empty models).
    first = response.FaceInfos[0]
    assert first.FaceAttributesInfo.Age is None and first.FaceQualityInfo.Score is None


def test_detect_face_attributes_and_quality_on_a_labelled_face(client, counts) -> None:  # type: ignore[no-untyped-def]
    images, meta = counts
    response = client.DetectFace(
        typed(
            models.DetectFaceRequest,
            {"Image": b64(images / "009_C.jpg"), "NeedFaceAttributes": 1, "NeedQualityDetection": 1},
        )
    )
    assert len(response.FaceInfos) == 1
    face = response.FaceInfos[0]
    nose_x, nose_y = meta["009_C.jpg"]["noses"][0]
    assert face.X <= nose_x <= face.X + face.Width and face.Y <= nose_y <= face.Y + face.Height
    attributes = face.FaceAttributesInfo
    assert attributes.Gender >= 50  # person C is a man (0..49 female, 50..100 male)
    assert 15 <= attributes.Age <= 50  # annotated as about 30
    assert 0 <= attributes.Expression <= 100
    assert -30 <= attributes.Pitch <= 30 and -30 <= attributes.Yaw <= 30 and -180 <= attributes.Roll <= 180
    assert attributes.EyeOpen is True
    # No model: marked unsupported (null), never guessed.
    assert attributes.Glass is None and attributes.Hat is None
    assert attributes.Mask is False  # a model since issue 14: no mask on this face
    assert attributes.Beauty is None and attributes.Hair is None
    quality = face.FaceQualityInfo
    assert 0 <= quality.Score <= 100 and 0 <= quality.Sharpness <= 100 and 30 <= quality.Brightness <= 80
    completeness = quality.Completeness
    assert (
        min(
            completeness.Eyebrow,
            completeness.Eye,
            completeness.Nose,
            completeness.Cheek,
            completeness.Mouth,
            completeness.Chin,
        )
        == 100
    )


def test_detect_face_attributes_on_utk_adults(client, utk_adults) -> None:  # type: ignore[no-untyped-def]
    for gender, (path, age) in utk_adults.items():
        response = client.DetectFaceAttributes(
            typed(
                models.DetectFaceAttributesRequest,
                {
                    "Image": b64(path),
                    "FaceAttributesType": "Age,gender,Smile,Eye,Mouth,Headpose,Hat,Beauty,Emotion",
                },
            )
        )
        assert len(response.FaceDetailInfos) == 1
        detail = response.FaceDetailInfos[0].FaceDetailAttributesInfo
        assert detail.Gender.Type == (0 if gender == "male" else 1)  # 0 male, 1 female here
        assert 0.5 <= detail.Gender.Probability <= 1
        assert abs(detail.Age - age) <= 15
        assert detail.Eye.EyeOpen.Type in (0, 1) and detail.Eye.Glass is None
        assert detail.Mouth.MouthOpen.Type in (0, 1)
        assert 0 <= detail.Smile <= 100 and detail.HeadPose.Roll is not None
        assert detail.Hat is None and detail.Beauty is None  # no model
        assert detail.Emotion.Type in range(7)  # a model since issue 14
        assert detail.Skin is None  # not asked for


def test_detect_face_attributes_rejects_unknown_types(client, utk_adults) -> None:  # type: ignore[no-untyped-def]
    path, _ = utk_adults["male"]
    with pytest.raises(TencentCloudSDKException) as error:
        client.call_json("DetectFaceAttributes", {"Image": b64(path), "FaceAttributesType": "Age,Wings"})
    assert error.value.code == "InvalidParameterValue"


def test_analyze_face_gives_90_points_inside_the_face(client, counts) -> None:  # type: ignore[no-untyped-def]
    images, meta = counts
    image = b64(images / "000_5.jpg")
    detected = client.DetectFace(typed(models.DetectFaceRequest, {"Image": image, "MaxFaceNum": 10}))
    response = client.AnalyzeFace(typed(models.AnalyzeFaceRequest, {"Image": image, "Mode": 0}))
    assert len(response.FaceShapeSet) == len(detected.FaceInfos) == 5
    assert response.FaceModelVersion == "3.0"
    for shape, box in zip(response.FaceShapeSet, detected.FaceInfos, strict=True):
        margin = 0.25 * max(box.Width, box.Height)
        total = 0
        for group, size in GROUP_SIZES.items():
            points = getattr(shape, group)
            assert len(points) == size, group
            total += size
            for point in points:
                assert isinstance(point.X, int) and isinstance(point.Y, int)
                assert box.X - margin <= point.X <= box.X + box.Width + margin
                assert box.Y - margin <= point.Y <= box.Y + box.Height + margin
        assert total == 90
        # Layout sanity: LeftEye is on the image's left, the pupils inside their eyes, the mouth below the nose.
        assert shape.LeftPupil[0].X < shape.RightPupil[0].X
        assert min(p.X for p in shape.LeftEye) <= shape.LeftPupil[0].X <= max(p.X for p in shape.LeftEye)
        assert min(p.Y for p in shape.Mouth) > shape.Nose[0].Y
    largest = client.AnalyzeFace(typed(models.AnalyzeFaceRequest, {"Image": image, "Mode": 1}))
    assert len(largest.FaceShapeSet) == 1


def test_no_face_in_photo(client, counts) -> None:  # type: ignore[no-untyped-def]
    images, _ = counts
    image = b64(images / "017_0.jpg")
    # Distinct bodies: the gateway's replay guard refuses an identical signed request within the same second.
    for action, extra in (
        ("DetectFace", {"MaxFaceNum": 2}),
        ("DetectFaceAttributes", {"FaceAttributesType": "Age"}),
        ("AnalyzeFace", {"Mode": 1}),
    ):
        with pytest.raises(TencentCloudSDKException) as error:
            client.call_json(action, {"Image": image, **extra})
        assert error.value.code == "InvalidParameterValue.NoFaceInPhoto", action


def test_min_face_size_accepts_only_34_or_20(client, counts) -> None:  # type: ignore[no-untyped-def]
    images, _ = counts
    with pytest.raises(TencentCloudSDKException) as error:
        client.call_json("DetectFace", {"Image": b64(images / "009_C.jpg"), "MinFaceSize": 50})
    assert error.value.code.startswith("InvalidParameter")


def test_billed_as_detect_and_landmarks(server, client, counts) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from facecloud.billing.models import UsageEntry

    images, _ = counts
    image = b64(images / "009_C.jpg")
    detect = client.DetectFace(typed(models.DetectFaceRequest, {"Image": image, "MaxFaceNum": 3}))
    attributes = client.DetectFaceAttributes(
        typed(models.DetectFaceAttributesRequest, {"Image": image, "FaceAttributesType": "Age"})
    )
    analyze = client.AnalyzeFace(typed(models.AnalyzeFaceRequest, {"Image": image, "Mode": 1}))
    with server.runtime.db.session() as session:
        for request_id, service, action in (
            (detect.RequestId, "detect", "DetectFace"),
            (attributes.RequestId, "detect", "DetectFaceAttributes"),
            (analyze.RequestId, "landmarks", "AnalyzeFace"),
        ):
            entry = session.execute(select(UsageEntry).where(UsageEntry.request_id == request_id)).scalar_one()
            assert (entry.service, entry.action) == (service, action)
