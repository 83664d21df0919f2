"""hoginpaint.training.data: decoding (bad images skipped and counted), cropping, sharding over ranks and workers, seeded masks."""
from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint.training import data
from hoginpaint.masks import RectangleMasks


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _face_like(index: int, size: int = 40) -> np.ndarray:
    """A uint8 RGB image whose pixel (0, 0) encodes `index`, so examples can be told apart after decoding."""
    array = np.full((size, size, 3), 128, np.uint8)
    array[:, :, 0] = index
    return array


CORRUPT = b"\xff\xd8\xff\xe0 this is not a JPEG"


def _dataset(count: int, corrupt: set[int] = frozenset(), shards: int = 4) -> datasets.IterableDataset:
    """`count` undecoded images (indices in `corrupt` are garbage bytes), as a stream of `shards` shards."""
    images = [{"bytes": CORRUPT if i in corrupt else _png(_face_like(i)), "path": None} for i in range(count)]
    table = datasets.Dataset.from_dict({"image": images}, features=datasets.Features({"image": datasets.Image()}))
    return table.to_iterable_dataset(num_shards=shards).cast_column("image", datasets.Image(decode=False))


def _index(image: torch.Tensor) -> int:
    return round(float(image[0, 0, 0]) * 255)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding and cropping


def test_decode_image_returns_none_for_bytes_that_are_no_image():
    assert data.decode_image({"bytes": CORRUPT, "path": None}) is None
    assert data.decode_image({"bytes": _png(_face_like(3))[:60], "path": None}) is None  # truncated
    assert data.decode_image({"bytes": None, "path": None}) is None
    image = data.decode_image({"bytes": _png(_face_like(7)), "path": None})
    assert image.mode == "RGB" and np.asarray(image)[0, 0, 0] == 7


def test_decode_image_applies_exif_orientation():
    array = np.zeros((10, 20, 3), np.uint8)
    array[:, :10] = 255  # white left half
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(array).save(buffer, format="JPEG", exif=exif.tobytes(), quality=100)
    image = data.decode_image({"bytes": buffer.getvalue(), "path": None})
    assert image.size == (10, 20)  # turned upright: 10 wide, 20 high
    upright = np.asarray(image).mean(axis=(1, 2))
    assert upright[:8].mean() > 200 and upright[-8:].mean() < 50  # the white half is now on top


def test_center_crop_resize_takes_the_centred_square():
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, 10:30] = 200  # the centred 20x20 square
    tensor = data.center_crop_resize(Image.fromarray(array), 20)
    assert tensor.shape == (3, 20, 20) and tensor.dtype == torch.float32
    assert torch.allclose(tensor, torch.full_like(tensor, 200 / 255))
    resized = data.center_crop_resize(Image.fromarray(array), 8)
    expected = np.asarray(Image.fromarray(array[:, 10:30]).resize((8, 8), Image.BICUBIC), np.float32) / 255
    assert torch.allclose(resized, torch.from_numpy(expected).permute(2, 0, 1))


# ---------------------------------------------------------------------------------------------------------------------
# The stream


def test_corrupt_images_are_skipped_and_counted_exactly_across_workers():
    corrupt = {0, 5, 6, 13, 15}  # 15: the last image of its worker's last shard
    stream = data.FaceMaskStream(_dataset(16, corrupt), "image", 32, RectangleMasks(), seed=0)
    seen, skipped = [], 0
    for batch in data.make_dataloader(stream, batch_size=3, num_workers=2):
        assert batch["image"].shape[1:] == (3, 32, 32) and batch["mask"].shape[1:] == (1, 32, 32)
        seen += [_index(image) for image in batch["image"]]
        skipped += int(batch["skipped"])
    assert sorted(seen) == sorted(set(range(16)) - corrupt)
    assert skipped == len(corrupt)


class _Loader:
    """Stands in for a DataLoader: the same batches every epoch."""

    def __init__(self, batches: list[tuple[int, int]], batch_size: int) -> None:
        self.batches, self.batch_size = batches, batch_size

    def __iter__(self):
        for size, skipped in self.batches:
            yield {"image": torch.zeros(size, 3, 4, 4), "mask": torch.zeros(size, 1, 4, 4),
                   "skipped": torch.tensor(skipped)}


class _Stream:
    epoch = -1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def test_endless_batches_drop_short_batches_but_carry_their_skip_counts():
    # (images, skipped) per batch: a full one, a worker's short tail, a skip report, a full one
    loader = _Loader([(2, 1), (1, 2), (0, 4), (2, 0)], batch_size=2)
    stream = _Stream()
    batches = data.endless_batches(loader, stream)
    counts = [(len(batch["image"]), int(batch["skipped"]), stream.epoch) for batch in (next(batches)
                                                                                        for _ in range(3))]
    assert counts == [(2, 1, 0), (2, 6, 0), (2, 1, 1)]
    with pytest.raises(ValueError, match="no batch of 2 decodable images"):
        next(data.endless_batches(_Loader([(1, 0), (0, 3)], batch_size=2), _Stream()))


def test_masks_are_seeded_per_rank_worker_epoch_and_resume():
    def masks(rank=0, resume_step=0, epoch=0):
        stream = data.FaceMaskStream(_dataset(4, shards=1), "image", 32, RectangleMasks(), seed=5, rank=rank,
                                     resume_step=resume_step)
        stream.set_epoch(epoch)
        return torch.stack([example["mask"] for example in stream])

    first = masks()
    assert torch.equal(first, masks())  # same seed, same masks
    assert set(first.unique().tolist()) == {0.0, 1.0} and first.shape == (4, 1, 32, 32)
    for other in (masks(rank=1), masks(resume_step=10), masks(epoch=1)):
        assert not torch.equal(first, other)


def test_training_stream_shards_ranks_disjointly_and_completely():
    ranks = [
        [_index(data.center_crop_resize(data.decode_image(example["image"]), 8))
         for example in data.training_stream(_dataset(24, shards=4), seed=3, rank=rank, world_size=2,
                                             shuffle_buffer_size=8, shuffle_input_shards=2)]
        for rank in range(2)
    ]
    assert set(ranks[0]).isdisjoint(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == list(range(24))


def test_training_stream_reshuffles_on_resume_and_limits_samples():
    def order(resume_step: int, limit: int | None = None) -> list[int]:
        stream = data.training_stream(_dataset(24, shards=1), seed=3, rank=0, world_size=1, shuffle_buffer_size=24,
                                      max_train_samples=limit, resume_step=resume_step)
        return [_index(data.center_crop_resize(data.decode_image(example["image"]), 8)) for example in stream]

    assert order(0) == order(0) and sorted(order(0)) == list(range(24))
    assert order(100) != order(0) and sorted(order(100)) == list(range(24))
    assert sorted(order(0, limit=5)) == list(range(5))
    with pytest.raises(ValueError, match="max_train_samples must be positive"):
        order(0, limit=0)


def test_endless_batches_run_epoch_after_epoch():
    images = data.training_stream(_dataset(6, shards=1), seed=0, rank=0, world_size=1, shuffle_buffer_size=6)
    stream = data.FaceMaskStream(images, "image", 16, RectangleMasks(), seed=0)
    batches = data.endless_batches(data.make_dataloader(stream, batch_size=2, num_workers=0), stream)
    indices = [[_index(image) for image in next(batches)["image"]] for _ in range(6)]  # two epochs
    assert sorted(sum(indices[:3], [])) == sorted(sum(indices[3:], [])) == list(range(6))
    assert sum(indices[:3], []) != sum(indices[3:], [])  # reshuffled each epoch
    assert stream.epoch == 1


def test_validation_batch_is_fixed_and_skips_bad_images():
    images = _dataset(8, corrupt={1}, shards=1)
    first = data.validation_batch(images, "image", 16, 4, RectangleMasks(), seed=2)
    again = data.validation_batch(images, "image", 16, 4, RectangleMasks(), seed=2)
    assert [_index(image) for image in first["image"]] == [0, 2, 3, 4]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    with pytest.raises(ValueError, match="holds only 7 decodable images, 9 were asked for"):
        data.validation_batch(images, "image", 16, 9, RectangleMasks(), seed=2)


# ---------------------------------------------------------------------------------------------------------------------
# Loading folders


def test_image_folder_with_a_corrupt_file_streams_the_good_ones(tmp_path: Path):
    for index in range(5):
        Image.fromarray(_face_like(index * 10)).save(tmp_path / f"{index}.png")
    (tmp_path / "broken.jpg").write_bytes(CORRUPT)
    images = data.load_image_dataset(str(tmp_path), "train", "image")
    stream = data.FaceMaskStream(images, "image", 16, RectangleMasks(), seed=0)
    examples = list(stream)
    assert sorted(_index(example["image"]) for example in examples if "image" in example) == [0, 10, 20, 30, 40]
    assert sum(example["skipped"] for example in examples) == 1
    with pytest.raises(ValueError, match="has no validation split .* --validation_split"):
        data.validation_split_name(str(tmp_path))
    with pytest.raises(ValueError, match="no column 'picture'.*--image_column"):
        data.load_image_dataset(str(tmp_path), "train", "picture")


def test_real_faces_stream_in_hub_layout(faces_dir: Path):
    assert data.validation_split_name(str(faces_dir)) == "validation"
    images = data.load_image_dataset(str(faces_dir), "validation", "image")
    batch = data.validation_batch(images, "image", 64, 3, RectangleMasks(), seed=0)
    assert batch["image"].shape == (3, 3, 64, 64)
    assert 0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1
    assert float(batch["image"].std()) > 0.05  # real photographs, not a constant


def test_no_streaming_on_a_small_folder(tmp_path):
    """A prepared (not streamed) folder smaller than the shard count still loads: one shard per image at most."""
    from PIL import Image as PILImage

    from hoginpaint.training.data import load_image_dataset

    for index in range(5):
        PILImage.new("RGB", (32, 32), (index * 40, 0, 0)).save(tmp_path / f"{index}.png")
    dataset = load_image_dataset(str(tmp_path), split="train", image_column="image", streaming=False)
    assert dataset.num_shards == 5
    assert len(list(dataset)) == 5
