"""The shipped cosine -> Score calibration: monotone, 0..100, at its FAR anchors."""

from __future__ import annotations

import json

import numpy as np

from facecloud.vision.calibration import DATA_FILE, ScoreCalibration, far_for_score, score_for_far


def test_score_far_rule() -> None:
    assert score_for_far(1e-3) == 40 and score_for_far(1e-4) == 50 and score_for_far(1e-5) == 60
    assert abs(far_for_score(50) - 1e-4) < 1e-12


def test_shipped_calibration_is_monotone_and_bounded() -> None:
    calibration = ScoreCalibration.load()
    cosines = np.linspace(-1, 1, 4001)
    scores = calibration.scores_of(cosines)
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0 and scores[-1] == 100
    assert calibration.score(-5) == 0 and calibration.score(5) == 100


def test_anchors_sit_at_their_fitted_cosines() -> None:
    document = json.loads(DATA_FILE.read_text())
    knots = {k["score"]: k for k in document["knots"]}
    assert {40.0, 50.0, 60.0} <= set(knots)
    assert document["impostor_pairs"] > 1_000_000
    calibration = ScoreCalibration.load()
    previous = -1.0
    for score in (40.0, 50.0, 60.0):
        cosine = knots[score]["cosine"]
        assert abs(calibration.score(cosine) - score) < 1e-6
        assert abs(knots[score]["far"] - far_for_score(score)) < 1e-12
        assert cosine > previous
        previous = cosine
