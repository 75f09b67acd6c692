"""Static liveness through the official SDK: the authors' 3 sample photos, re-encoding, face size, billing,
and a deployment without the weights."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from sqlalchemy import select
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.iai.v20200303 import models

from facecloud.runtime import Runtime
from tests.conftest import LIVENESS_MODELS, LiveServer, _serve, need_data
from tests.conftest import test_settings as settings_for_tests

SAMPLES = {"image_F1.jpg": False, "image_F2.jpg": False, "image_T1.jpg": True}  # file -> is live
THRESHOLD = 40.0


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    folder = need_data("liveness-samples")
    return {name: (folder / name).read_bytes() for name in SAMPLES}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _reencoded(data: bytes, quality: int, scale: float = 1.0) -> bytes:
    """The photo as a camera app would re-save it: EXIF rotation applied to the pixels, new JPEG quality."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _accurate(client, data: bytes) -> models.DetectLiveFaceAccurateResponse:  # type: ignore[no-untyped-def]
    req = models.DetectLiveFaceAccurateRequest()
    req.from_json_string(json.dumps({"Image": _b64(data), "FaceModelVersion": "3.0"}))
    return client.DetectLiveFaceAccurate(req)


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TencentCloudSDKException) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize("name", list(SAMPLES))
def test_samples_are_classified(client, samples: dict[str, bytes], name: str) -> None:  # type: ignore[no-untyped-def]
    accurate = _accurate(client, samples[name])
    assert 0.0 <= accurate.Score <= 100.0 and accurate.FaceModelVersion == "3.0"
    assert (accurate.Score >= THRESHOLD) is SAMPLES[name], accurate.Score
    basic = client.call_json("DetectLiveFace", {"Image": _b64(samples[name])})["Response"]
    assert basic["IsLiveness"] is SAMPLES[name]
    assert basic["Score"] == pytest.approx(accurate.Score) and basic["FaceModelVersion"] == "3.0"


def test_score_is_stable_under_reencoding(server: LiveServer, samples: dict[str, bytes]) -> None:
    for name, live in SAMPLES.items():
        # One account per photo: its three calls stay within DetectLiveFaceAccurate's 5 QPS limit.
        client = server.client(server.new_account())
        original = _accurate(client, samples[name]).Score
        for quality in (90, 75):
            score = _accurate(client, _reencoded(samples[name], quality)).Score
            assert (score >= THRESHOLD) is live, (name, quality, score)
            assert abs(score - original) <= 8.0, (name, quality, original, score)


def test_accurate_needs_a_100px_face(client, samples: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    small = _reencoded(samples["image_T1.jpg"], 95, scale=0.5)  # the face becomes ~85x120 px
    assert _code(lambda: _accurate(client, small)) == "FailedOperation.FaceSizeTooSmall"
    answer = client.call_json("DetectLiveFace", {"Image": _b64(small)})["Response"]  # no such floor here
    assert 0.0 <= answer["Score"] <= 100.0


def test_input_checks(client, samples: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    image = _b64(samples["image_T1.jpg"])
    wrong_version = {"Image": image, "FaceModelVersion": "1.0"}
    assert _code(lambda: client.call_json("DetectLiveFaceAccurate", wrong_version)) == (
        "InvalidParameterValue.FaceModelVersionIllegal"
    )
    blank = io.BytesIO()
    Image.new("RGB", (320, 320), (200, 200, 200)).save(blank, format="PNG")
    assert _code(lambda: client.call_json("DetectLiveFace", {"Image": _b64(blank.getvalue())})) == (
        "InvalidParameterValue.NoFaceInPhoto"
    )


def test_billed_as_the_liveness_service(server: LiveServer, client, samples: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    from facecloud.billing.models import UsageEntry

    accurate = _accurate(client, samples["image_T1.jpg"])
    basic = client.call_json("DetectLiveFace", {"Image": _b64(samples["image_F1.jpg"])})["Response"]
    with server.runtime.db.session() as session:
        for request_id, action in (
            (accurate.RequestId, "DetectLiveFaceAccurate"),
            (basic["RequestId"], "DetectLiveFace"),
        ):
            entry = session.execute(select(UsageEntry).where(UsageEntry.request_id == request_id)).scalar_one()
            assert (entry.service, entry.action) == ("liveness", action)


@pytest.fixture(scope="module")
def server_without_weights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("no-liveness")
    empty: Path = tmp / "models"
    empty.mkdir()
    yield from _serve(Runtime(settings_for_tests(tmp / "data", model_dir=empty)))


def test_missing_weights_answer_how_to_install(server_without_weights: LiveServer, samples: dict[str, bytes]) -> None:
    client = server_without_weights.client(server_without_weights.new_account())
    for action, version in (("DetectLiveFace", "2.0"), ("DetectLiveFaceAccurate", "3.0")):
        with pytest.raises(TencentCloudSDKException) as caught:
            client.call_json(action, {"Image": _b64(samples["image_T1.jpg"]), "FaceModelVersion": version})
        assert caught.value.code == "ResourceUnavailable.NotReady"
        assert (
            "FACECLOUD_MODEL_DIR" in caught.value.message
            and str(server_without_weights.runtime.settings.model_dir) in caught.value.message
        )
    # every other action works without them
    answer = client.call_json("DetectFace", {"Image": _b64(samples["image_T1.jpg"])})["Response"]
    assert len(answer["FaceInfos"]) == 1


def test_an_unwritable_cache_converts_in_memory(tmp_path: Path, samples: dict[str, bytes]) -> None:
    from facecloud.vision.liveness import LivenessModel

    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    model = LivenessModel(LIVENESS_MODELS, blocked)
    model.ensure_ready()
    result = model.predict(np.zeros((480, 640, 3), np.uint8), (200.0, 150.0, 150.0, 200.0))
    assert 0.0 <= result.score <= 100.0


def test_score_places_the_fitted_threshold_at_40() -> None:
    from facecloud.vision.liveness import LIVE_LOGIT_THRESHOLD, V2_WEIGHT, score_of

    # Equal probabilities p give fused log-odds logit(p): p at the threshold scores exactly 40.
    at_threshold = 1.0 / (1.0 + np.exp(-LIVE_LOGIT_THRESHOLD))
    assert score_of(at_threshold, at_threshold) == pytest.approx(40.0, abs=0.01)
    scores = [score_of(p, p) for p in (1e-9, 1e-4, 1e-3, 0.01, 0.5, 0.99, 1.0)]
    assert scores == sorted(scores) and scores[0] >= 0.0 and scores[-1] <= 100.0
    assert V2_WEIGHT > 0.5  # MiniFASNetV2 leads: it told the spoof samples apart best (bench/liveness.py --fit)


def test_ordinary_photos_are_live_and_the_spoof_samples_are_not(pipeline, samples: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    """The held-out 60 LFW photos of bench/liveness.py (random.Random(0)); the fit used other photos."""
    import random

    from facecloud.vision.image import decode_bytes

    lfw = sorted(need_data("lfw-dev", "lfw-deepfunneled").rglob("*.jpg"))
    held_out = random.Random(0).sample(lfw, 60)

    def score(data: bytes) -> float:
        image = decode_bytes(data)
        face = pipeline.detect(image, max_faces=1, min_face_size=34)[0]
        return pipeline.liveness.predict(image.bgr, (face.x, face.y, face.width, face.height)).score

    rejected = [path.name for path in held_out if score(path.read_bytes()) < THRESHOLD]
    assert len(rejected) <= 3, rejected  # BPCER <= 0.05 (the authors' mean fusion: 9 of 60)
    for name, live in SAMPLES.items():
        assert (score(samples[name]) >= THRESHOLD) is live, name
