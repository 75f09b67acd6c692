"""Reference logits of the MiniFASNet weights from a PyTorch definition, to check the torch-free ONNX graph.

Optional developer tool, not part of facecloud (which never imports torch). Run it in a separate environment:
    python3.11 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchenv/bin/python scripts/minifasnet_reference.py ../shared/models/liveness \
        > tests/vision/minifasnet_reference.json
The network here is written independently of facecloud/vision/minifasnet.py (modules with unfolded batch-norm,
loaded with torch.load and strict=True, so every weight must find its layer); tests/vision/test_minifasnet.py
compares the ONNX graph's logits on the same inputs with these."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

FILES = ("2.7_80x80_MiniFASNetV2.pth", "4_0_0_80x80_MiniFASNetV1SE.pth")


def reference_inputs() -> np.ndarray:
    """Two deterministic 80x80 BGR crops in 0..255 (PCG64 is stable across numpy versions)."""
    return np.random.default_rng(0).uniform(0, 255, (2, 3, 80, 80)).astype(np.float32)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, pad: int, groups: int, prelu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if prelu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1, self.bn1 = nn.Conv2d(channels, reduced, 1, bias=False), nn.BatchNorm2d(reduced)
        self.fc2, self.bn2 = nn.Conv2d(reduced, channels, 1, bias=False), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.relu(self.bn1(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(self.bn2(self.fc2(gate)))


class DepthwiseBlock(nn.Module):
    def __init__(self, sd: dict, prefix: str, cin: int, stride: int, residual: bool):
        super().__init__()
        mid, cout = sd[f"{prefix}.conv.conv.weight"].shape[0], sd[f"{prefix}.project.conv.weight"].shape[0]
        self.conv = ConvBlock(cin, mid, 1, 1, 0, 1)
        self.conv_dw = ConvBlock(mid, mid, 3, stride, 1, mid)
        self.project = ConvBlock(mid, cout, 1, 1, 0, 1, prelu=False)
        self.residual = residual
        se_key = f"{prefix}.se_module.fc1.weight"
        self.se_module = SqueezeExcite(cout, sd[se_key].shape[0]) if se_key in sd else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if not self.residual:
            return y
        return x + (self.se_module(y) if self.se_module is not None else y)


class ResidualStage(nn.Module):
    def __init__(self, sd: dict, prefix: str, channels: int):
        super().__init__()
        count = 0
        while f"{prefix}.model.{count}.conv.conv.weight" in sd:
            count += 1
        self.model = nn.Sequential(
            *[DepthwiseBlock(sd, f"{prefix}.model.{i}", channels, 1, True) for i in range(count)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    def __init__(self, sd: dict):
        super().__init__()
        self.conv1 = ConvBlock(3, 32, 3, 2, 1, 1)
        self.conv2_dw = ConvBlock(32, 32, 3, 1, 1, 32)
        self.conv_23 = DepthwiseBlock(sd, "conv_23", 32, 2, False)
        self.conv_3 = ResidualStage(sd, "conv_3", 64)
        self.conv_34 = DepthwiseBlock(sd, "conv_34", 64, 2, False)
        self.conv_4 = ResidualStage(sd, "conv_4", 128)
        self.conv_45 = DepthwiseBlock(sd, "conv_45", 128, 2, False)
        self.conv_5 = ResidualStage(sd, "conv_5", 128)
        self.conv_6_sep = ConvBlock(128, 512, 1, 1, 0, 1)
        self.conv_6_dw = ConvBlock(512, 512, 5, 1, 0, 512, prelu=False)
        self.linear = nn.Linear(512, 128, bias=False)
        self.bn = nn.BatchNorm1d(128)
        self.prob = nn.Linear(128, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (
            self.conv1,
            self.conv2_dw,
            self.conv_23,
            self.conv_3,
            self.conv_34,
            self.conv_4,
            self.conv_45,
            self.conv_5,
            self.conv_6_sep,
            self.conv_6_dw,
        ):
            x = stage(x)
        return self.prob(self.bn(self.linear(x.flatten(1))))


def main(model_dir: Path) -> None:
    inputs = torch.from_numpy(reference_inputs())
    result = {
        "torch": torch.__version__,
        "inputs": "numpy.random.default_rng(0).uniform(0, 255, (2, 3, 80, 80))",
    }
    for name in FILES:
        raw = torch.load(model_dir / name, map_location="cpu", weights_only=True)
        sd = {key.removeprefix("module."): value for key, value in raw.items()}
        net = MiniFASNet(sd)
        net.load_state_dict(sd, strict=True)
        net.eval()
        with torch.no_grad():
            result[name] = net(inputs).tolist()
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
