"""The torch-free MiniFASNet reader and ONNX builder: same logits as a PyTorch definition, safe unpickling."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from facecloud.vision.liveness import WEIGHTS
from facecloud.vision.minifasnet import build_onnx, read_state_dict
from tests.conftest import LIVENESS_MODELS

REFERENCE = json.loads((Path(__file__).parent / "minifasnet_reference.json").read_text())


def _weights(name: str) -> Path:
    return LIVENESS_MODELS / name


@pytest.mark.parametrize("name", [w.name for w in WEIGHTS])
def test_onnx_graph_matches_the_torch_reference(name: str) -> None:
    weights = read_state_dict(_weights(name))
    assert "prob.weight" in weights and not any(k.startswith("module.") for k in weights)
    session = ort.InferenceSession(build_onnx(weights).SerializeToString(), providers=["CPUExecutionProvider"])
    crops = np.random.default_rng(0).uniform(0, 255, (2, 3, 80, 80)).astype(np.float32)
    logits, probabilities = session.run(["logits", "probabilities"], {"crop": crops})
    np.testing.assert_allclose(logits, np.array(REFERENCE[name], dtype=np.float32), atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_reader_refuses_foreign_classes(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as out:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, out, protocol=2)
        out.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would call os.system
    with pytest.raises(pickle.UnpicklingError, match="refusing to load os.system"):
        read_state_dict(evil)
