"""Static (single-image) liveness: the two MiniFASNet models of Silent-Face-Anti-Spoofing, on ONNX Runtime.

The .pth weights are on no package registry, so the package ships them (PACKAGED_DIR, Apache-2.0, with their
licence); FACECLOUD_MODEL_DIR may point at another folder holding the same files. On first use each file is
SHA-256-checked and converted once to ONNX (facecloud.vision.minifasnet, no torch), cached under
<cache_dir>/models/liveness keyed by the file's digest; the model folder itself may be read-only.

Each model sees its own crop, as the authors crop (the face box scaled by 2.7 and by 4.0 around its centre, kept
inside the image, resized to 80x80, BGR 0..255). The two live-class probabilities are fused in log-odds, weighted
towards MiniFASNetV2, and the operating point is placed so that Score 40 (Tencent's recommended threshold for
DetectLiveFaceAccurate) is the fitted threshold: Score >= 40 is live (docs/liveness.md)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.vision.model_base import inference_session, sha256_of

ORIGIN_REPOSITORY = "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing"
# Raw files of the public repository at a fixed commit (the files are also SHA-256-checked after download).
ORIGIN_BASE_URL = (
    "https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/"
    "b6d5f04ad78778917853b25c778acef6d5626d15/resources/anti_spoof_models/"
)
CONVERTER_VERSION = 1  # part of the cache key: bump when minifasnet.build_onnx changes its output
INPUT_SIZE = 80
LIVE_CLASS = 1
RECOMMENDED_THRESHOLD = 40.0

# The authors' crops scale the box of their own detector (an SSD); YuNet's box is narrower and taller, theirs
# nearly square and lower on the face. Measured on the authors' three sample photos against the boxes drawn in
# their rendered results: their box is ~1.16x YuNet's width, ~0.895x its height, centred ~0.07 heights lower.
BOX_WIDTH_FACTOR = 1.16
BOX_HEIGHT_FACTOR = 0.895
BOX_CENTRE_SHIFT = 0.07

# The authors' photos are 480x640 camera frames and their crops are downscaled without anti-aliasing; a larger
# photo is first area-averaged to this long side so its crops see pixel statistics like the training ones
# (on 25 multi-megapixel live photos this accepted 92% as live, against 88% cropping the full-size photo).
WORKING_LONG_SIDE = 640

# Fusion and operating point, fitted by `bench/liveness.py --fit` on photos other than the tests' (200 LFW
# photos outside the 60 the tests and the figures use, 25 deepface photos, 100 UTKFace crops: all live) and the
# authors' 2 spoof samples: the authors' mean of probabilities rejects 15% of ordinary web photos, which both
# models score near 0; MiniFASNetV2's log-odds separate them best. The threshold lies LIVE_LOGIT_MARGIN above
# the higher of the 2 spoof samples' fused log-odds: a thin margin, resting on 2 spoof photos.
V2_WEIGHT = 0.9
LIVE_LOGIT_THRESHOLD = -5.1
LIVE_LOGIT_MARGIN = 1.0
PROBABILITY_FLOOR = 1e-7

PACKAGED_DIR = Path(__file__).with_name("data") / "liveness"

SessionFactory = Callable[[Path | bytes], Any]  # .onnx path or bytes -> a session (Pipeline.session)


@dataclass(frozen=True)
class WeightFile:
    name: str
    sha256: str
    crop_scale: float


WEIGHTS = (
    WeightFile("2.7_80x80_MiniFASNetV2.pth", "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7),
    WeightFile(
        "4_0_0_80x80_MiniFASNetV1SE.pth",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        4.0,
    ),
)


@dataclass(frozen=True)
class LivenessResult:
    live_probability: float  # 0..1, the mean of the two models' class-1 softmax (the authors' fusion)
    score: float  # 0..100, the fused log-odds placed so that 40 is the fitted threshold
    model_probabilities: tuple[float, ...] = ()  # class-1 softmax of each model, in WEIGHTS order

    @property
    def is_live(self) -> bool:
        return self.score >= RECOMMENDED_THRESHOLD


def weights_missing_error(model_dir: Path, detail: str, detail_zh: str) -> ApiError:
    names = ", ".join(w.name for w in WEIGHTS)
    return ApiError(
        "ResourceUnavailable.NotReady",
        f"Liveness detection is not ready: {detail} in the model folder {model_dir}. The facecloud package ships "
        f"the MiniFASNet weights ({names}): unset FACECLOUD_MODEL_DIR to use them, or point it at a folder "
        "holding them.",
        f"活体检测模型不可用：模型目录 {model_dir} 中{detail_zh}。facecloud 安装包自带 MiniFASNet 权重（{names}）："
        "取消设置 FACECLOUD_MODEL_DIR 即可使用，或将其指向存放这些权重的目录。",
    )


def check_weights(model_dir: Path) -> list[Path]:
    """The verified weight files, or ApiError ResourceUnavailable.NotReady saying how to get them."""
    paths = []
    for weight in WEIGHTS:
        path = model_dir / weight.name
        if not path.is_file():
            raise weights_missing_error(model_dir, f"{weight.name} is missing", f"缺少 {weight.name}")
        if sha256_of(path) != weight.sha256:
            raise weights_missing_error(
                model_dir, f"{weight.name} fails its SHA-256 check", f"{weight.name} 未通过 SHA-256 校验"
            )
        paths.append(path)
    return paths


def authors_box(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
    """A YuNet box (x, y, w, h) mapped to the box convention the MiniFASNet crops were trained on."""
    centre_x = x + width / 2
    centre_y = y + height / 2 + BOX_CENTRE_SHIFT * height
    new_w, new_h = width * BOX_WIDTH_FACTOR, height * BOX_HEIGHT_FACTOR
    return centre_x - new_w / 2, centre_y - new_h / 2, new_w, new_h


def working_copy(
    bgr: np.ndarray, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The photo shrunk (area-averaged) to WORKING_LONG_SIDE when larger, and the box in its coordinates."""
    factor = WORKING_LONG_SIDE / max(bgr.shape[:2])
    if factor >= 1.0:
        return bgr, box
    size = (max(1, round(bgr.shape[1] * factor)), max(1, round(bgr.shape[0] * factor)))
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return small, (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def crop_for_scale(bgr: np.ndarray, box: tuple[float, float, float, float], scale: float) -> np.ndarray:
    """The box scaled around its centre (less where the image is too small), shifted to stay inside, 80x80."""
    img_h, img_w = bgr.shape[:2]
    x, y, width, height = box
    scale = min(scale, (img_h - 1) / height, (img_w - 1) / width)
    new_w, new_h = width * scale, height * scale
    centre_x, centre_y = x + width / 2, y + height / 2
    left, top = centre_x - new_w / 2, centre_y - new_h / 2
    left = min(max(left, 0.0), img_w - 1 - new_w)
    top = min(max(top, 0.0), img_h - 1 - new_h)
    x0, y0, x1, y1 = int(left), int(top), int(left + new_w), int(top + new_h)
    return cv2.resize(bgr[y0 : y1 + 1, x0 : x1 + 1], (INPUT_SIZE, INPUT_SIZE))


def _logit(probability: float) -> float:
    p = min(max(probability, PROBABILITY_FLOOR), 1.0 - PROBABILITY_FLOOR)
    return math.log(p / (1.0 - p))


def fused_log_odds(v2_probability: float, v1se_probability: float) -> float:
    return V2_WEIGHT * _logit(v2_probability) + (1.0 - V2_WEIGHT) * _logit(v1se_probability)


def score_of(v2_probability: float, v1se_probability: float, threshold: float = LIVE_LOGIT_THRESHOLD) -> float:
    """0..100, monotonic in the fused log-odds, exactly RECOMMENDED_THRESHOLD at the fitted threshold."""
    shifted = fused_log_odds(v2_probability, v1se_probability) - threshold + _logit(RECOMMENDED_THRESHOLD / 100)
    return round(100.0 / (1.0 + math.exp(-shifted)), 2)


class LivenessModel:
    """Thread-safe; the ONNX sessions are built on first use (conversion happens once per weight file)."""

    def __init__(self, model_dir: Path, cache_dir: Path, make_session: SessionFactory | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.onnx_dir = Path(cache_dir) / "models" / "liveness"
        self.make_session = make_session or inference_session
        self._sessions: list | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, make_session: SessionFactory | None = None) -> LivenessModel:
        return cls(settings.model_dir or PACKAGED_DIR, settings.cache_dir, make_session)

    def ensure_ready(self) -> None:
        """Load the models now; ApiError ResourceUnavailable.NotReady when the weights are not installed."""
        self._load()

    def _load(self) -> list:
        with self._lock:
            if self._sessions is None:
                self._sessions = [
                    self._session(path, weight)
                    for path, weight in zip(check_weights(self.model_dir), WEIGHTS, strict=True)
                ]
            return self._sessions

    def _session(self, pth: Path, weight: WeightFile) -> Any:
        onnx_path = self.onnx_dir / f"{Path(weight.name).stem}-{weight.sha256[:16]}-c{CONVERTER_VERSION}.onnx"
        if not onnx_path.is_file():
            from facecloud.vision.minifasnet import build_onnx, convert, read_state_dict

            try:
                convert(pth, onnx_path, INPUT_SIZE)
            except OSError:  # an unwritable cache: convert in memory (a tenth of a second) on every start
                return self.make_session(build_onnx(read_state_dict(pth), INPUT_SIZE).SerializeToString())
        return self.make_session(onnx_path)

    def predict(self, bgr: np.ndarray, face_box: tuple[float, float, float, float]) -> LivenessResult:
        """Liveness of the face at face_box (x, y, width, height as YuNet reports it) in a BGR uint8 image."""
        v2, v1se = self.model_probabilities(bgr, face_box)
        return LivenessResult(
            live_probability=(v2 + v1se) / 2, score=score_of(v2, v1se), model_probabilities=(v2, v1se)
        )

    def model_probabilities(self, bgr: np.ndarray, face_box: tuple[float, float, float, float]) -> tuple[float, float]:
        """Each model's live-class probability (MiniFASNetV2, MiniFASNetV1SE) for the face at face_box."""
        bgr, face_box = working_copy(bgr, face_box)
        box = authors_box(*face_box)
        live = []
        for session, weight in zip(self._load(), WEIGHTS, strict=True):
            crop = crop_for_scale(bgr, box, weight.crop_scale)
            batch = crop.transpose(2, 0, 1)[None].astype(np.float32)  # raw 0..255 BGR, as the authors trained
            live.append(float(session.run(["probabilities"], {"crop": batch})[0][0][LIVE_CLASS]))
        return live[0], live[1]
