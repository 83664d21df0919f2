"""What the evaluation measures on each face: dlib's reading of the ground truth (`analyse_faces`, the landmark
references), the pixel and identity metrics (`sample_metrics`), the realism of the hole (`realism_metrics`,
`hoginpaint.realism`) and the summary of the realism columns (`realism_summary`). `hoginpaint.evaluation.run`
composes the run from them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hoginpaint import faces, metrics, realism

PIXEL_METRICS = ("l1", "psnr", "ssim", "ssim_gray")
REALISM_METRICS = ("hole_detail", "hole_contrast", "landmark_error", "hog_hole_distance", "boundary_step_vs_truth",
                   "boundary_step_ratio")
LANDMARK_SIDE = 256  # landmark_error's working resolution: dlib misses faces much under 80 px


@dataclass
class GroundTruthFaces:
    """What dlib finds on each ground-truth face (None where it finds no face)."""

    boxes: list[faces.FaceBox | None]
    descriptors: list[np.ndarray | None]
    landmarks: list[np.ndarray | None]

    @property
    def found(self) -> list[int]:
        return [i for i, box in enumerate(self.boxes) if box is not None]


def analyse_faces(images: torch.Tensor) -> GroundTruthFaces:
    """Detect the largest face of each image, its 68 landmarks and its descriptor."""
    boxes = [next(iter(faces.detect_faces(image)), None) for image in images]
    found = [i for i, box in enumerate(boxes) if box is not None]
    computed = iter(faces.face_descriptors([images[i] for i in found], [None] * len(found), [boxes[i] for i in found]))
    descriptors = [None if box is None else next(computed) for box in boxes]
    landmarks = [None if box is None else faces.landmarks68(image, box) for image, box in zip(images, boxes)]
    return GroundTruthFaces(boxes, descriptors, landmarks)


def landmark_references(images: torch.Tensor, ground_truth: GroundTruthFaces) -> list[realism.FaceReference | None]:
    """The ground truth's face and 68 landmarks at `landmark_error`'s working size (`LANDMARK_SIDE`), one per face
    of `images` `(N, 3, R, R)`: `analyse_faces`' own when R >= LANDMARK_SIDE (the same detection on the same
    pixels), else dlib's on the faces scaled up (`realism.face_references`). None where dlib finds no face."""
    if min(images.shape[2:]) >= LANDMARK_SIDE:
        return [None if box is None else (box, landmarks)
                for box, landmarks in zip(ground_truth.boxes, ground_truth.landmarks)]
    return realism.face_references(images, LANDMARK_SIDE)


def sample_metrics(truth: torch.Tensor, result: torch.Tensor, boxes: list, descriptors: list,
                   lpips: Callable | None = None) -> dict[str, list]:
    """Every per-face metric of one batch, as lists (LPIPS only when its network could be loaded)."""
    values = {
        "l1": metrics.l1(truth, result), "psnr": metrics.psnr(truth, result), "ssim": metrics.ssim(truth, result),
        "ssim_gray": metrics.ssim_gray(truth, result),
    }
    distances = metrics.identity_distances(truth, result, boxes, descriptors)
    values["identity_distance"] = distances
    values["same_person"] = metrics.same_person(distances)
    if lpips is not None:
        values["lpips"] = lpips(truth, result)
    return {name: column.tolist() for name, column in values.items()}


def realism_metrics(truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor,
                    references: list[realism.FaceReference | None]) -> dict[str, list]:
    """The hole's realism per face of one batch (`REALISM_METRICS`), as lists; NaN where a value is undefined.

    `truth`, `result` `(b, 3, R, R)` in [0, 1], `mask` `(b, 1, R, R)` in {0, 1}; `references` one per face from
    `landmark_references`.
    """
    truth_step = realism.boundary_step(truth, mask)
    values = {
        "hole_detail": realism.hole_detail(truth, result, mask),
        "hole_contrast": realism.hole_contrast(truth, result, mask),
        "landmark_error": realism.landmark_error(truth, result, mask, LANDMARK_SIDE, references),
        "hog_hole_distance": realism.hog_hole_distance(truth, result, mask),
        "boundary_step_vs_truth": torch.where(truth_step > 0, realism.boundary_step(result, mask) / truth_step,
                                              math.nan),
        "boundary_step_ratio": realism.boundary_step_ratio(result, mask),
    }
    return {name: column.tolist() for name, column in values.items()}


def realism_summary(chosen: list[dict[str, Any]]) -> dict[str, float | int]:
    """The realism columns of one method x mask set row: means over the faces where each is defined, the counts of
    faces the landmark error measured and left out (no face on the ground truth / no landmark under the hole) and
    the count the boundary step ratio was defined for."""
    column = {name: np.array([s[name] for s in chosen], dtype=np.float64)
              for name in (*REALISM_METRICS, "boundary_step_ratio_truth")}
    face = np.array([s["landmark_face"] for s in chosen], dtype=bool)
    measured = ~np.isnan(column["landmark_error"])
    return {**{name: mean_of(values[~np.isnan(values)]) for name, values in column.items()},
            "landmark_samples": int(measured.sum()), "landmark_no_face": int((~face).sum()),
            "landmark_no_point": int((face & ~measured).sum()),
            "boundary_ratio_samples": int((~np.isnan(column["boundary_step_ratio"])).sum())}


def mean_of(values: np.ndarray) -> float:
    """The mean of `values`, NaN when there are none."""
    return float(values.mean()) if values.size else math.nan
