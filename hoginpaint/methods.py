"""Every inpainting method by name, behind one call: the project's HOG-guided pipeline and its baselines.

    from hoginpaint import methods
    method = methods.load("hoginpaint", "checkpoints/hoginpaint")   # or "deepfill", "telea", "navier-stokes", ...
    out = method(image="face.jpg", mask_image="mask.png")
    out.images[0].save("restored.png")

Every method is called like `HOGInpaintPipeline`: `method(image=..., mask_image=..., output_type="pil")`, one image
or a batch of any kind `hoginpaint.imageio.load_images` accepts, white / 1 = hole, and returns an object with
`.images` (one result per input, the input's size, equal to it outside the hole). The HOG pipeline returns its own
`InpaintOutput` (which adds the HOG guidance); the baselines return `hoginpaint.baselines.BaselineOutput`.
"""
from __future__ import annotations

from typing import Any, Literal, get_args

MethodName = Literal["hoginpaint", "deepfill", "telea", "navier-stokes", "biharmonic"]
CLASSICAL_METHODS = ("telea", "navier-stokes", "biharmonic")


def available_methods() -> tuple[str, ...]:
    """The names `load` accepts."""
    return get_args(MethodName)


def load(name: MethodName, model: str | None = None, **kwargs: Any):
    """A callable `method(image=..., mask_image=..., ...)` for the inpainting method `name`.

    - "hoginpaint": `HOGInpaintPipeline.from_pretrained(model, **kwargs)`. `model` (a Hub id or a folder) is
      required, except with `random_init=True`, which builds untrained generators for tests and benchmarks
      (`HOGInpaintPipeline.from_config(**kwargs)`).
    - "deepfill": `DeepFillInpainter.from_pretrained(model, **kwargs)`; the same `random_init=True` escape
      (`DeepFillInpainter.from_config(**kwargs)`).
    - "telea", "navier-stokes", "biharmonic": `ClassicalInpainter(name, **kwargs)` (`radius`, `max_side`); they
      have no model, so `model` must be None.
    """
    if name not in available_methods():
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(available_methods())}")
    if name in CLASSICAL_METHODS:
        if model is not None:
            raise ValueError(f"{name} is a classical method without weights; drop model={model!r}")
        from hoginpaint.baselines.classical import ClassicalInpainter

        return ClassicalInpainter(name, **kwargs)

    if name == "hoginpaint":
        from hoginpaint.pipeline import HOGInpaintPipeline as method_class
    else:
        from hoginpaint.baselines.deepfill import DeepFillInpainter as method_class
    random_init = kwargs.pop("random_init", False)
    if random_init:
        if model is not None:
            raise ValueError(f"pass either model={model!r} or random_init=True, not both")
        return method_class.from_config(**kwargs)
    if model is None:
        raise ValueError(f"{name} needs trained weights: pass model= (a Hub repository id or a local folder saved "
                         "with save_pretrained), or random_init=True for an untrained model in tests and benchmarks")
    return method_class.from_pretrained(model, **kwargs)
