"""Masks as users hand them: any mask-like → a `(B, 1, H, W)` tensor, image-editor layers → a hole, and back.

Conventions (the package's, see `hoginpaint.masks`): a mask is float32 and binary, **1 = hole**; as an image, **white
= hole**. Binarising: a value in [0, 1] is a hole when it is **strictly greater** than `threshold` (0.5 by default),
so `threshold=0` means "any non-black pixel is a hole". Values are read by `hoginpaint.pixel_values.to_unit_range`
(the reading images get too): bool as is, uint8 / 255, other integers only 0 and 1, floats finite and in [0, 1].

- `to_mask_tensor`, `threshold_mask`, `dilate_mask`, `mask_to_pil`: conversions of masks the model's way.
- `mask_values`: a PIL image's luminance or alpha in [0, 1] (how mask files are read, `FolderMasks` included).
- `editor_hole`, `check_hole`, `layer_image`: what an image editor (the Space's) hands over — an uploaded mask and
  painted layers — as one hole, refused with what to do when it is empty or covers everything, and a hole as a layer.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hoginpaint.pixel_values import to_unit_range

# PIL's "L" conversion weights (ITU-R 601-2 luma), so arrays and PIL images of the same picture agree.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """The `size` argument every mask function takes, as `(H, W)`: an int means a square."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        height = width = int(size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
    ):
        height, width = int(size[0]), int(size[1])
    else:
        raise ValueError(f"size must be an int or a pair of ints (H, W), got {size!r}")
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return height, width


def mask_values(image: Image.Image, from_alpha: bool = False) -> np.ndarray:
    """A PIL image's hole values: its luminance (white = hole), or its alpha channel with `from_alpha` (opaque =
    hole), as float32 `(H, W)` in [0, 1]."""
    if from_alpha:
        if image.mode not in ("RGBA", "LA", "PA", "P") or (image.mode == "P" and "transparency" not in image.info):
            raise ValueError(f"from_alpha=True needs an image with an alpha channel, got mode {image.mode!r}")
        return np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("1", "L", "LA", "RGB", "RGBA", "RGBX"):
        # Luminance only: an RGBA mask's alpha is not its hole (use from_alpha=True for that).
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if image.mode in ("I", "F"):
        return to_unit_range(np.asarray(image), f"a mode {image.mode!r} image", "mask")
    raise ValueError(f"cannot read a mask from a mode {image.mode!r} image; convert it to 'L' (white = hole)")


def _channels_to_unit(values: np.ndarray, from_alpha: bool, what: str) -> np.ndarray:
    """`(H, W, C)` with C in (1, 3, 4), already in [0, 1] → `(H, W)`: luminance, or alpha when `from_alpha`."""
    channels = values.shape[-1]
    if from_alpha:
        if channels != 4:
            raise ValueError(f"from_alpha=True needs an (H, W, 4) array, got {what} with shape {values.shape}")
        return values[..., 3]
    if channels == 1:
        return values[..., 0]
    return values[..., :3] @ np.asarray(_LUMA_WEIGHTS, dtype=np.float32)


def _tensor_to_unit(values: torch.Tensor) -> torch.Tensor:
    """Tensor `(H, W)`, `(1, H, W)` or `(B, 1, H, W)` → float32 `(B, 1, H, W)` in [0, 1], same device."""
    shape = tuple(values.shape)
    if not (values.ndim == 2 or (values.ndim == 3 and shape[0] == 1) or (values.ndim == 4 and shape[1] == 1)):
        raise ValueError(f"a mask tensor must be (H, W), (1, H, W) or (B, 1, H, W), got shape {shape}")
    values = to_unit_range(values.detach(), "the mask tensor", "mask")
    return values.reshape((-1, 1, *shape[-2:]))


def threshold_mask(mask: torch.Tensor | np.ndarray, threshold: float = 0.5) -> torch.Tensor | np.ndarray:
    """Binarise: 1 where `mask > threshold`, else 0; float32, same type and shape as the input."""
    if isinstance(mask, torch.Tensor):
        return (mask > threshold).to(torch.float32)
    if isinstance(mask, np.ndarray):
        return (mask > threshold).astype(np.float32)
    raise ValueError(f"threshold_mask takes a tensor or a numpy array, got {type(mask).__name__}")


def to_mask_tensor(mask_like: Image.Image | np.ndarray | torch.Tensor, size: int | tuple[int, int] | None = None,
                   threshold: float = 0.5, *, from_alpha: bool = False) -> torch.Tensor:
    """Any mask a user may hand us → float32 `(B, 1, H, W)` in {0, 1}, 1 = hole.

    Accepted:
    - PIL images of mode 1, L, LA, P, RGB, RGBA (luminance; white = hole), I;16 (/ 65535), I and F (as arrays).
      For RGBA the alpha channel is NOT the hole: the hole is where the picture is white. Pass `from_alpha=True`
      to read the hole from the alpha channel instead (opaque = hole), e.g. for a transparent-background brush
      layer.
    - numpy arrays `(H, W)`, `(H, W, 1)`, `(H, W, 3)`, `(H, W, 4)` (channels last; luminance, or alpha with
      `from_alpha`), `(B, H, W)` and `(B, 1, H, W)`. A 3-D array whose last axis is 1, 3 or 4 is read as channels.
    - torch tensors `(H, W)`, `(1, H, W)`, `(B, 1, H, W)`; the result stays on the tensor's device.
    Values: bool; uint8 is divided by 255; other integer types must hold only 0 and 1; floats must be finite and
    in [0, 1]. Anything else raises ValueError.
    `size` (int or `(H, W)`): resize by area averaging before thresholding, so the hole ratio is kept. A pixel
    is a hole where its value is strictly greater than `threshold`.
    """
    if isinstance(mask_like, Image.Image):
        values = torch.from_numpy(mask_values(mask_like, from_alpha))[None, None]
    elif isinstance(mask_like, np.ndarray):
        what = f"the mask array (shape {mask_like.shape})"
        unit = to_unit_range(mask_like, what, "mask")
        if unit.ndim == 3 and unit.shape[-1] in (1, 3, 4):
            values = torch.from_numpy(np.ascontiguousarray(_channels_to_unit(unit, from_alpha, what)))[None, None]
        elif from_alpha:
            raise ValueError(f"from_alpha=True needs an (H, W, 4) array, got shape {mask_like.shape}")
        elif unit.ndim == 2:
            values = torch.from_numpy(unit)[None, None]
        elif unit.ndim == 3:
            values = torch.from_numpy(unit)[:, None]
        elif unit.ndim == 4 and unit.shape[1] == 1:
            values = torch.from_numpy(unit)
        else:
            raise ValueError(
                f"a mask array must be (H, W), (H, W, 1|3|4), (B, H, W) or (B, 1, H, W), got shape {mask_like.shape}"
            )
    elif isinstance(mask_like, torch.Tensor):
        if from_alpha:
            raise ValueError("from_alpha=True applies to RGBA images and (H, W, 4) arrays, not to tensors")
        values = _tensor_to_unit(mask_like)
    else:
        raise ValueError(
            f"cannot read a mask from {type(mask_like).__name__}; pass a PIL image, a numpy array or a torch tensor"
        )
    if size is not None:
        values = F.interpolate(values, size=as_size(size), mode="area")
    return threshold_mask(values.contiguous(), threshold)


def dilate_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow the holes of `mask` `(B, 1, H, W)` by `pixels` in every direction (square neighbourhood, max-pool)."""
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4:
        shape = tuple(mask.shape) if hasattr(mask, "shape") else type(mask).__name__
        raise ValueError(f"dilate_mask takes a tensor (B, 1, H, W), got {shape}; convert with to_mask_tensor")
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 0:
        raise ValueError(f"pixels must be an int >= 0, got {pixels!r}")
    if pixels == 0:
        return mask.clone()
    return F.max_pool2d(mask, kernel_size=2 * int(pixels) + 1, stride=1, padding=int(pixels))


def mask_to_pil(mask: Image.Image | np.ndarray | torch.Tensor) -> Image.Image:
    """One mask (anything `to_mask_tensor` accepts, batch of one) → PIL mode "L", white (255) = hole."""
    tensor = to_mask_tensor(mask)
    if tensor.shape[0] != 1:
        raise ValueError(f"mask_to_pil takes one mask, got a batch of {tensor.shape[0]}; pass mask[i:i+1]")
    return Image.fromarray((tensor[0, 0].cpu().numpy() * 255).astype(np.uint8))  # 2-D uint8 → mode "L"


def editor_hole(size: tuple[int, int], mask: Image.Image | None = None,
                layers: Sequence[Image.Image] = ()) -> np.ndarray:
    """The hole a user gave an image editor → `(H, W)` bool: the white of an uploaded `mask` (luminance above 0.5)
    and every opaque pixel (alpha above 0.5) of the painted `layers` (transparent images with the strokes).

    `size`: the photo's `(H, W)`. The mask must be the photo's size (else a ValueError says so); a layer of another
    size is the canvas's scaled copy and is resized (nearest). The hole may be empty: check it with `check_hole`
    once everything that adds to it is in.
    """
    height, width = size
    hole = np.zeros((height, width), dtype=bool)
    if mask is not None:
        if mask.size != (width, height):
            raise ValueError(f"mask is {mask.size[0]}x{mask.size[1]} but image is {width}x{height}; pass a mask of "
                             "the image's size")
        hole |= mask_values(mask, from_alpha=False) > 0.5
    for layer in layers:
        stroke = mask_values(layer, from_alpha=True) > 0.5
        if stroke.shape != hole.shape:  # the canvas may hold a scaled copy of the photo
            stroke = cv2.resize(stroke.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        hole |= stroke
    return hole


def check_hole(hole: np.ndarray, mask: Image.Image | None = None) -> None:
    """Refuse, with what to do, an empty hole `(H, W)` (with a hint when the uploaded `mask`'s strokes are in its
    transparency rather than white) and a hole covering the whole photo."""
    if not hole.any():
        hint = ""
        if mask is not None and _drawn_in_transparency(mask):
            hint = (" the uploaded mask has no white pixel, but its transparency varies: the hole must be white, not "
                    "transparent (white = hole, black = keep);")
        raise ValueError(f"the mask is empty:{hint} paint over the part of the face to fill in, or upload a mask "
                         "(white = hole)")
    if hole.all():
        raise ValueError("the mask covers the whole photo: leave the rest of the face visible, it is what the hole "
                         "is filled from")


def _drawn_in_transparency(mask: Image.Image) -> bool:
    """Whether `mask` has an alpha channel that is not uniform (strokes drawn as opacity, not as white)."""
    if mask.mode not in ("RGBA", "LA", "PA") and not (mask.mode == "P" and "transparency" in mask.info):
        return False
    low, high = mask.convert("RGBA").getchannel("A").getextrema()
    return low != high


def layer_image(hole: np.ndarray) -> Image.Image:
    """A hole `(H, W)` bool as an image-editor layer: white and opaque on the hole, transparent elsewhere (RGBA)."""
    alpha = np.asarray(hole, dtype=bool).astype(np.uint8) * 255
    return Image.fromarray(np.dstack([alpha, alpha, alpha, alpha]))  # (H, W, 4) uint8: RGBA
