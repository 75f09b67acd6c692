"""Face embeddings with SFace (OpenCV Zoo, int8): 5-point similarity alignment to 112x112, 128-d, unit norm.

Test-time augmentation: the feature of the horizontally mirrored crop is added to the feature of the crop
before normalising (a face and its mirror are the same person; the sum averages out some pose noise).

Two backends compute the same features (cosine 1.0000 between them): OpenCV's DNN, and the session the pipeline
gives (facecloud.vision.model_base.inference_session: OpenVINO on a CPU, ONNX Runtime on a GPU), with the int8bq
weights dequantized once at load: it runs a crop and its mirror in one batch (18.5 ms on OpenVINO, 48 on ONNX
Runtime, 62 for OpenCV's two runs on the 2-core machine), and on a GPU all crops of a call (or a whole enrolment
batch) go through the network in one batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facecloud.vision.detector import DetectedFace
from facecloud.vision.netpool import NetPool

EMBEDDING_DIM = 128


def sface_for_onnxruntime(model_path: Path) -> bytes:
    """The SFace graph as ONNX Runtime takes it: OpenCV's export lists its float weights as graph inputs that no
    node reads (the nodes read the quantised copies); those, and initializers no node reads, are dropped, and the
    batch size is left free."""
    import onnx

    model = onnx.load(str(model_path))
    consumed = {name for node in model.graph.node for name in node.input}
    known = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name in consumed and i.name not in known]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    used = [init for init in model.graph.initializer if init.name in consumed]  # ONNX Runtime warns of the rest
    del model.graph.initializer[:]
    model.graph.initializer.extend(used)
    del model.graph.value_info[:]
    for tensor in (*model.graph.input, *model.graph.output):
        tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model.SerializeToString()


class FaceEmbedder:
    """Thread-safe: each call borrows a cv2.FaceRecognizerSF from a small pool, or runs the shared ONNX Runtime
    session (`session`, which is thread-safe) when one is given."""

    def __init__(self, model_path: Path, flip: bool = True, pool_size: int = 2, session: Any = None) -> None:
        self.model_path = str(model_path)
        self.flip = flip
        self.session = session
        self._pool: NetPool[cv2.FaceRecognizerSF] = NetPool(self._new_net, pool_size)

    def _new_net(self) -> cv2.FaceRecognizerSF:
        return cv2.FaceRecognizerSF.create(self.model_path, "")

    def align(self, bgr: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 112x112 BGR crop SFace was trained on (similarity transform of the 5 landmarks)."""
        with self._pool.borrow() as net:
            return net.alignCrop(bgr, face.as_yunet_row())

    def raw_feature(self, crop: np.ndarray) -> np.ndarray:
        """SFace's output for one aligned crop, not normalised."""
        if self.session is not None:
            return self.raw_features([crop])[0]
        with self._pool.borrow() as net:
            return net.feature(crop).reshape(-1).astype(np.float32)

    def raw_features(self, crops: list[np.ndarray]) -> np.ndarray:
        """SFace's outputs for many aligned crops (N x 128): one batch on the session, one by one on OpenCV."""
        if self.session is None:
            return np.stack([self.raw_feature(crop) for crop in crops])
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: sface_batch(crops)})[0].reshape(len(crops), -1).astype(np.float32)

    def embed_crops(self, crops: list[np.ndarray], flip: bool | None = None) -> np.ndarray:
        """Unit embeddings (N x 128) of aligned crops, mirrors fused; one network batch on ONNX Runtime."""
        mirrored = self.flip if flip is None else flip
        batch = crops + [cv2.flip(crop, 1) for crop in crops] if mirrored else crops
        features = self.raw_features(batch)
        if mirrored:
            features = features[: len(crops)] + features[len(crops) :]
        return np.stack([normalise(feature) for feature in features])

    def embed_crop(self, crop: np.ndarray, flip: bool | None = None) -> np.ndarray:
        return self.embed_crops([crop], flip)[0]

    def embed(self, bgr: np.ndarray, face: DetectedFace, flip: bool | None = None) -> np.ndarray:
        return self.embed_crop(self.align(bgr, face), flip)


def sface_batch(crops: list[np.ndarray]) -> np.ndarray:
    """The network input of aligned BGR crops, as cv2.FaceRecognizerSF feeds it: RGB, 0..255, NCHW float32."""
    return np.stack(crops)[:, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)


def normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)
