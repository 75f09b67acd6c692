"""The vision pipeline: decode -> detect -> align/embed -> score. Models load lazily, once, thread-safely.

Other parts compose onto this class with one cached_property each (e.g. `analyzer`, `liveness`); they can use
`session(path)` for a session of an ONNX graph as this process runs them (facecloud.vision.model_base)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.priority import lower_this_thread
from facecloud.vision import image as images
from facecloud.vision import model_base, zoo
from facecloud.vision.detector import DetectedFace, largest_detection_scale

if TYPE_CHECKING:
    from facecloud.vision.analysis import FaceAnalyzer
    from facecloud.vision.calibration import ScoreCalibration
    from facecloud.vision.detector import FaceDetector
    from facecloud.vision.embedder import FaceEmbedder
    from facecloud.vision.expression import ExpressionModel
    from facecloud.vision.faceapi_resnet import ResNetEmbedder
    from facecloud.vision.image import DecodedImage
    from facecloud.vision.liveness import LivenessModel
    from facecloud.vision.mask import MaskClassifier
    from facecloud.vision.versions import FaceModels

T = TypeVar("T")
R = TypeVar("R")

# cached_property is not thread-safe on its own (Python 3.12 dropped its lock): one lock serialises the first loads.
_LOAD_LOCK = threading.RLock()


def _locked_once(method):
    """A cached_property whose first computation happens under _LOAD_LOCK."""
    name = method.__name__

    def getter(self):
        with _LOAD_LOCK:
            if name not in self.__dict__:
                self.__dict__[name] = method(self)
            return self.__dict__[name]

    getter.__name__ = name
    getter.__doc__ = method.__doc__
    return cached_property(getter)


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = model_work_slots(settings)
        self.light_slots = settings.light_work_slots if settings.light_work_slots > 0 else self.slots
        self.threads = inference_threads(settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        return cls(settings)

    @property
    def net_pool_size(self) -> int:
        """OpenCV nets per model: one for each image that may be in work at once (heavy calls' and light ones')."""
        return IMAGES_IN_PARALLEL * self.slots + self.light_slots

    # --- models (lazy) ---

    def model_path(self, name: str) -> Path:
        return zoo.path(self.settings, name)

    @_locked_once
    def detector(self) -> FaceDetector:
        import cv2

        from facecloud.vision.detector import FaceDetector

        cv2.setNumThreads(self.threads)
        return FaceDetector(self.model_path(zoo.YUNET), threads=self.threads)

    @_locked_once
    def embedder(self) -> FaceEmbedder:
        from facecloud.vision.embedder import FaceEmbedder, sface_for_onnxruntime

        path = self.model_path(zoo.SFACE)
        # The int8bq weights dequantized once, a crop and its mirror in one batch: ~18 ms on OpenVINO, ~50 ms on
        # ONNX Runtime, ~60 ms for the two on OpenCV (same features: max difference 5e-6); on a GPU it batches there.
        session = self.heavy_session(sface_for_onnxruntime(path), dequantize=True)
        return FaceEmbedder(path, pool_size=self.net_pool_size, session=session)

    def warm_up(self) -> None:
        """Load the models every face action needs and run each once (the engines allocate on the first run), so
        that the first calls of a freshly started worker do not wait for them."""
        self.detector.detect(np.zeros((320, 320, 3), np.uint8))
        self.embedder.embed_crop(np.zeros((112, 112, 3), np.uint8))
        self.resnet.embed_chip(np.zeros((150, 150, 3), np.uint8))

    @property
    def has_cuda(self) -> bool:
        """ONNX Runtime's CUDA provider is installed (onnxruntime-gpu with a usable CUDA)."""
        return model_base.has_cuda()

    @_locked_once
    def resnet(self) -> ResNetEmbedder:
        """The second embedder (face model version 3.0 fuses it with SFace)."""
        from facecloud.vision import faceapi
        from facecloud.vision.faceapi_resnet import ResNetEmbedder

        graph = faceapi.onnx_bytes(self.settings.cache_dir, faceapi.RECOGNITION)
        return ResNetEmbedder(self.heavy_session(graph))

    @_locked_once
    def expression(self) -> ExpressionModel:
        from facecloud.vision import faceapi
        from facecloud.vision.expression import ExpressionModel

        graph = faceapi.onnx_bytes(self.settings.cache_dir, faceapi.EXPRESSION)
        return ExpressionModel(self.session(graph))

    @_locked_once
    def mask_classifier(self) -> MaskClassifier:
        from facecloud.vision.mask import MaskClassifier

        return MaskClassifier.load()

    def mask_probability(self, img: DecodedImage, face: DetectedFace) -> float:
        """Probability that the face wears a mask over nose and mouth (facecloud.vision.mask)."""
        crop = self.embedder.align(img.bgr, self.detector.refine_landmarks(img.bgr, face))
        return self.mask_classifier.probability(crop)

    @_locked_once
    def models(self) -> FaceModels:
        """Face model versions: version -> embedding and score (facecloud.vision.versions)."""
        from facecloud.vision.versions import FaceModels

        return FaceModels(self)

    @_locked_once
    def calibration(self) -> ScoreCalibration:
        from facecloud.vision.calibration import ScoreCalibration

        return ScoreCalibration.load()

    @_locked_once
    def liveness(self) -> LivenessModel:
        from facecloud.vision.liveness import LivenessModel

        return LivenessModel.from_settings(self.settings, self.session)

    @_locked_once
    def analyzer(self) -> FaceAnalyzer:
        """Mesh, attributes, quality (facecloud.vision.analysis); each model loads on first use."""
        from facecloud.vision.analysis import FaceAnalyzer

        return FaceAnalyzer(
            self.model_path(zoo.FACE_LANDMARKER),
            self.model_path(zoo.AGE),
            self.model_path(zoo.GENDER),
            self.inference,
        )

    @property
    def inference(self) -> model_base.Inference:
        """Threads per model call, calls at once (one per image in work), and the CPU engine of the settings."""
        return model_base.Inference(self.threads, self.net_pool_size, self.settings.inference_engine)

    def session(self, model: str | Path | bytes, dequantize: bool = False) -> Any:
        """A session of an ONNX graph as `inference` says (facecloud.vision.model_base.inference_session)."""
        return model_base.inference_session(model, self.inference, dequantize)

    def heavy_session(self, model: str | Path | bytes, dequantize: bool = False) -> Any:
        """A session of a model only heavy work uses (the embedders), built on a thread at the heavy work's priority:
        the threads OpenVINO starts for it inherit that priority (facecloud.priority, gateway/scheduler.py)."""
        nice = self.settings.heavy_work_nice
        with ThreadPoolExecutor(1, initializer=lower_this_thread, initargs=(nice,)) as builder:
            return builder.submit(self.session, model, dequantize).result()

    # --- the steps ---

    def decode(
        self, image: str | None = None, url: str | None = None, need_rotate: bool = False, detect_only: int = 0
    ) -> DecodedImage:
        """detect_only=MinFaceSize: the image is only for detect(), with that smallest face: a large JPEG is
        decoded no larger than the detector needs (a 12-MP photo at half its size), and has no full-size pixels."""
        return images.decode(
            image,
            url,
            timeout_s=self.settings.url_fetch_timeout_s,
            allow_cidrs=self.settings.url_allow_cidrs,
            need_rotate=need_rotate,
            detection_scale=partial(largest_detection_scale, min_face_size=detect_only) if detect_only else None,
        )

    def detect(self, img: DecodedImage, max_faces: int = 1, min_face_size: int = 34) -> list[DetectedFace]:
        """Faces, largest first (at most max_faces); rotations are tried when the image asked for it. In the
        photo's own pixels, also for an image decoded smaller (DecodedImage.scales)."""
        scales = img.scales
        faces = self.detector.detect(
            img.pixels,
            max_faces=max_faces,
            min_face_size=int(min_face_size * min(scales)),
            try_rotations=img.need_rotate,
        )
        if img.size is None:
            return faces
        faces = [face.rescaled(1 / scales, img.width, img.height) for face in faces]
        return [face for face in faces if max(face.width, face.height) >= min_face_size]

    def largest_face(self, img: DecodedImage, min_face_size: int = 34) -> DetectedFace:
        faces = self.detect(img, max_faces=1, min_face_size=min_face_size)
        if not faces:
            raise ApiError("InvalidParameterValue.NoFaceInPhoto", "No face in the image.", "图片中没有人脸。")
        return faces[0]

    def embed(self, img: DecodedImage, face: DetectedFace) -> np.ndarray:
        """128-d L2-normalised float32 embedding (SFace, mirrored-crop fusion)."""
        return self.embedder.embed(img.bgr, self.detector.refine_landmarks(img.bgr, face))

    def embed_many(self, faces: list[tuple[DecodedImage, DetectedFace]]) -> np.ndarray:
        """Embeddings (N x 128) of many faces (bulk enrolment): one network batch on a GPU, side by side per face
        on a CPU's cores."""
        if not self.has_cuda:
            return np.stack(self.map(lambda pair: self.embed(*pair), faces))
        crops = [self.embedder.align(img.bgr, self.detector.refine_landmarks(img.bgr, face)) for img, face in faces]
        return self.embedder.embed_crops(crops)

    def score(self, cosine: float) -> float:
        """Tencent's 0..100 Score for a cosine similarity (40/50/60 = FAR 1e-3/1e-4/1e-5)."""
        return self.calibration.score(cosine)

    def _heavy_pool(self, name: str) -> ThreadPoolExecutor:
        """Threads at the heavy work's priority, one for each image that may be in work at once."""
        return ThreadPoolExecutor(
            max_workers=IMAGES_IN_PARALLEL * self.slots,
            thread_name_prefix=name,
            initializer=lower_this_thread,
            initargs=(self.settings.heavy_work_nice,),
        )

    @_locked_once
    def executor(self) -> ThreadPoolExecutor:
        # Only heavy work (CompareFace's two images, bulk enrolment) runs here.
        return self._heavy_pool("facecloud-vision")

    def map(self, work: Callable[[T], R], items: list[T]) -> list[R]:
        """Run independent per-image work side by side (CompareFace's two images: half the latency on 2 cores).
        Exceptions propagate; the first item's error wins, as when run in order."""
        if len(items) < 2 or (os.cpu_count() or 1) < 2:
            return [work(item) for item in items]
        futures = [self.executor.submit(work, item) for item in items]
        return [future.result() for future in futures]

    @_locked_once
    def part_executor(self) -> ThreadPoolExecutor:
        # Its tasks (the embedders' passes) start no others, so a caller may wait on them from any thread, the
        # executor's included.
        return self._heavy_pool("facecloud-part")

    def beside(self, work: Callable[[T], R], item: T) -> Future[R]:
        """Start one model call that the caller's next one does not need (3.0's ResNet beside SFace), so that both
        cores work on a request while they are free; the caller collects it with `.result()`."""
        return self.part_executor.submit(work, item)


# CompareFace works on its two images side by side.
IMAGES_IN_PARALLEL = 2


def model_work_slots(settings: Settings) -> int:
    """Requests doing model work at once in this process (the gateway's scheduler keeps to it): its share of
    the cores, so that the worker processes together keep every core busy and none oversubscribed."""
    if settings.model_work_slots > 0:
        return settings.model_work_slots
    return max(1, (os.cpu_count() or 1) // max(1, settings.workers))


def inference_threads(settings: Settings) -> int:
    """Threads per model call. The cores are shared out between concurrent requests (model_work_slots), so one
    call runs on one thread: more would only oversubscribe the cores under load (with 2 workers on 2 cores and
    2 threads per call, CompareFace ran 8 threads on 2 cores)."""
    if settings.inference_threads > 0:
        return settings.inference_threads
    return 1
