"""The two-stage inference pipeline: HOG structure, then HOG-guided inpainting, at any image size.

`HOGInpaintPipeline` holds G_H (`StructureGenerator`) and G (`InpaintGenerator`) and a model resolution. A call
resizes each image and mask to that resolution (`hoginpaint.imageio.prepare`), runs the two stages of
`hoginpaint.stages`, and pastes the hole back into each input at its own size (`hoginpaint.imageio.paste_back`),
so every known pixel of the result is the input's own. Hub layout and errors: `hoginpaint.hub`.

    pipe = HOGInpaintPipeline.from_pretrained("org/hoginpaint-celeba")
    out = pipe(image="face.jpg", mask_image="mask.png")
    out.images[0].save("restored.png")
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image

import hoginpaint
from hoginpaint import hub
from hoginpaint.imageio import ImageLike, load_images, load_masks, paste_back, prepare, to_pil
from hoginpaint.networks import InpaintGenerator, StructureGenerator
from hoginpaint.prefill import prefill_around_hole
from hoginpaint.stages import fill_hole, inpaint_stage, prefill_kind, structure_stage

MODEL_INDEX_NAME = hub.MODEL_INDEX_NAME
COMPONENTS = {"structure_generator": StructureGenerator, "inpaint_generator": InpaintGenerator}
# Conjugate-gradient iterations of the full-resolution pre-fill that the model's correction is added to: one image
# per call can afford the converged fill of thin holes (hoginpaint.prefill.prefill).
PASTE_BACK_ITERATIONS = 150


@dataclass
class InpaintOutput:
    """What a pipeline call returns: results at each input's size, and the model-resolution tensors behind them.

    `images`: RGB PIL images (output_type="pil") or float `(3, H, W)` tensors in [0, 1] (output_type="pt"), each
    the size of its input and equal to it outside the hole. `guidance`: the HOG image that guided G (known cells from
    the input, hole cells from G_H), white on black, at model resolution. `masked`: each input with its hole painted
    white, at its own size. Tensors are on the CPU, float32, at model resolution R: `result_tensor` `(B, 3, R, R)`
    (G's output with the known pixels restored), `guidance_tensor` and `hog_pred_tensor` `(B, 1, R, R)` scaled HOG
    images, `mask_tensor` `(B, 1, R, R)` (1 = hole, max-pooled from the input's mask).
    """

    images: list[Image.Image] | list[torch.Tensor]
    guidance: list[Image.Image]
    masked: list[Image.Image]
    result_tensor: torch.Tensor
    guidance_tensor: torch.Tensor
    hog_pred_tensor: torch.Tensor
    mask_tensor: torch.Tensor


class HOGInpaintPipeline(hub.ComponentModel):
    """Face inpainting guided by a predicted HOG image (Salem, Mahdi & Abbas): G_H then G, at `resolution`.

    `from_pretrained`, `save_pretrained` and `push_to_hub` (the Hub layout) come from `hoginpaint.hub.ComponentModel`.
    """

    COMPONENTS = COMPONENTS
    NOUN = "pipeline"
    KIND = "hoginpaint pipeline"

    def __init__(self, structure_generator: StructureGenerator, inpaint_generator: InpaintGenerator,
                 resolution: int = 256) -> None:
        multiple = math.lcm(4, structure_generator.pixels_per_cell)  # G's encoder halves twice; whole HOG cells
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16 or resolution % multiple:
            raise ValueError(f"resolution must be an int >= 16 and a multiple of {multiple}, got {resolution!r}")
        self.structure_generator = structure_generator.eval()
        self.inpaint_generator = inpaint_generator.eval()
        self.resolution = resolution

    # -----------------------------------------------------------------------------------------------------------------
    # Building, saving, loading

    @classmethod
    def from_config(cls, base_channels: int = 64, residual_blocks: int = 8, resolution: int = 256,
                    seed: int = 0) -> HOGInpaintPipeline:
        """A pipeline with freshly initialised (untrained) generators, for tests and benchmarks.

        The weights depend on `seed` only; the global torch RNG is left as it was.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            structure = StructureGenerator(base_channels=base_channels, residual_blocks=residual_blocks)
            inpaint = InpaintGenerator(base_channels=base_channels, residual_blocks=residual_blocks)
        return cls(structure, inpaint, resolution=resolution)

    def default_model_card(self) -> str:
        """A minimal model card: Hub metadata and how to use it (training passes a fuller one to save_pretrained)."""
        return default_model_card(self)

    def __call__(self, image: ImageLike | Sequence[ImageLike], mask_image: ImageLike | Sequence[ImageLike],
                 output_type: Literal["pil", "pt"] = "pil", feather: int = 4) -> InpaintOutput:
        """Inpaint the holes of `mask_image` (white / 1 = hole) in `image`, for one image or a batch.

        `image`: a path, PIL image, ndarray or `(3, H, W)` tensor, a list of them, or a `(B, 3, H, W)` batch
        (`hoginpaint.imageio.load_images`); any size, one mask of the same size per image. An empty mask returns
        the input unchanged; a full mask generates the whole image. `feather`: width in pixels of the inward seam
        blend of `paste_back`. The whole batch runs through each network at once, under
        `torch.inference_mode`.
        """
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        # 1. prepare inputs: each image and mask at its own size → one (B, ·, R, R) batch
        images, masks = load_images(image), load_masks(mask_image)
        batch = prepare(images, masks, self.resolution)
        model_image = batch.image.to(self.device, self.dtype)  # (B, 3, R, R)
        model_mask = batch.mask.to(self.device, self.dtype)  # (B, 1, R, R)

        kind = prefill_kind(self.inpaint_generator)
        with torch.inference_mode():
            # 2. structure stage: G_H predicts the HOG image; guidance = known cells + predicted hole cells
            structure = structure_stage(self.structure_generator, model_image, model_mask)

            # 3. inpaint stage: G fills the hole guided by the HOG image; known pixels restored
            filled = structure.filled if prefill_kind(self.structure_generator) == kind else None
            filled = filled if filled is not None else fill_hole(model_image, model_mask, kind)
            _, composited = inpaint_stage(self.inpaint_generator, model_image, model_mask, structure.guidance,
                                          filled=filled)
        # Cloned out of inference mode, so that callers may edit what they get back in place; contiguous whatever
        # layout the generators ran in.
        result = composited.float().cpu().clone(memory_format=torch.contiguous_format)  # (B, 3, R, R)
        guidance = structure.guidance.float().cpu().clone(memory_format=torch.contiguous_format)  # (B, 1, R, R)
        hog_pred = structure.hog_pred.float().cpu().clone(memory_format=torch.contiguous_format)  # (B, 1, R, R)

        # 4. paste back: each result at its input's size, inside the hole only. With a pre-fill, G's output is a
        # correction of a classical fill: the fill is recomputed at the input's own size and only the correction
        # is upsampled, so the model-resolution bottleneck costs no detail of the classical floor.
        if kind == "none":
            restored = [paste_back(original, low, mask, feather=feather)
                        for original, low, mask in zip(batch.originals, result, batch.original_masks)]
        else:
            low_fill = filled.float().cpu()
            restored = [paste_back(original, low, mask, feather=feather,
                                   base=prefill_around_hole(original, mask, kind, iterations=PASTE_BACK_ITERATIONS),
                                   base_lowres=low_base)
                        for original, low, mask, low_base in zip(batch.originals, result, batch.original_masks,
                                                                 low_fill)]
        return InpaintOutput(
            images=[to_pil(image) for image in restored] if output_type == "pil" else restored,
            guidance=[to_pil(hog) for hog in guidance],
            masked=[to_pil(torch.where(mask >= 0.5, 1.0, original))
                    for original, mask in zip(batch.originals, batch.original_masks)],
            result_tensor=result,
            guidance_tensor=guidance,
            hog_pred_tensor=hog_pred,
            mask_tensor=batch.mask,
        )


def default_model_card(pipeline: HOGInpaintPipeline) -> str:
    """A minimal model card (Hub metadata + how to use it); training scripts pass a fuller one to save_pretrained."""
    structure = pipeline.structure_generator._hub_mixin_config
    inpaint = pipeline.inpaint_generator._hub_mixin_config
    return f"""---
library_name: hoginpaint
pipeline_tag: image-to-image
tags:
- face-inpainting
- hog
- gan
---

# HOG-guided face inpainting

A `HOGInpaintPipeline` from [hoginpaint](https://github.com/) (version {hoginpaint.__version__}): the two-stage
method of Salem, Mahdi & Abbas, "A Novel Face Inpainting Approach Based on Guided Deep Learning". A structure
generator predicts the HOG image of the face inside the hole; an inpainting generator fills the hole guided by it.

- Model resolution: {pipeline.resolution}x{pipeline.resolution}
- Structure generator: `{json.dumps(structure, sort_keys=True)}`
- Inpainting generator: `{json.dumps(inpaint, sort_keys=True)}`

## Usage

```python
from hoginpaint import HOGInpaintPipeline

pipe = HOGInpaintPipeline.from_pretrained("<this repository>")
out = pipe(image="face.jpg", mask_image="mask.png")  # mask: white = hole
out.images[0].save("restored.png")
```

```bash
python -m hoginpaint inpaint --model <this repository> --image face.jpg --mask mask.png --output restored.png
```
"""
