"""Image-quality and identity metrics for inpainting results: pure functions on batches.

Every pixel metric takes `ground_truth` and `result` as float `(B, 3, H, W)` tensors in [0, 1] and returns one value
per image, a float64 `(B,)` tensor; they are computed on the whole image (the known pixels of a composited result equal
the ground truth, as in EdgeConnect's and the paper's tables).

- `l1`: mean absolute error over pixels and channels.
- `psnr`: 10 log10(1 / MSE) in dB. Identical images give +inf. `finite_mean` aggregates a column the way the
  evaluation reports it: the mean over the finite values and, beside it, how many were infinite (no cap: a capped
  value would be a number nobody measured).
- `ssim`: SSIM on RGB exactly as `skimage.metrics.structural_similarity(..., channel_axis=-1, data_range=1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` (Wang et al. 2004: 11-tap Gaussian window, the
  per-channel mean of the SSIM map without its 5-pixel border).
- `ssim_gray`: EdgeConnect's SSIM (`scripts/metrics.py` of knazeri/edge-connect): on the `rgb2gray` luminance, a
  51x51 uniform window with sample covariance (`compare_ssim(gt, pred, data_range=1, win_size=51)`), the map's mean
  without its 25-pixel border.
- `grid_peak`: how far the holes' fine detail at a generator's grid period stands above nearby periods (stripes in
  a large hole raise it above the ground truth's); one value per batch.
- `identity_distances`: dlib's face-descriptor distance between ground truth and result (`hoginpaint.faces`), NaN
  where dlib finds no face on the ground truth; `same_person` thresholds it at `SAME_PERSON_THRESHOLD` (0.6).
- `load_lpips`, `load_fid`: the learned metrics, only when their pretrained networks can be loaded from this
  machine; otherwise a `Skipped` that says why. Nothing is ever approximated in their place.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hoginpaint import faces
from hoginpaint.hog import to_gray

SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # skimage's choice for gaussian_weights: an 11-tap window at sigma 1.5
EDGECONNECT_SSIM_WINDOW = 51
LPIPS_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, the backbone of LPIPS "alex"
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's port of the TF FID Inception


def _check_pair(ground_truth: torch.Tensor, result: torch.Tensor) -> None:
    for name, images in (("ground_truth", ground_truth), ("result", result)):
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"{name} must be a float (B, 3, H, W) tensor in [0, 1], got {shape}")
    if ground_truth.shape != result.shape:
        raise ValueError(f"ground_truth is {tuple(ground_truth.shape)} but result is {tuple(result.shape)}; "
                         "compare images of the same size")


def l1(ground_truth: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of each image → `(B,)` float64 in [0, 1]."""
    _check_pair(ground_truth, result)
    return (ground_truth.double() - result.double()).abs().flatten(1).mean(dim=1)


def psnr(ground_truth: torch.Tensor, result: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image in dB → `(B,)` float64; +inf for identical images."""
    _check_pair(ground_truth, result)
    mse = (ground_truth.double() - result.double()).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)  # mse 0 → +inf


def finite_mean(values: torch.Tensor | np.ndarray | list[float]) -> tuple[float, int]:
    """`(mean over the finite values, number of +inf values)`; NaN entries (not measured) are left out of both.

    The mean is NaN when no value is finite. Used for PSNR, whose identical-image value is +inf.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    finite = array[np.isfinite(array)]
    return (float(finite.mean()) if finite.size else math.nan), int(np.isposinf(array).sum())


def _gaussian_window(sigma: float, truncate: float) -> torch.Tensor:
    """scipy.ndimage's 1-D Gaussian kernel (radius `int(truncate * sigma + 0.5)`), float64."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    window = torch.exp(-0.5 * x.square() / sigma**2)
    return window / window.sum()


def _banded(window: torch.Tensor, length: int) -> torch.Tensor:
    """The `(length - size + 1, length)` matrix whose product with a signal of `length` samples is its correlation
    with the 1-D `window` at the valid positions. Two such products are the separable 2-D window: the same values as
    two `conv2d` passes to ~1e-13, 4-20x faster in float64 on a CPU (which has no fast float64 convolution)."""
    size = window.numel()
    positions = torch.arange(length - size + 1, device=window.device)
    band = torch.zeros(length - size + 1, length, dtype=window.dtype, device=window.device)
    band[positions[:, None], positions[:, None] + torch.arange(size, device=window.device)] = window
    return band


def _ssim_per_channel(ground_truth: torch.Tensor, result: torch.Tensor, window: torch.Tensor,
                      sample_covariance: bool, data_range: float) -> torch.Tensor:
    """SSIM of `(B, C, H, W)` pairs with a separable `window` → `(B, C)`: the mean of the SSIM map over the
    positions where the window fits entirely (skimage computes the map with mirrored borders, then crops them)."""
    size = window.numel()
    if min(ground_truth.shape[-2:]) < size:
        raise ValueError(f"images of {ground_truth.shape[-1]}x{ground_truth.shape[-2]} are smaller than the "
                         f"{size}x{size} SSIM window; pass larger images")
    batch, channels, height, width = ground_truth.shape
    x = ground_truth.double().reshape(batch * channels, 1, height, width)
    y = result.double().reshape(batch * channels, 1, height, width)
    rows, columns = _banded(window, height), _banded(window, width)

    def local_mean(images: torch.Tensor) -> torch.Tensor:
        return rows @ images @ columns.T  # the separable window at the valid positions only


    # One pass over the five moments stacked along the batch: (5 * B * C, 1, H', W').
    means = local_mean(torch.cat([x, y, x * x, y * y, x * y])).chunk(5)
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = means
    cov_norm = size * size / (size * size - 1) if sample_covariance else 1.0
    var_x = cov_norm * (mean_xx - mean_x * mean_x)
    var_y = cov_norm * (mean_yy - mean_y * mean_y)
    cov_xy = cov_norm * (mean_xy - mean_x * mean_y)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).view(batch, channels)


def ssim(ground_truth: torch.Tensor, result: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """RGB SSIM of each image as skimage's Gaussian-window SSIM (see the module docstring) → `(B,)` float64."""
    _check_pair(ground_truth, result)
    window = _gaussian_window(SSIM_SIGMA, SSIM_TRUNCATE).to(ground_truth.device)
    return _ssim_per_channel(ground_truth, result, window, sample_covariance=False, data_range=data_range).mean(1)


def ssim_gray(ground_truth: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    """EdgeConnect's SSIM: luminance, 51x51 uniform window, sample covariance → `(B,)` float64."""
    _check_pair(ground_truth, result)
    size = EDGECONNECT_SSIM_WINDOW
    window = torch.full((size,), 1.0 / size, dtype=torch.float64, device=ground_truth.device)
    gray_truth, gray_result = to_gray(ground_truth.double()), to_gray(result.double())  # (B, 1, H, W)
    return _ssim_per_channel(gray_truth, gray_result, window, sample_covariance=True, data_range=1.0)[:, 0]


def grid_peak(images: torch.Tensor, masks: torch.Tensor, scale: float = 1.0, period: float = 4) -> float:
    """How far the holes' detail power at `period` pixels of a generator's resolution (its grid) stands above the
    power at nearby periods: under 1 for natural detail (its power falls with frequency; 0.7 on faces), above 1
    where stripes or a grid show. `images` `(B, 3, H, W)`, `masks` `(B, 1, H, W)` (1 = hole); `scale`: the
    generator's resolution over the images' (0.5 for a 128-px model measured at 256 px).

    Per hole, the gray-level detail (gray minus its 9x9 local mean, at `scale` x the images' resolution) of the
    hole's pixels (known pixels zeroed) in its bounding box; its power spectrum along rows and along columns (the
    mean of the 1-D spectra), summed over faces; then the power in the bin nearest 1 / `period` over the mean power
    in the bins 0.03 to 0.07 away from it. Directions in which a hole's box is under 32 pixels are left out; NaN
    when no hole is that large (small holes show no stripes).
    """
    _check_pair(images, images)
    if masks.shape[0] != images.shape[0] or masks.shape[1] != 1 or masks.shape[2:] != images.shape[2:]:
        raise ValueError(f"masks must be (B, 1, H, W) of the images' size, got {tuple(masks.shape)} for "
                         f"{tuple(images.shape)}")
    functional = torch.nn.functional
    gray = functional.interpolate(images.mean(1, keepdim=True), scale_factor=scale, mode="area")
    holes = functional.interpolate(masks, scale_factor=scale, mode="area") >= 0.5
    detail = (gray - functional.avg_pool2d(functional.pad(gray, (4, 4, 4, 4), mode="replicate"), 9, 1)) * holes
    peak = side = 0.0
    for face, hole in zip(detail[:, 0], holes[:, 0]):
        rows, cols = torch.nonzero(hole, as_tuple=True)
        if len(rows) == 0:
            continue
        box = face[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        for spectrum_of in (box, box.T):  # along columns, then along rows
            if spectrum_of.shape[0] < 32:
                continue
            power = (torch.fft.rfft(spectrum_of, dim=0).abs() ** 2).mean(1)
            distance = (torch.fft.rfftfreq(spectrum_of.shape[0]) - 1 / period).abs()
            peak += float(power[distance.argmin()])
            side += float(power[(distance >= 0.03) & (distance <= 0.07)].mean())
    return peak / side if side > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------------------------
# Identity


def identity_distances(ground_truth: torch.Tensor, result: torch.Tensor,
                       boxes: list[faces.FaceBox | None] | None = None,
                       reference_descriptors: list[np.ndarray | None] | None = None) -> torch.Tensor:
    """dlib face-descriptor distance between each ground truth and its result → `(B,)` float64, NaN = no face.

    The face is looked for on the ground truth (`boxes[i]`, or detected when `boxes` is None); where there is none
    the distance is NaN (not measurable; the evaluation counts those faces and leaves them out). The result's
    descriptor uses the ground truth's box, with the 5-point shape predicted on the result itself, so a misplaced
    eye moves the alignment as it would for any viewer. `reference_descriptors` (the ground truths', from
    `faces.face_descriptor`) saves recomputing them for every method.
    """
    _check_pair(ground_truth, result)
    count = ground_truth.shape[0]
    if boxes is None:
        boxes = [next(iter(faces.detect_faces(image)), None) for image in ground_truth]
    if len(boxes) != count or (reference_descriptors is not None and len(reference_descriptors) != count):
        raise ValueError(f"pass one box and one reference descriptor per image ({count}), got {len(boxes)} and "
                         f"{len(reference_descriptors or [])}")
    distances = torch.full((count,), math.nan, dtype=torch.float64)
    found = [i for i, box in enumerate(boxes) if box is not None]
    if not found:
        return distances
    ours = faces.face_descriptors([result[i] for i in found], [None] * len(found), [boxes[i] for i in found])
    references = ([reference_descriptors[i] for i in found] if reference_descriptors is not None else
                  faces.face_descriptors([ground_truth[i] for i in found], [None] * len(found),
                                         [boxes[i] for i in found]))
    for i, reference, descriptor in zip(found, references, ours):
        distances[i] = faces.identity_distance(reference, descriptor)
    return distances


def same_person(distances: torch.Tensor, threshold: float = faces.SAME_PERSON_THRESHOLD) -> torch.Tensor:
    """1.0 where a distance is below `threshold`, 0.0 above, NaN where it is NaN → `(B,)` float64."""
    distances = torch.as_tensor(distances, dtype=torch.float64)
    return torch.where(distances.isnan(), distances, (distances < threshold).double())


# ---------------------------------------------------------------------------------------------------------------------
# Learned metrics: only with their real pretrained networks


@dataclass(frozen=True)
class Skipped:
    """A metric that was not computed, and why."""

    metric: str
    reason: str

    def __str__(self) -> str:
        return f"skipped: {self.reason}"


def _torch_checkpoint(file_name: str) -> Path:
    """Where `torch.hub.load_state_dict_from_url` keeps `file_name` (`$TORCH_HOME/hub/checkpoints`)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def load_lpips() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | Skipped:
    """LPIPS (Zhang et al. 2018, AlexNet variant, the `lpips` package) as `fn(ground_truth, result) -> (B,)`, or
    `Skipped` when the package or its ImageNet AlexNet weights are not on this machine.

    The weights are looked for in torch's checkpoint cache first, so that a machine without internet access skips
    at once instead of waiting for a download that cannot succeed.
    """
    try:
        import lpips
    except ImportError:
        return Skipped("lpips", "the lpips package is not installed (pip install lpips); it also needs "
                                "torchvision's ImageNet AlexNet weights")
    weights = _torch_checkpoint(LPIPS_WEIGHTS_FILE)
    if not weights.is_file():
        return Skipped("lpips", f"torchvision's ImageNet AlexNet weights ({LPIPS_WEIGHTS_FILE}) are not in "
                                f"{weights.parent} and cannot be downloaded offline; copy them there")
    model = lpips.LPIPS(net="alex", verbose=False).eval()

    def distance(ground_truth: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
        _check_pair(ground_truth, result)
        with torch.inference_mode():  # LPIPS takes images in [-1, 1]
            return model(ground_truth.float() * 2 - 1, result.float() * 2 - 1).flatten().double()

    return distance


def load_fid() -> Callable[[torch.Tensor, torch.Tensor], float] | Skipped:
    """FID (Heusel et al. 2017, pytorch-fid's Inception pool3 features) as `fn(real, generated) -> float` over two
    sets of `(N, 3, H, W)` images in [0, 1], or `Skipped` when the package or its Inception weights are missing.

    With a few hundred images FID is strongly biased upwards; compare values only at equal N.
    """
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        return Skipped("fid", "the pytorch-fid package is not installed (pip install pytorch-fid); it also needs "
                              "its FID Inception weights")
    weights = _torch_checkpoint(FID_WEIGHTS_FILE)
    if not weights.is_file():
        return Skipped("fid", f"the FID Inception weights ({FID_WEIGHTS_FILE}) are not in {weights.parent} and "
                              "cannot be downloaded offline; copy them there")
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    def features(images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([model(batch.float())[0].flatten(1) for batch in images.split(32)]).double().numpy()

    def distance(real: torch.Tensor, generated: torch.Tensor) -> float:
        _check_pair(real, generated)
        real_features, generated_features = features(real), features(generated)
        return float(calculate_frechet_distance(real_features.mean(0), np.cov(real_features, rowvar=False),
                                                generated_features.mean(0),
                                                np.cov(generated_features, rowvar=False)))

    return distance

