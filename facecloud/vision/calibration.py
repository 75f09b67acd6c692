"""Cosine similarity -> Tencent's 0..100 comparison Score.

Tencent (model 3.0) defines the score by false-accept rate: Score 40/50/60 = FAR 1e-3/1e-4/1e-5, i.e.
Score = 10 * (-log10 FAR) + 10. The shipped table holds, for scores 10, 12.5, ... up to the smallest FAR
the fitting data can resolve, the cosine at which that FAR is reached on cross-identity pairs; the score is
linear in cosine between knots, 0 at cosine -1 and 100 at cosine 1 (bench/fit_calibration.py fits it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).with_name("data") / "score_calibration.json"


def score_for_far(far: float) -> float:
    return 10.0 * -np.log10(far) + 10.0


def far_for_score(score: float) -> float:
    return float(10.0 ** (-(score - 10.0) / 10.0))


@dataclass(frozen=True)
class ScoreCalibration:
    cosines: np.ndarray  # strictly increasing, from -1 to 1
    scores: np.ndarray  # increasing, from 0 to 100

    def score(self, cosine: float) -> float:
        return float(np.interp(float(cosine), self.cosines, self.scores))

    def scores_of(self, cosines: np.ndarray) -> np.ndarray:
        return np.interp(cosines, self.cosines, self.scores)

    def cosine_at(self, score: float) -> float:
        """The cosine a Score threshold corresponds to (inverse of score())."""
        return float(np.interp(score, self.scores, self.cosines))

    @classmethod
    def from_knots(cls, knots: list[tuple[float, float]]) -> ScoreCalibration:
        """knots: (score, cosine) pairs of the fitted FAR range; the ends (0 at -1, 100 at 1) are added."""
        points = sorted(knots)
        cosines = [-1.0] + [c for _, c in points] + [1.0]
        scores = [0.0] + [s for s, _ in points] + [100.0]
        for i in range(1, len(cosines)):  # keep strictly increasing (ties where the data had no resolution)
            cosines[i] = max(cosines[i], cosines[i - 1] + 1e-6)
        if cosines[-1] > 1.0:
            raise ValueError("calibration knots reach cosine 1")
        return cls(np.array(cosines, dtype=np.float64), np.array(scores, dtype=np.float64))

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> ScoreCalibration:
        data = json.loads(path.read_text())
        return cls.from_knots([(float(k["score"]), float(k["cosine"])) for k in data["knots"]])
