"""The one inference call of the project's learned inpainters: prepare → run → copy → paste back → previews.

`HOGInpaintPipeline` and `DeepFillInpainter` differ only in what their networks do at the model's resolution; the
rest of a call is shared here (as diffusers shares its image processor between pipelines). A model subclasses
`Inpainter` and implements two hooks:

- `_run(image, mask, filled)`: the networks on a `(B, 3, R, R)` batch and its `(B, 1, R, R)` mask under
  `torch.inference_mode` → a `ModelRun` (the completed batch, the pre-fill it refined if any, extra tensors);
- `_output(images, masked, run, mask)`: the call's return value from the full-size results.

Paste-back (`hoginpaint.imageio.paste_back`) puts each result into its input's hole at the input's own size. When
the model refines a classical pre-fill, the fill is computed first at the input's own size; the model refines that
fill downsampled to its resolution, and only the model's change is upsampled and added to the full-resolution fill,
faded in from the hole's rim by the generator's `correction_ramp` scaled to the input. So the model's resolution
costs none of the classical floor's detail. Three optional hooks say what a model refines: `_prefill_kind()` (default
``none``), `_correction_ramp()` (pixels at the model's resolution, default 0) and `_bases()` (fills at the inputs'
own sizes that replace the classical one, e.g. a coarse model's results in a coarse-to-fine cascade).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from hoginpaint.hub import ComponentModel
from hoginpaint.imageio import ImageLike, load_images, load_masks, paste_back, prepare, resize_images, to_pil
from hoginpaint.prefill import prefill_around_hole

# The full-resolution pre-fill that the model's correction is added to: one image per call can afford more
# conjugate-gradient iterations (hoginpaint.prefill.prefill), and an exact sparse solve for holes of up to
# PASTE_BACK_EXACT_PIXELS pixels (10 % of 256x256), where it costs little and the iterations converge slowest.
PASTE_BACK_ITERATIONS = 150
PASTE_BACK_EXACT_PIXELS = 6554


@dataclass
class ModelRun:
    """What a model's networks produced at its resolution R (tensors on the model's device).

    `result`: `(B, 3, R, R)` in [0, 1], the known pixels restored. `prefill`: the kind of classical fill the model
    refined (`none` if it did not); `filled`: that fill at resolution R, `(B, 3, R, R)`. `extras`: further tensors
    the model's output reports (e.g. the HOG guidance).
    """

    result: torch.Tensor
    prefill: str = "none"
    filled: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def _to_cpu(tensor: torch.Tensor) -> torch.Tensor:
    # Cloned out of inference mode, so that callers may edit what they get back in place; contiguous whatever
    # layout the networks ran in.
    return tensor.float().cpu().clone(memory_format=torch.contiguous_format)


class Inpainter(ComponentModel):
    """A `ComponentModel` with the shared inference call; subclasses implement `_run` and `_output`."""

    def _run(self, image: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor | None = None) -> ModelRun:
        raise NotImplementedError

    def _prefill_kind(self) -> str:
        return "none"

    def _correction_ramp(self) -> float:
        return 0.0

    def _bases(self, originals: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """The fills at each input's own size that the model refines in place of the classical pre-fill (a coarse
        model's results), or None for the classical one (`_prefill_kind`)."""
        return None

    def _output(self, images: list, masked: list, run: ModelRun, mask: torch.Tensor) -> Any:
        raise NotImplementedError

    def __call__(self, image: ImageLike | Sequence[ImageLike], mask_image: ImageLike | Sequence[ImageLike],
                 output_type: Literal["pil", "pt"] = "pil", feather: int = 4) -> Any:
        """Inpaint the holes of `mask_image` (white / 1 = hole) in `image`, for one image or a batch.

        `image`: a path, PIL image, ndarray or `(3, H, W)` tensor, a list of them, or a `(B, 3, H, W)` batch
        (`hoginpaint.imageio.load_images`); any size, one mask of the same size per image. An empty mask returns
        the input unchanged; a full mask generates the whole image. `feather`: width in pixels of the inward seam
        blend of `paste_back`. The whole batch runs through the networks at once, under `torch.inference_mode`.
        `output_type`: PIL images ("pil") or `(3, H, W)` float tensors ("pt") in the returned `images`.
        """
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        # 1. prepare inputs: each image and mask at its own size → one (B, ·, R, R) batch
        images, masks = load_images(image), load_masks(mask_image)
        batch = prepare(images, masks, self.resolution)
        kind, bases, filled = self._prefill_kind(), self._bases(batch.originals, batch.original_masks), None
        if bases is None and kind != "none":
            # the classical fill at each input's own size
            bases = [prefill_around_hole(original, mask, kind, iterations=PASTE_BACK_ITERATIONS,
                                         exact_up_to=PASTE_BACK_EXACT_PIXELS)
                     for original, mask in zip(batch.originals, batch.original_masks)]
        if bases:
            # the same fill at the model's resolution: the model's input (it holds the known pixels, and nothing
            # that was under the hole)
            filled = resize_images(bases, self.resolution)
        bases = bases or []
        image = batch.image if filled is None else filled
        with torch.inference_mode():
            # 2. the model's networks at its resolution
            run = self._run(image.to(self.device, self.dtype), batch.mask.to(self.device, self.dtype),
                            None if filled is None else filled.to(self.device, self.dtype))
        run = ModelRun(result=_to_cpu(run.result), prefill=run.prefill,
                       filled=None if run.filled is None else _to_cpu(run.filled),
                       extras={name: _to_cpu(tensor) for name, tensor in run.extras.items()})

        # 3. paste back: each result at its input's size, inside the hole only
        restored = []
        for index, (original, mask) in enumerate(zip(batch.originals, batch.original_masks)):
            base = {}
            if bases:
                # the ramp in the input's pixels: the model's ramp times the input's scale over the model's
                scale = (original.shape[-1] * original.shape[-2]) ** 0.5 / self.resolution
                base = {"base": bases[index], "base_lowres": run.filled[index],
                        "ramp": self._correction_ramp() * scale}
            restored.append(paste_back(original, run.result[index], mask, feather=feather, **base))
        masked = [to_pil(torch.where(mask >= 0.5, 1.0, original))
                  for original, mask in zip(batch.originals, batch.original_masks)]
        return self._output([to_pil(image) for image in restored] if output_type == "pil" else restored, masked,
                            run, batch.mask)
