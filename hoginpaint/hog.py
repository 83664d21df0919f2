"""Histograms of oriented gradients, and the HOG structure image, batched in torch.

HOG (Dalal & Triggs, CVPR 2005) as scikit-image's `skimage.feature.hog` computes it, so that features and pictures
match it to float tolerance:

1. central-difference gradients (zero on the border rows/columns); for RGB input, per pixel the gradient of the
   channel with the largest magnitude (skimage's ``channel_axis=-1``);
2. unsigned orientations in [0, 180) degrees, hard-binned into ``orientations`` bins, each pixel voting its
   gradient magnitude into the bin of its own cell; the cell histogram is the mean over the cell's pixels;
3. for the feature vector, blocks of ``cells_per_block`` cells normalised by L1, L1-sqrt, L2 or L2-Hys.

The **HOG image** is what ``hog(..., visualize=True)`` draws: in every cell, for every orientation bin, a line through
the cell centre perpendicular to the bin's mid-angle, whose pixels receive the cell's histogram value. Every stroke
lies inside its cell, so the picture is a transposed convolution of the histograms with one fixed stroke kernel per
orientation and stride = cell size: no loop over cells.

Gradients are computed in the input's precision, as skimage does (float64 input in float64, other float input in
float32); the bulk of the work then runs in float32, and the few pixels whose bin or strongest channel hangs on the
last bit are recomputed with numpy's routines, skimage's own, so that every pixel lands where skimage puts it.
Results are float32.

The structure stage of the paper predicts this HOG image. For learning, `scale_hog_image` maps it to [0, 1] by a fixed
curve; it never looks at the image (a per-image maximum would leak the hole's content into the known cells' scale).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

BlockNorm = Literal["L1", "L1-sqrt", "L2", "L2-Hys"]

# skimage.color.rgb2gray's weights (ITU-R BT.709 luma).
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)

# The scaled HOG image is 1 - exp(-hog / HOG_IMAGE_SCALE). Measured on 200 validation faces at 256x256, 8-pixel
# cells, 9 orientations, gray input in [0, 1]: the non-zero stroke pixels have median 0.003, 90th percentile 0.021
# and 99th percentile 0.074, which this scale maps to 0.06, 0.34 and 0.77: faint texture stays visible and strong
# edges keep contrast without saturating. Smaller images have larger per-pixel gradients (64x64 with 4-pixel cells:
# 90th percentile 0.11), so a model trained at another resolution records its own scale in its config.
HOG_IMAGE_SCALE = 0.05

_EPS = 1e-5  # skimage's block-normalisation epsilon


@dataclass(frozen=True)
class HOGSettings:
    """How a model's HOG images are made; the structure generator records these in its config."""

    orientations: int = 9
    pixels_per_cell: int = 8
    scale: float = HOG_IMAGE_SCALE


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """Luminance of `images` `(B, 3, H, W)` with skimage's `rgb2gray` weights → `(B, 1, H, W)`.

    One-channel input is returned as is.
    """
    _check_images(images)
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch tensor (B, C, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must have shape (B, 1, H, W) or (B, 3, H, W), got {tuple(images.shape)}; "
            "add a batch dimension with images[None] if you pass a single image"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [0, 1], got {images.dtype}; divide uint8 data by 255")


def _check_cell(pixels_per_cell: int, orientations: int, height: int, width: int) -> None:
    if pixels_per_cell < 1 or orientations < 1:
        raise ValueError(
            f"pixels_per_cell and orientations must be positive, got {pixels_per_cell} and {orientations}"
        )
    if height < max(pixels_per_cell, 3) or width < max(pixels_per_cell, 3):
        raise ValueError(
            f"an image of {height}x{width} is too small for HOG with {pixels_per_cell}-pixel cells; "
            f"it needs at least {max(pixels_per_cell, 3)} pixels on each side"
        )


def _gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences along rows and columns, zero on the border: `(B, C, H, W)` each, float64."""
    g_row = F.pad(images[:, :, 2:, :] - images[:, :, :-2, :], (0, 0, 1, 1))
    g_col = F.pad(images[:, :, :, 2:] - images[:, :, :, :-2], (1, 1, 0, 0))
    return g_row, g_col


# The bulk of the work runs in float32 torch (fast, multi-threaded, any device). The last bit matters only where it
# changes a decision: an orientation on a bin edge (45 degrees is common with 8-bit data) and, in RGB, two channels
# whose gradient magnitudes tie (5/255, 5/255 against 7/255, 1/255). Pixels near such a decision (a few hundred in a
# 256x256 face) are recomputed in float64 with numpy's routines, the ones skimage uses, so that every pixel lands
# where skimage puts it.
_NEAR = 1e-4


def _libm(function, *tensors: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """`function` (numpy ufuncs) applied on the CPU in `dtype` to small tensors; returned in float64 on their device."""
    arrays = [t.detach().to("cpu", dtype).numpy() for t in tensors]
    return torch.from_numpy(np.asarray(function(*arrays), dtype=np.float64)).to(tensors[0].device)


def _exact_gradients(x: torch.Tensor, b: torch.Tensor, r: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Central differences of `x` `(B, C, H, W)` in its own precision at pixels (b, r, c) → `(K, C)` each."""
    height, width = x.shape[2:]
    inside_r = ((r > 0) & (r < height - 1)).unsqueeze(1)
    inside_c = ((c > 0) & (c < width - 1)).unsqueeze(1)
    g_row = x[b, :, (r + 1).clamp_max(height - 1), c] - x[b, :, (r - 1).clamp_min(0), c]
    g_col = x[b, :, r, (c + 1).clamp_max(width - 1)] - x[b, :, r, (c - 1).clamp_min(0)]
    return torch.where(inside_r, g_row, 0.0), torch.where(inside_c, g_col, 0.0)


def hog_histograms(
    images: torch.Tensor,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    transform_sqrt: bool = False,
) -> torch.Tensor:
    """Cell orientation histograms of `images` `(B, C, H, W)` in [0, 1], C = 1 (gray) or 3 (RGB).

    Returns float32 `(B, orientations, H // pixels_per_cell, W // pixels_per_cell)`, equal to skimage's
    ``orientation_histogram`` for the same image in the same precision (float64 input is computed in float64, other
    float input in float32, as skimage does; cells are square; pixels beyond the last whole cell are ignored, as
    there).
    """
    _check_images(images)
    batch, channels, height, width = images.shape
    _check_cell(pixels_per_cell, orientations, height, width)
    # skimage computes in the input's precision: float32 stays float32, float64 stays float64 (and so do we).
    x = images.detach().to(torch.float64 if images.dtype == torch.float64 else torch.float32)
    if transform_sqrt:
        x = x.clamp_min(0).sqrt()
    cells_h, cells_w = height // pixels_per_cell, width // pixels_per_cell
    h, w = cells_h * pixels_per_cell, cells_w * pixels_per_cell
    g_row, g_col = _gradients(x)
    # Pixels beyond the last whole cell vote nowhere (their values were needed only as neighbours).
    g_row, g_col = g_row[:, :, :h, :w].to(torch.float32), g_col[:, :, :h, :w].to(torch.float32)
    magnitude = torch.hypot(g_row, g_col)  # (B, C, h, w)

    if channels > 1:
        # skimage keeps, per pixel, the channel whose gradient is strongest (the first on exact ties).
        top_two = magnitude.topk(2, dim=1).values
        b, r, c = (top_two[:, 0] - top_two[:, 1] <= _NEAR * top_two[:, 0]).nonzero(as_tuple=True)
        strongest = magnitude.argmax(dim=1, keepdim=True)
        if b.numel():
            # skimage compares the channels' magnitudes in the image's precision.
            exact = _libm(np.hypot, *_exact_gradients(x, b, r, c), dtype=x.dtype).argmax(dim=1)  # (K,)
            strongest[b, 0, r, c] = exact.to(strongest.device)
        g_row, g_col = g_row.gather(1, strongest), g_col.gather(1, strongest)
        magnitude = magnitude.gather(1, strongest)  # (B, 1, h, w)
    else:
        strongest = None

    # skimage puts a pixel in bin i when i * step <= angle < (i + 1) * step, with angle = rad2deg(atan2) % 180
    # and the edges computed as float64 products; an angle that rounds to 180 falls in no bin, there and here.
    step = 180.0 / orientations
    position = torch.remainder(torch.atan2(g_row, g_col), math.pi) * (orientations / math.pi)  # (B, 1, h, w), bins
    # A non-finite gradient (NaN in the input) votes its NaN into bin 0, so that NaN in gives NaN out.
    bins = torch.where(torch.isfinite(position), torch.floor(position), 0.0).clamp_(max=orientations - 1)
    # Axis-aligned gradients (flat rows or columns, very common) give exactly 0 or 90 in both libraries.
    near_edge = ((position - torch.round(position)).abs() < _NEAR) & (g_row != 0) & (g_col != 0)
    b, _, r, c = near_edge.nonzero(as_tuple=True)
    if b.numel():
        exact_row, exact_col = _exact_gradients(x, b, r, c)  # (K, C)
        if strongest is not None:
            pick = strongest[b, 0, r, c].unsqueeze(1)
            exact_row, exact_col = exact_row.gather(1, pick), exact_col.gather(1, pick)
        angle = _libm(lambda gr, gc: np.rad2deg(np.arctan2(gr, gc)) % 180, exact_row[:, 0], exact_col[:, 0])
        edges = torch.arange(orientations + 1, dtype=torch.float64, device=angle.device) * step
        exact_bin = torch.floor(angle / step).clamp_(max=orientations - 1)
        exact_bin -= (angle < edges[exact_bin.long()]).to(exact_bin.dtype)
        exact_bin += (angle >= edges[exact_bin.long() + 1]).to(exact_bin.dtype)
        bins[b, 0, r, c] = exact_bin.to(bins.dtype)
    weights = torch.where(bins < orientations, magnitude, 0.0).to(torch.float64)

    # One flat histogram index per pixel, (sample, bin, cell), so that one bincount fills the whole batch.
    cell_count = cells_h * cells_w
    total = batch * orientations * cell_count
    # float32 holds every index exactly below 2**24 (64 faces at 256x256 need 590k); larger batches use float64.
    index_type = torch.float32 if total < 2**24 else torch.float64
    rows = torch.arange(h, device=images.device, dtype=index_type) // pixels_per_cell
    cols = torch.arange(w, device=images.device, dtype=index_type) // pixels_per_cell
    samples = torch.arange(batch, device=images.device, dtype=index_type).view(batch, 1, 1, 1)
    base = samples * (orientations * cell_count) + rows.view(-1, 1) * cells_w + cols.view(1, -1)  # (B, 1, h, w)
    flat = torch.addcmul(base, bins.to(index_type), torch.tensor(float(cell_count), dtype=index_type)).long()
    total = batch * orientations * cell_count
    histograms = torch.bincount(flat.flatten(), weights.flatten(), minlength=total)[:total]
    histograms = histograms / (pixels_per_cell * pixels_per_cell)  # the mean over the cell's pixels
    return histograms.to(torch.float32).view(batch, orientations, cells_h, cells_w)


def _normalize_blocks(blocks: torch.Tensor, method: BlockNorm) -> torch.Tensor:
    """skimage's `_hog_normalize_block` over the last dimension of `blocks` `(..., block_size)`, float64."""
    if method == "L1":
        return blocks / (blocks.abs().sum(-1, keepdim=True) + _EPS)
    if method == "L1-sqrt":
        return torch.sqrt(blocks / (blocks.abs().sum(-1, keepdim=True) + _EPS))
    if method == "L2":
        return blocks / torch.sqrt((blocks**2).sum(-1, keepdim=True) + _EPS**2)
    if method == "L2-Hys":
        out = blocks / torch.sqrt((blocks**2).sum(-1, keepdim=True) + _EPS**2)
        out = out.clamp_max(0.2)
        return out / torch.sqrt((out**2).sum(-1, keepdim=True) + _EPS**2)
    raise ValueError(f"unknown block_norm {method!r}; expected one of 'L1', 'L1-sqrt', 'L2', 'L2-Hys'")


def hog_features(
    images: torch.Tensor,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    cells_per_block: int = 3,
    block_norm: BlockNorm = "L2-Hys",
    transform_sqrt: bool = False,
) -> torch.Tensor:
    """HOG feature vectors of `images` `(B, C, H, W)` in [0, 1] → float32 `(B, D)`.

    Equal to ``skimage.feature.hog(image, ..., feature_vector=True)`` with the same arguments (``channel_axis=-1``
    for RGB), D = blocks_rows * blocks_cols * cells_per_block**2 * orientations in skimage's order.
    """
    histograms = hog_histograms(images, orientations, pixels_per_cell, transform_sqrt).to(torch.float64)
    batch, _, cells_h, cells_w = histograms.shape
    blocks_h, blocks_w = cells_h - cells_per_block + 1, cells_w - cells_per_block + 1
    if blocks_h <= 0 or blocks_w <= 0:
        side = cells_per_block * pixels_per_cell
        raise ValueError(
            f"an image of {images.shape[2]}x{images.shape[3]} is too small for {cells_per_block}x{cells_per_block}"
            f"-cell blocks of {pixels_per_cell}-pixel cells; it needs at least {side}x{side} pixels"
        )
    cells = histograms.permute(0, 2, 3, 1)  # (B, H/p, W/p, n), skimage's layout
    blocks = cells.unfold(1, cells_per_block, 1).unfold(2, cells_per_block, 1)  # (B, bh, bw, n, cpb, cpb)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3).reshape(batch, blocks_h, blocks_w, -1)  # (B, bh, bw, cpb*cpb*n)
    return _normalize_blocks(blocks, block_norm).reshape(batch, -1).to(torch.float32)


def _end_offsets(centre: int, delta: float) -> tuple[int, int]:
    """Offsets from `centre` of a stroke's two end points along one axis, by skimage's expressions.

    ``int(centre - delta)`` truncates a sum that was rounded at `centre`'s magnitude, so a stroke's shape can differ
    between the first cell and later ones (e.g. 7-pixel cells); the offsets are therefore computed per centre.
    """
    return int(centre - delta) - centre, int(centre + delta) - centre


@functools.lru_cache(maxsize=32)
def _stroke_plan(
    orientations: int, pixels_per_cell: int, cells_h: int, cells_w: int
) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]:
    """The strokes skimage draws, grouped by shape: ``(row_cells, col_cells, kernel)`` triples.

    `row_cells` `(cells_h,)` and `col_cells` `(cells_w,)` select the cells whose strokes have the shapes in `kernel`
    `(orientations, 1, p, p)` (0/1, float64). Almost always one group; floating-point rounding of the end points can
    split off the first row or column of cells.
    """
    from skimage.draw import line  # the rasteriser skimage's picture uses

    radius = pixels_per_cell // 2 - 1
    mids = [math.pi * (o + 0.5) / orientations for o in range(orientations)]
    dr = [radius * math.sin(mid) for mid in mids]
    dc = [radius * math.cos(mid) for mid in mids]

    def groups(count: int, deltas: list[float], sign: float) -> dict[tuple, list[int]]:
        by_shape: dict[tuple, list[int]] = {}
        for index in range(count):
            centre = index * pixels_per_cell + pixels_per_cell // 2
            shape = tuple(_end_offsets(centre, sign * d) for d in deltas)
            by_shape.setdefault(shape, []).append(index)
        return by_shape

    # Rows run from centre - dc to centre + dc; columns from centre + dr to centre - dr.
    row_groups = groups(cells_h, dc, 1.0)
    col_groups = groups(cells_w, dr, -1.0)
    local = pixels_per_cell // 2
    plan = []
    for row_shape, rows in row_groups.items():
        for col_shape, cols in col_groups.items():
            kernel = torch.zeros(orientations, 1, pixels_per_cell, pixels_per_cell, dtype=torch.float64)
            for o in range(orientations):
                (r0, r1), (c0, c1) = row_shape[o], col_shape[o]
                rr, cc = line(local + r0, local + c0, local + r1, local + c1)
                kernel[o, 0, torch.from_numpy(rr), torch.from_numpy(cc)] = 1.0
            row_cells = torch.zeros(cells_h, dtype=torch.float64)
            col_cells = torch.zeros(cells_w, dtype=torch.float64)
            row_cells[rows] = 1.0
            col_cells[cols] = 1.0
            plan.append((row_cells, col_cells, kernel))
    return tuple(plan)


def hog_image(
    images: torch.Tensor,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    transform_sqrt: bool = False,
) -> torch.Tensor:
    """The HOG picture of `images` `(B, C, H, W)` in [0, 1] → float32 `(B, 1, H, W)`, unscaled.

    Equal to the second output of ``skimage.feature.hog(image, visualize=True)`` with the same arguments: strokes
    stamped per cell, zero beyond the last whole cell.
    """
    histograms = hog_histograms(images, orientations, pixels_per_cell, transform_sqrt)  # float32
    _, _, cells_h, cells_w = histograms.shape
    device = images.device
    plan = _stroke_plan(orientations, pixels_per_cell, cells_h, cells_w)
    picture = None
    for row_cells, col_cells, kernel in plan:
        selected = histograms
        if len(plan) > 1:
            selected = histograms * (row_cells.view(-1, 1) * col_cells.view(1, -1)).to(device, torch.float32)
        # Strokes stay inside their cell: a transposed conv with stride = kernel = cell size stamps them all.
        stamped = F.conv_transpose2d(selected, kernel.to(device, torch.float32), stride=pixels_per_cell)
        picture = stamped if picture is None else picture + stamped  # (B, 1, H/p*p, W/p*p)
    height, width = images.shape[2:]
    if picture.shape[2:] != (height, width):
        picture = F.pad(picture, (0, width - picture.shape[3], 0, height - picture.shape[2]))
    return picture


def scale_hog_image(hog: torch.Tensor, scale: float = HOG_IMAGE_SCALE) -> torch.Tensor:
    """Map an unscaled HOG image (>= 0) to [0, 1) by the fixed curve ``1 - exp(-hog / scale)``."""
    return 1.0 - torch.exp(-hog.clamp_min(0) / scale)


def unscale_hog_image(hog_scaled: torch.Tensor, scale: float = HOG_IMAGE_SCALE) -> torch.Tensor:
    """Inverse of `scale_hog_image` (values at 1 map to a large finite value)."""
    return -scale * torch.log1p(-hog_scaled.clamp(0.0, 1.0 - 1e-6))


def hole_cells(mask: torch.Tensor, pixels_per_cell: int = 8) -> torch.Tensor:
    """Pixels of every cell whose HOG the hole can change: `mask` `(B, 1, H, W)`, 1 = hole → `(B, 1, H, W)` in {0, 1}.

    A central difference reads one pixel on each side, so a cell bordering the hole is changed by it too: the hole
    is grown by one pixel before asking which cells it touches. Pixels beyond the last whole cell (no HOG there)
    count as hole cells wherever they are in the grown hole.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (B, 1, H, W), got {tuple(mask.shape)}")
    height, width = mask.shape[2:]
    grown = F.max_pool2d(mask.float(), kernel_size=3, stride=1, padding=1)
    padded_h = -(-height // pixels_per_cell) * pixels_per_cell
    padded_w = -(-width // pixels_per_cell) * pixels_per_cell
    grown_padded = F.pad(grown, (0, padded_w - width, 0, padded_h - height))
    touched = F.max_pool2d(grown_padded, pixels_per_cell)  # (B, 1, ceil(H/p), ceil(W/p))
    cells = F.interpolate(touched, scale_factor=pixels_per_cell, mode="nearest")
    return cells[:, :, :height, :width]


def guidance_target(images: torch.Tensor, settings: HOGSettings = HOGSettings()) -> torch.Tensor:
    """The scaled HOG image of `images` `(B, 3 or 1, H, W)`, made from their luminance → `(B, 1, H, W)` in [0, 1].

    This is what G_H learns to predict and what guides G.
    """
    hog = hog_image(to_gray(images), settings.orientations, settings.pixels_per_cell)
    return scale_hog_image(hog, settings.scale).to(images.dtype)


def composite_guidance(
    hog_known: torch.Tensor,
    hog_pred: torch.Tensor,
    mask: torch.Tensor,
    pixels_per_cell: int = 8,
) -> torch.Tensor:
    """The guidance HOG image: cells the hole touches from `hog_pred`, the others from `hog_known`.

    All `(B, 1, H, W)`; `mask` 1 = hole.
    """
    if hog_known.shape != hog_pred.shape:
        raise ValueError(f"hog_known {tuple(hog_known.shape)} and hog_pred {tuple(hog_pred.shape)} differ in shape")
    cells = hole_cells(mask, pixels_per_cell).to(hog_pred.dtype)
    return hog_known * (1 - cells) + hog_pred * cells
