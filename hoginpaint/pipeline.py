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

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from hoginpaint import hub
from hoginpaint.imageio import paste_back, to_pil
from hoginpaint.inference import Inpainter, ModelRun
from hoginpaint.networks import InpaintGenerator, StructureGenerator
from hoginpaint.prefill import prefill
from hoginpaint.stages import check_image_and_mask, inpaint_stage, prefill_kind, structure_stage

MODEL_INDEX_NAME = hub.MODEL_INDEX_NAME
COMPONENTS = {"structure_generator": StructureGenerator, "inpaint_generator": InpaintGenerator}


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


class HOGInpaintPipeline(Inpainter):
    """Face inpainting guided by a predicted HOG image (Salem, Mahdi & Abbas): G_H then G, at `resolution`.

    The call (`pipe(image=..., mask_image=..., output_type="pil", feather=4)` → `InpaintOutput`) is the shared one of
    `hoginpaint.inference.Inpainter`; `from_pretrained`, `save_pretrained` and `push_to_hub` (the Hub layout) come
    from `hoginpaint.hub.ComponentModel`.
    """

    COMPONENTS = COMPONENTS
    NOUN = "pipeline"
    KIND = "hoginpaint pipeline"
    CARD_TITLE = "HOG-guided face inpainting"
    CARD_TAGS = ("face-inpainting", "hog", "gan")
    CARD_DESCRIPTION = (
        "A `HOGInpaintPipeline` from [hoginpaint](https://github.com/) (version {version}): the two-stage method of "
        "Salem, Mahdi & Abbas, \"A Novel Face Inpainting Approach Based on Guided Deep Learning\". A structure "
        "generator predicts the HOG image of the face inside the hole; an inpainting generator fills the hole guided "
        "by it.")
    CARD_USAGE = """
from hoginpaint import HOGInpaintPipeline

pipe = HOGInpaintPipeline.from_pretrained("<this repository>")
out = pipe(image="face.jpg", mask_image="mask.png")  # mask: white = hole
out.images[0].save("restored.png")
# or: python -m hoginpaint inpaint --model <this repository> --image face.jpg --mask mask.png --output restored.png
"""

    def __init__(self, structure_generator: StructureGenerator, inpaint_generator: InpaintGenerator,
                 resolution: int = 256, coarse: HOGInpaintPipeline | None = None) -> None:
        multiple = math.lcm(4, structure_generator.pixels_per_cell)  # G's encoder halves twice; whole HOG cells
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16 or resolution % multiple:
            raise ValueError(f"resolution must be an int >= 16 and a multiple of {multiple}, got {resolution!r}")
        if coarse is not None:
            check_coarse(coarse, resolution, prefill_kind(inpaint_generator))
        self.structure_generator = structure_generator.eval()
        self.inpaint_generator = inpaint_generator.eval()
        self.resolution = resolution
        self.coarse = coarse

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

    def _prefill_kind(self) -> str:
        return prefill_kind(self.inpaint_generator)

    def _bases(self, originals: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor] | None:
        # In a cascade the coarse pipeline's results, at each input's size, are what the generators refine.
        if self.coarse is None:
            return None
        return list(self.coarse(originals, masks, output_type="pt").images)

    def _correction_ramp(self) -> float:
        return getattr(self.inpaint_generator, "correction_ramp", 0.0)

    def _run(self, image: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor | None = None) -> ModelRun:
        """The two stages on a `(B, 3, R, R)` batch (the shared call: `hoginpaint.inference.Inpainter.__call__`).

        `filled`: the batch with its hole pre-filled by G's kind (the shared call passes the photo's full-resolution
        fill, downsampled); by default the stages fill it at resolution R.
        """
        kind = self._prefill_kind()
        same_fill = prefill_kind(self.structure_generator) == kind  # G_H's fill can serve G too
        # structure stage: G_H predicts the HOG image; guidance = known cells + predicted hole cells
        structure = structure_stage(self.structure_generator, image, mask, filled=filled if same_fill else None)
        # inpaint stage: G fills the hole guided by the HOG image (refining a pre-fill, if it was built with one)
        if filled is None:
            filled = structure.filled if same_fill else prefill(image, mask, kind)
        _, composited = inpaint_stage(self.inpaint_generator, image, mask, structure.guidance, filled=filled)
        return ModelRun(result=composited, prefill=kind, filled=filled,
                        extras={"guidance": structure.guidance, "hog_pred": structure.hog_pred})

    def _output(self, images: list, masked: list, run: ModelRun, mask: torch.Tensor) -> InpaintOutput:
        return InpaintOutput(
            images=images,
            guidance=[to_pil(hog) for hog in run.extras["guidance"]],
            masked=masked,
            result_tensor=run.result,
            guidance_tensor=run.extras["guidance"],
            hog_pred_tensor=run.extras["hog_pred"],
            mask_tensor=mask,
        )


HOGInpaintPipeline.PARTS = {"coarse": HOGInpaintPipeline}


def check_coarse(coarse: object, resolution: int, kind: str) -> None:
    """A cascade's coarse stage is a `HOGInpaintPipeline` (itself without one) at a lower resolution, and the fine
    generators refine a fill (they were built with a pre-fill, which its result replaces)."""
    if not isinstance(coarse, HOGInpaintPipeline):
        raise ValueError(f"coarse must be a HOGInpaintPipeline, got {type(coarse).__name__}")
    if coarse.coarse is not None:
        raise ValueError("coarse is itself a cascade; pass a pipeline without a coarse stage")
    if coarse.resolution >= resolution:
        raise ValueError(f"the coarse pipeline works at {coarse.resolution} px, not below this pipeline's {resolution} "
                         "px; pass a lower-resolution pipeline")
    if kind == "none":
        raise ValueError("generators built without a pre-fill (prefill='none') cannot refine a coarse pipeline's "
                         "result; pass generators built with a pre-fill")


@torch.no_grad()
def coarse_fill(coarse: HOGInpaintPipeline, image: torch.Tensor, mask: torch.Tensor, feather: int = 4) -> torch.Tensor:
    """`image` `(B, 3, H, W)` with its hole (`mask` `(B, 1, H, W)`, 1 = hole) filled by a lower-resolution pipeline
    as its call fills it (`hoginpaint.inference`), batched: its classical fill at the image's own resolution; its
    networks (`_run`) on that fill brought to its resolution (antialiased bicubic; the mask max-pooled, so that every
    hole pixel stays in the hole); and only their change upsampled and added to the fill, faded in by its correction
    ramp and feathered at the rim (`imageio.paste_back`). The known pixels are the image's own. What a cascade's fine
    generators refine, in training as at inference."""
    check_image_and_mask(image, mask)
    side = coarse.resolution
    kind = coarse._prefill_kind()
    base = prefill(image, mask, kind) if kind != "none" else image
    small = F.interpolate(base, size=(side, side), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    small_mask = F.adaptive_max_pool2d(mask, (side, side))
    result = coarse._run(small, small_mask, small if kind != "none" else None).result
    if kind == "none":
        return torch.stack([paste_back(image[i], result[i], mask[i], feather=feather) for i in range(len(image))])
    # the ramp in the image's pixels: the coarse model's ramp times the image's scale over the coarse model's
    ramp = coarse._correction_ramp() * (image.shape[-1] * image.shape[-2]) ** 0.5 / side
    return torch.stack([paste_back(image[i], result[i], mask[i], feather=feather, base=base[i], base_lowres=small[i],
                                   ramp=ramp) for i in range(len(image))]).to(image.dtype)
