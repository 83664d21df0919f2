"""Masks drawn at random: DeepFill v2's brush strokes, the PConv lines-circles-ellipses, and rectangles.

Every class is a `hoginpaint.masks.MaskSource`: `sample(rng, size)` → `(H, W)` float32 in {0, 1}, 1 = hole, drawn with
the `np.random.Generator` passed in only (the same seed gives the same mask).

- `FreeFormMasks`: DeepFill v2's free-form brush strokes (Yu et al., "Free-Form Image Inpainting with Gated
  Convolution", ICCV 2019), `brush_stroke_mask` of the official `generative_inpainting` code.
- `IrregularMasks`: random lines, circles and elliptic arcs, the generator commonly used to reproduce Liu et al.,
  "Image Inpainting for Irregular Holes Using Partial Convolutions" (ECCV 2018) (`MaskGenerator._generate_mask` of the
  PConv-Keras re-implementation).
- `RectangleMasks`: one random axis-aligned rectangle (or a centred square), the classic "box" hole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw

from hoginpaint.masks.user_input import as_size

# DeepFill v2 draws its brush widths for 256x256 training images; widths scale with the image.
FREE_FORM_REFERENCE_SIZE = 256


def _nearest_first(target: float, upper: int) -> Iterator[int]:
    """The integers 1..upper, starting at the one nearest `target` and moving outwards."""
    start = min(max(round(target), 1), upper)
    yield start
    for step in range(1, upper):
        for candidate in (start - step, start + step):
            if 1 <= candidate <= upper:
                yield candidate



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
        height, width = as_size(size)
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
        height, width = as_size(size)
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
        height, width = as_size(size)
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
