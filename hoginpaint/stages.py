"""The two stages of the cascade, as one set of functions for training, inference and evaluation.

This is the only module that masks inputs and composes HOG guidance, so that what a generator sees while it is
trained is exactly what it sees in the pipeline:

* structure stage: G_H sees the masked grayscale face, the HOG image with every cell the hole can change zeroed,
  and the mask; it predicts the whole (scaled) HOG image. The guidance keeps the known cells and takes the hole
  cells from the prediction.
* inpaint stage: G sees the masked RGB face, the guidance and the mask; only its hole pixels are kept.

Holes are filled with zeros in every input (the paper's configuration, ``prefill="none"``), or, when the generators
were built with a pre-fill (`hoginpaint.prefill`), with a classical fill of the hole computed from the known pixels
only: G_H then sees the pre-filled face and its HOG image, and G the pre-filled RGB face. The mask channel tells the
networks where the hole is either way. The pre-fill kind is read from each generator (`prefill_kind`), so that a
model loaded with `from_pretrained` is fed exactly as it was trained. In a coarse-to-fine cascade the fill is instead
a lower-resolution pipeline's result (`hoginpaint.pipeline.coarse_fill`), passed in as `filled`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from hoginpaint.hog import HOGSettings, composite_guidance, guidance_target, hole_cells, to_gray
from hoginpaint.prefill import prefill

if TYPE_CHECKING:
    from hoginpaint.networks import InpaintGenerator, StructureGenerator


@dataclass
class StructureResult:
    """What the structure stage produced; all `(B, 1, H, W)`, HOG images scaled to [0, 1]."""

    hog_known: torch.Tensor  # the HOG image G_H saw: hole cells zeroed, or the pre-fill's HOG there
    hog_pred: torch.Tensor  # G_H's prediction, every cell
    guidance: torch.Tensor  # known cells from hog_known, hole cells from hog_pred
    cells: torch.Tensor  # 1 on the pixels of cells the hole can change
    filled: torch.Tensor  # (B, 3, H, W): the image with its hole zeroed or pre-filled, as the generators see it


def prefill_kind(generator: object) -> str:
    """The pre-fill a generator was built with (`none` for the paper's), looking through a DDP wrapper."""
    return getattr(getattr(generator, "module", generator), "prefill", "none")


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
    image: torch.Tensor, mask: torch.Tensor, settings: HOGSettings, zero_hole_cells: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The scaled HOG image of `image` with the cells the hole can change zeroed (or, with `zero_hole_cells=False`,
    kept: the HOG of a pre-filled hole), and those cells.

    With the hole cells zeroed, whatever the hole holds (the true face in training, anything at inference) cannot
    reach the result.
    """
    cells = hole_cells(mask, settings.pixels_per_cell).to(image.dtype)
    with torch.no_grad():
        hog = guidance_target(image, settings)
    return (hog * (1 - cells) if zero_hole_cells else hog), cells


def structure_stage(
    structure_generator: StructureGenerator, image: torch.Tensor, mask: torch.Tensor,
    settings: HOGSettings | None = None, filled: torch.Tensor | None = None,
) -> StructureResult:
    """Run G_H on `image` `(B, 3, H, W)` in [0, 1] with `mask` `(B, 1, H, W)`, 1 = hole.

    `settings`: the HOG settings G_H was built with, by default `structure_generator.hog_settings()` (pass them when
    G_H is wrapped, e.g. by DistributedDataParallel, which does not forward that method). `filled`: the image with
    its hole already filled by G_H's own `prefill` kind (e.g. a fill computed at a photo's full resolution and
    downsampled); by default it is computed here.
    """
    check_image_and_mask(image, mask)
    settings = settings or structure_generator.hog_settings()
    kind = prefill_kind(structure_generator)
    if filled is None:
        filled = prefill(image, mask, kind)
    # The known cells of the filled face's HOG image are the input's own (a cell the hole cannot change is computed
    # from known pixels only); its hole cells are zeroed (the paper) or the pre-fill's.
    hog_known, cells = masked_hog(filled, mask, settings, zero_hole_cells=kind == "none")
    masked_gray = to_gray(filled)
    hog_pred = structure_generator(masked_gray, hog_known, mask)
    guidance = composite_guidance(hog_known, hog_pred, mask, settings.pixels_per_cell)
    return StructureResult(hog_known=hog_known, hog_pred=hog_pred, guidance=guidance, cells=cells, filled=filled)


def inpaint_stage(
    inpaint_generator: InpaintGenerator, image: torch.Tensor, mask: torch.Tensor, guidance: torch.Tensor,
    filled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run G guided by `guidance` `(B, 1, H, W)` → (raw output, output with the known pixels restored).

    `filled`: the image with its hole already zeroed or pre-filled by G's own `prefill` kind (the structure stage's
    `StructureResult.filled`, to save computing it twice); by default it is computed here.
    """
    check_image_and_mask(image, mask)
    if filled is None:
        filled = prefill(image, mask, prefill_kind(inpaint_generator))
    masked_image = image * (1 - mask)
    raw = inpaint_generator(filled, guidance, mask)
    return raw, masked_image + raw * mask

