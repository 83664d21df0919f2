"""The two stages of the cascade, as one set of functions for training, inference and evaluation.

This is the only module that masks inputs and composes HOG guidance, so that what a generator sees while it is
trained is exactly what it sees in the pipeline:

* structure stage: G_H sees the masked grayscale face, the HOG image with every cell the hole can change zeroed,
  and the mask; it predicts the whole (scaled) HOG image. The guidance keeps the known cells and takes the hole
  cells from the prediction.
* inpaint stage: G sees the masked RGB face, the guidance and the mask; only its hole pixels are kept.

Holes are filled with zeros in every input; the mask channel tells the networks where they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from hoginpaint.hog import HOGSettings, composite_guidance, guidance_target, hole_cells, to_gray

if TYPE_CHECKING:
    from hoginpaint.networks import InpaintGenerator, StructureGenerator


@dataclass
class StructureResult:
    """What the structure stage produced; all `(B, 1, H, W)`, HOG images scaled to [0, 1]."""

    hog_known: torch.Tensor  # the input's HOG image with hole cells zeroed
    hog_pred: torch.Tensor  # G_H's prediction, every cell
    guidance: torch.Tensor  # known cells from hog_known, hole cells from hog_pred
    cells: torch.Tensor  # 1 on the pixels of cells the hole can change


def check_image_and_mask(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Refuse tensors that break the conventions: image `(B, 3, H, W)` in [0, 1], mask `(B, 1, H, W)` in {0, 1}."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (B, 1, H, W), got {tuple(mask.shape)}")
    if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(
            f"mask is {tuple(mask.shape)} but image is {tuple(image.shape)}; pass one mask of the image's size "
            "per image"
        )


def masked_hog(
    image: torch.Tensor, mask: torch.Tensor, settings: HOGSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """The scaled HOG image of `image` with the cells the hole can change zeroed, and those cells.

    Whatever the hole holds (the true face in training, anything at inference) cannot reach the result.
    """
    cells = hole_cells(mask, settings.pixels_per_cell).to(image.dtype)
    with torch.no_grad():
        hog = guidance_target(image, settings)
    return hog * (1 - cells), cells


def structure_stage(
    structure_generator: StructureGenerator, image: torch.Tensor, mask: torch.Tensor
) -> StructureResult:
    """Run G_H on `image` `(B, 3, H, W)` in [0, 1] with `mask` `(B, 1, H, W)`, 1 = hole."""
    check_image_and_mask(image, mask)
    settings = structure_generator.hog_settings()
    hog_known, cells = masked_hog(image, mask, settings)
    masked_gray = to_gray(image) * (1 - mask)
    hog_pred = structure_generator(masked_gray, hog_known, mask)
    guidance = composite_guidance(hog_known, hog_pred, mask, settings.pixels_per_cell)
    return StructureResult(hog_known=hog_known, hog_pred=hog_pred, guidance=guidance, cells=cells)


def inpaint_stage(
    inpaint_generator: InpaintGenerator, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run G guided by `guidance` `(B, 1, H, W)` → (raw output, output with the known pixels restored)."""
    check_image_and_mask(image, mask)
    masked_image = image * (1 - mask)
    raw = inpaint_generator(masked_image, guidance, mask)
    return raw, masked_image + raw * mask
