"""Realism metrics of a filled hole: each pinned on cases with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from hoginpaint import faces, realism
from hoginpaint.metrics import psnr


def _photo(name: str, size: int) -> torch.Tensor:
    """A scikit-image sample photo as float64 `(1, 3, size, size)` in [0, 1]."""
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].double() / 255
    return F.interpolate(image, size=(size, size), mode="area")


def _box_mask(size: int, top: int, left: int, height: int, width: int, batch: int = 1) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size, dtype=torch.float64)
    mask[..., top:top + height, left:left + width] = 1
    return mask


def _disk_masks(size: int, count: int, seed: int) -> torch.Tensor:
    """`count` disks of radius 8-23 px at random places, one per mask → `(count, 1, size, size)`."""
    rng = np.random.default_rng(seed)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = []
    for _ in range(count):
        radius = int(rng.integers(8, 24))
        centre_row, centre_col = rng.integers(40, size - 40, 2)
        masks.append(((rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= radius**2).double())
    return torch.stack(masks)[:, None]


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return _photo("astronaut", 128)


@pytest.fixture(scope="module")
def hole() -> torch.Tensor:
    return _box_mask(128, 40, 50, 40, 40)


def test_identical_result_scores_perfectly(astronaut: torch.Tensor) -> None:
    images = torch.cat([astronaut, astronaut.flip(-1)])
    masks = torch.cat([_box_mask(128, 40, 50, 40, 40), _box_mask(128, 10, 20, 24, 60)])
    assert realism.hole_detail(images, images, masks).tolist() == [1.0, 1.0]
    assert realism.hole_contrast(images, images, masks).tolist() == [1.0, 1.0]
    assert realism.hog_hole_distance(images, images, masks).tolist() == [0.0, 0.0]
    for values in (realism.hole_detail(images, images, masks), realism.boundary_step(images, masks)):
        assert values.dtype == torch.float64 and values.shape == (2,)


def test_flat_fill_has_no_detail_and_no_contrast(astronaut: torch.Tensor, hole: torch.Tensor) -> None:
    colour = (astronaut * hole).sum((2, 3), keepdim=True) / hole.sum()
    flat = astronaut * (1 - hole) + colour * hole
    assert realism.hole_detail(astronaut, flat, hole).item() == 0.0
    assert realism.hole_contrast(astronaut, flat, hole).item() == 0.0
    assert realism.hog_hole_distance(astronaut, flat, hole).item() > 0.005


def test_noise_raises_detail_while_psnr_falls_and_blur_hides_behind_psnr(astronaut: torch.Tensor,
                                                                         hole: torch.Tensor) -> None:
    noise = torch.randn(astronaut.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noisy = [(astronaut + hole * sigma * noise).clamp(0, 1) for sigma in (0.02, 0.05, 0.1)]
    details = [realism.hole_detail(astronaut, result, hole).item() for result in noisy]
    psnrs = [psnr(astronaut, result).item() for result in noisy]
    assert 1.05 < details[0] < details[1] < details[2]
    assert psnrs[0] > psnrs[1] > psnrs[2]
    # A 5x5 box blur in the hole scores a better PSNR than the strongest noise, and keeps under a fifth of the detail.
    blurred = F.avg_pool2d(F.pad(astronaut, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    blurred = astronaut * (1 - hole) + blurred * hole
    assert psnr(astronaut, blurred).item() > psnrs[2]
    assert realism.hole_detail(astronaut, blurred, hole).item() < 0.2
    assert realism.hole_contrast(astronaut, blurred, hole).item() < 0.95


def test_detail_leaves_out_the_rim(astronaut: torch.Tensor, hole: torch.Tensor) -> None:
    # Scaling the hole's luminance by 0.8 scales every Laplacian whose stencil stays in the hole by 0.8, with or
    # without an offset; only on the rim does the stencil mix in known pixels (and the offset's step).
    scaled = astronaut * (1 - hole) + (astronaut * 0.8) * hole
    shifted = astronaut * (1 - hole) + (astronaut * 0.8 + 0.2) * hole
    for result in (scaled, shifted):
        for erode in (1, 2):
            assert realism.hole_detail(astronaut, result, hole, erode=erode).item() == pytest.approx(0.8, abs=1e-12)
        assert abs(realism.hole_detail(astronaut, result, hole, erode=0).item() - 0.8) > 0.02


def test_contrast_of_a_scaled_hole(astronaut: torch.Tensor, hole: torch.Tensor) -> None:
    grey = torch.full_like(astronaut, 0.4)
    scaled = astronaut * (1 - hole) + (grey + 0.5 * (astronaut - grey)) * hole
    assert realism.hole_contrast(astronaut, scaled, hole).item() == pytest.approx(0.5, abs=1e-12)


def test_undefined_values_are_nan(astronaut: torch.Tensor) -> None:
    flat = torch.full((1, 3, 32, 32), 0.3, dtype=torch.float64)
    image = astronaut[..., :32, :32]
    empty, small, square = _box_mask(32, 0, 0, 0, 0), _box_mask(32, 10, 10, 3, 3), _box_mask(32, 8, 8, 16, 16)
    assert math.isnan(realism.hole_detail(image, image, empty).item())
    assert math.isnan(realism.hole_detail(image, image, small, erode=2).item())  # nothing left after eroding
    assert realism.hole_detail(image, image, small, erode=1).item() == 1.0
    assert math.isnan(realism.hole_detail(flat, image, square).item())  # no detail in the ground truth
    assert math.isnan(realism.hole_contrast(image, image, empty).item())
    assert math.isnan(realism.hole_contrast(flat, image, square).item())
    assert math.isnan(realism.hog_hole_distance(image, image, empty).item())
    assert math.isnan(realism.boundary_step(image, empty).item())
    assert math.isnan(realism.boundary_step(image, torch.ones(1, 1, 32, 32)).item())
    assert math.isnan(realism.boundary_step_ratio(image, empty).item())
    assert math.isnan(realism.boundary_step_ratio(image, _box_mask(32, 4, 4, 24, 24)).item())  # no copy fits


def test_boundary_step_by_hand() -> None:
    # 6x6 gray image: columns 0.0, 0.1, ..., 0.5, and a 2x2 hole at rows 2-3, columns 2-3 filled with 0.9.
    gray = torch.arange(6, dtype=torch.float64).mul(0.1).expand(6, 6).clone()
    mask = _box_mask(6, 2, 2, 2, 2)
    gray[2:4, 2:4] = 0.9
    image = gray.expand(1, 3, 6, 6)
    # Pairs: above and below |0.2 - 0.9|, |0.3 - 0.9| twice each; left |0.1 - 0.9| twice; right |0.4 - 0.9| twice.
    expected = (2 * (0.7 + 0.6) + 2 * 0.8 + 2 * 0.5) / 8
    assert expected == pytest.approx(0.65)
    assert realism.boundary_step(image, mask).item() == pytest.approx(expected, abs=1e-12)


def test_boundary_step_ratio_finds_a_colour_offset() -> None:
    images = torch.cat([_photo("astronaut", 256).expand(8, -1, -1, -1), _photo("camera", 256).expand(8, -1, -1, -1)])
    masks = torch.cat([_disk_masks(256, 8, seed=0), _disk_masks(256, 8, seed=1)])
    truth = realism.boundary_step_ratio(images, masks)
    offset = realism.boundary_step_ratio((images + 0.2 * masks).clamp(0, 1), masks)
    assert torch.isfinite(truth).all() and torch.isfinite(offset).all()
    assert 0.6 < truth.median().item() < 1.6  # an untouched photo: its border is like any other
    assert (offset > 2).all() and (offset > 2 * truth).all()


def test_boundary_step_ratio_ignores_the_photo_next_to_the_hole() -> None:
    # Copies keep 4 px between the hole's box and theirs: what lies 1-3 px outside the hole's ring is never read.
    image = _photo("camera", 128)
    mask = _box_mask(128, 50, 50, 20, 20)
    changed = image.clone()
    changed[..., 47:49, 47:73] = 0.0
    changed[..., 71:73, 47:73] = 1.0
    assert realism.boundary_step_ratio(changed, mask).item() == realism.boundary_step_ratio(image, mask).item()


def test_hog_distance_counts_only_the_cells_of_the_hole(astronaut: torch.Tensor, hole: torch.Tensor) -> None:
    far_away = astronaut.clone()
    far_away[..., 0:16, 100:128] = 0.5  # cells away from the hole's cells and their neighbours
    assert realism.hog_hole_distance(astronaut, far_away, hole).item() == 0.0
    blurred = F.avg_pool2d(F.pad(astronaut, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    distance = realism.hog_hole_distance(astronaut, astronaut * (1 - hole) + blurred * hole, hole).item()
    assert distance > 0.002
    with pytest.raises(ValueError, match="multiples of 8"):
        realism.hog_hole_distance(astronaut[..., :100], astronaut[..., :100], hole[..., :100])


def test_bad_input_is_refused(astronaut: torch.Tensor, hole: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="same size"):
        realism.hole_detail(astronaut, astronaut[..., :64, :64], hole)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        realism.hole_contrast(astronaut, astronaut, hole[:, 0])
    with pytest.raises(ValueError, match="the images' size"):
        realism.boundary_step(astronaut, hole[..., :64, :64])
    with pytest.raises(ValueError, match="threshold a soft mask"):
        realism.boundary_step_ratio(astronaut, hole * 0.5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        realism.hole_detail(astronaut[0], astronaut[0], hole)
    with pytest.raises(ValueError, match="divide uint8 data by 255"):
        realism.boundary_step((astronaut * 255).to(torch.uint8), hole)
    with pytest.raises(ValueError, match="erode"):
        realism.hole_detail(astronaut, astronaut, hole, erode=-1)
    with pytest.raises(ValueError, match="max_rings"):
        realism.boundary_step_ratio(astronaut, hole, max_rings=0)
    with pytest.raises(ValueError, match="one reference per image"):
        realism.landmark_error(astronaut, astronaut, hole, references=[])


def test_landmark_error_on_real_faces(val_faces: torch.Tensor) -> None:
    images = val_faces[:3]
    references = realism.face_references(images)
    assert all(reference is not None for reference in references)
    eyes = torch.stack([torch.from_numpy(faces.feature_mask(landmarks, 256, "eyes")) for _, landmarks in references])
    eyes = eyes[:, None].double()
    assert realism.landmark_error(images, images, eyes, references=references).tolist() == [0.0, 0.0, 0.0]
    # The eyes filled flat with the mean colour of the known skin: the eye landmarks move.
    colour = (images * (1 - eyes)).sum((2, 3), keepdim=True) / (1 - eyes).sum((2, 3), keepdim=True)
    flat = images * (1 - eyes) + colour * eyes
    errors = realism.landmark_error(images, flat, eyes, references=references)
    assert (errors > 0.01).all() and (errors < 1).all()
    # No landmark under a hole in the corner: not measured.
    corner = _box_mask(256, 0, 0, 12, 12, batch=3)
    assert realism.landmark_error(images, images, corner, references=references).isnan().all()
    # Small images are scaled up for dlib; the answer is still exact for an identical result.
    small, small_eyes = F.interpolate(images[:1], size=(96, 96), mode="area"), F.interpolate(eyes[:1], size=(96, 96))
    assert realism.landmark_error(small, small, small_eyes).tolist() == [0.0]


def test_landmark_error_is_nan_without_a_face() -> None:
    noise = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    mask = _box_mask(128, 32, 32, 64, 64)
    assert realism.face_references(noise) == [None]
    assert math.isnan(realism.landmark_error(noise, noise, mask).item())
