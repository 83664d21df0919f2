"""Mask sources and conversions: buckets, splits, determinism, hole ratios, round trips, clear errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint.masks import (
    BUCKET_RANGES,
    FolderMasks,
    FreeFormMasks,
    IrregularMasks,
    MaskSource,
    RatioRangeMasks,
    RectangleMasks,
    dilate_mask,
    hole_ratio,
    make_mask_source,
    mask_to_pil,
    sample_with_ratio,
    threshold_mask,
    to_mask_tensor,
)


def _is_binary(mask: np.ndarray) -> bool:
    return mask.dtype == np.float32 and bool(np.isin(mask, (0.0, 1.0)).all())


def _dihedral(mask: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations by multiples of 90 degrees of a square mask."""
    turns = [np.rot90(mask, k) for k in range(4)]
    return turns + [np.fliplr(turn) for turn in turns]


def _block_mask(size: int, ratio: float) -> np.ndarray:
    """uint8 {0, 255} square mask whose top rows are the hole, hole ratio = rows / size."""
    mask = np.zeros((size, size), np.uint8)
    mask[: round(ratio * size)] = 255
    return mask


# ---------------------------------------------------------------------------------------------------------------
# FolderMasks on the real NVIDIA set


@pytest.mark.parametrize("bucket", range(6))
def test_nvidia_bucket_indices_have_measured_ratio_in_range(nvidia_mask_dir: Path, bucket: int) -> None:
    masks = FolderMasks(nvidia_mask_dir, buckets=[bucket], split="all", augment=False)
    assert len(masks) == 2000
    first = bucket * 2000
    assert masks.indices[:6] == tuple(range(first, first + 6))
    low, high = BUCKET_RANGES[bucket]
    for i in range(6):
        ratio = hole_ratio(masks.mask(i, 512))
        assert low <= ratio <= high, (masks.indices[i], ratio)


def test_nvidia_splits_partition_the_set(nvidia_mask_dir: Path) -> None:
    train = FolderMasks(nvidia_mask_dir, split="train")
    evaluation = FolderMasks(nvidia_mask_dir, split="eval")
    assert len(train) == 10_800 and len(evaluation) == 1_200
    assert all(index % 10 != 0 for index in train.indices)
    assert all(index % 10 == 0 for index in evaluation.indices)
    assert sorted(train.indices + evaluation.indices) == list(range(12_000))
    eval_bucket = FolderMasks(nvidia_mask_dir, buckets=[2, 4], split="eval")
    assert eval_bucket.indices[:3] == (4000, 4010, 4020) and len(eval_bucket) == 400


def test_nvidia_mask_is_the_binarised_file(nvidia_mask_dir: Path) -> None:
    masks = FolderMasks(nvidia_mask_dir, split="all", augment=False)
    pixels = np.asarray(Image.open(nvidia_mask_dir / "02003.png"))
    np.testing.assert_array_equal(masks.mask(2003, 512), (pixels > 127).astype(np.float32))


def test_nvidia_sampling_is_seeded_and_binary(nvidia_mask_dir: Path) -> None:
    masks = FolderMasks(nvidia_mask_dir, buckets=[1, 3])

    def draw(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [masks.sample(rng, 128) for _ in range(4)]

    first, again, other = draw(0), draw(0), draw(1)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    for mask in first + other:
        assert mask.shape == (128, 128) and _is_binary(mask)
        assert 0.0 < hole_ratio(mask) < 0.7


@pytest.mark.parametrize("resize", ["area", "nearest"])
def test_nvidia_resizing_keeps_hole_ratio(nvidia_mask_dir: Path, resize: str) -> None:
    masks = FolderMasks(nvidia_mask_dir, split="eval", augment=False, resize=resize)
    for i in (0, 250, 500, 900, 1150):
        full = hole_ratio(masks.mask(i, 512))
        assert abs(hole_ratio(masks.mask(i, 256)) - full) < 0.01
        assert abs(hole_ratio(masks.mask(i, 64)) - full) < 0.03
        assert masks.mask(i, (96, 160)).shape == (96, 160)


# ---------------------------------------------------------------------------------------------------------------
# FolderMasks on synthetic folders (no shared data needed)

# NVIDIA-style names over three buckets; each file's hole ratio sits in its bucket.
_NVIDIA_LIKE = {0: 0.05, 1: 0.08, 3: 0.06, 10: 0.04, 2000: 0.15, 2001: 0.12, 2010: 0.18, 2013: 0.11,
                4000: 0.25, 4005: 0.28, 11990: 0.55, 11999: 0.52}


@pytest.fixture(scope="module")
def nvidia_like_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nvidia_like")
    for index, ratio in _NVIDIA_LIKE.items():
        Image.fromarray(_block_mask(40, ratio)).save(root / f"{index:05d}.png")
    (root / "readme.txt").write_text("not a mask")
    return root


@pytest.fixture(scope="module")
def generic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Arbitrary names and formats; sorted order: a (5 %), b (15 %), c (35 %), d (70 %), e (12 %)."""
    root = tmp_path_factory.mktemp("generic")
    Image.fromarray(_block_mask(40, 0.05)).save(root / "a_hole.png")
    Image.fromarray(_block_mask(40, 0.15)).convert("RGB").save(root / "b_hole.bmp")
    Image.fromarray(_block_mask(40, 0.35) > 0).save(root / "c_hole.png")  # mode "1"
    Image.fromarray(_block_mask(40, 0.70)).save(root / "d_hole.jpg", quality=95)
    Image.fromarray(_block_mask(40, 0.125)).convert("RGBA").save(root / "e_hole.png")
    return root


def test_synthetic_nvidia_names_bucket_by_index_and_split(nvidia_like_dir: Path) -> None:
    train = FolderMasks(nvidia_like_dir, buckets=[1], augment=False)
    assert train.bucket_by == "index" and train.indices == (2001, 2013)
    evaluation = FolderMasks(nvidia_like_dir, buckets=[1], split="eval")
    assert evaluation.indices == (2000, 2010)
    everything = FolderMasks(nvidia_like_dir, split="all")
    assert everything.indices == tuple(sorted(_NVIDIA_LIKE))
    assert FolderMasks(nvidia_like_dir, buckets=[0, 5]).indices == (1, 3, 11999)
    for i, index in enumerate(everything.indices):
        assert hole_ratio(everything.mask(i, 40)) == pytest.approx(_NVIDIA_LIKE[index], abs=0.013)


def test_generic_names_bucket_by_measured_ratio(generic_dir: Path) -> None:
    everything = FolderMasks(generic_dir, split="all", augment=False)
    assert everything.bucket_by == "ratio" and len(everything) == 5
    assert [path.name for path in everything.paths] == ["a_hole.png", "b_hole.bmp", "c_hole.png", "d_hole.jpg",
                                                        "e_hole.png"]
    for i, expected in enumerate([0.05, 0.15, 0.35, 0.70, 0.125]):
        assert hole_ratio(everything.mask(i, 40)) == pytest.approx(expected, abs=0.013)
    bucket_one = FolderMasks(generic_dir, buckets=[1], split="all")
    assert [path.name for path in bucket_one.paths] == ["b_hole.bmp", "e_hole.png"]
    # Index = position in the sorted listing: position 0 is reserved for evaluation.
    assert FolderMasks(generic_dir, split="eval").indices == (0,)
    assert FolderMasks(generic_dir, split="train").indices == (1, 2, 3, 4)
    # 70 % is in no bucket; asking for all buckets drops it.
    assert FolderMasks(generic_dir, buckets=range(6), split="all").indices == (0, 1, 2, 4)


def test_folder_augmentation_without_angle_shift_dilation_is_a_dihedral_copy(nvidia_like_dir: Path) -> None:
    masks = FolderMasks(nvidia_like_dir, split="all", max_angle=0.0, max_shift=0.0, max_dilation=0)
    plain = [masks.mask(i, 40) for i in range(len(masks))]
    rng = np.random.default_rng(3)
    transforms_seen = set()
    for _ in range(30):
        sample = masks.sample(rng, 40)
        matches = [(i, k) for i, mask in enumerate(plain) for k, turned in enumerate(_dihedral(mask))
                   if np.array_equal(sample, turned)]
        assert matches, "an augmented mask without angle/shift/dilation must be a flip/rot90 of a mask"
        transforms_seen.add(matches[0][1])
    assert len(transforms_seen) >= 3  # the flips and turns are really drawn


def test_folder_augmentation_is_binary_and_changes_masks(nvidia_like_dir: Path) -> None:
    masks = FolderMasks(nvidia_like_dir, split="all", max_angle=20.0, max_shift=0.2, max_dilation=3)
    plain = [masks.mask(i, 48) for i in range(len(masks))]
    rng = np.random.default_rng(0)
    samples = [masks.sample(rng, 48) for _ in range(20)]
    assert all(sample.shape == (48, 48) and _is_binary(sample) for sample in samples)
    assert sum(any(np.array_equal(s, t) for p in plain for t in _dihedral(p)) for s in samples) < 5
    rng_again = np.random.default_rng(0)
    for sample in samples:
        np.testing.assert_array_equal(sample, masks.sample(rng_again, 48))


def test_folder_decodes_lazily_and_caches(tmp_path: Path) -> None:
    Image.fromarray(_block_mask(16, 0.5)).save(tmp_path / "00001.png")
    (tmp_path / "00002.png").write_bytes(b"not a png")
    masks = FolderMasks(tmp_path, augment=False)  # no file is decoded yet, so the broken one does not matter
    first = masks.mask(0, 16)
    (tmp_path / "00001.png").unlink()
    np.testing.assert_array_equal(masks.mask(0, 16), first)  # served from the cache
    with pytest.raises(ValueError, match="cannot read mask file .*00002.png"):
        masks.mask(1, 16)
    uncached = FolderMasks(tmp_path, augment=False, cache_size=0)  # only the broken file is left
    with pytest.raises(ValueError, match="00002.png"):
        uncached.mask(0, 16)
    with pytest.raises(IndexError, match="holds 2 masks"):
        masks.mask(2, 16)


def test_folder_errors(tmp_path: Path, nvidia_like_dir: Path, generic_dir: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        FolderMasks(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no mask images"):
        FolderMasks(tmp_path)
    with pytest.raises(ValueError, match="unknown bucket 6"):
        FolderMasks(nvidia_like_dir, buckets=[1, 6])
    with pytest.raises(ValueError, match="non-empty sequence"):
        FolderMasks(nvidia_like_dir, buckets=[])
    with pytest.raises(ValueError, match="non-empty sequence"):
        FolderMasks(nvidia_like_dir, buckets=1)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        FolderMasks(nvidia_like_dir, split="test")
    with pytest.raises(ValueError, match="no masks in .*split='eval'"):
        FolderMasks(nvidia_like_dir, buckets=[3], split="eval")
    with pytest.raises(ValueError, match="bucket_by='index' needs files named like the NVIDIA set"):
        FolderMasks(generic_dir, bucket_by="index")
    with pytest.raises(ValueError, match="size must be"):
        FolderMasks(nvidia_like_dir).mask(0, 0)


# ---------------------------------------------------------------------------------------------------------------
# Generated masks

_GENERATED = [FreeFormMasks(), IrregularMasks(), RectangleMasks(0.1, 0.3)]
_RANGES = {"FreeFormMasks": (0.05, 0.3), "IrregularMasks": (0.2, 0.6), "RectangleMasks": (0.1, 0.3)}


@pytest.mark.parametrize("source", _GENERATED, ids=lambda s: type(s).__name__)
def test_generated_masks_are_binary_seeded_and_shaped(source: MaskSource) -> None:
    assert isinstance(source, MaskSource)
    first = [source.sample(np.random.default_rng(7), (48, 64)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    rng = np.random.default_rng(8)
    others = [source.sample(rng, (48, 64)) for _ in range(5)]
    assert all(not np.array_equal(first[0], other) for other in others)
    for mask in first + others:
        assert mask.shape == (48, 64) and _is_binary(mask) and mask.any()


@pytest.mark.parametrize("source", _GENERATED, ids=lambda s: type(s).__name__)
def test_generated_masks_hit_a_requested_ratio_range(source: MaskSource) -> None:
    low, high = _RANGES[type(source).__name__]
    rng = np.random.default_rng(0)
    ratios = [hole_ratio(sample_with_ratio(source, rng, 64, low, high)) for _ in range(20)]
    assert all(low <= ratio <= high for ratio in ratios)
    wrapped = RatioRangeMasks(source, low, high)
    assert all(low <= hole_ratio(wrapped.sample(rng, 64)) <= high for _ in range(5))


def test_sample_with_ratio_reports_an_unreachable_range() -> None:
    with pytest.raises(ValueError, match=r"no mask with a hole ratio in \[0.9, 1.0\] in 5 tries"):
        sample_with_ratio(RectangleMasks(0.1, 0.3), np.random.default_rng(0), 32, 0.9, 1.0, max_tries=5)
    with pytest.raises(ValueError, match="0 <= low <= high <= 1"):
        sample_with_ratio(RectangleMasks(), np.random.default_rng(0), 32, 0.5, 0.2)


def test_rectangle_is_one_box_with_ratio_in_range() -> None:
    rng = np.random.default_rng(1)
    for size in [(64, 64), (40, 60), (17, 90), (90, 17), (7, 5)]:
        for source in (RectangleMasks(0.2, 0.5), RectangleMasks(0.2, 0.5, centred=True)):
            if source.centred and min(size) ** 2 < 0.5 * size[0] * size[1]:
                continue  # no square that large fits
            for _ in range(20):
                mask = source.sample(rng, size)
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
                assert box == mask.sum() and 0.2 <= hole_ratio(mask) <= 0.5, (size, source)
                if source.centred:
                    assert rows[0] == (size[0] - len(rows)) // 2 and cols[0] == (size[1] - len(cols)) // 2
                    assert len(rows) == len(cols)
    with pytest.raises(ValueError, match="no centred square in a 2x8 image"):
        RectangleMasks(0.5, 0.5, centred=True).sample(rng, (2, 8))
    with pytest.raises(ValueError, match="0 < min_ratio <= max_ratio <= 1"):
        RectangleMasks(0.5, 0.2)


def test_free_form_brush_scales_with_size() -> None:
    # Widths are given for 256 px and scale with the image: the hole ratio's distribution does not depend on size.
    source = FreeFormMasks()
    rng = np.random.default_rng(0)
    small = np.mean([hole_ratio(source.sample(rng, 64)) for _ in range(150)])
    large = np.mean([hole_ratio(source.sample(rng, 256)) for _ in range(150)])
    assert 0.08 < large < 0.25 and abs(small - large) < 0.03


def test_make_mask_source(generic_dir: Path) -> None:
    assert make_mask_source("free_form", max_strokes=2) == FreeFormMasks(max_strokes=2)
    assert make_mask_source("irregular") == IrregularMasks()
    assert make_mask_source("rectangle", min_ratio=0.2, max_ratio=0.3) == RectangleMasks(0.2, 0.3)
    folder = make_mask_source("folder", root=generic_dir, split="all")
    assert isinstance(folder, FolderMasks) and len(folder) == 5
    ranged = make_mask_source("rectangle", ratio_range=(0.25, 0.3))
    assert isinstance(ranged, RatioRangeMasks)
    assert 0.25 <= hole_ratio(ranged.sample(np.random.default_rng(0), 32)) <= 0.3
    with pytest.raises(ValueError, match=r"unknown mask kind 'box'; expected one of 'folder', 'free_form', "
                                         r"'irregular', 'rectangle'"):
        make_mask_source("box")
    with pytest.raises(ValueError, match="bad arguments for mask kind 'rectangle'"):
        make_mask_source("rectangle", min_ratoi=0.2)
    with pytest.raises(ValueError, match="min_vertices"):
        FreeFormMasks(min_vertices=5, max_vertices=4)


# ---------------------------------------------------------------------------------------------------------------
# Conversions

_REF = np.zeros((6, 9), bool)
_REF[1:4, 2:7] = True
_REF[5, 0] = True
_EXPECTED = torch.from_numpy(_REF.astype(np.float32))[None, None]


def _accepted_inputs() -> dict[str, tuple[object, dict]]:
    white = (_REF * 255).astype(np.uint8)
    rgb = np.repeat(white[..., None], 3, axis=-1)
    noise = np.random.default_rng(0).integers(0, 256, (6, 9), dtype=np.uint8)
    rgba_noisy_alpha = np.concatenate([rgb, noise[..., None]], axis=-1)
    rgba_alpha_hole = np.concatenate([np.repeat(noise[..., None], 3, axis=-1), white[..., None]], axis=-1)
    return {
        "pil_L": (Image.fromarray(white), {}),
        "pil_1": (Image.fromarray(_REF), {}),
        "pil_RGB": (Image.fromarray(rgb), {}),
        "pil_RGBA_luminance": (Image.fromarray(rgba_noisy_alpha), {}),
        "pil_RGBA_from_alpha": (Image.fromarray(rgba_alpha_hole), {"from_alpha": True}),
        "pil_I16": (Image.fromarray(_REF.astype(np.uint16) * 65535), {}),
        "pil_F": (Image.fromarray(_REF.astype(np.float32)), {}),
        "bool": (_REF, {}),
        "uint8": (white, {}),
        "float32": (_REF.astype(np.float32), {}),
        "float64_soft": (np.where(_REF, 0.9, 0.1), {}),
        "int64_01": (_REF.astype(np.int64), {}),
        "hw1": (white[..., None], {}),
        "hw3": (rgb, {}),
        "hw4_from_alpha": (rgba_alpha_hole, {"from_alpha": True}),
        "numpy_b1hw": (_REF[None, None].astype(np.float32), {}),
        "numpy_bhw": (_REF[None], {}),
        "tensor_hw": (torch.from_numpy(_REF.astype(np.float32)), {}),
        "tensor_1hw_bool": (torch.from_numpy(_REF)[None], {}),
        "tensor_b1hw_uint8": (torch.from_numpy(white)[None, None], {}),
        "tensor_int64": (torch.from_numpy(_REF.astype(np.int64)), {}),
        "tensor_float64": (torch.from_numpy(_REF.astype(np.float64))[None, None], {}),
    }


@pytest.mark.parametrize("name", list(_accepted_inputs()))
def test_to_mask_tensor_accepts_every_form(name: str) -> None:
    mask_like, kwargs = _accepted_inputs()[name]
    tensor = to_mask_tensor(mask_like, **kwargs)
    assert tensor.dtype == torch.float32 and tensor.shape == (1, 1, 6, 9)
    torch.testing.assert_close(tensor, _EXPECTED, rtol=0, atol=0)
    image = mask_to_pil(tensor)  # round trip through the white = hole picture
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), (_REF * 255).astype(np.uint8))
    torch.testing.assert_close(to_mask_tensor(image), _EXPECTED, rtol=0, atol=0)


def test_to_mask_tensor_batches_and_thresholds() -> None:
    batch = np.stack([_REF, ~_REF]).astype(np.float32)
    expected = torch.from_numpy(batch)[:, None]
    torch.testing.assert_close(to_mask_tensor(batch), expected, rtol=0, atol=0)
    torch.testing.assert_close(to_mask_tensor(torch.from_numpy(batch)[:, None]), expected, rtol=0, atol=0)
    soft = np.array([[0.0, 0.5, 0.51, 1.0]], np.float32)
    assert to_mask_tensor(soft).flatten().tolist() == [0, 0, 1, 1]  # strictly greater than the threshold
    assert to_mask_tensor(soft, threshold=0.0).flatten().tolist() == [0, 1, 1, 1]
    assert threshold_mask(soft).tolist() == [[0, 0, 1, 1]]
    assert threshold_mask(torch.from_numpy(soft), 0.75).tolist() == [[0, 0, 0, 1]]


def test_to_mask_tensor_resizes_keeping_hole_ratio() -> None:
    block = np.zeros((64, 64), np.uint8)
    block[8:40, 16:48] = 255
    small = to_mask_tensor(block, size=32)
    expected = np.zeros((32, 32), np.float32)
    expected[4:20, 8:24] = 1
    np.testing.assert_array_equal(small[0, 0].numpy(), expected)
    strokes = FreeFormMasks().sample(np.random.default_rng(0), 128)
    for size in (64, (48, 80), (200, 150)):
        resized = to_mask_tensor(strokes, size=size)
        assert resized.shape[-2:] == ((size, size) if isinstance(size, int) else size)
        assert abs(float(hole_ratio(resized)[0]) - hole_ratio(strokes)) < 0.015


@pytest.mark.parametrize(
    ("mask_like", "kwargs", "message"),
    [
        (np.full((4, 4), 255.0), {}, r"values in \[255, 255\]; float masks must lie in \[0, 1\].*divide"),
        (np.full((4, 4), -0.5), {}, r"float masks must lie in \[0, 1\]"),
        (np.full((4, 4), np.nan), {}, "NaN"),
        (np.full((4, 4), 255, np.int64), {}, "integer masks other than uint8 must hold only 0 and 1"),
        (np.zeros((2, 3, 4, 5)), {}, r"must be \(H, W\), \(H, W, 1\|3\|4\), \(B, H, W\) or \(B, 1, H, W\)"),
        (np.zeros((0, 4)), {}, "empty"),
        (np.array([["a"]]), {}, "dtype <U1"),
        (np.zeros((4, 4, 3), np.uint8), {"from_alpha": True}, r"needs an \(H, W, 4\) array"),
        (torch.zeros(3, 4, 4), {}, r"\(H, W\), \(1, H, W\) or \(B, 1, H, W\)"),
        (torch.zeros(2, 3, 4, 4), {}, r"got shape \(2, 3, 4, 4\)"),
        (torch.full((4, 4), 2.0), {}, r"float masks must lie in \[0, 1\]"),
        (torch.zeros(4, 4), {"from_alpha": True}, "not to tensors"),
        (Image.new("CMYK", (4, 4)), {}, "mode 'CMYK'"),
        (Image.new("L", (4, 4)), {"from_alpha": True}, "needs an image with an alpha channel"),
        ("mask.png", {}, "cannot read a mask from str"),
        (np.zeros((4, 4)), {"size": (0, 4)}, "size must be positive"),
    ],
    ids=lambda value: None if not isinstance(value, str) else value[:20],
)
def test_to_mask_tensor_refuses_bad_input(mask_like: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_mask_tensor(mask_like, **kwargs)


def test_mask_to_pil_takes_one_mask() -> None:
    with pytest.raises(ValueError, match="batch of 2; pass mask"):
        mask_to_pil(np.zeros((2, 1, 4, 4), np.float32))


def test_dilate_mask_matches_opencv_square_dilation() -> None:
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 1, 20, 24)) > 0.97).astype(np.float32)
    dilated = dilate_mask(torch.from_numpy(masks), 2)
    kernel = np.ones((5, 5), np.uint8)
    for mask, result in zip(masks, dilated):
        expected = cv2.dilate(mask[0].astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        np.testing.assert_array_equal(result[0].numpy(), expected.astype(np.float32))
    point = torch.zeros(1, 1, 9, 9)
    point[0, 0, 4, 4] = 1
    assert dilate_mask(point, 1).sum() == 9 and dilate_mask(point, 0).equal(point)
    with pytest.raises(ValueError, match="pixels must be an int >= 0"):
        dilate_mask(point, -1)
    with pytest.raises(ValueError, match=r"takes a tensor \(B, 1, H, W\)"):
        dilate_mask(point[0, 0], 1)


def test_hole_ratio() -> None:
    assert hole_ratio(_REF.astype(np.float32)) == pytest.approx(_REF.mean())
    batch = torch.from_numpy(np.stack([_REF, ~_REF]).astype(np.float32))[:, None]
    torch.testing.assert_close(hole_ratio(batch), torch.tensor([_REF.mean(), 1 - _REF.mean()], dtype=torch.float32))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        hole_ratio(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"ndarray \(H, W\)"):
        hole_ratio(np.zeros((1, 4, 4)))


# ---------------------------------------------------------------------------------------------------------------------
# Image-editor input (what the Space composes)


def test_editor_hole_joins_the_mask_and_the_layers() -> None:
    from hoginpaint.masks import editor_hole, layer_image

    uploaded = np.zeros((40, 60), np.uint8)
    uploaded[5:10, 5:10] = 255
    painted = np.zeros((40, 60), bool)
    painted[20:30, 40:50] = True
    half = layer_image(painted).resize((30, 20), Image.NEAREST)  # the canvas's scaled copy
    hole = editor_hole((40, 60), Image.fromarray(uploaded), [layer_image(painted), half])
    expected = (uploaded > 0) | painted
    np.testing.assert_array_equal(hole, expected)
    np.testing.assert_array_equal(editor_hole((40, 60), None, [layer_image(painted)]), painted)
    with pytest.raises(ValueError, match="^mask is 60x40 but image is 50x40; pass a mask of the image's size$"):
        editor_hole((40, 50), Image.fromarray(uploaded))


def test_check_hole_says_white_is_the_hole_for_a_mask_drawn_in_transparency() -> None:
    from hoginpaint.masks import check_hole, editor_hole

    strokes = np.zeros((40, 60, 4), np.uint8)
    strokes[10:20, 10:20, 3] = 255  # black, opaque strokes on transparency: no white anywhere
    mask = Image.fromarray(strokes)
    with pytest.raises(ValueError, match="the hole must be white, not transparent") as raised:
        check_hole(editor_hole((40, 60), mask), mask)
    assert str(raised.value).startswith("the mask is empty")
    with pytest.raises(ValueError, match=r"^the mask is empty: paint over"):
        check_hole(np.zeros((40, 60), bool), Image.fromarray(np.zeros((40, 60), np.uint8)))
    with pytest.raises(ValueError, match="covers the whole photo"):
        check_hole(np.ones((40, 60), bool))
