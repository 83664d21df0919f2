"""Hole masks: sources that draw them, and conversions between the forms users hand us.

Conventions
-----------
- A mask is float32 and binary, **1 = hole**, 0 = known pixel. Sources return numpy `(H, W)` arrays; the model's
  boundary is a torch tensor `(B, 1, H, W)` (`to_mask_tensor`). As an image, **white = hole** (diffusers'
  `mask_image`, LaMa and the NVIDIA mask set agree on this).
- Binarising: a value in [0, 1] is a hole when it is **strictly greater** than `threshold` (0.5 by default), so
  `threshold=0` means "any non-black pixel is a hole". 8-bit data is divided by 255 first.
- Every source implements `MaskSource.sample(rng, size)`; randomness comes only from the `np.random.Generator`
  passed in, so the same seed gives the same masks.

Where the algorithms come from
------------------------------
- `FolderMasks`: a folder of mask images, by default the 12,000 testing masks of Liu et al., "Image Inpainting for
  Irregular Holes Using Partial Convolutions" (ECCV 2018) — the set this project's paper trains with — with its
  hole-ratio buckets by file index and this project's rule that indices divisible by 10 are kept for evaluation.
- `FreeFormMasks`: DeepFill v2's free-form brush strokes (Yu et al., "Free-Form Image Inpainting with Gated
  Convolution", ICCV 2019), `brush_stroke_mask` of the official `generative_inpainting` code.
- `IrregularMasks`: random lines, circles and elliptic arcs, the generator commonly used to reproduce Liu et al.
  2018 (`MaskGenerator._generate_mask` of the PConv-Keras re-implementation).
- `RectangleMasks`: one random axis-aligned rectangle (or a centred square), the classic "box" hole.

A hole-ratio range is requested with `sample_with_ratio(source, rng, size, low, high)` (rejection sampling), or
once for all samples with `RatioRangeMasks` / `make_mask_source(..., ratio_range=(low, high))`.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from hoginpaint.pixel_values import to_unit_range

MaskKind = Literal["folder", "free_form", "irregular", "rectangle"]
MASK_KINDS: tuple[str, ...] = ("folder", "free_form", "irregular", "rectangle")

# The NVIDIA set: 00000.png … 11999.png, six buckets of 2,000 masks by hole ratio.
NVIDIA_MASK_COUNT = 12_000
NVIDIA_BUCKET_SIZE = 2_000
BUCKET_RANGES: tuple[tuple[float, float], ...] = (
    (0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6),
)
EVAL_EVERY = 10  # masks whose index is a multiple of this are reserved for evaluation

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_NVIDIA_NAME = re.compile(r"\d{5}\.png")

# PIL's "L" conversion weights (ITU-R 601-2 luma), so arrays and PIL images of the same picture agree.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# DeepFill v2 draws its brush widths for 256x256 training images; widths scale with the image.
FREE_FORM_REFERENCE_SIZE = 256


@runtime_checkable
class MaskSource(Protocol):
    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        """One mask `(H, W)` float32 in {0, 1}, 1 = hole, drawn with `rng`."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """`size` as `(H, W)`; an int means a square."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        height = width = int(size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
    ):
        height, width = int(size[0]), int(size[1])
    else:
        raise ValueError(f"size must be an int or a pair of ints (H, W), got {size!r}")
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return height, width


def _check_ratio_range(low: float, high: float, what: str) -> None:
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"{what} must satisfy 0 <= low <= high <= 1, got ({low}, {high})")


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


def _nearest_first(target: float, upper: int) -> Iterator[int]:
    """The integers 1..upper, starting at the one nearest `target` and moving outwards."""
    start = min(max(round(target), 1), upper)
    yield start
    for step in range(1, upper):
        for candidate in (start - step, start + step):
            if 1 <= candidate <= upper:
                yield candidate


def hole_ratio(mask: np.ndarray | torch.Tensor) -> float | torch.Tensor:
    """Fraction of hole pixels: ndarray `(H, W)` → float; tensor `(B, 1, H, W)` → `(B,)` tensor."""
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2 or mask.size == 0:
            raise ValueError(f"hole_ratio takes an ndarray (H, W), got shape {mask.shape}")
        return float(mask.mean(dtype=np.float64))
    if isinstance(mask, torch.Tensor):
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.numel() == 0:
            raise ValueError(f"hole_ratio takes a tensor (B, 1, H, W), got shape {tuple(mask.shape)}")
        return mask.float().mean(dim=(1, 2, 3))
    raise ValueError(f"hole_ratio takes a numpy array (H, W) or a tensor (B, 1, H, W), got {type(mask).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# Requesting a hole-ratio range


def sample_with_ratio(source: MaskSource, rng: np.random.Generator, size: int | tuple[int, int],
                      low: float, high: float, max_tries: int = 100) -> np.ndarray:
    """A mask from `source` whose hole ratio lies in `[low, high]` (both inclusive), by rejection sampling.

    Raises ValueError after `max_tries` misses: the source rarely reaches that range, so widen it or change the
    source's parameters.
    """
    _check_ratio_range(low, high, "the hole-ratio range")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    ratios = []
    for _ in range(max_tries):
        mask = source.sample(rng, size)
        ratio = hole_ratio(mask)
        if low <= ratio <= high:
            return mask
        ratios.append(ratio)
    raise ValueError(
        f"{source!r} gave no mask with a hole ratio in [{low}, {high}] in {max_tries} tries (it drew ratios "
        f"{min(ratios):.3f}..{max(ratios):.3f}); widen the range, raise max_tries or change the source's parameters"
    )


@dataclass(frozen=True)
class RatioRangeMasks:
    """Wraps a source so that every sample has a hole ratio in `[low, high]` (see `sample_with_ratio`)."""

    source: MaskSource
    low: float
    high: float
    max_tries: int = 100

    def __post_init__(self) -> None:
        _check_ratio_range(self.low, self.high, "RatioRangeMasks(low, high)")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        return sample_with_ratio(self.source, rng, size, self.low, self.high, self.max_tries)


# ---------------------------------------------------------------------------------------------------------------
# Generated masks


@dataclass(frozen=True)
class FreeFormMasks:
    """DeepFill v2's free-form brush strokes (Yu et al. 2019, official `brush_stroke_mask`).

    Each mask holds `min_strokes..max_strokes` strokes; a stroke is a polyline of `min_vertices..max_vertices`
    segments whose directions alternate around `mean_angle` (± up to `angle_range`), segment lengths
    ~ N(r, r // 2) clipped to [0, 2r] with r = diagonal / 8, drawn with one brush width and round joints.
    Counts are inclusive here (the official `randint(1, 4)` and `randint(4, 12)` are 1..3 and 4..11).
    Brush widths are in pixels of a 256-pixel image (the official values) and scale with `min(H, W) / 256`, so
    a mask covers about the same fraction of any size. Two deviations from the official code, both bug fixes:
    x and y are not swapped for non-square sizes, and the final random flips are applied (the official code
    discards `mask.transpose(...)`'s result).
    """

    min_strokes: int = 1
    max_strokes: int = 3
    min_vertices: int = 4
    max_vertices: int = 11
    mean_angle: float = 2 * math.pi / 5
    angle_range: float = 2 * math.pi / 15
    min_width: float = 12.0
    max_width: float = 40.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_strokes <= self.max_strokes:
            raise ValueError(f"need 1 <= min_strokes <= max_strokes, got {self.min_strokes}, {self.max_strokes}")
        if not 1 <= self.min_vertices <= self.max_vertices:
            raise ValueError(f"need 1 <= min_vertices <= max_vertices, got {self.min_vertices}, {self.max_vertices}")
        if not 0 < self.min_width <= self.max_width:
            raise ValueError(f"need 0 < min_width <= max_width, got {self.min_width}, {self.max_width}")
        if self.angle_range < 0:
            raise ValueError(f"angle_range must be >= 0, got {self.angle_range}")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        height, width = _as_size(size)
        average_radius = math.sqrt(height * height + width * width) / 8
        width_scale = min(height, width) / FREE_FORM_REFERENCE_SIZE
        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(self.min_strokes, self.max_strokes + 1))):
            num_vertices = int(rng.integers(self.min_vertices, self.max_vertices + 1))
            angle_min = self.mean_angle - rng.uniform(0, self.angle_range)
            angle_max = self.mean_angle + rng.uniform(0, self.angle_range)
            # Alternating directions make the stroke zig-zag instead of curling into a circle.
            angles = [
                2 * math.pi - rng.uniform(angle_min, angle_max) if i % 2 == 0 else rng.uniform(angle_min, angle_max)
                for i in range(num_vertices)
            ]
            vertices = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
            for angle in angles:
                length = np.clip(rng.normal(loc=average_radius, scale=average_radius // 2), 0, 2 * average_radius)
                x = np.clip(vertices[-1][0] + length * math.cos(angle), 0, width)
                y = np.clip(vertices[-1][1] + length * math.sin(angle), 0, height)
                vertices.append((int(x), int(y)))
            brush = max(1, int(rng.uniform(self.min_width, self.max_width) * width_scale))
            draw.line(vertices, fill=1, width=brush)
            for x, y in vertices:  # round joints
                draw.ellipse((x - brush // 2, y - brush // 2, x + brush // 2, y + brush // 2), fill=1)
        mask = np.asarray(canvas, dtype=np.float32)
        if rng.normal() > 0:
            mask = mask[:, ::-1]
        if rng.normal() > 0:
            mask = mask[::-1, :]
        return np.ascontiguousarray(mask)


@dataclass(frozen=True)
class IrregularMasks:
    """Random lines, filled circles and elliptic arcs (the PConv-Keras generator for Liu et al. 2018 masks).

    Draws 1..`max_lines` lines, 1..`max_circles` circles and 1..`max_ellipses` elliptic arcs at random places;
    thicknesses and radii are uniform in `min_thickness..max(min_thickness, int((H + W) * thickness_scale))`,
    ellipse axes up to the image size, arc angles in 3..180 degrees — the reference's ranges, all inclusive.
    """

    max_lines: int = 20
    max_circles: int = 20
    max_ellipses: int = 20
    min_thickness: int = 3
    thickness_scale: float = 0.03

    def __post_init__(self) -> None:
        counts = {"max_lines": self.max_lines, "max_circles": self.max_circles, "max_ellipses": self.max_ellipses}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.min_thickness < 1 or self.thickness_scale < 0:
            raise ValueError(
                f"need min_thickness >= 1 and thickness_scale >= 0, got {self.min_thickness}, {self.thickness_scale}"
            )

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        height, width = _as_size(size)
        max_thickness = max(self.min_thickness, int((width + height) * self.thickness_scale))

        def randint(low: int, high: int) -> int:  # inclusive, like the reference's random.randint
            return int(rng.integers(low, high, endpoint=True))

        canvas = np.zeros((height, width), np.uint8)
        for _ in range(randint(1, self.max_lines)):
            start = (randint(1, width), randint(1, height))
            end = (randint(1, width), randint(1, height))
            cv2.line(canvas, start, end, 1, randint(self.min_thickness, max_thickness))
        for _ in range(randint(1, self.max_circles)):
            centre = (randint(1, width), randint(1, height))
            cv2.circle(canvas, centre, randint(self.min_thickness, max_thickness), 1, -1)
        for _ in range(randint(1, self.max_ellipses)):
            centre = (randint(1, width), randint(1, height))
            axes = (randint(1, width), randint(1, height))
            rotation, start_angle, end_angle = randint(3, 180), randint(3, 180), randint(3, 180)
            thickness = randint(self.min_thickness, max_thickness)
            cv2.ellipse(canvas, centre, axes, rotation, start_angle, end_angle, 1, thickness)
        return canvas.astype(np.float32)


@dataclass(frozen=True)
class RectangleMasks:
    """One random axis-aligned rectangle whose area is a fraction in `[min_ratio, max_ratio]` of the image.

    The ratio is uniform in that range; the rectangle's height/width is log-uniform in
    `[1 / max_aspect, max_aspect]` (pulled back where the image is too small), its position uniform. With
    `centred=True` it is a square in the middle of the image instead. Pixel rounding never leaves the range:
    a size too small to hold such a rectangle raises ValueError.
    """

    min_ratio: float = 0.1
    max_ratio: float = 0.4
    centred: bool = False
    max_aspect: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.min_ratio <= self.max_ratio <= 1:
            raise ValueError(f"need 0 < min_ratio <= max_ratio <= 1, got {self.min_ratio}, {self.max_ratio}")
        if self.max_aspect < 1:
            raise ValueError(f"max_aspect must be >= 1, got {self.max_aspect}")

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        height, width = _as_size(size)
        area = height * width
        ratio = rng.uniform(self.min_ratio, self.max_ratio)
        # Integer bounds that keep h * w / area inside [min_ratio, max_ratio]; the small epsilon absorbs float
        # error in products such as 0.1 * 100 that should be whole numbers.
        lowest, highest = self.min_ratio * area - 1e-9, self.max_ratio * area + 1e-9
        if self.centred:
            side = min(max(round(math.sqrt(ratio * area)), math.ceil(math.sqrt(lowest))),
                       math.floor(math.sqrt(highest)), min(height, width))
            if side < 1 or side * side < lowest:
                raise self._too_small(height, width)
            mask = np.zeros((height, width), np.float32)
            top, left = (height - side) // 2, (width - side) // 2
            mask[top:top + side, left:left + side] = 1
            return mask
        aspect = math.exp(rng.uniform(-math.log(self.max_aspect), math.log(self.max_aspect)))
        target_height = math.sqrt(ratio * area * aspect)
        # The height nearest the target that leaves a whole width inside the ratio range (usually the first try;
        # small images and narrow ranges need the search).
        for rect_height in _nearest_first(target_height, height):
            width_low = max(1, math.ceil(lowest / rect_height))
            width_high = min(width, math.floor(highest / rect_height))
            if width_low <= width_high:
                rect_width = int(np.clip(round(ratio * area / rect_height), width_low, width_high))
                break
        else:
            raise self._too_small(height, width)
        top = int(rng.integers(0, height - rect_height + 1))
        left = int(rng.integers(0, width - rect_width + 1))
        mask = np.zeros((height, width), np.float32)
        mask[top:top + rect_height, left:left + rect_width] = 1
        return mask

    def _too_small(self, height: int, width: int) -> ValueError:
        shape = "centred square" if self.centred else "rectangle"
        return ValueError(
            f"no {shape} in a {height}x{width} image has a hole ratio in [{self.min_ratio}, {self.max_ratio}]; "
            "use a larger size or a wider ratio range"
        )


# ---------------------------------------------------------------------------------------------------------------
# Masks from a folder


class FolderMasks:
    """Masks read from a folder of images (white = hole), by default the NVIDIA irregular mask set.

    Files: every `.png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp` directly in `root`, sorted by name. A file's *index* is
    its number when every file is named like the NVIDIA set (`00000.png` … `11999.png`, any subset), otherwise its
    position in the sorted listing.

    - `split`: "train" drops indices divisible by 10 (kept for evaluation), "eval" keeps only those, "all" both.
    - `buckets`: hole-ratio buckets 0..5 (0 = 1–10 % … 5 = 50–60 %); None = all masks. With `bucket_by="index"`
      (the default "auto" for NVIDIA names) bucket = index // 2000, as the set is ordered. With `bucket_by="ratio"`
      (the default for other names) each file's hole ratio is measured at its own resolution when the folder is
      opened with `buckets` given (one decode per file), and bucket k holds ratios in [k/10, (k+1)/10); masks with 60 % holes or more are in no bucket.
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
                return _pil_to_unit(image, from_alpha=False) > self.threshold
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
        return _resize_binary(self._native(i), _as_size(size), self.resize, self.threshold)

    def sample(self, rng: np.random.Generator, size: int | tuple[int, int]) -> np.ndarray:
        """A random selected mask at `size`, augmented when `augment=True`."""
        height, width = _as_size(size)
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


def make_mask_source(kind: MaskKind, ratio_range: tuple[float, float] | None = None, **kwargs) -> MaskSource:
    """The mask source called `kind`, built from `kwargs` (its constructor's arguments).

    With `ratio_range=(low, high)` every sample's hole ratio lies in that range (`RatioRangeMasks`).
    """
    classes = {"folder": FolderMasks, "free_form": FreeFormMasks, "irregular": IrregularMasks,
               "rectangle": RectangleMasks}
    if kind not in classes:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(map(repr, MASK_KINDS))}")
    try:
        source = classes[kind](**kwargs)
    except TypeError as error:  # a misspelt or missing argument: say which source refused it
        raise ValueError(f"bad arguments for mask kind {kind!r}: {error}") from error
    if ratio_range is None:
        return source
    low, high = ratio_range
    return RatioRangeMasks(source, low, high)


# ---------------------------------------------------------------------------------------------------------------
# Conversions


def _pil_to_unit(image: Image.Image, from_alpha: bool) -> np.ndarray:
    """A PIL image's luminance (or alpha channel) as float32 `(H, W)` in [0, 1]."""
    if from_alpha:
        if image.mode not in ("RGBA", "LA", "PA", "P") or (image.mode == "P" and "transparency" not in image.info):
            raise ValueError(f"from_alpha=True needs an image with an alpha channel, got mode {image.mode!r}")
        return np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("1", "L", "LA", "RGB", "RGBA", "RGBX"):
        # Luminance only: an RGBA mask's alpha is not its hole (use from_alpha=True for that).
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if image.mode in ("I", "F"):
        return to_unit_range(np.asarray(image), f"a mode {image.mode!r} image", "mask")
    raise ValueError(f"cannot read a mask from a mode {image.mode!r} image; convert it to 'L' (white = hole)")


def _channels_to_unit(values: np.ndarray, from_alpha: bool, what: str) -> np.ndarray:
    """`(H, W, C)` with C in (1, 3, 4), already in [0, 1] → `(H, W)`: luminance, or alpha when `from_alpha`."""
    channels = values.shape[-1]
    if from_alpha:
        if channels != 4:
            raise ValueError(f"from_alpha=True needs an (H, W, 4) array, got {what} with shape {values.shape}")
        return values[..., 3]
    if channels == 1:
        return values[..., 0]
    return values[..., :3] @ np.asarray(_LUMA_WEIGHTS, dtype=np.float32)


def _tensor_to_unit(values: torch.Tensor) -> torch.Tensor:
    """Tensor `(H, W)`, `(1, H, W)` or `(B, 1, H, W)` → float32 `(B, 1, H, W)` in [0, 1], same device."""
    shape = tuple(values.shape)
    if not (values.ndim == 2 or (values.ndim == 3 and shape[0] == 1) or (values.ndim == 4 and shape[1] == 1)):
        raise ValueError(f"a mask tensor must be (H, W), (1, H, W) or (B, 1, H, W), got shape {shape}")
    values = to_unit_range(values.detach(), "the mask tensor", "mask")
    return values.reshape((-1, 1, *shape[-2:]))


def threshold_mask(mask: torch.Tensor | np.ndarray, threshold: float = 0.5) -> torch.Tensor | np.ndarray:
    """Binarise: 1 where `mask > threshold`, else 0; float32, same type and shape as the input."""
    if isinstance(mask, torch.Tensor):
        return (mask > threshold).to(torch.float32)
    if isinstance(mask, np.ndarray):
        return (mask > threshold).astype(np.float32)
    raise ValueError(f"threshold_mask takes a tensor or a numpy array, got {type(mask).__name__}")


def to_mask_tensor(mask_like: Image.Image | np.ndarray | torch.Tensor, size: int | tuple[int, int] | None = None,
                   threshold: float = 0.5, *, from_alpha: bool = False) -> torch.Tensor:
    """Any mask a user may hand us → float32 `(B, 1, H, W)` in {0, 1}, 1 = hole.

    Accepted:
    - PIL images of mode 1, L, LA, P, RGB, RGBA (luminance; white = hole), I;16 (/ 65535), I and F (as arrays).
      For RGBA the alpha channel is NOT the hole: the hole is where the picture is white. Pass `from_alpha=True`
      to read the hole from the alpha channel instead (opaque = hole), e.g. for a transparent-background brush
      layer.
    - numpy arrays `(H, W)`, `(H, W, 1)`, `(H, W, 3)`, `(H, W, 4)` (channels last; luminance, or alpha with
      `from_alpha`), `(B, H, W)` and `(B, 1, H, W)`. A 3-D array whose last axis is 1, 3 or 4 is read as channels.
    - torch tensors `(H, W)`, `(1, H, W)`, `(B, 1, H, W)`; the result stays on the tensor's device.
    Values: bool; uint8 is divided by 255; other integer types must hold only 0 and 1; floats must be finite and
    in [0, 1]. Anything else raises ValueError.
    `size` (int or `(H, W)`): resize by area averaging before thresholding, so the hole ratio is kept. A pixel
    is a hole where its value is strictly greater than `threshold`.
    """
    if isinstance(mask_like, Image.Image):
        values = torch.from_numpy(_pil_to_unit(mask_like, from_alpha))[None, None]
    elif isinstance(mask_like, np.ndarray):
        what = f"the mask array (shape {mask_like.shape})"
        unit = to_unit_range(mask_like, what, "mask")
        if unit.ndim == 3 and unit.shape[-1] in (1, 3, 4):
            values = torch.from_numpy(np.ascontiguousarray(_channels_to_unit(unit, from_alpha, what)))[None, None]
        elif from_alpha:
            raise ValueError(f"from_alpha=True needs an (H, W, 4) array, got shape {mask_like.shape}")
        elif unit.ndim == 2:
            values = torch.from_numpy(unit)[None, None]
        elif unit.ndim == 3:
            values = torch.from_numpy(unit)[:, None]
        elif unit.ndim == 4 and unit.shape[1] == 1:
            values = torch.from_numpy(unit)
        else:
            raise ValueError(
                f"a mask array must be (H, W), (H, W, 1|3|4), (B, H, W) or (B, 1, H, W), got shape {mask_like.shape}"
            )
    elif isinstance(mask_like, torch.Tensor):
        if from_alpha:
            raise ValueError("from_alpha=True applies to RGBA images and (H, W, 4) arrays, not to tensors")
        values = _tensor_to_unit(mask_like)
    else:
        raise ValueError(
            f"cannot read a mask from {type(mask_like).__name__}; pass a PIL image, a numpy array or a torch tensor"
        )
    if size is not None:
        values = F.interpolate(values, size=_as_size(size), mode="area")
    return threshold_mask(values.contiguous(), threshold)


def dilate_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow the holes of `mask` `(B, 1, H, W)` by `pixels` in every direction (square neighbourhood, max-pool)."""
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4:
        shape = tuple(mask.shape) if hasattr(mask, "shape") else type(mask).__name__
        raise ValueError(f"dilate_mask takes a tensor (B, 1, H, W), got {shape}; convert with to_mask_tensor")
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 0:
        raise ValueError(f"pixels must be an int >= 0, got {pixels!r}")
    if pixels == 0:
        return mask.clone()
    return F.max_pool2d(mask, kernel_size=2 * int(pixels) + 1, stride=1, padding=int(pixels))


def mask_to_pil(mask: Image.Image | np.ndarray | torch.Tensor) -> Image.Image:
    """One mask (anything `to_mask_tensor` accepts, batch of one) → PIL mode "L", white (255) = hole."""
    tensor = to_mask_tensor(mask)
    if tensor.shape[0] != 1:
        raise ValueError(f"mask_to_pil takes one mask, got a batch of {tensor.shape[0]}; pass mask[i:i+1]")
    return Image.fromarray((tensor[0, 0].cpu().numpy() * 255).astype(np.uint8))  # 2-D uint8 → mode "L"


def editor_hole(size: tuple[int, int], mask: Image.Image | None = None,
                layers: Sequence[Image.Image] = ()) -> np.ndarray:
    """The hole a user gave an image editor → `(H, W)` bool: the white of an uploaded `mask` (luminance above 0.5)
    and every opaque pixel (alpha above 0.5) of the painted `layers` (transparent images with the strokes).

    `size`: the photo's `(H, W)`. The mask must be the photo's size (else a ValueError says so); a layer of another
    size is the canvas's scaled copy and is resized (nearest). The hole may be empty: check it with `check_hole`
    once everything that adds to it is in.
    """
    height, width = size
    hole = np.zeros((height, width), dtype=bool)
    if mask is not None:
        if mask.size != (width, height):
            raise ValueError(f"mask is {mask.size[0]}x{mask.size[1]} but image is {width}x{height}; pass a mask of "
                             "the image's size")
        hole |= _pil_to_unit(mask, from_alpha=False) > 0.5
    for layer in layers:
        stroke = _pil_to_unit(layer, from_alpha=True) > 0.5
        if stroke.shape != hole.shape:  # the canvas may hold a scaled copy of the photo
            stroke = cv2.resize(stroke.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        hole |= stroke
    return hole


def check_hole(hole: np.ndarray, mask: Image.Image | None = None) -> None:
    """Refuse, with what to do, an empty hole `(H, W)` (with a hint when the uploaded `mask`'s strokes are in its
    transparency rather than white) and a hole covering the whole photo."""
    if not hole.any():
        hint = ""
        if mask is not None and _drawn_in_transparency(mask):
            hint = (" the uploaded mask has no white pixel, but its transparency varies: the hole must be white, not "
                    "transparent (white = hole, black = keep);")
        raise ValueError(f"the mask is empty:{hint} paint over the part of the face to fill in, or upload a mask "
                         "(white = hole)")
    if hole.all():
        raise ValueError("the mask covers the whole photo: leave the rest of the face visible, it is what the hole "
                         "is filled from")


def _drawn_in_transparency(mask: Image.Image) -> bool:
    """Whether `mask` has an alpha channel that is not uniform (strokes drawn as opacity, not as white)."""
    if mask.mode not in ("RGBA", "LA", "PA") and not (mask.mode == "P" and "transparency" in mask.info):
        return False
    low, high = mask.convert("RGBA").getchannel("A").getextrema()
    return low != high


def layer_image(hole: np.ndarray) -> Image.Image:
    """A hole `(H, W)` bool as an image-editor layer: white and opaque on the hole, transparent elsewhere (RGBA)."""
    alpha = np.asarray(hole, dtype=bool).astype(np.uint8) * 255
    return Image.fromarray(np.dstack([alpha, alpha, alpha, alpha]))  # (H, W, 4) uint8: RGBA
