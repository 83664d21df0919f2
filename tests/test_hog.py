"""The torch HOG against scikit-image, on real faces (skimage's astronaut where ../shared/data is absent).

Bound: every feature and every picture pixel within 1e-6 (absolute) of skimage's float64 result; the values
are at most ~1.5, so this is float32 rounding of the same arithmetic.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
from skimage.feature import hog as skimage_hog

from hoginpaint.hog import (
    HOGSettings,
    composite_guidance,
    guidance_target,
    hog_features,
    hog_histograms,
    hog_image,
    hole_cells,
    scale_hog_image,
    to_gray,
    unscale_hog_image,
)
from tests.conftest import SHARED_DATA, load_validation_faces, pil_to_tensor

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """Three real faces at 256x256 (float64), or skimage's astronaut when the shared data is absent."""
    if (SHARED_DATA / "faces").is_dir():
        return pil_to_tensor(load_validation_faces(SHARED_DATA / "faces", 3)).double()
    from skimage.data import astronaut
    from skimage.transform import resize

    image = resize(astronaut(), (256, 256), anti_aliasing=True)
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def _as_skimage(image: torch.Tensor, gray: bool) -> tuple[np.ndarray, int | None]:
    if gray:
        return image[0].numpy(), None
    return image.permute(1, 2, 0).numpy(), -1


@pytest.mark.parametrize("pixels_per_cell", [4, 7, 8, 16])
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_features_and_picture_match_skimage(faces, pixels_per_cell, gray):
    images = to_gray(faces) if gray else faces
    features = hog_features(images, orientations=9, pixels_per_cell=pixels_per_cell, cells_per_block=3)
    picture = hog_image(images, orientations=9, pixels_per_cell=pixels_per_cell)
    for index in range(images.shape[0]):
        array, channel_axis = _as_skimage(images[index], gray)
        expected_features, expected_picture = skimage_hog(
            array, orientations=9, pixels_per_cell=(pixels_per_cell, pixels_per_cell), cells_per_block=(3, 3),
            visualize=True, channel_axis=channel_axis,
        )
        assert picture.dtype == torch.float32 and features.dtype == torch.float32
        np.testing.assert_allclose(features[index].numpy(), expected_features, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(picture[index, 0].numpy(), expected_picture, rtol=0, atol=TOLERANCE)
        assert expected_picture.max() > 0.01  # a real picture, not two empty ones


@pytest.mark.parametrize("block_norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
@pytest.mark.parametrize("orientations", [6, 8, 12])
def test_block_norms_orientations_and_sqrt_match_skimage(faces, block_norm, orientations):
    image = faces[:1]
    for transform_sqrt in (False, True):
        features = hog_features(image, orientations, 8, 2, block_norm, transform_sqrt)
        picture = hog_image(image, orientations, 8, transform_sqrt)
        expected_features, expected_picture = skimage_hog(
            image[0].permute(1, 2, 0).numpy(), orientations=orientations, pixels_per_cell=(8, 8),
            cells_per_block=(2, 2), block_norm=block_norm, visualize=True, transform_sqrt=transform_sqrt,
            channel_axis=-1,
        )
        np.testing.assert_allclose(features[0].numpy(), expected_features, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(picture[0, 0].numpy(), expected_picture, rtol=0, atol=TOLERANCE)


def test_non_square_and_ragged_sizes_match_skimage(faces):
    image = faces[:1, :, :203, :150]  # not a multiple of the cell size: the ragged edge has no HOG
    picture = hog_image(image, 9, 8)
    histograms = hog_histograms(image, 9, 8)
    _, expected = skimage_hog(image[0].permute(1, 2, 0).numpy(), visualize=True, channel_axis=-1)
    assert picture.shape == (1, 1, 203, 150) and histograms.shape == (1, 9, 25, 18)
    np.testing.assert_allclose(picture[0, 0].numpy(), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("gray", [True, False], ids=["gray", "rgb"])
def test_float32_input_matches_skimage_in_float32(faces, gray):
    """skimage keeps float32 input in float32 (gradients, channel choice); so does the torch HOG."""
    images = (to_gray(faces) if gray else faces).float()
    features = hog_features(images, orientations=9, pixels_per_cell=8)
    picture = hog_image(images, orientations=9, pixels_per_cell=8)
    for index in range(images.shape[0]):
        array, channel_axis = _as_skimage(images[index], gray)
        expected_features, expected_picture = skimage_hog(array, orientations=9, pixels_per_cell=(8, 8),
                                                          visualize=True, channel_axis=channel_axis)
        assert array.dtype == np.float32
        np.testing.assert_allclose(features[index].numpy(), expected_features, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(picture[index, 0].numpy(), expected_picture, rtol=0, atol=TOLERANCE)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        hog_image(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="float"):
        hog_image(torch.zeros(1, 1, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="too small"):
        hog_image(torch.rand(1, 1, 5, 64), pixels_per_cell=8)
    with pytest.raises(ValueError, match="at least 24x24"):
        hog_features(torch.rand(1, 1, 16, 16), pixels_per_cell=8, cells_per_block=3)
    with pytest.raises(ValueError, match="block_norm"):
        hog_features(torch.rand(1, 1, 64, 64), block_norm="L3")


def test_nan_in_gives_nan_out_in_its_cells_only():
    images = torch.rand(2, 1, 32, 32)
    images[0, 0, 5, 5] = float("nan")
    histograms = hog_histograms(images, 9, 8)
    assert torch.isnan(histograms[0, :, 0, 0]).any()  # the cells whose gradients read the NaN pixel
    assert torch.isfinite(histograms[0, :, 2:, 2:]).all() and torch.isfinite(histograms[1]).all()


def test_scaling_is_fixed_monotone_and_invertible():
    hog = torch.tensor([0.0, 0.001, 0.02, 0.05, 0.3])
    scaled = scale_hog_image(hog)
    assert scaled[0] == 0 and bool((scaled[1:] > scaled[:-1]).all()) and bool((scaled < 1).all())
    assert torch.allclose(unscale_hog_image(scaled), hog, atol=1e-6)
    # A fixed curve: one image's scaling does not depend on what else is in it.
    assert torch.equal(scale_hog_image(hog[:2]), scaled[:2])


@pytest.mark.parametrize("rows, columns, cell_rows, cell_columns, spills", [
    # Grown by one pixel: rows 99..117, columns 60..70 → cell rows 12..14, cell columns 7..8.
    ((100, 117), (61, 70), (12, 15), (7, 9), False),
    # Exactly cell (13, 8): the central differences just outside it read it, so its neighbours change too and the
    # one-pixel growth must mark them (without it, only cell (13, 8) would be).
    ((104, 112), (64, 72), (12, 15), (7, 10), True),
])
def test_hole_cells_cover_every_cell_the_hole_can_change(faces, rows, columns, cell_rows, cell_columns, spills):
    image = faces[:1].float()
    mask = torch.zeros(1, 1, 256, 256)
    mask[:, :, slice(*rows), slice(*columns)] = 1
    cells = hole_cells(mask, 8)
    expected = torch.zeros(1, 1, 32, 32)
    expected[:, :, slice(*cell_rows), slice(*cell_columns)] = 1
    assert torch.equal(cells[:, :, ::8, ::8], expected)
    # Changing the hole's content changes the HOG of hole cells only (and, where the hole ends on a cell edge, of
    # cells it does not touch).
    scribbled = image.clone()
    scribbled[:, :, slice(*rows), slice(*columns)] = torch.rand(
        1, 3, rows[1] - rows[0], columns[1] - columns[0], generator=torch.Generator().manual_seed(0))
    changed = (guidance_target(scribbled) != guidance_target(image)).float()
    changed_cells = torch.nn.functional.max_pool2d(changed, 8)  # (1, 1, 32, 32): which cells changed
    inside = torch.nn.functional.max_pool2d(mask, 8)
    assert changed.sum() > 0 and bool((changed_cells * (1 - inside)).sum() > 0) == spills
    assert (changed * (1 - cells)).sum() == 0


def test_composite_guidance_takes_hole_cells_from_the_prediction():
    known = torch.full((1, 1, 32, 32), 0.25)
    pred = torch.full((1, 1, 32, 32), 0.75)
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 9, 9] = 1  # grown: rows/columns 8..10 → cell (1, 1) only with 8-pixel cells
    guidance = composite_guidance(known, pred, mask, 8)
    assert torch.all(guidance[:, :, 8:16, 8:16] == 0.75)
    assert guidance.sum() == 0.25 * (32 * 32 - 64) + 0.75 * 64


def test_guidance_target_uses_settings(faces):
    settings = HOGSettings(orientations=6, pixels_per_cell=4, scale=0.2)
    target = guidance_target(faces.float(), settings)
    expected = scale_hog_image(hog_image(to_gray(faces.float()), 6, 4), 0.2)
    assert target.shape == (faces.shape[0], 1, 256, 256)
    assert torch.equal(target, expected)
    assert 0 <= target.min() and target.max() < 1
