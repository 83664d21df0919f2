"""Mask sources: the `MaskSource` protocol, hole ratios, a hole-ratio range, and `make_mask_source`.

Conventions
-----------
- A mask is float32 and binary, **1 = hole**, 0 = known pixel. Sources return numpy `(H, W)` arrays; the model's
  boundary is a torch tensor `(B, 1, H, W)` (`to_mask_tensor`). As an image, **white = hole** (diffusers'
  `mask_image`, LaMa and the NVIDIA mask set agree on this).
- Binarising: a value in [0, 1] is a hole when it is **strictly greater** than `threshold` (0.5 by default), so
  `threshold=0` means "any non-black pixel is a hole". 8-bit data is divided by 255 first.
- Every source implements `MaskSource.sample(rng, size)`; randomness comes only from the `np.random.Generator`
  passed in, so the same seed gives the same masks.

Here: `MaskSource`, `hole_ratio`, a hole-ratio range by rejection sampling (`sample_with_ratio`, or once for all
samples `RatioRangeMasks` / `make_mask_source(..., ratio_range=(low, high))`), and `make_mask_source(kind)`.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch

from hoginpaint.masks.folder import FolderMasks
from hoginpaint.masks.shapes import FreeFormMasks, IrregularMasks, RectangleMasks

GeneratedMaskKind = Literal["free_form", "irregular", "rectangle"]  # drawn masks (training without a mask folder)
MaskKind = Literal["folder", GeneratedMaskKind]
MASK_KINDS: tuple[str, ...] = typing.get_args(MaskKind)


@runtime_checkable
class MaskSource(Protocol):
    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        """One mask `(H, W)` float32 in {0, 1}, 1 = hole, drawn with `rng`."""
        ...


def hole_ratio(mask: np.ndarray | torch.Tensor) -> float | torch.Tensor:
    """Fraction of hole pixels: ndarray `(H, W)` → float; tensor `(B, 1, H, W)` → `(B,)` tensor."""
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2 or mask.size == 0:
            raise ValueError(f"hole_ratio takes an ndarray (H, W), got shape {mask.shape}")
        return float(mask.mean(dtype=np.float64))
    if isinstance(mask, torch.Tensor):
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.numel() == 0:
            raise ValueError(f"hole_ratio takes a tensor (B, 1, H, W), got shape {tuple(mask.shape)}")
        return mask.float().mean(dim=(1, 2, 3))
    raise ValueError(f"hole_ratio takes a numpy array (H, W) or a tensor (B, 1, H, W), got {type(mask).__name__}")


def _check_ratio_range(low: float, high: float, what: str) -> None:
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"{what} must satisfy 0 <= low <= high <= 1, got ({low}, {high})")



def sample_with_ratio(source: MaskSource, rng: np.random.Generator, size: int | tuple[int, int],
                      low: float, high: float, max_tries: int = 100) -> np.ndarray:
    """A mask from `source` whose hole ratio lies in `[low, high]` (both inclusive), by rejection sampling.

    Raises ValueError after `max_tries` misses: the source rarely reaches that range, so widen it or change the
    source's parameters.
    """
    _check_ratio_range(low, high, "the hole-ratio range")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    ratios = []
    for _ in range(max_tries):
        mask = source.sample(rng, size)
        ratio = hole_ratio(mask)
        if low <= ratio <= high:
            return mask
        ratios.append(ratio)
    raise ValueError(
        f"{source!r} gave no mask with a hole ratio in [{low}, {high}] in {max_tries} tries (it drew ratios "
        f"{min(ratios):.3f}..{max(ratios):.3f}); widen the range, raise max_tries or change the source's parameters"
    )


@dataclass(frozen=True)
class RatioRangeMasks:
    """Wraps a source so that every sample has a hole ratio in `[low, high]` (see `sample_with_ratio`)."""

    source: MaskSource
    low: float
    high: float
    max_tries: int = 100

    def __post_init__(self) -> None:
        _check_ratio_range(self.low, self.high, "RatioRangeMasks(low, high)")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        return sample_with_ratio(self.source, rng, size, self.low, self.high, self.max_tries)



def make_mask_source(kind: MaskKind, ratio_range: tuple[float, float] | None = None, **kwargs) -> MaskSource:
    """The mask source called `kind`, built from `kwargs` (its constructor's arguments).

    With `ratio_range=(low, high)` every sample's hole ratio lies in that range (`RatioRangeMasks`).
    """
    classes = {"folder": FolderMasks, "free_form": FreeFormMasks, "irregular": IrregularMasks,
               "rectangle": RectangleMasks}
    if kind not in classes:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(map(repr, MASK_KINDS))}")
    try:
        source = classes[kind](**kwargs)
    except TypeError as error:  # a misspelt or missing argument: say which source refused it
        raise ValueError(f"bad arguments for mask kind {kind!r}: {error}") from error
    if ratio_range is None:
        return source
    low, high = ratio_range
    return RatioRangeMasks(source, low, high)
