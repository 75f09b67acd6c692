"""The ONNX Runtime backend of the embedder (the one a GPU machine uses), checked on the CPU provider against
OpenCV's: the same features, batched or not."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from facecloud.vision import zoo
from facecloud.vision.embedder import FaceEmbedder, sface_for_onnxruntime
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline
from tests.conftest import need_data


def test_onnxruntime_embeddings_match_opencv(pipeline: Pipeline) -> None:
    path = pipeline.model_path(zoo.SFACE)
    session = ort.InferenceSession(sface_for_onnxruntime(path), providers=["CPUExecutionProvider"])
    batched = FaceEmbedder(path, session=session)
    folder = need_data("lfw-dev", "lfw-deepfunneled", "Abel_Pacheco")
    images = [decode_bytes(p.read_bytes()) for p in sorted(folder.glob("*.jpg"))[:3]]
    crops = [pipeline.embedder.align(img.bgr, pipeline.detect(img)[0]) for img in images]
    reference = np.stack([pipeline.embedder.embed_crop(crop) for crop in crops])
    together = batched.embed_crops(crops)  # one batch of 6: three crops and their mirrors
    assert together.shape == (3, 128)
    assert np.all(np.sum(reference * together, axis=1) > 0.9999)
    assert float(batched.embed_crop(crops[0]) @ reference[0]) > 0.9999


def test_embed_many_equals_one_by_one(pipeline: Pipeline) -> None:
    folder = need_data("lfw-dev", "lfw-deepfunneled", "Akhmed_Zakayev")
    images = [decode_bytes(p.read_bytes()) for p in sorted(folder.glob("*.jpg"))[:2]]
    faces = [(img, pipeline.detect(img)[0]) for img in images]
    many = pipeline.embed_many(faces)
    for row, (img, face) in zip(many, faces, strict=True):
        assert float(row @ pipeline.embed(img, face)) > 0.9999
