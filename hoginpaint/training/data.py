"""Training and validation data: face images streamed from the Hub or a local folder, paired with random hole masks.

A training example is ``{"image": (3, R, R) float in [0, 1], "mask": (1, R, R) float, 1 = hole, "skipped": int}``.
Images are centre-cropped to a square and resized to ``R`` here, in the loader workers; everything that depends on
the model (HOG targets, masking, guidance) is computed batched in the training step, on the accelerator.

The stream is built as: ``load_dataset(..., streaming=True)`` → ``take(max_train_samples)`` → ``shuffle(seed,
buffer)`` → ``split_dataset_by_node(rank, world_size)``; a torch ``DataLoader`` then spreads each rank's shards over
its workers (``datasets`` does that by itself inside a worker). Each worker draws its masks from its own
``np.random.Generator`` seeded from ``(seed, rank, worker, epoch, resume_step)``, never from global state.

An image that does not decode is skipped and counted: every example carries in ``"skipped"`` how many undecodable
images its worker passed over since its previous example (a worker reports trailing ones in an example without an
image), and `endless_batches` carries the counts of the batches it drops, so summing ``"skipped"`` over the batches
it yields counts every undecodable image.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from hoginpaint.training.landmarks import LandmarkCache
    from hoginpaint.masks.face_parts import FacePartMasks
    from hoginpaint.masks import MaskSource
    from hoginpaint.training.options import DataOptions

# What PIL raises on bytes that are not an image it can decode (truncated JPEG, random bytes, a bomb).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def load_image_dataset(
    source: str,
    split: str,
    image_column: str,
    streaming: bool = True,
) -> datasets.IterableDataset:
    """The `split` of `source` (a Hub dataset id, a folder of images, or a folder of parquet shards) as a stream.

    The image column is left undecoded (``{"bytes", "path"}``) so that `decode_image` can skip a bad file instead of
    the iterator raising. With ``streaming=False`` the split is downloaded and prepared first (faster epochs after
    the first), then turned into a stream of up to 64 shards so that it shards over ranks and workers alike.
    """
    path = Path(source).expanduser()
    dataset_path = str(path) if path.exists() else source
    try:
        dataset = datasets.load_dataset(dataset_path, split=split, streaming=streaming)
    except ValueError as error:  # unknown split: datasets says which exist
        raise ValueError(f"could not load split {split!r} of {source!r}: {error}") from error
    if not streaming:
        dataset = dataset.to_iterable_dataset(num_shards=max(1, min(64, len(dataset))))  # a shard per image at most
    columns = list(dataset.features or {})
    if image_column not in columns:
        raise ValueError(
            f"{source!r} has no column {image_column!r} (columns: {columns}); pass --image_column with one of them"
        )
    return dataset.select_columns([image_column]).cast_column(image_column, datasets.Image(decode=False))


def load_image_datasets(
    sources: list[str],
    split: str,
    image_column: str,
    streaming: bool = True,
    seed: int = 0,
) -> datasets.IterableDataset:
    """`load_image_dataset` of each source, interleaved one image from each in turn until every source is
    exhausted (`datasets.interleave_datasets`, "all_exhausted": the smaller sources are repeated meanwhile)."""
    if not sources:
        raise ValueError("no training data source given; pass --train_data_dir or --dataset_name")
    streams = [load_image_dataset(source, split, image_column, streaming) for source in sources]
    if len(streams) == 1:
        return streams[0]
    return datasets.interleave_datasets(streams, seed=seed, stopping_strategy="all_exhausted")


def validation_split_name(source: str) -> str:
    """The first of ``validation``, ``valid``, ``test`` that `source` has, or `ValueError` naming the splits it has."""
    path = Path(source).expanduser()
    splits = datasets.get_dataset_split_names(str(path) if path.exists() else source)
    for name in ("validation", "valid", "test"):
        if name in splits:
            return name
    raise ValueError(
        f"{source!r} has no validation split (splits: {splits}); pass --validation_split with one of them, "
        "or --validation_steps 0 to train without validation"
    )


def decode_image(value: Any) -> Image.Image | None:
    """An RGB PIL image from a ``datasets`` image value (``{"bytes", "path"}`` or PIL), or None if it does not decode.

    EXIF orientation is applied, as a viewer would show the photo.
    """
    try:
        if isinstance(value, Image.Image):
            image = value
        elif isinstance(value, dict) and value.get("bytes") is not None:
            image = Image.open(io.BytesIO(value["bytes"]))
        elif isinstance(value, dict) and value.get("path"):
            image = Image.open(value["path"])
        else:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except _DECODE_ERRORS:
        return None


def center_crop_resize(image: Image.Image, resolution: int) -> torch.Tensor:
    """The largest centred square of `image`, resized to `resolution` (bicubic) → `(3, R, R)` float in [0, 1]."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side != resolution:
        square = square.resize((resolution, resolution), Image.BICUBIC)
    array = np.asarray(square, dtype=np.float32) / 255.0  # (R, R, 3)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def mask_rng(seed: int, rank: int, worker: int, epoch: int, resume_step: int) -> np.random.Generator:
    """The mask generator of one loader worker: independent streams for every (rank, worker, epoch, resume)."""
    return np.random.default_rng([seed, rank, worker, epoch, resume_step])


def sample_mask(source: MaskSource, rng: np.random.Generator, resolution: int) -> torch.Tensor:
    """One mask from `source` as `(1, R, R)` float32, 1 = hole."""
    mask = np.asarray(source.sample(rng, resolution), dtype=np.float32)
    if mask.shape != (resolution, resolution):
        raise ValueError(f"mask source returned a {mask.shape} mask, expected ({resolution}, {resolution})")
    return torch.from_numpy(mask)[None]


@dataclass(frozen=True)
class FacePartMixing:
    """A share of the training holes over facial parts, placed from cached landmarks.

    `sample` draws a facial-part hole with probability `share` when the image has landmarks in `landmarks`, and
    returns None otherwise (the stream's other source then gives the hole).
    """

    landmarks: LandmarkCache
    masks: FacePartMasks
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"the face-part share must be in [0, 1], got {self.share!r}")

    def sample(self, rng: np.random.Generator, value: Any, resolution: int) -> torch.Tensor | None:
        """A `(1, R, R)` facial-part hole for the image `value`, or None."""
        if not rng.random() < self.share:
            return None
        landmarks = self.landmarks.lookup(value)
        if landmarks is None:
            return None
        mask = self.masks.sample(rng, resolution, landmarks.astype(np.float64) * resolution)
        return torch.from_numpy(mask)[None]


class FaceMaskStream(torch.utils.data.IterableDataset):
    """Decoded, cropped faces with a fresh mask each: the training examples of one rank.

    Args:
        images: this rank's stream of undecoded images (see `training_stream`).
        image_column: the column of `images` holding the images.
        resolution: side of the square examples.
        mask_source: where masks come from (`hoginpaint.masks`).
        seed, rank, resume_step: seed the per-worker mask generators (see `mask_rng`).
        face_parts: draws a share of the holes over facial parts instead (`FacePartMixing`).
    """

    def __init__(
        self,
        images: datasets.IterableDataset,
        image_column: str,
        resolution: int,
        mask_source: MaskSource,
        seed: int,
        rank: int = 0,
        resume_step: int = 0,
        face_parts: FacePartMixing | None = None,
    ) -> None:
        super().__init__()
        self.face_parts = face_parts
        self.images = images
        self.image_column = image_column
        self.resolution = resolution
        self.mask_source = mask_source
        self.seed = seed
        self.rank = rank
        self.resume_step = resume_step
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle the stream (``datasets`` reseeds its shuffle with seed + epoch) and draw new masks."""
        self.epoch = epoch
        self.images.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info()
        rng = mask_rng(self.seed, self.rank, worker.id if worker else 0, self.epoch, self.resume_step)
        skipped = 0
        for example in self.images:
            image = decode_image(example[self.image_column])
            if image is None:
                skipped += 1
                continue
            mask = None
            if self.face_parts is not None:
                mask = self.face_parts.sample(rng, example[self.image_column], self.resolution)
            if mask is None:
                mask = sample_mask(self.mask_source, rng, self.resolution)
            yield {"image": center_crop_resize(image, self.resolution), "mask": mask, "skipped": skipped}
            skipped = 0
        if skipped:  # bad images after the last good one: reported by an example without an image
            yield {"skipped": skipped}


def stream_seed(seed: int, resume_step: int) -> int:
    """The shuffle seed of a run resumed at `resume_step`: a fresh order, so a resume neither replays nor skips."""
    return int(np.random.SeedSequence([seed, resume_step]).generate_state(1)[0])


def training_stream(
    images: datasets.IterableDataset,
    seed: int,
    rank: int,
    world_size: int,
    shuffle_buffer_size: int,
    shuffle_input_shards: int = 10,
    max_train_samples: int | None = None,
    resume_step: int = 0,
) -> datasets.IterableDataset:
    """Limit, shuffle and shard `images` for one rank.

    Every rank shuffles with the same seed (``datasets`` needs that to hand out disjoint shards). A resumed run
    shuffles with a seed derived from ``(seed, resume_step)`` instead of fast-forwarding the stream: nothing is read
    twice to get back to where the run stopped, at the cost of the interrupted epoch not being completed exactly.
    """
    if max_train_samples is not None:
        if max_train_samples < 1:
            raise ValueError(f"max_train_samples must be positive, got {max_train_samples}")
        images = images.take(max_train_samples)
    images = images.shuffle(seed=stream_seed(seed, resume_step), buffer_size=shuffle_buffer_size,
                            max_buffer_input_shards=shuffle_input_shards)
    return split_dataset_by_node(images, rank=rank, world_size=world_size)


def collate(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack examples into ``image`` `(B, 3, R, R)`, ``mask`` `(B, 1, R, R)` and ``skipped`` (a 0-d count); skip
    reports (examples without an image) only add to the count."""
    good = [example for example in examples if "image" in example]
    return {
        "image": torch.stack([example["image"] for example in good]) if good else torch.empty(0),
        "mask": torch.stack([example["mask"] for example in good]) if good else torch.empty(0),
        "skipped": torch.tensor(sum(example["skipped"] for example in examples)),
    }


def make_dataloader(stream: FaceMaskStream, batch_size: int, num_workers: int) -> torch.utils.data.DataLoader:
    """Batches of `stream`, each made by one worker; `endless_batches` drops the short ones at the end of an epoch."""
    return torch.utils.data.DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        # Non-persistent workers pick up `set_epoch` when the next epoch's iterator starts them.
        persistent_workers=False,
    )


def endless_batches(dataloader: torch.utils.data.DataLoader, stream: FaceMaskStream) -> Iterator[dict[str, Any]]:
    """Full batches of `dataloader`, epoch after epoch, reshuffling each epoch.

    A short batch (the end of a worker's shards) is dropped so that every step has the same shape, but its
    ``skipped`` count is carried into the next batch: summing ``skipped`` over the batches counts every undecodable
    image. `ValueError` if an epoch yields no full batch.
    """
    epoch, carried = 0, 0
    while True:
        stream.set_epoch(epoch)
        produced = 0
        for batch in dataloader:
            if len(batch["image"]) < dataloader.batch_size:
                carried += int(batch["skipped"])
                continue
            batch["skipped"] = batch["skipped"] + carried
            carried = 0
            produced += 1
            yield batch
        if produced == 0:
            raise ValueError(
                f"the training data produced no batch of {dataloader.batch_size} decodable images on this rank; "
                "check the dataset, or lower --train_batch_size / raise --max_train_samples"
            )
        epoch += 1


def validation_batch(
    images: datasets.IterableDataset,
    image_column: str,
    resolution: int,
    count: int,
    mask_source: MaskSource,
    seed: int,
) -> dict[str, torch.Tensor]:
    """The first `count` decodable images of `images` with masks from a generator seeded by `seed`: the fixed batch
    that validation reports on, identical at every step and across resumes."""
    rng = np.random.default_rng([seed, 0xBA7C4])
    batch_images, masks = [], []
    for example in images:
        image = decode_image(example[image_column])
        if image is None:
            continue
        batch_images.append(center_crop_resize(image, resolution))
        masks.append(sample_mask(mask_source, rng, resolution))
        if len(batch_images) == count:
            break
    if len(batch_images) < count:
        raise ValueError(
            f"the validation split holds only {len(batch_images)} decodable images, {count} were asked for; "
            "lower --num_validation_images"
        )
    return {"image": torch.stack(batch_images), "mask": torch.stack(masks)}


# ---------------------------------------------------------------------------------------------------------------------
# What a training run reads, from its data options


def mask_source(options: DataOptions, split: Literal["train", "eval"]) -> Any:
    """Masks for training (`--mask_dir`: the folder's training masks, augmented) or validation (its evaluation masks,
    as they are); without `--mask_dir`, generated masks of `--mask_kind` for both."""
    from hoginpaint.masks import FolderMasks, make_mask_source

    if options.mask_dir:
        return FolderMasks(options.mask_dir, split=split, augment=split == "train")
    return make_mask_source(options.mask_kind)


def face_part_mixing(options: DataOptions) -> FacePartMixing | None:
    """The facial-part holes of `--face_part_share`, placed from the `--landmarks` caches; None when the share is 0."""
    from hoginpaint.training.landmarks import LandmarkCache
    from hoginpaint.masks.face_parts import FacePartMasks

    if not options.face_part_share:
        return None
    return FacePartMixing(LandmarkCache(options.landmarks), FacePartMasks(), options.face_part_share)


def training_batches(options: DataOptions, rank: int, world_size: int, resume_step: int = 0) -> Iterator[dict]:
    """Endless batches of this rank's share of the training split (see the module docstring), on the CPU."""
    images = load_image_datasets(options.sources, options.train_split, options.image_column, options.streaming,
                                 seed=options.seed)
    images = training_stream(images, options.seed, rank, world_size, options.shuffle_buffer_size,
                             options.shuffle_input_shards, options.max_train_samples, resume_step)
    stream = FaceMaskStream(images, options.image_column, options.resolution, mask_source(options, "train"),
                            options.seed, rank, resume_step, face_part_mixing(options))
    loader = make_dataloader(stream, options.batch_size, options.num_workers)
    return endless_batches(loader, stream)


# The evaluation's facial-part holes, given to the validation faces in turn.
VALIDATION_FACE_PARTS: tuple[str, ...] = ("eyes", "nose", "mouth")


def face_part_batch(images: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """`images` `(B, 3, R, R)` again, each with a hole over its eyes, nose or mouth in turn (`faces.feature_mask`,
    the evaluation's holes), placed from dlib's 68 landmarks: ``{"image", "mask"}`` of the faces dlib finds, None
    when it finds none (or, with a warning, when dlib or its models are missing)."""
    from hoginpaint import realism
    from hoginpaint.faces import feature_mask

    dlib_side = 256  # faces are scaled up to this side to look for landmarks (dlib misses small faces)
    try:
        references = realism.face_references(images, side=dlib_side)
    except (ImportError, RuntimeError) as error:  # dlib or its models missing (e.g. a bare GPU machine)
        warnings.warn(f"no facial-part validation: {error}", stacklevel=2)
        return None
    side = images.shape[-1]
    found = [(index, reference[1] * (side / max(side, dlib_side)))
             for index, reference in enumerate(references) if reference is not None]
    if not found:
        return None
    masks = [torch.from_numpy(feature_mask(landmarks, side, VALIDATION_FACE_PARTS[turn % len(VALIDATION_FACE_PARTS)]))
             for turn, (_, landmarks) in enumerate(found)]
    return {"image": images[[index for index, _ in found]], "mask": torch.stack(masks)[:, None]}


def validation_data(options: DataOptions) -> dict[str, dict[str, torch.Tensor]]:
    """The fixed validation batches: ``"holes"``, the first `--num_validation_images` images of the validation split
    with masks drawn from a generator seeded by `--seed` (the same batch at every validation and after a resume);
    with `--validation_face_parts`, ``"parts"``: the same faces with facial-part holes (`face_part_batch`)."""
    sources = options.sources
    batches = []
    for index, source in enumerate(sources):
        # An equal share of the batch from each source, the first ones taking the remainder.
        count = options.num_validation_images // len(sources) + (index < options.num_validation_images % len(sources))
        if count == 0:
            continue
        split = options.validation_split or validation_split_name(source)
        images = load_image_dataset(source, split, options.image_column, streaming=True)
        batches.append(validation_batch(images, options.image_column, options.resolution, count,
                                             mask_source(options, "eval"), options.seed))
    holes = {key: torch.cat([batch[key] for batch in batches]) for key in ("image", "mask")}
    parts = face_part_batch(holes["image"]) if options.validation_face_parts else None
    return {"holes": holes, **({"parts": parts} if parts is not None else {})}
