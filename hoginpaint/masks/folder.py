"""Masks read from a folder of images, by default the NVIDIA irregular mask set, with its buckets and eval split.

The set: the 12,000 testing masks of Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions"
(ECCV 2018) — the set this project's paper trains with — `00000.png` … `11999.png`, in six hole-ratio buckets of
2,000 masks by file index; this project's rule keeps indices divisible by 10 for evaluation (`EVAL_EVERY`).
`FolderMasks` is a `hoginpaint.masks.MaskSource`.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np
from PIL import Image

from hoginpaint.masks.user_input import as_size, mask_values

# The NVIDIA set: 00000.png … 11999.png, six buckets of 2,000 masks by hole ratio.
NVIDIA_MASK_COUNT = 12_000
NVIDIA_BUCKET_SIZE = 2_000
BUCKET_RANGES: tuple[tuple[float, float], ...] = (
    (0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6),
)
EVAL_EVERY = 10  # masks whose index is a multiple of this are reserved for evaluation

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_NVIDIA_NAME = re.compile(r"\d{5}\.png")


def _resize_binary(mask: np.ndarray, size: tuple[int, int], mode: Literal["area", "nearest"],
                   threshold: float) -> np.ndarray:
    """Binary `(h, w)` mask → binary float32 `size`; "area" averages coverage then thresholds."""
    height, width = size
    if mask.shape == (height, width):
        return mask.astype(np.float32)
    if mode == "nearest":
        resized = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
        return resized.astype(np.float32)
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return (coverage > threshold).astype(np.float32)



class FolderMasks:
    """Masks read from a folder of images (white = hole), by default the NVIDIA irregular mask set.

    Files: every `.png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp` directly in `root`, sorted by name. A file's *index* is
    its number when every file is named like the NVIDIA set (`00000.png` … `11999.png`, any subset), otherwise its
    position in the sorted listing.

    - `split`: "train" drops indices divisible by 10 (kept for evaluation), "eval" keeps only those, "all" both.
    - `buckets`: hole-ratio buckets 0..5 (0 = 1–10 % … 5 = 50–60 %); None = all masks. With `bucket_by="index"`
      (the default "auto" for NVIDIA names) bucket = index // 2000, as the set is ordered. With `bucket_by="ratio"`
      (the default for other names) each file's hole ratio is measured at its own resolution when the folder is
      opened with `buckets` given (one decode per file), and bucket k holds ratios in [k/10, (k+1)/10); masks with
      60 % holes or more are in no bucket.
    - `mask(i, size)`: the i-th selected mask, resized, never augmented — deterministic, for evaluation.
    - `sample(rng, size)`: a random selected mask; with `augment=True` randomly flipped (h, v), turned by a
      multiple of 90 degrees plus a small angle (|angle| <= `max_angle` degrees), shifted by up to `max_shift`
      of the size, and dilated by 0..`max_dilation` output pixels (elliptic kernel). Shifts and rotations move
      hole pixels out of the frame and dilation adds some, so augmented masks can leave their bucket's range.
    - Resizing (`resize`): "area" averages hole coverage and keeps pixels more than `threshold` covered;
      "nearest" picks the nearest source pixel. Source pixels are holes when their luminance in [0, 1] exceeds
      `threshold`.

    Decoded masks are cached lazily as packed bits, up to `cache_size` of them (least recently used dropped).
    """

    def __init__(
        self,
        root: str | Path,
        buckets: Sequence[int] | None = None,
        split: Literal["train", "eval", "all"] = "train",
        augment: bool = True,
        threshold: float = 0.5,
        *,
        bucket_by: Literal["auto", "index", "ratio"] = "auto",
        resize: Literal["area", "nearest"] = "area",
        max_angle: float = 15.0,
        max_shift: float = 0.1,
        max_dilation: int = 3,
        cache_size: int = 2048,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"mask folder {root} does not exist or is not a folder; pass a folder of mask images")
        if split not in ("train", "eval", "all"):
            raise ValueError(f"unknown split {split!r}; expected 'train', 'eval' or 'all'")
        if bucket_by not in ("auto", "index", "ratio"):
            raise ValueError(f"unknown bucket_by {bucket_by!r}; expected 'auto', 'index' or 'ratio'")
        if resize not in ("area", "nearest"):
            raise ValueError(f"unknown resize {resize!r}; expected 'area' or 'nearest'")
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if max_angle < 0 or not 0 <= max_shift <= 1 or max_dilation < 0 or cache_size < 0:
            raise ValueError(
                "need max_angle >= 0, 0 <= max_shift <= 1, max_dilation >= 0 and cache_size >= 0, got "
                f"{max_angle}, {max_shift}, {max_dilation}, {cache_size}"
            )
        wanted_buckets = self._check_buckets(buckets)

        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(
                f"no mask images ({', '.join(IMAGE_SUFFIXES)}) in {root}; pass a folder of masks (white = hole)"
            )
        nvidia_named = all(_NVIDIA_NAME.fullmatch(p.name) and int(p.stem) < NVIDIA_MASK_COUNT for p in files)
        if bucket_by == "auto":
            bucket_by = "index" if nvidia_named else "ratio"
        if bucket_by == "index" and not nvidia_named:
            raise ValueError(
                f"bucket_by='index' needs files named like the NVIDIA set (00000.png … 11999.png), but {root} has "
                f"e.g. {next(p.name for p in files if not _NVIDIA_NAME.fullmatch(p.name) or int(p.stem) >= NVIDIA_MASK_COUNT)!r}; "
                "use bucket_by='ratio'"
            )
        indices = [int(p.stem) for p in files] if nvidia_named else list(range(len(files)))

        self.root = root
        self.split = split
        self.buckets = None if wanted_buckets is None else tuple(sorted(wanted_buckets))
        self.bucket_by = bucket_by
        self.augment = augment
        self.threshold = threshold
        self.resize = resize
        self.max_angle = max_angle
        self.max_shift = max_shift
        self.max_dilation = max_dilation
        self.cache_size = cache_size
        self._cache: OrderedDict[Path, tuple[np.ndarray, tuple[int, int]]] = OrderedDict()

        chosen = [
            (index, path) for index, path in zip(indices, files)
            if split == "all" or (index % EVAL_EVERY == 0) == (split == "eval")
        ]
        if wanted_buckets is not None:
            chosen = [(index, path) for index, path in chosen if self._bucket(index, path) in wanted_buckets]
        if not chosen:
            raise ValueError(
                f"no masks in {root} with split={split!r} and buckets={buckets!r} ({len(files)} files, "
                f"bucket_by={bucket_by!r}); choose other buckets or split='all'"
            )
        self.indices: tuple[int, ...] = tuple(index for index, _ in chosen)
        self.paths: tuple[Path, ...] = tuple(path for _, path in chosen)

    @staticmethod
    def _check_buckets(buckets: Sequence[int] | None) -> set[int] | None:
        if buckets is None:
            return None
        if isinstance(buckets, (int, str)) or len(buckets) == 0:
            raise ValueError(f"buckets must be a non-empty sequence of ints in 0..5 or None, got {buckets!r}")
        for bucket in buckets:
            if isinstance(bucket, bool) or not isinstance(bucket, (int, np.integer)) or not 0 <= bucket < 6:
                raise ValueError(
                    f"unknown bucket {bucket!r}; buckets are 0..5 (0 = 1-10 % holes, 1 = 10-20 % … 5 = 50-60 %)"
                )
        return {int(bucket) for bucket in buckets}

    def _bucket(self, index: int, path: Path) -> int:
        if self.bucket_by == "index":
            return index // NVIDIA_BUCKET_SIZE
        mask = self._read(path)
        return int(mask.mean() * 10 + 1e-9)  # the epsilon keeps exactly 10 % in bucket 1, not 0

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"FolderMasks({str(self.root)!r}, buckets={self.buckets}, split={self.split!r}, augment={self.augment}, "
            f"{len(self)} masks)"
        )

    def _read(self, path: Path) -> np.ndarray:
        """The file as a bool `(h, w)` array at its own resolution, True = hole."""
        try:
            with Image.open(path) as image:
                return mask_values(image, from_alpha=False) > self.threshold
        except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
            raise ValueError(f"cannot read mask file {path}: {error}; remove or replace that file") from error

    def _native(self, i: int) -> np.ndarray:
        """The i-th selected mask at its own resolution, bool, through the LRU cache of packed bits."""
        path = self.paths[i]
        if path in self._cache:
            self._cache.move_to_end(path)
            packed, shape = self._cache[path]
            return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)
        mask = self._read(path)
        if self.cache_size > 0:
            self._cache[path] = (np.packbits(mask), mask.shape)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return mask

    def mask(self, i: int, size: int | tuple[int, int]) -> np.ndarray:
        """The i-th selected mask (index `self.indices[i]`) resized to `size`, `(H, W)` float32; no augmentation."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"mask {i} is out of range: this FolderMasks holds {len(self)} masks")
        return _resize_binary(self._native(i), as_size(size), self.resize, self.threshold)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        """A random selected mask at `size`, augmented when `augment=True`."""
        height, width = as_size(size)
        mask = self._native(int(rng.integers(len(self))))
        if not self.augment:
            return _resize_binary(mask, (height, width), self.resize, self.threshold)
        if rng.random() < 0.5:
            mask = mask[:, ::-1]
        if rng.random() < 0.5:
            mask = mask[::-1, :]
        mask = np.rot90(mask, k=int(rng.integers(4)))
        mask = _resize_binary(np.ascontiguousarray(mask), (height, width), self.resize, self.threshold)
        angle = rng.uniform(-self.max_angle, self.max_angle)
        shift_y, shift_x = rng.uniform(-self.max_shift, self.max_shift, size=2) * (height, width)
        transform = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
        transform[:, 2] += (shift_x, shift_y)
        warped = cv2.warpAffine(mask, transform, (width, height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask = (warped > 0.5).astype(np.uint8)
        radius = int(rng.integers(0, self.max_dilation, endpoint=True))
        if radius > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            mask = cv2.dilate(mask, kernel)
        return mask.astype(np.float32)
