"""Faces: dlib's detector and landmarks, identity, alignment, and framing.

- `hoginpaint.faces.landmarks`: dlib's models (loaded once), `detect_faces`, `landmarks68`, the iBUG point ranges,
  `anchor_points`, `feature_mask` (a hole over the eyes, the nose or the mouth).
- `hoginpaint.faces.identity`: 128-D descriptors (`face_descriptor`, `face_descriptors`), `identity_distance`,
  `SAME_PERSON_THRESHOLD`; `hoginpaint.faces.recognition`: dlib's recognition network in torch.
- `hoginpaint.faces.alignment`: `align_face` into the training framing (`UTKFACE_FRAMING`, with its measurement), and
  warping crops and holes back into the photo (`paste_aligned`, `paste_into`, `mask_from_aligned`, ...).
- `hoginpaint.faces.framing`: where the models look at a damaged photo (`frame`, `find_landmarks`, `crop_known`),
  decided on the known pixels only.

This package's API is the names below (`hoginpaint.faces.frame`, ...).
Images are RGB: PIL images, uint8 arrays `(H, W, 3)`, or float tensors `(3, H, W)` in [0, 1] (rounded to 8 bits,
as dlib works on 8-bit pixels). Coordinates are pixels of that image, x right, y down; landmark `(x, y)` rows.
"""
from __future__ import annotations

from hoginpaint.faces.alignment import (
    UTKFACE_FRAMING,
    AlignedFace,
    Framing,
    align_face,
    aligned_transform,
    hole_box,
    invert_transform,
    mask_from_aligned,
    paste_aligned,
    paste_into,
    unwarp_from_aligned,
    warp_mask_to_aligned,
)
from hoginpaint.faces.framing import (
    DETECTION_SIDE,
    HIDDEN_FACE_THRESHOLD,
    Frame,
    FrameKind,
    FoundOn,
    crop_known,
    crop_view,
    fill_hole,
    find_landmarks,
    frame,
    hole_inside_crop,
    shrink_known,
    square_around,
)
from hoginpaint.faces.identity import SAME_PERSON_THRESHOLD, face_descriptor, face_descriptors, identity_distance
from hoginpaint.faces.landmarks import (
    FACE_CROP_MAX_ASPECT,
    FACE_CROP_MAX_OFFSET,
    FACE_CROP_MIN_SHARE,
    FACE_CROP_THRESHOLD,
    FACE_PARTS,
    LEFT_EYE,
    MOUTH,
    NOSE,
    OUTER_LIPS,
    RIGHT_EYE,
    FaceBox,
    FacePart,
    RGBImage,
    anchor_points,
    check_landmarks,
    detect_faces,
    face_crop_boxes,
    feature_mask,
    landmarks68,
    model_path,
    to_rgb_array,
    whole_image_box,
)

__all__ = [
    "DETECTION_SIDE", "FACE_CROP_MAX_ASPECT", "FACE_CROP_MAX_OFFSET", "FACE_CROP_MIN_SHARE", "FACE_CROP_THRESHOLD",
    "FACE_PARTS", "HIDDEN_FACE_THRESHOLD", "LEFT_EYE", "MOUTH", "NOSE", "OUTER_LIPS", "RIGHT_EYE",
    "SAME_PERSON_THRESHOLD", "UTKFACE_FRAMING", "AlignedFace", "FaceBox", "FacePart", "FoundOn", "Frame", "FrameKind",
    "Framing", "RGBImage", "align_face", "aligned_transform", "anchor_points", "check_landmarks", "crop_known",
    "crop_view", "detect_faces", "face_crop_boxes", "face_descriptor", "face_descriptors", "feature_mask", "fill_hole",
    "find_landmarks", "frame",
    "hole_box", "hole_inside_crop", "identity_distance", "invert_transform", "landmarks68", "mask_from_aligned",
    "model_path", "paste_aligned", "paste_into", "shrink_known", "square_around", "to_rgb_array",
    "unwarp_from_aligned", "warp_mask_to_aligned", "whole_image_box",
]
