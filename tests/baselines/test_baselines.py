"""Classical baselines keep every known pixel and fill smooth images accurately; `load` builds every method."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint.baselines import BaselineOutput
from hoginpaint.methods import available_methods, load
from hoginpaint.baselines.classical import ClassicalInpainter

CLASSICAL = ["telea", "navier-stokes", "biharmonic"]


def _gradient_image(height: int, width: int) -> np.ndarray:
    """A smooth 8-bit RGB image: a different linear ramp in each channel."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [0.2 + 0.6 * x / width, 0.3 + 0.4 * y / height, 0.25 + 0.5 * (x + y) / (height + width)]
    return np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)


def _hole(height: int, width: int, top: int, left: int, size_y: int, size_x: int) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    hole[top:top + size_y, left:left + size_x] = True
    return hole


@pytest.mark.parametrize("method", CLASSICAL)
def test_classical_keeps_known_pixels_and_fills_a_smooth_image(method: str) -> None:
    image = _gradient_image(48, 72)
    hole = _hole(48, 72, 14, 20, 18, 24)
    out = load(method)(image=Image.fromarray(image), mask_image=Image.fromarray(hole.astype(np.uint8) * 255))
    assert isinstance(out, BaselineOutput) and len(out.images) == 1
    result = np.asarray(out.images[0])
    assert result.shape == image.shape
    np.testing.assert_array_equal(result[~hole], image[~hole])  # bit-identical outside the hole
    masked = np.asarray(out.masked[0])
    assert (masked[hole] == 255).all()
    error = np.abs(result[hole].astype(float) - image[hole].astype(float))
    assert np.abs(masked[hole].astype(float) - result[hole].astype(float)).mean() > 60  # the hole was filled
    # On a linear ramp every method's fill is close to the ramp (biharmonic is exact up to rounding).
    assert error.mean() < (1.0 if method == "biharmonic" else 6.0), error.mean()


@pytest.mark.parametrize("method", CLASSICAL)
def test_classical_batches_of_different_sizes_and_tensor_output(method: str) -> None:
    images = [_gradient_image(40, 40), _gradient_image(32, 56)]
    holes = [_hole(40, 40, 10, 10, 12, 12), _hole(32, 56, 8, 30, 10, 14)]
    out = ClassicalInpainter(method)(image=[Image.fromarray(image) for image in images],
                                     mask_image=[hole.astype(np.float32) for hole in holes], output_type="pt")
    for result, image, hole in zip(out.images, images, holes):
        expected = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        assert result.shape == expected.shape
        known = ~torch.from_numpy(hole)
        assert torch.equal(result[:, known], expected[:, known])
        assert (result[:, ~known] - expected[:, ~known]).abs().mean() < 0.03


def test_classical_at_reduced_size_still_keeps_known_pixels() -> None:
    image = _gradient_image(96, 128)
    hole = _hole(96, 128, 30, 40, 30, 40)
    full = ClassicalInpainter("biharmonic")(image=image, mask_image=hole, output_type="pt").images[0]
    reduced = ClassicalInpainter("biharmonic", max_side=32)(image=image, mask_image=hole, output_type="pt").images[0]
    expected = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
    known = ~torch.from_numpy(hole)
    assert torch.equal(reduced[:, known], expected[:, known])
    assert (reduced[:, ~known] - expected[:, ~known]).abs().mean() < 0.02
    assert not torch.equal(reduced, full)  # it did run on the downscaled copy


def test_classical_empty_and_full_masks() -> None:
    image = _gradient_image(32, 32)
    out = ClassicalInpainter("telea")(image=image, mask_image=np.zeros((32, 32), dtype=bool))
    np.testing.assert_array_equal(np.asarray(out.images[0]), image)
    with pytest.raises(ValueError, match="covers the whole image"):
        ClassicalInpainter("navier-stokes")(image=image, mask_image=np.ones((32, 32), dtype=bool))


def test_classical_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown classical method"):
        ClassicalInpainter("poisson")
    with pytest.raises(ValueError, match="radius"):
        ClassicalInpainter("telea", radius=0)
    with pytest.raises(ValueError, match="max_side"):
        ClassicalInpainter("biharmonic", max_side=4)
    with pytest.raises(ValueError, match="mask is 32x16 but image is 32x32"):
        ClassicalInpainter("telea")(image=_gradient_image(32, 32), mask_image=np.zeros((16, 32), dtype=bool))


def test_classical_on_real_faces_keeps_known_pixels(val_face_images: list[Image.Image]) -> None:
    face = val_face_images[0].resize((96, 96), Image.BICUBIC)
    hole = _hole(96, 96, 30, 24, 30, 48)
    for method in CLASSICAL:
        result = np.asarray(load(method)(image=face, mask_image=hole).images[0])
        np.testing.assert_array_equal(result[~hole], np.asarray(face)[~hole])
        # A face's hole is filled with face-like values: far from the white of the masked input.
        assert np.abs(result[hole].astype(float) - np.asarray(face)[hole].astype(float)).mean() < 60


# ---- load ------------------------------------------------------------------------------------------------------


def test_available_methods() -> None:
    assert available_methods() == ("hoginpaint", "deepfill", "telea", "navier-stokes", "biharmonic")


def test_load_refuses_unknown_names_and_missing_models() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'lama'; expected one of hoginpaint, deepfill, telea"):
        load("lama")
    with pytest.raises(ValueError, match="needs trained weights"):
        load("deepfill")
    with pytest.raises(ValueError, match="needs trained weights"):
        load("hoginpaint")
    with pytest.raises(ValueError, match="without weights"):
        load("telea", model="org/some-model")
    with pytest.raises(ValueError, match="not both"):
        load("deepfill", model="org/some-model", random_init=True)


@pytest.mark.parametrize("name, kwargs", [
    ("deepfill", {"base_channels": 8, "resolution": 64}),
    ("hoginpaint", {"base_channels": 8, "residual_blocks": 1, "resolution": 64}),
])
def test_learned_methods_share_the_call(name: str, kwargs: dict) -> None:
    method = load(name, random_init=True, **kwargs)
    image = _gradient_image(50, 70)
    hole = _hole(50, 70, 10, 20, 20, 20)
    out = method(image=Image.fromarray(image), mask_image=hole)
    result = np.asarray(out.images[0])
    assert result.shape == image.shape
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert out.result_tensor.shape == (1, 3, 64, 64) and out.mask_tensor.shape == (1, 1, 64, 64)


def test_deepfill_saved_model_loads_through_load(tmp_path) -> None:
    method = load("deepfill", random_init=True, base_channels=8, resolution=64)
    method.save_pretrained(tmp_path / "deepfill")
    loaded = load("deepfill", model=str(tmp_path / "deepfill"))
    image, hole = _gradient_image(64, 64), _hole(64, 64, 16, 16, 24, 24)
    np.testing.assert_array_equal(np.asarray(loaded(image=image, mask_image=hole).images[0]),
                                  np.asarray(method(image=image, mask_image=hole).images[0]))
