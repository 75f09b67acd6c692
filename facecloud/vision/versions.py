"""Face model versions: which embedder answers for a FaceModelVersion, and its score calibration.

  "2.0"  SFace alone (mirrored-crop fusion): the faster one.
  "3.0"  SFace fused with the dlib ResNet-34 of @vladmandic/face-api (facecloud.vision.faceapi_resnet): the two
         unit embeddings, weighted and concatenated (256-d), projected to 128-d by a PCA fitted on lfw-dev folds
         1-3 (data/fusion_3_0.npz) and normalised, so the gallery keeps one 128-d vector per face.

Both versions embed from two aligned crops (SFace's 112x112, the ResNet's 150x150 chip), which the gallery keeps
per face (`FaceCrops`) so a face can be re-embedded with another version without its photo. Calibrations
(cosine -> Score, the same FAR rule as facecloud.vision.calibration) are fitted per version by
bench/fit_versions.py on impostor pairs among lfw-dev folds 1-3 images; folds 4-5 check them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecloud.vision.calibration import ScoreCalibration
from facecloud.vision.embedder import normalise

if TYPE_CHECKING:
    from facecloud.vision.detector import DetectedFace
    from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).with_name("data")
VERSIONS = ("2.0", "3.0")
DEFAULT_VERSION = "3.0"


@dataclass(frozen=True)
class FaceCrops:
    """The aligned crops every version embeds from (BGR uint8)."""

    sface: np.ndarray  # 112x112
    resnet: np.ndarray  # 150x150

    def to_png(self) -> tuple[bytes, bytes]:
        return _png(self.sface), _png(self.resnet)

    @classmethod
    def from_png(cls, sface: bytes, resnet: bytes) -> FaceCrops:
        return cls(_unpng(sface), _unpng(resnet))


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def _unpng(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@dataclass(frozen=True)
class Fusion:
    sface_weight: float  # the ResNet's is sqrt(1 - w^2): the concatenation stays unit length
    projection: np.ndarray  # 256 x 128

    def fuse(self, sface: np.ndarray, resnet: np.ndarray) -> np.ndarray:
        w = self.sface_weight
        joined = np.concatenate([w * sface, np.sqrt(1 - w * w) * resnet], axis=-1)
        return normalise(joined @ self.projection)

    @classmethod
    def load(cls, path: Path = DATA / "fusion_3_0.npz") -> Fusion:
        data = np.load(path)
        return cls(float(data["sface_weight"]), data["projection"].astype(np.float32))


def load_calibration(version: str) -> ScoreCalibration:
    name = version.replace(".", "_")
    data = json.loads((DATA / f"score_calibration_{name}.json").read_text())
    return ScoreCalibration.from_knots([(float(k["score"]), float(k["cosine"])) for k in data["knots"]])


class FaceModels:
    """Embeddings and scores per FaceModelVersion, over the pipeline's models (each loads on first use)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._calibrations = {v: load_calibration(v) for v in VERSIONS}

    @cached_property
    def fusion(self) -> Fusion:
        return Fusion.load()

    def crops(self, bgr: np.ndarray, face: DetectedFace) -> FaceCrops:
        """Both aligned crops of a face (landmarks refined first, as the pipeline's embed does)."""
        refined = self.pipeline.detector.refine_landmarks(bgr, face)
        return FaceCrops(self.pipeline.embedder.align(bgr, refined), self.pipeline.resnet.align(bgr, refined))

    def embed_crops(self, crops: FaceCrops, version: str) -> np.ndarray:
        if version == "2.0":
            return self.pipeline.embedder.embed_crop(crops.sface)
        resnet = self.pipeline.beside(self.pipeline.resnet.embed_chip, crops.resnet)
        return self.fusion.fuse(self.pipeline.embedder.embed_crop(crops.sface), resnet.result())

    def embed(self, bgr: np.ndarray, face: DetectedFace, version: str) -> np.ndarray:
        return self.embed_crops(self.crops(bgr, face), version)

    def as_sface_cosine(self, cosine: float, version: str) -> float:
        """The SFace ("2.0") cosine of the same false-accept rate: the gallery's search table is SFace's, so a
        "3.0" similarity is carried onto it through the two pair calibrations (fitted on the same pairs)."""
        if version == "2.0":
            return cosine
        return self._calibrations["2.0"].cosine_at(self._calibrations[version].score(cosine))

    def score(self, cosine: float, version: str) -> float:
        return self._calibrations[version].score(cosine)
