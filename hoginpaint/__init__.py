"""hoginpaint: identity-preserving face inpainting guided by HOG structure.

Implements Salem, Mahdi & Abbas, "A Novel Face Inpainting Approach Based on Guided Deep Learning": two cascaded
GANs, a structure stage that predicts the face's HOG image and an inpainting stage guided by it.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["HOGInpaintPipeline", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import hoginpaint.hog` does not pay for the Hub client and the pipeline's imports.
    if name == "HOGInpaintPipeline":
        from hoginpaint.pipeline import HOGInpaintPipeline

        return HOGInpaintPipeline
    raise AttributeError(f"module 'hoginpaint' has no attribute {name!r}")
