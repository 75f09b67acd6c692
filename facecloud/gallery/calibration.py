"""Search candidate Scores: cosine -> Tencent's 0..100 gallery scale, from a table fitted on LFW identities.

Tencent's guide for search: at a 10k-face gallery, Score 70/80/90 = search false-accept rate 1%/0.1%/0.01%; at 100k
faces 80/90/100 = 1%/0.1%/0.01%. A search of N faces false-accepts about N times as often as one comparison, so per
comparison those are FAR 1e-6/1e-7/1e-8 at both sizes: Score = 10 * (-log10 FAR_pair) + 10, the same law as
CompareFace's 40/50/60 = 1e-3/1e-4/1e-5. The table therefore reuses the vision part's ScoreCalibration machinery, but is
fitted for the range search needs (FAR down to 1e-9): the empirical impostor tail of LFW (about 7 million cross-identity
pairs) resolves FAR to ~1e-6; below that the tail is extrapolated with an exponential fit of log FAR against cosine over
FAR 1e-4..1e-6, which decays slower than the true (lighter-than-exponential) tail, so the extrapolated cosines are
conservative (a Score is never higher than the data supports).
scripts/fit_search_calibration.py fits it and writes data/search_calibration.json."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from facecloud.vision.calibration import ScoreCalibration, far_for_score, score_for_far

DATA_FILE = Path(__file__).with_name("data") / "search_calibration.json"
VERIFY_MATCH_SCORE = 60.0
# UniquePersonControl 1..4: the allowed false-accept rate of "a similar person exists" for the whole group.
UNIQUE_PERSON_FAR = {1: 1e-2, 2: 1e-3, 3: 1e-4, 4: 1e-5}

__all__ = ["far_for_score", "score_for_far", "search_calibration", "search_score", "unique_person_score"]


@lru_cache(maxsize=1)
def search_calibration() -> ScoreCalibration:
    return ScoreCalibration.load(DATA_FILE)


def search_score(cosine: float) -> float:
    return round(search_calibration().score(cosine), 2)


def search_scores(cosines: np.ndarray) -> np.ndarray:
    return np.round(search_calibration().scores_of(cosines), 2)


def unique_person_score(level: int, gallery_faces: int) -> float:
    """The search Score above which a group of `gallery_faces` faces holds 'a similar person' at this level:
    the per-comparison FAR is the level's group FAR divided by the faces compared."""
    return score_for_far(UNIQUE_PERSON_FAR[level] / max(1, gallery_faces))
