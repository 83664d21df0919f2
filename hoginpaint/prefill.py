"""Classical pre-fill of a hole, batched in torch: the floor that the HOG-guided generators refine.

A generator that starts from a good classical fill and predicts a correction cannot do worse than that fill while its
correction is zero (the generators' last layer starts at zero), and learning only has to add what the fill misses:
structure and texture, not the mean colour of a cheek. The fills here are the smooth interpolants of the hole from
its rim:

- ``harmonic``: Laplace's equation Δu = 0 in the hole, u = the image on the rim (a membrane).
- ``biharmonic``: Δ²u = 0 in the hole (a thin plate; Damelin & Hoang 2018, scikit-image's
  `inpaint_biharmonic`): it continues gradients across the rim, not only values, and fills faces markedly better.
- ``none``: the hole stays zero (the paper's configuration).

Both are solved as the least-squares problem "minimise Σ (L^k u)² over the hole pixels" with L the 5-point Laplacian
of the grid graph (replicate padding, so L is symmetric), by conjugate gradients, coarse to fine: the hole is first
solved on an area-averaged pyramid down to ~8 px, each level's solution upsampled as the next level's starting
point. Conjugate gradients alone would need thousands of iterations for the biharmonic operator's condition number
(~N⁴ for a hole N pixels across); the pyramid gives each level a start whose error is high-frequency, which a few
dozen iterations remove. Every (image, channel) is an independent system solved in the same batched tensors;
iterations are fixed (no data-dependent stopping), so the cost is predictable and the result deterministic.

Measured against scikit-image's biharmonic on real faces (`tests/test_prefill.py`, `benchmarks/bench_prefill.py`).
"""
from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

PrefillKind = Literal["none", "harmonic", "biharmonic"]
PREFILL_KINDS: tuple[str, ...] = get_args(PrefillKind)

# Below this side a pyramid level is not halved further.
_COARSEST_SIDE = 8
# Conjugate-gradient iterations at the coarsest level (solved nearly exactly) and at every finer one.
_COARSE_ITERATIONS = 200
_FINE_ITERATIONS = 40


def check_prefill_kind(kind: object) -> None:
    """Raise a ValueError unless `kind` is one of `PREFILL_KINDS`."""
    if kind not in PREFILL_KINDS:
        raise ValueError(f"unknown prefill {kind!r}; expected one of {', '.join(PREFILL_KINDS)}")


def check_correction_ramp(pixels: object, kind: str) -> None:
    """A correction ramp is a number of pixels >= 0, and only a generator that refines a pre-fill has one."""
    if isinstance(pixels, bool) or not isinstance(pixels, (int, float)) or not 0 <= pixels < float("inf"):
        raise ValueError(f"correction_ramp must be a number of pixels >= 0 (0: off), got {pixels!r}")
    if pixels > 0 and kind == "none":
        raise ValueError("correction_ramp fades a correction of a pre-fill in from the hole's rim; a generator "
                         "without a pre-fill (prefill='none') has none: pass correction_ramp=0 or a pre-fill")


def check_correction_lowpass(period: object, kind: str) -> None:
    """A correction low-pass is a period in pixels: 0 (off) or an even int >= 2 (its filter is centred then); only a
    generator with a pre-fill has one."""
    if isinstance(period, bool) or not isinstance(period, int) or period < 0 or period % 2:
        raise ValueError(f"correction_lowpass must be 0 (off) or an even period in pixels (e.g. 4), got {period!r}")
    if period and kind == "none":
        raise ValueError("correction_lowpass smooths a correction of a pre-fill; a generator without a pre-fill "
                         "(prefill='none') has none: pass correction_lowpass=0 or a pre-fill")


def _laplacian(u: torch.Tensor) -> torch.Tensor:
    """The grid graph's Laplacian Σ_neighbours (u_j - u_i) of `u` `(N, 1, H, W)` (replicate padding: symmetric)."""
    padded = F.pad(u, (1, 1, 1, 1), mode="replicate")
    return (padded[:, :, :-2, 1:-1] + padded[:, :, 2:, 1:-1] + padded[:, :, 1:-1, :-2] + padded[:, :, 1:-1, 2:]
            - 4 * u)


def _operator(u: torch.Tensor, kind: str) -> torch.Tensor:
    """The normal-equation operator: -L (harmonic) or L² (biharmonic), both symmetric positive semi-definite."""
    return -_laplacian(u) if kind == "harmonic" else _laplacian(_laplacian(u))


def _conjugate_gradients(values: torch.Tensor, hole: torch.Tensor, kind: str, iterations: int) -> torch.Tensor:
    """Refine the hole of `values` `(N, 1, H, W)` (hole `(N, 1, H, W)` in {0, 1}) towards the solution; the known
    pixels are the boundary condition and never change."""
    def apply(direction: torch.Tensor) -> torch.Tensor:
        return _operator(direction, kind) * hole

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1): one system per image and channel

    residual = -_operator(values, kind) * hole  # b - A x over the hole
    direction = residual
    residual_norm = dot(residual, residual)
    for _ in range(iterations):
        product = apply(direction)
        curvature = dot(direction, product)
        step = residual_norm / curvature.clamp_min(1e-30)
        values = values + step * direction
        residual = residual - step * product
        new_norm = dot(residual, residual)
        direction = residual + (new_norm / residual_norm.clamp_min(1e-30)) * direction
        residual_norm = new_norm
    return values


def _downsample(values: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Halve a level: each coarse pixel is the mean of its known children, and known if any child is."""
    height, width = values.shape[-2:]
    size = ((height + 1) // 2, (width + 1) // 2)
    pad = (0, width % 2, 0, height % 2)  # odd sides: the last row/column is pooled with its replicate
    values = F.pad(values * known, pad, mode="replicate")
    known = F.pad(known, pad, mode="replicate")
    weight = F.avg_pool2d(known, 2)
    coarse = F.avg_pool2d(values, 2) / weight.clamp_min(1e-12)
    assert coarse.shape[-2:] == size
    return coarse, (weight > 0).to(values.dtype)


def _solve(values: torch.Tensor, known: torch.Tensor, kind: str, iterations: int | None = None) -> torch.Tensor:
    """Fill the unknown pixels of `values` `(N, 1, H, W)`, coarse to fine; every system has a known pixel.
    `iterations`: conjugate-gradient iterations at this (the finest) level; coarser levels use the defaults."""
    height, width = values.shape[-2:]
    if min(height, width) > _COARSEST_SIDE:
        coarse_values, coarse_known = _downsample(values, known)
        start = _solve(coarse_values, coarse_known, kind)
        start = F.interpolate(start, size=(height, width), mode="bilinear", align_corners=False)
        values = values * known + start * (1 - known)
        iterations = iterations or _FINE_ITERATIONS
    else:
        mean = (values * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
        values = values * known + mean * (1 - known)
        iterations = max(iterations or 0, _COARSE_ITERATIONS)
    return _conjugate_gradients(values, 1 - known, kind, iterations)


def prefill(image: torch.Tensor, mask: torch.Tensor, kind: PrefillKind = "biharmonic",
            iterations: int | None = None) -> torch.Tensor:
    """`image` `(B, C, H, W)` with the hole of `mask` `(B, 1, H, W)` (1 = hole) filled by `kind`.

    Known pixels are returned as they are (bit for bit); whatever the hole holds in `image` is never read. ``none``
    returns the image with the hole zeroed. An image whose mask covers it entirely is filled with 0.5 (there is no
    rim to interpolate from). Runs in float32 (float64 input stays float64) and under `torch.no_grad`: a pre-fill is
    an input, not something to differentiate. Output in the input's dtype.

    `iterations`: conjugate-gradient iterations at full resolution (default 40). Thin holes (1-10 %) converge
    slowest: 150 iterations bring their biharmonic fill to within 0.05 dB of scikit-image's exact solve, at about 3x
    the cost (`benchmarks/bench_prefill.py`); training uses the default, a single inference call can afford more.
    """
    check_prefill_kind(kind)
    if image.ndim != 4 or mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] \
            or mask.shape[2:] != image.shape[2:]:
        raise ValueError(f"prefill takes image (B, C, H, W) and mask (B, 1, H, W) of the same B, H, W; got "
                         f"{tuple(image.shape)} and {tuple(mask.shape)}")
    hole = (mask >= 0.5).to(image.dtype)
    masked = image * (1 - hole)
    if kind == "none" or not bool(hole.any()):
        return masked
    batch, channels, height, width = image.shape
    work_dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        values = masked.to(work_dtype).reshape(batch * channels, 1, height, width)  # (B·C, 1, H, W)
        known = (1 - hole).to(work_dtype).repeat_interleave(channels, dim=0)  # (B·C, 1, H, W)
        has_known = known.flatten(1).amax(1) > 0  # (B·C,)
        filled = torch.full_like(values, 0.5)
        if bool(has_known.any()):
            filled[has_known] = _solve(values[has_known], known[has_known], kind, iterations)
        filled = filled.reshape(batch, channels, height, width).clamp(0, 1).to(image.dtype)
    return torch.where(hole.bool(), filled, image)


def prefill_around_hole(image: torch.Tensor, mask: torch.Tensor, kind: PrefillKind = "biharmonic",
                        margin: int = 16, iterations: int | None = None, exact_up_to: int = 0) -> torch.Tensor:
    """`prefill` of one image `(C, H, W)` with `mask` `(1, H, W)`, solved on the hole's bounding box only.

    The box is grown by `margin` pixels of known context on every side (clipped to the image): the fill of a hole
    depends on its rim, so the cost follows the hole's size, not the photo's. Outside the box the image is returned
    as it is. `exact_up_to`: a biharmonic hole of at most this many pixels is solved exactly instead, by
    scikit-image's sparse direct solve (whose cost grows with the hole's pixels: cheap for small holes, where the
    conjugate gradients converge slowest).
    """
    check_prefill_kind(kind)
    hole = mask[0] >= 0.5
    if kind == "none" or not bool(hole.any()):
        return image * (~hole).to(image.dtype)
    rows = torch.nonzero(hole.any(dim=1)).flatten()
    columns = torch.nonzero(hole.any(dim=0)).flatten()
    top, bottom = max(0, int(rows[0]) - margin), min(image.shape[1], int(rows[-1]) + margin + 1)
    left, right = max(0, int(columns[0]) - margin), min(image.shape[2], int(columns[-1]) + margin + 1)
    result = image.clone()
    box = (slice(None), slice(top, bottom), slice(left, right))
    if kind == "biharmonic" and int(hole.sum()) <= exact_up_to:
        from skimage.restoration import inpaint_biharmonic

        known = image[box] * (~hole[box[1:]]).to(image.dtype)  # the hole's content is never read
        exact = inpaint_biharmonic(known.permute(1, 2, 0).double().numpy(), hole[box[1:]].numpy(), channel_axis=-1)
        filled = torch.from_numpy(exact).permute(2, 0, 1).clamp(0, 1).to(image.dtype)
        result[box] = torch.where(hole[box[1:]], filled, image[box])
        return result
    result[box] = prefill(image[box][None], mask[box][None], kind, iterations)[0]
    return result


def correction_ramp(mask: torch.Tensor, pixels: float) -> torch.Tensor:
    """How much of a learned correction of the fill to keep at each pixel of the hole of `mask` `(B, 1, H, W)`.

    `min(d, pixels) / pixels`, with d a hole pixel's chessboard distance to the nearest known pixel (1 on the hole's
    rim; the image border does not count as known); 0 outside the hole; all ones in the hole when `pixels` <= 0.
    Near the rim the classical fill is already close to exact — its error grows with the distance to known pixels —
    and a learned correction there mostly adds error, most of all when a correction learned at a lower resolution is
    upsampled onto a full-resolution fill. The ramp fades the correction in over `pixels` pixels (measured in
    `docs/correction_ramp.md`).
    """
    hole = (mask >= 0.5).to(torch.float32)
    if pixels <= 0:
        return hole.to(mask.dtype)
    known = 1 - hole
    distance = torch.zeros_like(hole)
    for _ in range(int(torch.tensor(float(pixels)).ceil())):
        distance = distance + (1 - known)  # +1 wherever the pixel is still farther than the grown known region
        known = F.max_pool2d(known, 3, stride=1, padding=1)
    return ((distance / pixels).clamp(max=1) * hole).to(mask.dtype)


def lowpass_kernel(period: int) -> torch.Tensor:
    """The centred `period + 1`-tap filter that removes every period dividing `period` pixels → `(period + 1,)`.

    A box of `period` taps convolved with [1, 1] / 2: its response is zero at the frequencies k / `period`
    (k = 1 … `period` - 1) and at 1/2, and it is symmetric, so it shifts nothing. For 4: [1, 2, 2, 2, 1] / 8.
    """
    kernel = torch.zeros(period + 1, dtype=torch.float64)
    kernel[:-1] += 0.5 / period  # the box ...
    kernel[1:] += 0.5 / period  # ... and the box one pixel on: their mean
    return kernel.float()


def lowpass_correction(correction: torch.Tensor, mask: torch.Tensor, period: int) -> torch.Tensor:
    """`correction` `(B, C, H, W)` of the hole of `mask` `(B, 1, H, W)`, without its content at `period` pixels.

    A generator whose encoder halves the image twice works on a grid of 4x4 pixels, and with 4-pixel HOG cells its
    guidance is drawn on the same grid: where it has little to go on (the middle of a large hole) its correction
    shows that grid as stripes. The correction is set to zero outside the hole (it is discarded there), smoothed
    by `lowpass_kernel(period)` in both directions, which removes exactly those periods and keeps smoother detail,
    and kept in the hole only (measured in `docs/correction_lowpass.md`). `period` 0: returned as is.
    """
    if period <= 0:
        return correction
    taps = lowpass_kernel(period).to(device=correction.device, dtype=correction.dtype)
    channels = correction.shape[1]
    kernel = (taps[:, None] * taps[None, :]).expand(channels, 1, period + 1, period + 1)  # both directions at once
    hole = (mask >= 0.5).to(correction.dtype)
    return F.conv2d(correction * hole, kernel, padding=period // 2, groups=channels) * hole
