"""Classical (non-learned) inpainting behind the pipeline's call: Telea, Navier-Stokes, biharmonic.

- "telea": Telea, "An Image Inpainting Technique Based on the Fast Marching Method", J. Graphics Tools 2004
  (`cv2.inpaint(..., cv2.INPAINT_TELEA)`).
- "navier-stokes": Bertalmio, Bertozzi, Sapiro, "Navier-Stokes, Fluid Dynamics, and Image and Video Inpainting",
  CVPR 2001 (`cv2.inpaint(..., cv2.INPAINT_NS)`).
- "biharmonic": Damelin & Hoang, "On Surface Completion and Image Inpainting by Biharmonic Functions", 2018
  (`skimage.restoration.inpaint_biharmonic(..., channel_axis=-1)`).

All three work at each image's own resolution and need no model. OpenCV's methods run on 8-bit pixels (the input is
rounded to 8 bits for them; their fill is 8-bit) and take `radius`, the neighbourhood in pixels each hole pixel is
filled from. Biharmonic solves a sparse linear system in float64 over the hole; its cost grows faster than the number
of hole pixels (measured on two shared CPU cores with a centred square hole of 25 %: 0.5 s at 256x256, 2.8 s at
512x512, where Telea and Navier-Stokes take about 0.2 s at 256x256). Pass `max_side` to run a method on a copy
downscaled so that its longer side is at most `max_side`, the result then being upsampled into the hole; by default
nothing is resized.

Every result equals its input exactly outside the hole (the known pixels are copied, never recomputed).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import inpaint_biharmonic

from hoginpaint.baselines import BaselineOutput
from hoginpaint.imageio import ImageLike, check_mask_matches, load_images, load_masks, paste_back, to_pil

ClassicalMethod = Literal["telea", "navier-stokes", "biharmonic"]
_OPENCV_FLAGS = {"telea": cv2.INPAINT_TELEA, "navier-stokes": cv2.INPAINT_NS}


def inpaint_array(image: np.ndarray, hole: np.ndarray, method: ClassicalMethod, radius: float = 3.0) -> np.ndarray:
    """Fill `hole` `(H, W)` bool in `image` `(H, W, 3)` float in [0, 1] → `(H, W, 3)` float32 in [0, 1].

    Only the hole's pixels are written; every other pixel is `image`'s own.
    """
    if not hole.any():
        return image.astype(np.float32, copy=True)
    if hole.all():
        raise ValueError(f"the mask covers the whole image; {method} fills a hole from the pixels around it, so "
                         "leave some of the image known")
    if method == "biharmonic":
        filled = inpaint_biharmonic(image.astype(np.float64), hole, channel_axis=-1)
    else:
        pixels = np.round(image * 255.0).astype(np.uint8)
        filled = cv2.inpaint(pixels, hole.astype(np.uint8), radius, _OPENCV_FLAGS[method]).astype(np.float32) / 255.0
    return np.where(hole[..., None], np.clip(filled, 0.0, 1.0), image).astype(np.float32)


class ClassicalInpainter:
    """A classical method behind `HOGInpaintPipeline`'s call (see the module docstring for the methods and cost)."""

    def __init__(self, method: ClassicalMethod, radius: float = 3.0, max_side: int | None = None) -> None:
        if method not in get_args(ClassicalMethod):
            raise ValueError(f"unknown classical method {method!r}; expected one of "
                             f"{', '.join(get_args(ClassicalMethod))}")
        if not radius > 0:
            raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
        if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16):
            raise ValueError(f"max_side must be None (work at full size) or an int >= 16, got {max_side!r}")
        self.method = method
        self.radius = radius
        self.max_side = max_side

    def __call__(self, image: ImageLike | Sequence[ImageLike], mask_image: ImageLike | Sequence[ImageLike],
                 output_type: Literal["pil", "pt"] = "pil", feather: int = 4) -> BaselineOutput:
        """Inpaint the holes of `mask_image` (white / 1 = hole) in `image`, one image or a batch, any size.

        Inputs as for `HOGInpaintPipeline.__call__`. `feather` only matters with `max_side`: the inward seam blend
        of `paste_back` when the fill is upsampled.
        """
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        images, masks = load_images(image), load_masks(mask_image)
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} images and {len(masks)} masks; pass one mask per image")
        restored = []
        for original, mask in zip(images, masks):
            check_mask_matches(original, mask)
            restored.append(self._inpaint_one(original, mask, feather))
        return BaselineOutput(
            images=[to_pil(result) for result in restored] if output_type == "pil" else restored,
            masked=[to_pil(torch.where(mask >= 0.5, 1.0, original)) for original, mask in zip(images, masks)],
        )

    def _inpaint_one(self, image: torch.Tensor, mask: torch.Tensor, feather: int) -> torch.Tensor:
        """`(3, H, W)` image and `(1, H, W)` mask → `(3, H, W)`, at full size or through a `max_side` copy."""
        height, width = image.shape[-2:]
        scale = 1.0 if self.max_side is None else min(1.0, self.max_side / max(height, width))
        if scale == 1.0:
            filled = inpaint_array(image.permute(1, 2, 0).numpy(), mask[0].numpy() >= 0.5, self.method, self.radius)
            return torch.where(mask >= 0.5, torch.from_numpy(filled).permute(2, 0, 1), image)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small_image = F.interpolate(image[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0]
        small_mask = F.adaptive_max_pool2d(mask[None], size)[0]  # every pixel the hole touches stays a hole
        filled = inpaint_array(small_image.clamp(0, 1).permute(1, 2, 0).numpy(), small_mask[0].numpy() >= 0.5,
                               self.method, self.radius)
        return paste_back(image, torch.from_numpy(filled).permute(2, 0, 1), mask, feather=feather)
