"""The second embedder, the two face model versions, CompareMaskFace, Emotion and Mask, on real LFW photos; the
actions through the official SDK."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from facecloud.vision import faceapi
from facecloud.vision.image import decode_bytes
from facecloud.vision.mask import draw_mask, palette_colour
from facecloud.vision.pipeline import Pipeline
from tests.conftest import need_data
from tests.vision.test_compare import DIFFERENT, SAME, b64, compare

# lfw-dev fold 5 pairs: people the calibrations, the CompareMaskFace weights and the Mask classifier were not fitted on.
MASK_SAME = [
    (("Aitor_Gonzalez", "Aitor_Gonzalez_0001.jpg"), ("Aitor_Gonzalez", "Aitor_Gonzalez_0002.jpg")),
    (("Alec_Baldwin", "Alec_Baldwin_0002.jpg"), ("Alec_Baldwin", "Alec_Baldwin_0004.jpg")),
]
MASK_DIFFERENT = [
    (("Adrian_Annus", "Adrian_Annus_0001.jpg"), ("Jorge_Marquez-Ruarte", "Jorge_Marquez-Ruarte_0001.jpg")),
    (("Adrian_Murrell", "Adrian_Murrell_0001.jpg"), ("Jose_Cevallos", "Jose_Cevallos_0001.jpg")),
]


def lfw(*parts: str) -> Path:
    return need_data("lfw-dev", "lfw-deepfunneled", *parts)


def masked_b64(pipeline: Pipeline, *parts: str) -> str:
    """The photo with the test set's mask drawn over its face (facecloud.vision.mask)."""
    img = decode_bytes(lfw(*parts).read_bytes())
    face = pipeline.detector.refine_landmarks(img.bgr, pipeline.detector.detect(img.bgr, max_faces=1)[0])
    masked = draw_mask(img.bgr, face, palette_colour(parts[-1]))
    return base64.b64encode(cv2.imencode(".png", masked)[1].tobytes()).decode()


def test_rebuilt_resnet_separates_at_dlibs_threshold(pipeline: Pipeline) -> None:
    """dlib's own rule for this network: Euclidean distance < 0.6 is the same person."""

    def descriptor(parts: tuple[str, str]) -> np.ndarray:
        img = decode_bytes(lfw(*parts).read_bytes())
        face = pipeline.detector.refine_landmarks(img.bgr, pipeline.detector.detect(img.bgr, max_faces=1)[0])
        return pipeline.resnet.raw_features([pipeline.resnet.align(img.bgr, face)])[0]

    for a, b in SAME:
        assert np.linalg.norm(descriptor(a) - descriptor(b)) < 0.6, (a, b)
    for a, b in DIFFERENT:
        assert np.linalg.norm(descriptor(a) - descriptor(b)) > 0.6, (a, b)


def test_weights_failing_their_digest_are_refused(tmp_path: Path, vision_settings) -> None:  # type: ignore[no-untyped-def]
    faceapi.fetch(vision_settings.cache_dir, log=lambda line: None)
    copy = faceapi.weights_dir(tmp_path)
    shutil.copytree(faceapi.weights_dir(vision_settings.cache_dir), copy)
    target = copy / "face_expression_model.bin"
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(faceapi.FaceApiWeightsMissing, match="SHA-256"):
        faceapi.load_weights(tmp_path, faceapi.EXPRESSION)


@pytest.mark.parametrize("version", ["2.0", "3.0"])
def test_compare_face_per_version(client, version: str) -> None:  # type: ignore[no-untyped-def]
    for a, b in SAME:
        response = compare(client, b64(*a), b64(*b), FaceModelVersion=version)
        assert response.Score > 50 and response.FaceModelVersion == version, (a, b, response.Score)
    for a, b in DIFFERENT:
        assert compare(client, b64(*a), b64(*b), FaceModelVersion=version).Score < 40


def test_compare_mask_face(client, pipeline: Pipeline) -> None:  # type: ignore[no-untyped-def]
    for a, b in MASK_SAME:
        answer = client.call_json("CompareMaskFace", {"ImageA": masked_b64(pipeline, *a), "ImageB": b64(*b)})
        assert answer["Response"]["Score"] > 50, (a, b, answer)
        assert answer["Response"]["FaceModelVersion"] == "3.0"
    for a, b in MASK_DIFFERENT:
        answer = client.call_json("CompareMaskFace", {"ImageA": masked_b64(pipeline, *a), "ImageB": b64(*b)})
        assert answer["Response"]["Score"] < 40, (a, b, answer)
    with pytest.raises(TencentCloudSDKException) as caught:
        client.call_json(
            "CompareMaskFace",
            {"ImageA": b64(*MASK_SAME[0][0]), "ImageB": b64(*MASK_SAME[0][1]), "FaceModelVersion": "2.0"},
        )
    assert caught.value.code == "InvalidParameterValue.FaceModelVersionIllegal"


def test_emotion_and_mask_attributes(client, pipeline: Pipeline) -> None:  # type: ignore[no-untyped-def]
    plain = b64("Alec_Baldwin", "Alec_Baldwin_0002.jpg")
    masked = masked_b64(pipeline, "Alec_Baldwin", "Alec_Baldwin_0002.jpg")
    for image, mask_type, has_mask in ((plain, 0, False), (masked, 4, True)):
        body = {"Image": image, "FaceAttributesType": "Emotion,Mask,Age"}
        detail = client.call_json("DetectFaceAttributes", body)["Response"]["FaceDetailInfos"][0]
        info = detail["FaceDetailAttributesInfo"]
        assert info["Mask"]["Type"] == mask_type and 0.5 <= info["Mask"]["Probability"] <= 1
        assert info["Emotion"]["Type"] in range(7) and 0 < info["Emotion"]["Probability"] <= 1
        assert info["Hat"] is None and info["Beauty"] is None  # still without a model
        faces = client.call_json("DetectFace", {"Image": image, "NeedFaceAttributes": 1})["Response"]["FaceInfos"]
        assert faces[0]["FaceAttributesInfo"]["Mask"] is has_mask
    unasked = client.call_json("DetectFaceAttributes", {"Image": plain, "FaceAttributesType": "Age"})["Response"]
    assert unasked["FaceDetailInfos"][0]["FaceDetailAttributesInfo"]["Emotion"] is None


def test_emotion_of_a_broad_smile_is_happy(pipeline: Pipeline) -> None:
    """The expression net agrees with the mesh's smile on the first fold-5 photo (sorted) with a broad smile."""
    img = decode_bytes(lfw("Aileen_Riggin_Soule", "Aileen_Riggin_Soule_0001.jpg").read_bytes())
    faces = pipeline.detector.detect(img.bgr, max_faces=1)
    smile = pipeline.analyzer.attributes(img.bgr, pipeline.analyzer.meshes(img.bgr, faces))[0].expression.smile
    assert smile >= 60
    emotion = pipeline.expression.emotions(img.bgr, faces)[0]
    assert emotion.type == 1 and emotion.probability > 0.5, emotion
