"""hoginpaint.imageio: every input kind to tensors and back, EXIF, modes, the bomb guard, resizing and paste-back."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint import imageio
from hoginpaint.imageio import load_image, load_images, load_mask, load_masks, paste_back, prepare, to_pil


def _random_rgb(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _as_uint8(tensor: torch.Tensor) -> np.ndarray:
    return np.asarray(to_pil(tensor))


# ---------------------------------------------------------------------------------------------------------------------
# Input kinds


def test_every_input_kind_gives_the_same_tensor(tmp_path):
    array = _random_rgb()
    expected = torch.from_numpy(array).permute(2, 0, 1).float() / 255  # (3, H, W)
    Image.fromarray(array).save(tmp_path / "image.png")
    inputs = {
        "path": tmp_path / "image.png",
        "str path": str(tmp_path / "image.png"),
        "PIL": Image.fromarray(array),
        "uint8 array": array,
        "float array": array.astype(np.float32) / 255,
        "tensor": expected.clone(),
        "uint8 tensor": torch.from_numpy(array).permute(2, 0, 1).contiguous(),
    }
    for name, value in inputs.items():
        tensor = load_image(value)
        assert tensor.shape == (3, 40, 56) and tensor.dtype == torch.float32, name
        torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-7, msg=name)
    # And back: to_pil gives exactly the original bytes.
    assert np.array_equal(_as_uint8(load_image(array)), array)


def test_float_tensor_input_is_kept_exactly():
    tensor = torch.rand(3, 33, 47, generator=torch.Generator().manual_seed(0))
    assert torch.equal(load_image(tensor), tensor)


def test_batches_and_lists_become_lists():
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    images = load_images(batch)
    assert len(images) == 2 and all(torch.equal(image, batch[i]) for i, image in enumerate(images))
    mixed = load_images([batch[0], Image.fromarray(_random_rgb(20, 30))])
    assert [tuple(image.shape) for image in mixed] == [(3, 32, 32), (3, 20, 30)]
    assert len(load_images(batch[0])) == 1


def test_grayscale_array_is_replicated_on_three_channels():
    gray = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    tensor = load_image(gray)
    expected = torch.from_numpy(gray).float() / 255
    for channel in range(3):
        torch.testing.assert_close(tensor[channel], expected, rtol=0, atol=0)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:8, :, 3] = 255  # top: opaque red
    rgba[8:, :8, 3] = 0  # bottom left: transparent → white
    rgba[8:, 8:, 3] = 128  # bottom right: half red over white
    for source in (rgba, Image.fromarray(rgba, mode="RGBA")):
        tensor = load_image(source)
        assert torch.equal(tensor[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
        assert torch.equal(tensor[:, 15, 0], torch.tensor([1.0, 1.0, 1.0]))
        torch.testing.assert_close(tensor[:, 15, 15], torch.tensor([1.0, 127 / 255, 127 / 255]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "CMYK", "RGB"])
def test_pil_modes_become_the_rgb_pillow_shows(mode):
    image = Image.fromarray(_random_rgb(24, 24)).convert(mode)
    expected = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    tensor = load_image(image)
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    values = np.array([[0, 257, 32768, 65535]] * 16, dtype=np.uint16).repeat(4, axis=1)  # (16, 16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as opened:
        assert opened.mode.startswith("I")
    tensor = load_image(tmp_path / "deep.png")
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    for channel in range(3):
        torch.testing.assert_close(tensor[channel], expected, rtol=0, atol=1e-7)


def test_exif_rotated_jpeg_is_upright(tmp_path):
    upright = np.zeros((64, 32, 3), dtype=np.uint8)  # tall: red top half, blue bottom half
    upright[:32, :, 0] = 255
    upright[32:, :, 2] = 255
    # Orientation 6 means "rotate 90° clockwise to display"; store the pixels rotated the other way.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    tensor = load_image(tmp_path / "rotated.jpg")
    assert tensor.shape == (3, 64, 32)
    top, bottom = tensor[:, 4:28].mean(dim=(1, 2)), tensor[:, 36:60].mean(dim=(1, 2))
    assert top[0] > 0.9 and top[2] < 0.1
    assert bottom[2] > 0.9 and bottom[0] < 0.1


# ---------------------------------------------------------------------------------------------------------------------
# Refusals


def test_pillow_limit_is_the_documented_one():
    assert Image.MAX_IMAGE_PIXELS == imageio.MAX_IMAGE_PIXELS == 50_000_000


@pytest.mark.parametrize("size", [(8000, 7000), (12000, 9000)])  # above the limit (warning), above twice it (error)
def test_decompression_bomb_file_is_refused(tmp_path, size):
    path = tmp_path / "bomb.png"
    Image.new("1", size).save(path)  # a few kB on disk, 56 / 108 megapixels decoded
    with pytest.raises(ValueError, match="50,000,000 pixels"):
        load_image(path)
    with pytest.raises(ValueError, match="50,000,000 pixels"):
        load_mask(path)


def test_huge_array_is_refused_before_it_is_copied():
    huge = np.broadcast_to(np.zeros((1, 1, 3), dtype=np.uint8), (7100, 7100, 3))  # no memory behind it
    with pytest.raises(ValueError, match="more than the limit"):
        load_image(huge)


def test_tiny_image_is_refused_with_the_minimum():
    with pytest.raises(ValueError, match="smallest accepted is 16x16"):
        load_image(np.zeros((15, 40, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="smallest accepted is 16x16"):
        load_mask(np.zeros((40, 8), dtype=np.uint8))


def test_non_image_files_and_bad_values_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="is not a file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "cut.png").write_bytes(_png_bytes()[:200])
    with pytest.raises(ValueError, match="could not read"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\]"):
        load_image(np.full((20, 20, 3), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match="channels-first"):
        load_image(np.zeros((3, 20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="channels-last"):
        load_image(torch.zeros(20, 20, 3))
    with pytest.raises(ValueError, match="cannot read an image from dict"):
        load_image({})


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(_random_rgb(64, 64)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------------
# Masks


def test_mask_kinds_agree(tmp_path):
    hole = np.zeros((24, 32), dtype=bool)
    hole[5:12, 7:20] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    expected = torch.from_numpy(hole.astype(np.float32))[None]
    for value in (tmp_path / "mask.png", hole, hole.astype(np.uint8) * 255, expected.clone(),
                  Image.fromarray(hole.astype(np.uint8) * 255).convert("RGB")):
        assert torch.equal(load_mask(value), expected)
    batch = torch.stack([expected, 1 - expected])  # (2, 1, H, W)
    assert [torch.equal(mask, batch[i]) for i, mask in enumerate(load_masks(batch))] == [True, True]


def test_mask_of_another_size_is_refused():
    with pytest.raises(ValueError, match="mask is 30x20 but image is 40x20; pass a mask of the image's size"):
        prepare([torch.zeros(3, 20, 40)], [torch.zeros(1, 20, 30)], 32)
    with pytest.raises(ValueError, match="got 2 images and 1 masks"):
        prepare([torch.zeros(3, 20, 40)] * 2, [torch.zeros(1, 20, 40)], 32)


# ---------------------------------------------------------------------------------------------------------------------
# prepare and paste_back


def test_prepare_resizes_and_never_loses_a_hole_pixel():
    height, width, resolution = 217, 300, 64
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    for y, x in [(0, 0), (height - 1, width - 1), *zip(rng.integers(0, height, 20), rng.integers(0, width, 20))]:
        mask = torch.zeros(1, height, width)
        mask[0, y, x] = 1
        batch = prepare([image], [mask], resolution)
        assert batch.image.shape == (1, 3, resolution, resolution) and batch.mask.shape == (1, 1, resolution, resolution)
        assert batch.mask[0, 0, y * resolution // height, x * resolution // width] == 1, (y, x)
        assert batch.mask.sum() <= 4  # a single pixel stays local: at most a 2x2 block of output pixels
    assert prepare([image], [torch.zeros(1, height, width)], resolution).mask.sum() == 0
    assert prepare([image], [torch.ones(1, height, width)], resolution).mask.min() == 1
    # Upsampling a small image keeps the hole too.
    small_mask = torch.zeros(1, 20, 20)
    small_mask[0, 10, 10] = 1
    assert prepare([image[:, :20, :20]], [small_mask], resolution).mask.sum() >= 9


def test_prepare_antialiases_the_image():
    stripes = torch.zeros(3, 256, 256)
    stripes[:, :, ::4] = 1.0  # one bright column in four: decimating by 4 without a low-pass misses them all
    interior = prepare([stripes], [torch.zeros(1, 256, 256)], 64).image[..., 2:-2]
    torch.testing.assert_close(interior, torch.full_like(interior, 0.25), rtol=0, atol=0.02)


@pytest.mark.parametrize("feather", [0, 4])
def test_paste_back_changes_only_the_hole(feather):
    generator = torch.Generator().manual_seed(0)
    original = torch.rand(3, 217, 300, generator=generator)
    mask = torch.zeros(1, 217, 300)
    mask[:, 40:150, 60:200] = 1
    mask[:, 0:5, 290:300] = 1  # a hole touching the border
    result_lowres = torch.rand(3, 64, 64, generator=generator)
    pasted = paste_back(original, result_lowres, mask, feather=feather)
    known = mask[0] == 0
    assert torch.equal(pasted[:, known], original[:, known])  # bit-identical outside the hole
    assert (pasted[:, ~known] != original[:, ~known]).float().mean() > 0.99
    # The input's own pixels under the hole are never read.
    painted = original.clone()
    painted[:, ~known] = 1.0
    assert torch.equal(paste_back(painted, result_lowres, mask, feather=feather), pasted)


def test_feather_closes_the_seam_inward():
    original = torch.full((3, 128, 128), 0.5)
    mask = torch.zeros(1, 128, 128)
    mask[:, 32:96, 32:96] = 1
    result_lowres = torch.full((3, 64, 64), 0.7)  # the model drifted by +0.2 everywhere
    plain = paste_back(original, result_lowres, mask, feather=0)
    feathered = paste_back(original, result_lowres, mask, feather=4)
    torch.testing.assert_close(plain[:, 32:96, 32:96], torch.full((3, 64, 64), 0.7))
    rim, deep = feathered[0, 32, 64].item(), feathered[0, 64, 64].item()
    assert abs(rim - 0.5) < 0.1  # the first hole row meets its known neighbour
    assert deep == pytest.approx(0.7, abs=1e-6)  # the middle of the hole is the model's
    depth_profile = feathered[0, 32:40, 64]
    assert torch.all(depth_profile[1:] >= depth_profile[:-1])  # fades monotonically into the hole


def test_negative_feather_is_refused():
    with pytest.raises(ValueError, match="feather must be an int >= 0"):
        paste_back(torch.zeros(3, 32, 32), torch.zeros(3, 16, 16), torch.zeros(1, 32, 32), feather=-1)
