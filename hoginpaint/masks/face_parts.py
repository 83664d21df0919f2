"""Training holes over facial parts, placed from a face's 68 landmarks.

Irregular masks (Liu et al. 2018) almost never cover a whole eye, nose or mouth, so a model trained on them alone
learns to fill such a hole with the mean: blank skin. `FacePartMasks` draws the holes a user makes over a face —
one eye, both eyes, the eyes with the brows, the nose, the mouth, and thick strokes across them — each dilated by a
random margin and shifted by a random jitter, both measured in inter-ocular distances so that they scale with the
face. Evaluation holes (`hoginpaint.faces.feature_mask`: eyes, nose or mouth, margin 0.15) are one point of this
distribution; evaluation faces come from the validation splits, whose landmarks training never sees.

Landmarks are `(68, 2)` `(x, y)` pixels of the image the mask is for (iBUG 300-W order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from hoginpaint.faces.landmarks import (
    LEFT_BROW,
    LEFT_EYE,
    NOSE,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
    anchor_points,
    check_landmarks,
)

FacePartHole = Literal["left_eye", "right_eye", "eyes", "eyes_brows", "nose", "mouth", "stroke"]
FACE_PART_HOLES: tuple[str, ...] = ("left_eye", "right_eye", "eyes", "eyes_brows", "nose", "mouth", "stroke")

# iBUG 300-W point groups, each drawn as its own convex hull.
_GROUPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "left_eye": (LEFT_EYE,),
    "right_eye": (RIGHT_EYE,),
    "eyes": (LEFT_EYE, RIGHT_EYE),
    "eyes_brows": (LEFT_EYE + LEFT_BROW, RIGHT_EYE + RIGHT_BROW),
    "nose": (NOSE,),
    "mouth": (OUTER_LIPS,),
}


@dataclass(frozen=True)
class FacePartMasks:
    """Holes over facial parts: `sample(rng, size, landmarks)` → `(H, W)` float32 in {0, 1}, 1 = hole.

    Args:
        holes: the kinds drawn, uniformly (`FACE_PART_HOLES`).
        margin_range: the hull of the part's landmarks is dilated by a margin drawn from this range, in inter-ocular
            distances (the evaluation's holes use 0.15).
        jitter: the hole is shifted by a normal offset of this standard deviation, in inter-ocular distances.
        stroke_width_range: width of a stroke, in inter-ocular distances.
    """

    holes: tuple[str, ...] = FACE_PART_HOLES
    margin_range: tuple[float, float] = (0.05, 0.45)
    jitter: float = 0.08
    stroke_width_range: tuple[float, float] = (0.25, 0.6)

    def __post_init__(self) -> None:
        unknown = [hole for hole in self.holes if hole not in FACE_PART_HOLES]
        if not self.holes or unknown:
            raise ValueError(f"unknown face-part holes {unknown or '(none given)'}; expected some of "
                             f"{', '.join(FACE_PART_HOLES)}")
        for name in ("margin_range", "stroke_width_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high (inter-ocular distances), got ({low}, {high})")
        if not self.jitter >= 0:
            raise ValueError(f"jitter must be >= 0 (inter-ocular distances), got {self.jitter!r}")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
        """One hole over a random part of the face whose landmarks are `landmarks` (pixels of an image of `size`)."""
        landmarks = check_landmarks(landmarks)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        left_eye, right_eye = anchor_points(landmarks)[:2]
        eye_distance = max(float(np.linalg.norm(right_eye - left_eye)), 1.0)
        hole = self.holes[int(rng.integers(len(self.holes)))]
        shifted = landmarks + rng.normal(0.0, self.jitter * eye_distance, size=2)
        canvas = np.zeros((height, width), dtype=np.uint8)
        if hole == "stroke":
            _draw_stroke(canvas, shifted, rng, eye_distance * rng.uniform(*self.stroke_width_range))
            return canvas.astype(np.float32)
        for group in _GROUPS[hole]:
            cv2.fillConvexPoly(canvas, cv2.convexHull(np.round(shifted[list(group)]).astype(np.int32)), 1)
        radius = int(round(rng.uniform(*self.margin_range) * eye_distance))
        if radius > 0:
            canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
        return canvas.astype(np.float32)


def _draw_stroke(canvas: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, width: float) -> None:
    """A thick polyline through two or three of the part centres (eyes, nose tip, mouth), extended past its ends."""
    centres = np.stack([*anchor_points(landmarks)[:2], landmarks[33], landmarks[list(OUTER_LIPS)].mean(0)])  # (4, 2)
    count = int(rng.integers(2, 4))
    points = centres[rng.permutation(len(centres))[:count]]
    # Past each end by up to half the segment, so that the stroke also crosses the skin around the parts.
    start, end = points[0], points[-1]
    points[0] = start + (start - points[1]) * rng.uniform(0.0, 0.5)
    points[-1] = end + (end - points[-2]) * rng.uniform(0.0, 0.5)
    cv2.polylines(canvas, [np.round(points).astype(np.int32)], isClosed=False, color=1,
                  thickness=max(1, int(round(width))), lineType=cv2.LINE_8)
