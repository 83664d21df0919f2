"""Pixel values as users hand them → float32 in [0, 1]: the one reading of dtypes, for images and masks alike.

`hoginpaint.imageio` (images) and `hoginpaint.masks.user_input` (masks) read every user array and tensor through
`to_unit_range`, so a dtype means the same in both: bool is 0/1, uint8 is divided by 255, floats must already be
finite and in [0, 1]. Only wider integers differ, because a photo and a mask use them for different things: an
image's uint16 is 16-bit data (divided by 65535; other integer types are refused), a mask's integers are labels
that must hold only 0 and 1.

This module sits below both readers (`imageio.load_mask` reads through `mask_input.to_mask_tensor`), so neither
imports the other to share it.
"""
from __future__ import annotations

import math
from typing import Literal, TypeVar

import numpy as np
import torch

PixelKind = Literal["image", "mask"]
Values = TypeVar("Values", np.ndarray, torch.Tensor)

_ACCEPTED = {"image": "uint8, uint16 or float in [0, 1]", "mask": "bool, uint8, integer 0/1 or float in [0, 1]"}


def to_unit_range(values: Values, what: str, kind: PixelKind = "image") -> Values:
    """Numeric values (ndarray or tensor, any shape) → float32 in [0, 1]: same type, shape and device.

    bool → 0/1; uint8 / 255; floats as they are, if finite and in [0, 1]. Wider integers: an image's uint16 / 65535
    (other integer types are refused), a mask's integers of any type if they hold only 0 and 1. Anything else raises
    a ValueError that names `what` (e.g. "the image", "the mask tensor") and says what to pass.
    """
    if math.prod(values.shape) == 0:
        raise ValueError(f"{what} is empty (shape {tuple(values.shape)})")
    number = _number_kind(values)
    if number == "bool":
        return _float32(values)
    if number == "uint8":
        return _float32(values) / 255.0
    if number == "uint16" and kind == "image":
        return _float32(values) / 65535.0
    if number in ("uint16", "integer") and kind == "mask":
        labels = _float32(values)  # exact for 0 and 1, and any other value stays outside [0, 1]
        low, high = float(labels.min()), float(labels.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"{what} of dtype {values.dtype} has values in [{low:g}, {high:g}]; integer masks other than uint8 "
                "must hold only 0 and 1 (cast 0..255 data to uint8, or divide it by 255)"
            )
        return labels
    if number != "float":
        raise ValueError(f"{what} has dtype {values.dtype}; pass {_ACCEPTED[kind]}")
    values = _float32(values)
    finite = torch.isfinite(values).all() if isinstance(values, torch.Tensor) else np.isfinite(values).all()
    if not finite:
        raise ValueError(f"{what} holds NaN or infinite values; pass finite values in [0, 1]")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 1:
        hole = " (1 = hole)" if kind == "mask" else ""
        raise ValueError(f"{what} has values in [{low:g}, {high:g}]; float {kind}s must lie in [0, 1]{hole} — divide "
                         "0..255 data by 255")
    return values


def _number_kind(values: np.ndarray | torch.Tensor) -> Literal["bool", "uint8", "uint16", "integer", "float"] | None:
    """What `values` hold, by dtype; None for what is no number of ours (complex, strings, dates, objects)."""
    if isinstance(values, torch.Tensor):
        dtype = values.dtype
        if dtype == torch.bool:
            return "bool"
        if dtype == torch.uint8:
            return "uint8"
        if dtype.is_floating_point:
            return "float"
        if dtype.is_complex:
            return None
        return "uint16" if dtype == torch.uint16 else "integer"
    if values.dtype == np.bool_:
        return "bool"
    if values.dtype == np.uint8:
        return "uint8"
    if values.dtype == np.uint16:
        return "uint16"
    return {"i": "integer", "u": "integer", "f": "float"}.get(values.dtype.kind)


def _float32(values: Values) -> Values:
    return values.float() if isinstance(values, torch.Tensor) else values.astype(np.float32)
