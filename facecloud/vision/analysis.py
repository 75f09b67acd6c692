"""Face analysis for DetectFace / DetectFaceAttributes / AnalyzeFace: runs only what the caller asks for.

`Pipeline.analyzer` returns one FaceAnalyzer; models load on first use (AnalyzeFace never loads age/gender).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.attributes import AgeGenderModel, FaceAttributes, expression
from facecloud.vision.mesh import FaceBox, FaceLandmarker, FaceMesh
from facecloud.vision.model_base import Inference
from facecloud.vision.quality import FaceQuality, assess

ATTRIBUTE_FACES = 5  # Tencent: attributes for the 5 largest faces
QUALITY_FACES = 30  # Tencent: quality for the 30 largest faces


@dataclass(frozen=True)
class FaceAnalysis:
    mesh: FaceMesh | None = None
    attributes: FaceAttributes | None = None
    quality: FaceQuality | None = None


class FaceAnalyzer:
    def __init__(self, task_path: Path, age_path: Path, gender_path: Path, inference: Inference = Inference()) -> None:
        self._task_path = task_path
        self._threads = inference.threads
        self._lock = threading.Lock()
        self._landmarker: FaceLandmarker | None = None
        self.age_gender = AgeGenderModel(age_path, gender_path, inference)

    @property
    def landmarker(self) -> FaceLandmarker:
        with self._lock:
            if self._landmarker is None:
                self._landmarker = FaceLandmarker(self._task_path, self._threads)
            return self._landmarker

    def meshes(self, bgr: np.ndarray, faces: list[FaceBox], refine: bool = True) -> list[FaceMesh]:
        """The 478-point mesh of each face (AnalyzeFace)."""
        return [self.landmarker.mesh(bgr, face, refine=refine) for face in faces]

    def attributes(self, bgr: np.ndarray, meshes: list[FaceMesh]) -> list[FaceAttributes]:
        landmarker = self.landmarker
        age_gender = self.age_gender.run(bgr, meshes)
        return [
            FaceAttributes(
                age=ag.age,
                male_probability=ag.male_probability,
                expression=expression(landmarker.blendshapes(mesh)),
                pose=landmarker.pose(mesh),
            )
            for mesh, ag in zip(meshes, age_gender, strict=True)
        ]

    def quality(self, bgr: np.ndarray, meshes: list[FaceMesh]) -> list[FaceQuality]:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return [assess(grey, mesh, self.landmarker.pose(mesh)) for mesh in meshes]

    def analyze(
        self,
        bgr: np.ndarray,
        faces: list[FaceBox],
        *,
        attributes: bool = False,
        quality: bool = False,
        attribute_faces: int = ATTRIBUTE_FACES,
        quality_faces: int = QUALITY_FACES,
    ) -> list[FaceAnalysis]:
        """Per face (same order as `faces`, largest first): attributes for the first `attribute_faces`, quality for
        the first `quality_faces`, each only when asked. Faces beyond both get an empty FaceAnalysis."""
        wanted = max(attribute_faces if attributes else 0, quality_faces if quality else 0)
        meshes = self.meshes(bgr, faces[:wanted])
        attrs = self.attributes(bgr, meshes[:attribute_faces]) if attributes else []
        quals = self.quality(bgr, meshes[:quality_faces]) if quality else []
        result = []
        for index in range(len(faces)):
            result.append(
                FaceAnalysis(
                    mesh=meshes[index] if index < len(meshes) else None,
                    attributes=attrs[index] if index < len(attrs) else None,
                    quality=quals[index] if index < len(quals) else None,
                )
            )
        return result
