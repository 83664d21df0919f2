"""Baselines behind the pipeline's call: DeepFill v2 and three classical inpainting methods; by name through
`hoginpaint.methods.load` (which serves the HOG-guided pipeline too).

    from hoginpaint import methods
    method = methods.load("telea")              # or "navier-stokes", "biharmonic", "deepfill", "hoginpaint"
    out = method(image="face.jpg", mask_image="mask.png")
    out.images[0].save("telea.png")

Every method is called like `HOGInpaintPipeline`: `method(image=..., mask_image=..., output_type="pil")`, one
image or a batch of any kind `hoginpaint.imageio.load_images` accepts, white / 1 = hole, and returns an object with
`.images` (one result per input, the input's size, equal to it outside the hole). The HOG pipeline returns its own
`InpaintOutput` (which adds the HOG guidance); the baselines return `BaselineOutput`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image


@dataclass
class BaselineOutput:
    """What a baseline call returns; the fields it shares with `hoginpaint.pipeline.InpaintOutput` mean the same.

    `images`: RGB PIL images (output_type="pil") or float `(3, H, W)` tensors in [0, 1] (output_type="pt"), each
    the size of its input and equal to it outside the hole. `masked`: each input with its hole painted white.
    `result_tensor` `(B, 3, R, R)` and `mask_tensor` `(B, 1, R, R)`: the completed batch and its mask at the model
    resolution R (CPU, float32) for learned methods; None for classical ones, which work at each image's own size.
    """

    images: list[Image.Image] | list[torch.Tensor]
    masked: list[Image.Image]
    result_tensor: torch.Tensor | None = None
    mask_tensor: torch.Tensor | None = None

