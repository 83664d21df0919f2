"""Hole masks: where they come from and how users hand them in.

Conventions: a mask is float32 and binary, **1 = hole**; sources return numpy `(H, W)` arrays drawn with the
`np.random.Generator` passed in; at the model's boundary a mask is a tensor `(B, 1, H, W)`. As an image,
**white = hole** (diffusers' `mask_image`, LaMa and the NVIDIA mask set agree on this).

- `hoginpaint.masks.sources`: the `MaskSource` protocol, `hole_ratio`, hole-ratio ranges, `make_mask_source(kind)`.
- `hoginpaint.masks.shapes`: drawn masks — `FreeFormMasks` (DeepFill v2's strokes), `IrregularMasks` (PConv's
  lines, circles and ellipses), `RectangleMasks`.
- `hoginpaint.masks.folder`: `FolderMasks`, a folder of mask images (the NVIDIA irregular set with its hole-ratio
  buckets and evaluation split).
- `hoginpaint.masks.face_parts`: `FacePartMasks`, training holes over the eyes, nose and mouth from landmarks.
- `hoginpaint.masks.user_input`: masks as users hand them — `to_mask_tensor`, `threshold_mask`, `dilate_mask`,
  `mask_to_pil`, `mask_values`, and the image editor's `editor_hole`, `check_hole`, `layer_image`.
"""
from __future__ import annotations

from hoginpaint.masks.face_parts import FACE_PART_HOLES, FacePartHole, FacePartMasks
from hoginpaint.masks.folder import (
    BUCKET_RANGES,
    EVAL_EVERY,
    IMAGE_SUFFIXES,
    NVIDIA_BUCKET_SIZE,
    NVIDIA_MASK_COUNT,
    FolderMasks,
)
from hoginpaint.masks.shapes import FREE_FORM_REFERENCE_SIZE, FreeFormMasks, IrregularMasks, RectangleMasks
from hoginpaint.masks.sources import (
    MASK_KINDS,
    GeneratedMaskKind,
    MaskKind,
    MaskSource,
    RatioRangeMasks,
    hole_ratio,
    make_mask_source,
    sample_with_ratio,
)
from hoginpaint.masks.user_input import (
    as_size,
    check_hole,
    dilate_mask,
    editor_hole,
    layer_image,
    mask_to_pil,
    mask_values,
    threshold_mask,
    to_mask_tensor,
)

__all__ = [
    "BUCKET_RANGES", "EVAL_EVERY", "FACE_PART_HOLES", "FREE_FORM_REFERENCE_SIZE", "IMAGE_SUFFIXES", "MASK_KINDS",
    "NVIDIA_BUCKET_SIZE", "NVIDIA_MASK_COUNT", "FacePartHole", "FacePartMasks", "FolderMasks", "FreeFormMasks",
    "GeneratedMaskKind", "IrregularMasks", "MaskKind", "MaskSource", "RatioRangeMasks", "RectangleMasks", "as_size",
    "check_hole", "dilate_mask", "editor_hole", "hole_ratio", "layer_image", "make_mask_source", "mask_to_pil",
    "mask_values", "sample_with_ratio", "threshold_mask", "to_mask_tensor",
]
