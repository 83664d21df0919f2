"""dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in torch, read from dlib's own file.

The network of dlib's `dnn_face_recognition_ex.cpp`: a 7x7/2 convolution (32) and a 3x3/2 max pool, then residual
blocks of two 3x3 convolutions, each followed by a per-channel affine (the trained batch norm), ReLU between them and
after the sum — three of 32 channels; a downsampling block and three of 64; one and two of 128; one and two of 256;
one more downsampling block of 256 — global average pooling and a 256 → 128 linear map without bias. Strided
layers are unpadded (dlib's default), the others keep the size. A downsampling block's shortcut is a 2x2/2 average
pool; where its output and the block's differ in channels or size, dlib sums them zero-padded at the far end, and so
does `FaceRecognitionNet`. The input is the 150x150 RGB face chip that dlib's `get_face_chip` aligns (padding 0.25),
as `(pixel - channel mean) / 256` with the means stored in the file.

dlib's Python wheel computes this network without BLAS, about 60 ms per face on one core of these CPUs; here a face
takes about 9 ms, with descriptors within 1e-6 of dlib's (`tests/faces/test_recognition.py`).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# (channels, downsampling) of each residual block, input to output
BLOCKS = ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) + ((128, False),) * 2 + (
    (256, True),) + ((256, False),) * 2 + ((256, True),)
_LAYER = re.compile(rb"\x01[\x04-\x15](con_4|affine_|fc_2|input_rgb_image_sized)")


class _Reader:
    """dlib's serialization: integers as a byte count (high bit: negative) and little-endian bytes; tensors as a
    version, four dimensions and raw little-endian float32 values."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def integer(self) -> int:
        header = self.data[self.position]
        count = header & 0x0F
        value = int.from_bytes(self.data[self.position + 1:self.position + 1 + count], "little")
        self.position += 1 + count
        return -value if header & 0x80 else value

    def real(self) -> float:  # dlib's float_details: mantissa * 2**exponent
        mantissa = self.integer()
        return float(np.ldexp(float(mantissa), self.integer()))

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"unknown dlib tensor version {version}")
        size = int(np.prod([self.integer() for _ in range(4)]))
        values = np.frombuffer(self.data, dtype="<f4", count=size, offset=self.position).copy()
        self.position += 4 * size
        return values


def read_dlib_resnet(path: str | Path) -> dict[str, np.ndarray]:
    """The weights of dlib's face recognition ResNet file → {"means": (3,), "conv{i}.weight", "conv{i}.bias",
    "affine{i}.gamma", "affine{i}.beta" for its 29 layers input to output, "fc": (256, 128)}. ValueError when the
    file is not that network."""
    data = Path(path).read_bytes()
    weights: dict[str, np.ndarray] = {}
    convs = affines = 0
    in_channels = 3
    for match in _LAYER.finditer(data):
        name, reader = match.group(1), _Reader(data, match.end())
        if name == b"input_rgb_image_sized":
            weights["means"] = np.array([reader.real() for _ in range(3)], dtype=np.float32)
        elif name == b"con_4":
            params = reader.tensor()
            filters, rows, columns = reader.integer(), reader.integer(), reader.integer()
            size = filters * in_channels * rows * columns
            if params.size != size + filters:
                raise ValueError(f"{path}: convolution {convs} holds {params.size} values, expected {size + filters}")
            weights[f"conv{convs}.weight"] = params[:size].reshape(filters, in_channels, rows, columns)
            weights[f"conv{convs}.bias"] = params[size:]
            convs, in_channels = convs + 1, filters
        elif name == b"affine_":
            params = reader.tensor()
            weights[f"affine{affines}.gamma"], weights[f"affine{affines}.beta"] = np.split(params, 2)
            affines += 1
        else:
            outputs, inputs = reader.integer(), reader.integer()
            weights["fc"] = reader.tensor().reshape(inputs, outputs)
    if convs != 1 + 2 * len(BLOCKS) or affines != convs or "fc" not in weights or "means" not in weights:
        raise ValueError(f"{path} is not dlib's face recognition ResNet ({convs} convolutions, {affines} affine "
                         "layers found)")
    return weights


class FaceRecognitionNet(nn.Module):
    """dlib's face recognition ResNet: `(N, 150, 150, 3)` uint8 face chips → `(N, 128)` descriptors."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for index in range(1 + 2 * len(BLOCKS)):
            weight = torch.from_numpy(weights[f"conv{index}.weight"])
            stride = 2 if index == 0 or (index % 2 == 1 and BLOCKS[(index - 1) // 2][1]) else 1
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], stride,
                             padding=0 if stride != 1 else weight.shape[2] // 2)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(torch.from_numpy(weights[f"conv{index}.bias"]))
            self.convs.append(conv)
        gammas = [torch.from_numpy(weights[f"affine{index}.gamma"]) for index in range(len(self.convs))]
        betas = [torch.from_numpy(weights[f"affine{index}.beta"]) for index in range(len(self.convs))]
        for index, (gamma, beta) in enumerate(zip(gammas, betas)):
            self.register_buffer(f"gamma{index}", gamma.view(1, -1, 1, 1))
            self.register_buffer(f"beta{index}", beta.view(1, -1, 1, 1))
        self.register_buffer("means", torch.from_numpy(weights["means"]).view(1, 3, 1, 1))
        self.register_buffer("fc", torch.from_numpy(weights["fc"]))
        self.requires_grad_(False).eval()

    def _layer(self, index: int, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        x = self.convs[index](x) * getattr(self, f"gamma{index}") + getattr(self, f"beta{index}")
        return F.relu(x) if relu else x

    @torch.no_grad()
    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.means) / 256
        x = F.max_pool2d(self._layer(0, x), 3, 2)
        for block, (_, downsampling) in enumerate(BLOCKS):
            y = self._layer(2 + 2 * block, self._layer(1 + 2 * block, x), relu=False)
            shortcut = F.avg_pool2d(x, 2, 2) if downsampling else x
            x = F.relu(_padded_sum(y, shortcut))
        return x.mean(dim=(2, 3)) @ self.fc


def _padded_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b, each zero-padded after its last channel, row and column to the larger shape (dlib's add_prev)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(sa, sb) for sa, sb in zip(a.shape, b.shape)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]))

    return pad(a) + pad(b)


@functools.cache
def recognition_net() -> FaceRecognitionNet:
    """The network with the weights of the dlib file that `face-recognition-models` ships, read once."""
    from hoginpaint.faces.landmarks import model_path

    return FaceRecognitionNet(read_dlib_resnet(model_path("recognition")))


def chip_descriptors(chips: Sequence[np.ndarray]) -> np.ndarray:
    """Descriptors of `(150, 150, 3)` uint8 face chips (dlib's `get_face_chip`) → `(N, 128)` float64.

    One chip at a time: a face's descriptor is then the same bit for bit whatever else is measured with it (batched
    convolutions round differently, by about 1e-7), at 9 ms a chip instead of 4."""
    net = recognition_net()
    return np.stack([net(torch.from_numpy(np.ascontiguousarray(chip[None]))).double().numpy()[0]
                     for chip in chips]) if len(chips) else np.zeros((0, 128))
