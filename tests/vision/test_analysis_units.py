"""Mesh geometry, the 90/68-point layouts and the quality formula, without the HTTP layer."""

from __future__ import annotations

import math
import zipfile

import cv2
import numpy as np
import pytest

from facecloud.config import Settings
from facecloud.vision import zoo
from facecloud.vision.landmarks90 import GROUP_SIZES, GROUPS, IBUG68, face_shape, ibug68
from facecloud.vision.mesh import FaceMesh, HeadPoseModel, Roi, parse_geometry
from facecloud.vision.quality import _brightness_ok, _pose_ok


@pytest.fixture(scope="module")
def pose_model() -> tuple[HeadPoseModel, np.ndarray]:
    try:
        task = zoo.path(Settings.from_env(), zoo.FACE_LANDMARKER)
    except zoo.ModelMissingError as error:
        pytest.skip(str(error))
    geometry = parse_geometry(zipfile.ZipFile(task).read("geometry_pipeline_metadata_landmarks.binarypb"))
    assert geometry.canonical.shape == (468, 3) and len(geometry.indices) == len(geometry.weights) > 10
    return HeadPoseModel(geometry.canonical, geometry.indices, geometry.weights), geometry.canonical


def _mesh_of(points: np.ndarray) -> FaceMesh:
    return FaceMesh(np.vstack([points, np.zeros((10, 3))]).astype(np.float32), 1.0, Roi(0, 0, 1, 0))


def test_pose_signs_on_a_rotated_canonical_face(pose_model) -> None:  # type: ignore[no-untyped-def]
    model, canonical = pose_model
    face = canonical * np.array([1.0, -1.0, -1.0])  # image axes: y down, z away from the camera
    t = math.radians(20)
    chin_up = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    turn_right = np.array([[math.cos(t), 0, -math.sin(t)], [0, 1, 0], [math.sin(t), 0, math.cos(t)]])
    clockwise = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    frontal = model.run(_mesh_of(face * 30))
    assert max(abs(frontal.pitch), abs(frontal.yaw), abs(frontal.roll)) < 0.01
    assert model.run(_mesh_of(face @ chin_up.T)).pitch == pytest.approx(-20, abs=0.01)
    assert model.run(_mesh_of(face @ turn_right.T)).yaw == pytest.approx(20, abs=0.01)
    assert model.run(_mesh_of(face @ clockwise.T)).roll == pytest.approx(20, abs=0.01)


def test_layouts() -> None:
    assert {name: len(indices) for name, indices in GROUPS.items()} == GROUP_SIZES
    assert sum(GROUP_SIZES.values()) == 90 and len(IBUG68) == 68
    every = [i for indices in GROUPS.values() for i in indices]
    assert len(set(every)) == 90 and max(every) < 478
    shape = face_shape(np.arange(478 * 2, dtype=np.float64).reshape(478, 2) + 0.4)
    assert shape["LeftPupil"] == [{"X": 936, "Y": 937}]


def test_silhouette_jaw_on_the_canonical_face(pose_model) -> None:  # type: ignore[no-untyped-def]
    _, canonical = pose_model
    face = canonical * np.array([1.0, -1.0, -1.0]) * 10  # image axes, about 100 px between the eyes
    frontal = ibug68(np.vstack([face, np.zeros((10, 3))]))
    assert frontal.shape == (68, 2) and np.isfinite(frontal).all()
    assert np.linalg.norm(frontal[8] - face[152, :2]) < 3  # chin
    assert frontal[0, 1] == pytest.approx(face[127, 1], abs=0.5) and frontal[16, 1] == pytest.approx(
        face[356, 1], abs=0.5
    )
    t = math.radians(35)
    turned = face @ np.array([[math.cos(t), 0, -math.sin(t)], [0, 1, 0], [math.sin(t), 0, math.cos(t)]]).T
    xy = np.vstack([turned, np.zeros((10, 3))])
    rule, fixed = ibug68(xy), ibug68(xy, jaw="vertices")
    hull = cv2.convexHull(turned[:, :2].astype(np.float32))

    def inside(points: np.ndarray) -> np.ndarray:  # pixels inside the outline (0 on it)
        return np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in points])

    # the far side's oval vertices rotate behind the cheek; the rule keeps every jaw point on the outline
    assert np.abs(inside(rule[:17])).max() < 0.01
    assert inside(fixed[:17]).max() > 3


def test_quality_terms() -> None:
    assert _brightness_ok(50) == 100 and _brightness_ok(20) == 70 and _brightness_ok(0) == 10
    from facecloud.vision.mesh import HeadPose

    assert _pose_ok(HeadPose(0, 5, 0)) == 100 and _pose_ok(HeadPose(0, 60, 0)) == 0


def test_brightness_is_the_mean_inside_the_oval_wherever_the_face_lies() -> None:
    """Read from the oval's bounding box only: the same figure as a mask of the whole image, for faces inside,
    across the border and outside of it."""
    from types import SimpleNamespace

    from facecloud.vision.quality import FACE_OVAL, brightness

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (300, 200), dtype=np.uint8)
    angles = np.linspace(0, 2 * np.pi, max(FACE_OVAL) + 1)
    for cx, cy, radius in ((100, 150, 40), (10, 290, 60), (190, 5, 80), (-90, 150, 50), (100, 150, 0.3)):
        xy = np.stack([cx + radius * np.cos(angles), cy + 1.3 * radius * np.sin(angles)], 1)
        mask = np.zeros(grey.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(xy[list(FACE_OVAL)]).astype(np.int32)], 255)
        expected = round(float(grey[mask > 0].mean()) / 255 * 100) if mask.any() else 0
        assert brightness(grey, SimpleNamespace(xy=xy)) == expected, (cx, cy, radius)
