"""Realism of a filled hole: what PSNR hides. Pure functions on batches.

PSNR and L1 reward the mean: a blurred or flat fill close to the average face scores well while carrying no facial
detail. These metrics ask instead whether the hole holds detail, contrast and structure where the ground truth has
them, and whether its border is seamless. Images are float `(B, 3, H, W)` in [0, 1], masks float `(B, 1, H, W)` in
{0, 1} (1 = hole); luminance is `hoginpaint.hog.to_gray` (skimage's `rgb2gray` weights); everything is computed in
float64 and each function returns a float64 `(B,)` tensor on the images' device, NaN where the value is undefined.

- `hole_detail`: mean |Laplacian| of the luminance in the hole, eroded so that the hole's rim is not counted, result
  over ground truth. 1 = as much fine detail as the truth, 0 = none (a flat fill), above 1 = more (noise, artefacts).
- `hole_contrast`: standard deviation of the luminance in the hole, result over ground truth; same reading.
- `landmark_error`: dlib's 68 landmarks under the hole, predicted on the result in the ground truth's face box, their
  mean distance from the ground truth's over the inter-ocular distance. 0 = the features are where they belong; 0.1
  = a tenth of the eye distance off. `face_references` finds the faces once, for several results and for counting
  the faces left out.
- `hog_hole_distance`: the method's own structure feature (HOG cell histograms of the luminance) compared over the
  cells the hole reaches: mean absolute difference, in the histograms' units (mean gradient magnitude per bin of a
  luminance in [0, 1]). 0 = the same structure.
- `boundary_step`: mean absolute luminance step across the hole's border (4-neighbour pairs, one pixel in the hole);
  `boundary_step_ratio`: that step over the step across copies of the hole's outline placed on untouched parts of the
  same photo. It needs no ground truth: about 1 for a seamless fill, well above 1 for a seam, halo or colour offset.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from hoginpaint import faces
from hoginpaint.hog import hog_histograms, to_gray

FaceReference = tuple[faces.FaceBox, np.ndarray]  # a face box and its (68, 2) landmarks at the working resolution


def _check_images(images: torch.Tensor, name: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a float (B, 3, H, W) tensor in [0, 1], got {shape}; add a batch "
                         f"dimension with image[None] for a single image")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got {images.dtype}; divide uint8 data by 255")


def _hole(images: torch.Tensor, mask: torch.Tensor, result: torch.Tensor | None = None) -> torch.Tensor:
    """Validate the inputs and return the hole as a bool `(B, 1, H, W)` tensor on the images' device."""
    _check_images(images, "image" if result is None else "ground_truth")
    if result is not None:
        _check_images(result, "result")
        if result.shape != images.shape:
            raise ValueError(f"ground_truth is {tuple(images.shape)} but result is {tuple(result.shape)}; "
                             "compare images of the same size")
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4 or mask.shape[1] != 1:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a float (B, 1, H, W) tensor with 1 = hole, got {shape}")
    if mask.shape[0] != images.shape[0] or mask.shape[2:] != images.shape[2:]:
        raise ValueError(f"mask is {tuple(mask.shape)} but the images are {tuple(images.shape)}; pass one mask of "
                         "the images' size per image")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask values must be 0 (known) or 1 (hole); threshold a soft mask with (mask > 0.5).float()")
    return mask.to(images.device) == 1


def _gray(images: torch.Tensor) -> torch.Tensor:
    return to_gray(images.double())  # (B, 1, H, W), float64


def _masked_mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over `where` per image → `(B,)`; NaN where `where` is empty."""
    count = where.flatten(1).sum(1)
    total = torch.where(where, values, 0.0).flatten(1).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), math.nan)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """`numerator / denominator`, NaN where the denominator is 0 or NaN."""
    return torch.where(denominator > 0, numerator / denominator, math.nan)


def _laplacian(gray: torch.Tensor) -> torch.Tensor:
    """The 4-neighbour Laplacian with replicate padding, as differences so that a flat region gives exactly 0."""
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    centre = padded[:, :, 1:-1, 1:-1]
    return ((padded[:, :, :-2, 1:-1] - centre) + (padded[:, :, 2:, 1:-1] - centre)
            + (padded[:, :, 1:-1, :-2] - centre) + (padded[:, :, 1:-1, 2:] - centre))


def hole_detail(ground_truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor, erode: int = 2) -> torch.Tensor:
    """Fine detail in the hole, result over ground truth → `(B,)` float64 >= 0; 1 for identical images, 0 for a flat
    fill, NaN where the eroded hole is empty or the ground truth has no detail there.

    Detail is the mean |Laplacian| of the luminance over the hole eroded by `erode` pixels (a square element; the
    image border does not erode), which keeps the rim's step out of it: with `erode` >= 1 no counted pixel's stencil
    reaches outside the hole.
    """
    hole = _hole(ground_truth, mask, result)
    if isinstance(erode, bool) or not isinstance(erode, int) or erode < 0:
        raise ValueError(f"erode must be an int >= 0 (pixels), got {erode!r}")
    known = (~hole).double()
    inner = F.max_pool2d(known, 2 * erode + 1, stride=1, padding=erode) == 0 if erode else hole
    truth = _masked_mean(_laplacian(_gray(ground_truth)).abs(), inner)
    return _ratio(_masked_mean(_laplacian(_gray(result)).abs(), inner), truth)


def _hole_std(gray: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Population standard deviation of `gray` over `hole` per image → `(B,)`, NaN for an empty hole.

    Computed from each hole's first pixel (shifted data): exactly 0 for a constant hole, and stable.
    """
    first = hole.flatten(1).double().argmax(1)  # (B,)
    shifted = gray.flatten(1) - gray.flatten(1).gather(1, first[:, None])
    where = hole.flatten(1)
    mean = _masked_mean(shifted, where)
    return (_masked_mean(shifted.square(), where) - mean.square()).clamp_min(0).sqrt()


def hole_contrast(ground_truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Luminance standard deviation in the hole, result over ground truth → `(B,)` float64 >= 0; 1 for identical
    images, 0 for a flat fill, NaN where the hole is empty or the ground truth is flat there."""
    hole = _hole(ground_truth, mask, result)
    return _ratio(_hole_std(_gray(result), hole), _hole_std(_gray(ground_truth), hole))


def _working_size(images: torch.Tensor, side: int) -> torch.Tensor:
    """`images` scaled up (bicubic, clamped) so that their shorter side is at least `side`; dlib misses small faces."""
    height, width = images.shape[2:]
    if min(height, width) >= side:
        return images
    scale = side / min(height, width)
    size = (round(height * scale), round(width * scale))
    return F.interpolate(images.double(), size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def face_references(ground_truth: torch.Tensor, side: int = 256) -> list[FaceReference | None]:
    """dlib's largest face on each ground truth `(B, 3, H, W)` and its 68 landmarks, at the resolution
    `landmark_error` works at (shorter side scaled up to `side`); None where dlib finds no face.

    The count of None is the number of faces `landmark_error` leaves out for want of a face.
    """
    _check_images(ground_truth, "ground_truth")
    references: list[FaceReference | None] = []
    for image in _working_size(ground_truth, side):
        pixels = faces.to_rgb_array(image)
        boxes = faces.detect_faces(pixels, upsample=1)
        references.append((boxes[0], faces.landmarks68(pixels, boxes[0])) if boxes else None)
    return references


def landmark_error(ground_truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor, side: int = 256,
                   references: list[FaceReference | None] | None = None) -> torch.Tensor:
    """Landmark displacement under the hole over the inter-ocular distance → `(B,)` float64 >= 0; 0 for identical
    images.

    Both images are scaled up so that their shorter side is at least `side` (bicubic; the mask nearest). dlib's 68
    landmarks are found on the ground truth and predicted on the result in the ground truth's face box (a damaged
    result is read in the same place). The error is the mean distance over the points whose rounded ground-truth
    position lies in the hole, over the distance between the eye centres (points 36-41 and 42-47). NaN where dlib
    finds no face on the ground truth or no point lies in the hole: `errors.isnan().sum()` counts the faces left
    out, and the None entries of `face_references` (which may be passed as `references`, computed once for several
    results at the same `side`) how many of those had no face.
    """
    _hole(ground_truth, mask, result)
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"side must be a positive int (pixels), got {side!r}")
    if references is None:
        references = face_references(ground_truth, side)
    if len(references) != ground_truth.shape[0]:
        raise ValueError(f"pass one reference per image ({ground_truth.shape[0]}), got {len(references)}; make "
                         "them with face_references(ground_truth, side)")
    results = _working_size(result, side)
    holes = F.interpolate(mask.double().cpu(), size=results.shape[2:], mode="nearest")[:, 0] == 1  # (B, H', W')
    errors = torch.full((ground_truth.shape[0],), math.nan, dtype=torch.float64)
    for i, reference in enumerate(references):
        if reference is None:
            continue
        box, truth = reference
        points = np.round(truth).astype(np.int64)  # (68, 2) x, y
        height, width = holes.shape[1:]
        inside = ((points >= 0) & (points < (width, height))).all(1)
        under = inside & holes[i].numpy()[points[:, 1].clip(0, height - 1), points[:, 0].clip(0, width - 1)]
        if not under.any():
            continue
        predicted = faces.landmarks68(faces.to_rgb_array(results[i]), box)
        eye_distance = np.linalg.norm(truth[42:48].mean(0) - truth[36:42].mean(0))
        errors[i] = np.linalg.norm(predicted[under] - truth[under], axis=1).mean() / eye_distance
    return errors.to(ground_truth.device)


def hog_hole_distance(ground_truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor,
                      pixels_per_cell: int = 8, orientations: int = 9) -> torch.Tensor:
    """Mean absolute difference of the luminances' HOG cell histograms over the cells holding any hole pixel (and
    all orientations) → `(B,)` float64 >= 0; 0 for identical images, NaN for an empty hole.

    The images' sides must be multiples of `pixels_per_cell` (a ValueError otherwise: crop them first), so that
    every hole pixel lies in a cell.
    """
    hole = _hole(ground_truth, mask, result)
    height, width = ground_truth.shape[2:]
    if pixels_per_cell < 1 or height % pixels_per_cell or width % pixels_per_cell:
        raise ValueError(f"images of {height}x{width} do not divide into {pixels_per_cell}-pixel cells; crop them "
                         f"to multiples of {pixels_per_cell} or pass a pixels_per_cell that divides both sides")
    truth = hog_histograms(_gray(ground_truth), orientations, pixels_per_cell).double()
    filled = hog_histograms(_gray(result), orientations, pixels_per_cell).double()
    cells = F.max_pool2d(hole.double(), pixels_per_cell) > 0  # (B, 1, H/p, W/p)
    return _masked_mean((filled - truth).abs(), cells.expand_as(truth))


def _neighbours(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel of `values` `(B, 1, H, W)` with the one below it, then with the one to its right → `(B, N)` twice."""
    return (torch.cat([values[..., :-1, :].flatten(1), values[..., :, :-1].flatten(1)], 1),
            torch.cat([values[..., 1:, :].flatten(1), values[..., :, 1:].flatten(1)], 1))


def boundary_step(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |luminance step| over the 4-neighbour pairs with one pixel in the hole and one outside → `(B,)` float64 in
    [0, 1]; NaN where there is no such pair (an empty hole, or a hole that is the whole image)."""
    (hole_a, hole_b), (gray_a, gray_b) = _neighbours(_hole(image, mask)), _neighbours(_gray(image))
    return _masked_mean((gray_a - gray_b).abs(), hole_a != hole_b)


def _copy_shifts(box: tuple[int, int, int, int], size: tuple[int, int], max_rings: int) -> list[tuple[int, int]]:
    """Translations `(dy, dx)` of a hole whose bounding box is `box` (top, bottom, left, right, inclusive) that keep
    it and its 1-pixel ring inside an image of `size` (H, W), ring by ring until at least 8 or `max_rings` rings."""
    top, bottom, left, right = box
    height, width = size
    step_y, step_x = bottom - top + 5, right - left + 5  # the box, 3 pixels (ring + dilation) and a pixel apart
    shifts: list[tuple[int, int]] = []
    for ring in range(1, max_rings + 1):
        if len(shifts) >= 8:
            break
        for a in range(-ring, ring + 1):
            for b in range(-ring, ring + 1):
                dy, dx = a * step_y, b * step_x
                if (max(abs(a), abs(b)) == ring and 1 <= top + dy and bottom + dy <= height - 2
                        and 1 <= left + dx and right + dx <= width - 2):
                    shifts.append((dy, dx))
    return shifts


def boundary_step_ratio(image: torch.Tensor, mask: torch.Tensor, max_rings: int = 8) -> torch.Tensor:
    """`boundary_step` at the hole over its mean across copies of the hole's shape elsewhere in the photo → `(B,)`
    float64 >= 0: about 1 for a seamless fill, well above 1 for a visible seam. NaN where no copy fits.

    The copies are the hole translated on a grid whose steps are its bounding box plus 4 pixels (so a copy and its
    1-pixel ring stay a pixel clear of the hole dilated by 2 pixels), kept where the copy and its ring lie inside
    the image. They are taken ring by ring around the hole, nearest first (the 8 compass directions, then the 16
    places further out, ...), until 8 have been found or `max_rings` rings were searched: the nearest texture is the
    fairest reference. Every copy is measured on the hole's own border pairs, moved.
    """
    hole = _hole(image, mask)
    if isinstance(max_rings, bool) or not isinstance(max_rings, int) or max_rings < 1:
        raise ValueError(f"max_rings must be an int >= 1, got {max_rings!r}")
    gray = _gray(image)[:, 0]  # (B, H, W)
    height, width = gray.shape[1:]
    ratios = torch.full((gray.shape[0],), math.nan, dtype=torch.float64, device=gray.device)
    for i, shape in enumerate(hole[:, 0]):
        rows, cols = torch.nonzero(shape, as_tuple=True)
        if len(rows) == 0:
            continue
        top, bottom, left, right = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        shifts = _copy_shifts((top, bottom, left, right), (height, width), max_rings)
        if not shifts:
            continue
        # Each border pair as its first pixel and the step to its neighbour (one row down or one column right).
        down, across = torch.nonzero(shape[1:] != shape[:-1]), torch.nonzero(shape[:, 1:] != shape[:, :-1])
        first = torch.cat([down, across])  # (P, 2)
        step = torch.tensor([[1, 0]] * len(down) + [[0, 1]] * len(across), device=gray.device)
        moves = torch.tensor([(0, 0)] + shifts, device=gray.device)[:, None]  # (1 + S, 1, 2): the hole, then copies
        a, b = first + moves, first + step + moves  # (1 + S, P, 2)
        steps = (gray[i][a[..., 0], a[..., 1]] - gray[i][b[..., 0], b[..., 1]]).abs().mean(1)  # (1 + S,)
        ratios[i] = _ratio(steps[0], steps[1:].mean())
    return ratios
