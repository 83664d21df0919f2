"""Losses of the two-stage HOG-guided inpainting GAN, as pure functions of tensors, and the VGG-16 feature extractor.

Salem, Mahdi & Abbas train EdgeConnect's way (Nazeri et al., ICCV Workshops 2019): the structure generator with
L1 + non-saturating adversarial loss, the inpainting generator with L1 + adversarial + perceptual + style, the
perceptual and style terms on the VGG-16 activations relu1_1, relu2_1, relu3_1 and relu4_1. Shaped as LaMa's
`saicinpainting/training/losses`: each loss takes tensors and returns a scalar; none calls `.backward()`.
Discriminator losses take logits (the discriminators have no sigmoid); `bce_with_logits` is the stable form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from safetensors import SafetensorError, safe_open
from torch import nn

from hoginpaint.hog import to_gray

VGG16_REPO_ID = "timm/vgg16.tv_in1k"
# ImageNet statistics the torchvision / timm VGG-16 weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class LossWeights:
    """The paper's loss weights: structure stage L1 1 + adversarial 1; inpainting stage L1 1, adversarial 0.1,
    perceptual 0.1, style 250. Feature matching (EdgeConnect's edge model uses it) is off in the paper."""

    structure_l1: float = 1.0
    structure_adversarial: float = 1.0
    l1: float = 1.0
    adversarial: float = 0.1
    perceptual: float = 0.1
    style: float = 250.0
    feature_matching: float = 0.0
    l1_hole: float = 1.0  # relative weight of hole pixels in the L1 terms (1: the paper's plain mean)
    grid: float = 0.0  # inpainting stage: weight of `grid_loss` (off in the paper)
    hog: float = 0.0  # inpainting stage: weight of `hog_loss`, the hole cells' histograms (off in the paper)
    hole_adversarial: float = 0.0  # inpainting stage: the local critic's term over the hole (off in the paper)
    contrast: float = 0.0  # inpainting stage: weight of `contrast_loss`, the hole's local contrast (off in the paper)
    hole_contrast: float = 0.0  # inpainting stage: weight of `hole_contrast_loss`, the whole hole's (off in the paper)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"loss weight {field.name} must be a finite number >= 0, got {value!r}")

    def reconstruction(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The unweighted L1 term: the plain mean (``l1_hole == 1``, the paper's) or hole pixels weighing
        ``l1_hole`` against 1 for known ones (partial convolutions' 6:1)."""
        if self.l1_hole == 1:
            return l1_loss(pred, target)
        return masked_l1_loss(pred, target, mask, weight_known=1.0, weight_missing=self.l1_hole)

    @property
    def needs_vgg(self) -> bool:
        """Whether the perceptual or style term is on (and so VGG-16 weights are needed)."""
        return self.perceptual > 0 or self.style > 0


# ---------------------------------------------------------------------------------------------------------------------
# Checks


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    if len(set(shapes.values())) > 1:
        described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match, got {described}")


def _check_mask(mask: torch.Tensor, pred: torch.Tensor, per_channel: bool = False) -> None:
    """`mask` must be `(B, 1, H, W)` matching `pred` `(B, C, H, W)` (or `(B, C, H, W)` where `per_channel`)."""
    channels = (1, pred.shape[1]) if per_channel else (1,)
    if mask.ndim != 4 or mask.shape[0] != pred.shape[0] or mask.shape[1] not in channels or \
            mask.shape[2:] != pred.shape[2:]:
        raise ValueError(f"mask must be (B, 1, H, W) matching pred {tuple(pred.shape)}, got {tuple(mask.shape)}")


def _check_feature_lists(first: list[torch.Tensor], second: list[torch.Tensor], names: tuple[str, str]) -> None:
    if len(first) == 0 or len(first) != len(second):
        raise ValueError(f"{names[0]} and {names[1]} must be non-empty lists of the same length (one tensor per "
                         f"layer), got {len(first)} and {len(second)}")
    for index, (a, b) in enumerate(zip(first, second)):
        if a.shape != b.shape:
            raise ValueError(f"layer {index}: {names[0]} is {tuple(a.shape)} but {names[1]} is {tuple(b.shape)}; "
                             "pass features of the same network on inputs of the same size")


# ---------------------------------------------------------------------------------------------------------------------
# Adversarial losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss of the discriminator, `(softplus(-real) + softplus(fake)) / 2` averaged over patches.

    Equal to EdgeConnect's `(BCE(sigmoid(real), 1) + BCE(sigmoid(fake), 0)) / 2`, in the stable logit form.
    Detach `fake_logits`' input yourself (the discriminator step must not reach the generator).
    """
    return (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()) / 2


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss of the generator, `softplus(-fake)` = `BCE(sigmoid(fake), 1)`, averaged."""
    return F.softplus(-fake_logits).mean()


def hole_patches(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """1 on the logits of `logits` `(B, 1, h, w)` whose window overlaps the hole of `mask` `(B, 1, H, W)`, else 0."""
    return (F.adaptive_max_pool2d(mask.to(logits.dtype), logits.shape[-2:]) > 0).to(logits.dtype)


def masked_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                              weight: torch.Tensor) -> torch.Tensor:
    """`discriminator_loss` averaged over the patches where `weight` `(B, 1, h, w)` is 1 (0 where there are none)."""
    count = weight.sum().clamp(min=1)
    return ((F.softplus(-real_logits) * weight).sum() + (F.softplus(fake_logits) * weight).sum()) / (2 * count)


def masked_generator_adversarial_loss(fake_logits: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`generator_adversarial_loss` averaged over the patches where `weight` `(B, 1, h, w)` is 1."""
    return (F.softplus(-fake_logits) * weight).sum() / weight.sum().clamp(min=1)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator as DeepFill v2 (neuralgym `gan_hinge_loss`): `0.5·relu(1 - real) + 0.5·relu(1 +
    fake)`, each averaged."""
    return 0.5 * F.relu(1 - real_logits).mean() + 0.5 * F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the generator (DeepFill v2): `-mean(fake)`."""
    return -fake_logits.mean()


def feature_matching_loss(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """Mean over discriminator layers of the mean absolute difference of activations (EdgeConnect's edge model).

    The real activations are targets: they are detached here.
    """
    _check_feature_lists(real_feats, fake_feats, ("real_feats", "fake_feats"))
    per_layer = [F.l1_loss(fake, real.detach()) for real, fake in zip(real_feats, fake_feats)]
    return torch.stack(per_layer).mean()


# ---------------------------------------------------------------------------------------------------------------------
# Reconstruction losses


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all elements."""
    _check_same_shape(pred=pred, target=target)
    return F.l1_loss(pred, target)


def masked_l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight_known: float = 1.0,
                   weight_missing: float = 1.0) -> torch.Tensor:
    """LaMa's masked L1: per-pixel L1 weighted `weight_missing` in the hole (mask 1) and `weight_known` elsewhere,
    averaged over all elements. `pred`, `target` `(B, C, H, W)`; `mask` `(B, 1, H, W)` or `(B, C, H, W)`."""
    _check_same_shape(pred=pred, target=target)
    _check_mask(mask, pred, per_channel=True)
    pixel_weights = mask * weight_missing + (1 - mask) * weight_known
    return (pixel_weights * (pred - target).abs()).mean()


GRID_PERIOD = 4  # the inpainting generator's grid: two stride-2 convolutions
GRID_WINDOW = 32  # pixels per side of the windows whose periodic part grid_loss measures


def grid_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, period: int = GRID_PERIOD,
              window: int = GRID_WINDOW) -> torch.Tensor:
    """The energy of the hole's error that repeats every `period` pixels in phase with the image's pixel grid: the
    stripes that a generator with a `period`-pixel bottleneck paints in large holes (docs/grid_loss.md).

    Per `window` x `window` tile (aligned to the image's corner) that is at least half hole, the error
    ``pred - target`` on hole pixels is averaged at each of the ``period**2`` phases ``(y mod period, x mod
    period)``; the loss is the mean squared deviation of those phase means from their mean, over tiles, phases and
    channels. That is a squared error on the tile's components at the periods `period`, `period / 2`, ...: detail
    of other periods averages out, and so does detail at these periods that is not in phase across the tile. Its
    minimum is the ground truth's pattern where the input predicts it and none where it does not, so, unlike a
    low-pass filter on the output, it takes nothing from true detail that G can infer. Squared, not absolute: the
    ground truth's unpredictable detail adds a constant to it (about 3e-4 at 128 px) and leaves its gradient on a
    stripe unbiased. 0 where no tile is half hole. `pred`, `target` `(B, C, H, W)`; `mask` `(B, 1, H, W)`, 1 = hole.
    """
    _check_same_shape(pred=pred, target=target)
    _check_mask(mask, pred)
    if period < 2 or window % period or window < 2 * period:
        raise ValueError(f"window ({window}) must be a multiple of period ({period}), at least two periods, and "
                         "period at least 2")
    height, width = pred.shape[2:]
    pad = (0, -width % window, 0, -height % window)
    error = F.pad((pred - target) * mask, pad)
    mask = F.pad(mask, pad)

    def per_phase(values: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, tiles_y, tiles_x, period, period)
        batch, channels, rows, cols = values.shape
        tiled = values.reshape(batch, channels, rows // window, window // period, period,
                               cols // window, window // period, period)
        return tiled.sum((3, 6)).permute(0, 1, 2, 4, 3, 5)

    counts = per_phase(mask)
    phase_means = per_phase(error) / counts.clamp(min=1)
    deviation = (phase_means - phase_means.mean((-2, -1), keepdim=True)).square().mean((1, -2, -1))  # (B, ty, tx)
    counted = counts.sum((1, -2, -1)) >= window * window / 2  # tiles at least half hole
    if not bool(counted.any()):
        return pred.sum() * 0  # keeps the graph for backward
    return deviation[counted].mean()


HOG_LOSS_CELL = 4  # pixels per cell of `hog_loss` (the shipped 128-px model's HOG cell)
HOG_LOSS_ORIENTATIONS = 9
_HOG_LOSS_SHARPNESS = 4  # power of the clipped cosine that spreads a pixel's vote over neighbouring bins


def soft_orientation_histograms(gray: torch.Tensor, pixels_per_cell: int = HOG_LOSS_CELL,
                                orientations: int = HOG_LOSS_ORIENTATIONS) -> torch.Tensor:
    """Differentiable HOG cell histograms of `gray` `(B, 1, H, W)` → `(B, orientations, H / p, W / p)`.

    As `hoginpaint.hog.hog_histograms` (central differences, unsigned orientations in [0, 180), votes weighted by the
    gradient magnitude, averaged over the cell), except that a pixel votes into every bin with the weight
    ``max(0, cos 2(θ - φ_bin)) ** 4`` instead of into one bin, so that the histogram is a smooth function of the
    pixels. The orientation enters only through ``cos 2θ`` and ``sin 2θ``, written from the gradients without atan2,
    so that a flat region has a finite gradient.
    """
    g_row = F.pad(gray[:, :, 2:, :] - gray[:, :, :-2, :], (0, 0, 1, 1))
    g_col = F.pad(gray[:, :, :, 2:] - gray[:, :, :, :-2], (1, 1, 0, 0))
    squared = g_row.square() + g_col.square() + 1e-12
    magnitude = squared.sqrt()  # (B, 1, H, W)
    cos_2theta, sin_2theta = (g_col.square() - g_row.square()) / squared, 2 * g_row * g_col / squared
    centres = (torch.arange(orientations, device=gray.device, dtype=gray.dtype) + 0.5) * (math.pi / orientations)
    cosine = (cos_2theta * torch.cos(2 * centres).view(1, -1, 1, 1)
              + sin_2theta * torch.sin(2 * centres).view(1, -1, 1, 1))  # (B, orientations, H, W)
    votes = magnitude * cosine.clamp(min=0) ** _HOG_LOSS_SHARPNESS
    return F.avg_pool2d(votes, pixels_per_cell)


def hog_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
             pixels_per_cell: int = HOG_LOSS_CELL, orientations: int = HOG_LOSS_ORIENTATIONS) -> torch.Tensor:
    """The hole's structure in the paper's own feature: the mean absolute difference of the luminance's orientation
    histograms (`soft_orientation_histograms`) over the cells that hold a hole pixel. It is zero for a fill with the
    target's edges and large for a flat one, however close its mean colour (which is all L1 rewards in a hole
    whose detail cannot be predicted exactly). `pred`, `target` `(B, 3, H, W)` in [0, 1] (the composited output:
    the cells on the hole's rim compare their known pixels too); `mask` `(B, 1, H, W)`, 1 = hole; H and W
    multiples of `pixels_per_cell`. 0 where there is no hole.
    """
    _check_same_shape(pred=pred, target=target)
    _check_mask(mask, pred)
    if pred.shape[1] != 3 or pred.shape[2] % pixels_per_cell or pred.shape[3] % pixels_per_cell:
        raise ValueError(f"hog_loss takes RGB images (B, 3, H, W) with H and W multiples of {pixels_per_cell}, got "
                         f"{tuple(pred.shape)}")
    histograms = [soft_orientation_histograms(to_gray(images), pixels_per_cell, orientations)
                  for images in (pred, target)]
    cells = F.max_pool2d(mask.to(pred.dtype), pixels_per_cell)  # (B, 1, H / p, W / p): 1 on cells with a hole pixel
    count = cells.sum() * orientations
    if not bool(count > 0):
        return pred.sum() * 0  # keeps the graph for backward
    return ((histograms[0] - histograms[1]).abs() * cells).sum() / count


CONTRAST_WINDOWS = (4, 8, 16, 32)  # window sides of `contrast_loss`, in pixels


def local_contrast(gray: torch.Tensor, window: int) -> torch.Tensor:
    """Standard deviation of `gray` `(B, 1, H, W)` in non-overlapping `window` x `window` windows → `(B, 1, ⌈H/w⌉,
    ⌈W/w⌉)` (windows cut by the border use the pixels they hold)."""
    mean = F.avg_pool2d(gray, window, ceil_mode=True)
    square = F.avg_pool2d(gray * gray, window, ceil_mode=True)
    return (square - mean * mean).clamp_min(0).add(1e-6).sqrt()


def contrast_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  windows: tuple[int, ...] = CONTRAST_WINDOWS) -> torch.Tensor:
    """How far the hole's local contrast is from the target's: the mean absolute difference of the luminance's
    standard deviation in windows of each side in `windows` (`local_contrast`) that hold a hole pixel, averaged over
    the sides. A pixel-wise loss pays for the mean of what a hole could hold, whose contrast is lower than any real
    face's (a blank eye); this term pays for contrast itself, at every scale from a lash to an eye, and not for where
    its edges are (`hog_loss` and L1 do that). `pred`, `target` `(B, 3, H, W)` in [0, 1] (the composited output);
    `mask` `(B, 1, H, W)`, 1 = hole. 0 for the target itself and where there is no hole; a flat fill scores the
    target's mean local contrast in the hole.
    """
    _check_same_shape(pred=pred, target=target)
    _check_mask(mask, pred)
    if pred.shape[1] != 3:
        raise ValueError(f"contrast_loss takes RGB images (B, 3, H, W), got {tuple(pred.shape)}")
    if not windows or any(not isinstance(side, int) or side < 2 for side in windows):
        raise ValueError(f"contrast_loss windows must be integers >= 2, got {windows!r}")
    if not bool(mask.sum() > 0):
        return pred.sum() * 0  # keeps the graph for backward
    # float32: E[x²] - E[x]² in bfloat16 (8 bits of mantissa) loses a standard deviation of 0.01 at a mean of 0.5
    gray_pred, gray_target, mask = to_gray(pred.float()), to_gray(target.float()), mask.float()
    terms = []
    for side in windows:
        holes = F.max_pool2d(mask, side, ceil_mode=True)  # 1 on windows with a hole pixel
        difference = (local_contrast(gray_pred, side) - local_contrast(gray_target, side)).abs()
        terms.append((difference * holes).sum() / holes.sum())
    return torch.stack(terms).mean()


def hole_contrast_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How far the whole hole's contrast is from the target's: the absolute difference of the luminance's standard
    deviation over each image's hole pixels, averaged over the images that have a hole. `contrast_loss` compares
    windows of up to 32 px; an eye hole's contrast also lies between its parts (the white of an eye, the iris, the
    brow above, the skin between), which this term pays for. `pred`, `target` `(B, 3, H, W)` in [0, 1]; `mask`
    `(B, 1, H, W)`, 1 = hole. 0 for the target itself and where there is no hole; a flat fill scores the standard
    deviation of the target's hole. Computed in float32, as `contrast_loss`.
    """
    _check_same_shape(pred=pred, target=target)
    _check_mask(mask, pred)
    if pred.shape[1] != 3:
        raise ValueError(f"hole_contrast_loss takes RGB images (B, 3, H, W), got {tuple(pred.shape)}")
    count = mask.float().sum(dim=(1, 2, 3))  # (B,) hole pixels per image
    has_hole = count > 0
    if not bool(has_hole.any()):
        return pred.sum() * 0  # keeps the graph for backward
    weights = mask.float() / count.clamp_min(1)[:, None, None, None]  # each hole's pixels sum to 1

    def hole_std(images: torch.Tensor) -> torch.Tensor:
        gray = to_gray(images.float())
        mean, square = (gray * weights).sum(dim=(1, 2, 3)), (gray * gray * weights).sum(dim=(1, 2, 3))
        return (square - mean * mean).clamp_min(0).add(1e-6).sqrt()  # (B,)

    return (hole_std(pred) - hole_std(target)).abs()[has_hole].mean()


# ---------------------------------------------------------------------------------------------------------------------
# VGG losses. Layers: the paper's relu1_1, relu2_1, relu3_1, relu4_1 for both the perceptual and the style term
# (EdgeConnect uses relu1_1..relu5_1 for perceptual and relu2_2, relu3_4, relu4_4, relu5_2 of VGG-19 for style).


def perceptual_loss(feats_pred: list[torch.Tensor], feats_target: list[torch.Tensor]) -> torch.Tensor:
    """EdgeConnect's PerceptualLoss (unit layer weights): the mean absolute difference of each layer's activations,
    summed over the layers (the four of `VGG16Features`)."""
    _check_feature_lists(feats_pred, feats_target, ("feats_pred", "feats_target"))
    return sum(F.l1_loss(pred, target) for pred, target in zip(feats_pred, feats_target))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """`(B, C, H, W)` → `(B, C, C)` Gram matrix of the channels, divided by `C·H·W` (EdgeConnect's `compute_gram`)."""
    if features.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got {tuple(features.shape)}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)  # (B, C, HW)
    return flat @ flat.transpose(1, 2) / (c * h * w)  # (B, C, C)


def style_loss(feats_pred: list[torch.Tensor], feats_target: list[torch.Tensor]) -> torch.Tensor:
    """EdgeConnect's StyleLoss: the mean absolute difference of the Gram matrices, summed over the layers."""
    _check_feature_lists(feats_pred, feats_target, ("feats_pred", "feats_target"))
    return sum(F.l1_loss(gram_matrix(pred), gram_matrix(target)) for pred, target in zip(feats_pred, feats_target))


# VGG-16 up to relu4_1, in the torchvision / timm layout: ints are 3x3 convs (each followed by a ReLU), "M" a 2x2 max
# pool. Module indices: convs at features.0, 2, 5, 7, 10, 12, 14, 17; relu1_1, relu2_1, relu3_1, relu4_1 at 1, 6, 11, 18.
_VGG16_TO_RELU4_1 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512)
_VGG16_OUTPUT_INDICES = (1, 6, 11, 18)


class VGG16Features(nn.Module):
    """Frozen VGG-16 returning `[relu1_1, relu2_1, relu3_1, relu4_1]` for images `(B, 3, H, W)` in [0, 1].

    The ImageNet normalisation happens inside. Keys are `features.N.weight/bias` as in `timm/vgg16.tv_in1k` (and
    torchvision), so its `model.safetensors` loads directly (`load_vgg16_features`). Built with random weights; it
    stays in eval mode and its parameters never require gradients (gradients still flow to the input).
    """

    def __init__(self, width_divisor: int = 1) -> None:
        super().__init__()
        if isinstance(width_divisor, bool) or not isinstance(width_divisor, int) or not 1 <= width_divisor <= 64:
            raise ValueError(f"width_divisor must be an int in 1..64, got {width_divisor!r}")
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_TO_RELU4_1:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item // width_divisor, kernel_size=3, padding=1), nn.ReLU()]
                channels = item // width_divisor
        self.features = nn.Sequential(*layers)
        # Not persistent: the state dict holds exactly the checkpoint's features.* keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        # Frozen feature extractor: a parent's .train() must not switch it.
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """`(B, 3, H, W)` in [0, 1] → `[(B, 64, H, W), (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8)]`."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"VGG16Features takes RGB images (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        x = (image - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _VGG16_OUTPUT_INDICES:
                outputs.append(x)
        return outputs


RANDOM_VGG = "random"  # `--vgg_weights random`: the stand-in of `random_vgg16_features`
RANDOM_VGG_WIDTH_DIVISOR = 4


def random_vgg16_features(seed: int = 0, width_divisor: int = RANDOM_VGG_WIDTH_DIVISOR) -> VGG16Features:
    """A stand-in for the pretrained VGG-16 where its weights cannot be had: the same layers to relu4_1 with random,
    frozen weights (torchvision's VGG initialisation: Kaiming-normal convolutions, fan-out, zero biases) drawn from
    `seed`, at 1/`width_divisor` of the channels.

    Random-weight convolutional features work as a perceptual loss (Liu et al., "Generic Perceptual Loss", CVPR 2021;
    Amir & Weiss, "Understanding and Simplifying Perceptual Distances", CVPR 2021): they respond to local structure
    and texture at four scales though they were never trained. A quarter of the channels costs 1/16 of the
    full network's multiply-adds, which keeps a CPU training step affordable.
    """
    model = VGG16Features(width_divisor)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.features:
            if isinstance(layer, nn.Conv2d):
                fan_out = layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1]
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * math.sqrt(2.0 / fan_out))
                layer.bias.zero_()
    return model


def load_vgg16_features(repo_id: str = VGG16_REPO_ID, filename: str = "model.safetensors",
                        weights_path: str | Path | None = None) -> VGG16Features:
    """`VGG16Features` with pretrained weights from a Hub repository (`hf_hub_download`) or a local safetensors file.

    Keys other than the needed `features.*` (deeper convs, the classifier) are ignored; a missing or misshapen needed
    key raises ValueError. If the Hub cannot be reached and the file is not cached, raises RuntimeError.
    """
    if weights_path is None:
        try:
            path = hf_hub_download(repo_id=repo_id, filename=filename)
        except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as error:
            raise RuntimeError(
                f"the VGG-16 weights could not be fetched from the Hugging Face Hub repository {repo_id} ({filename}): "
                f"{type(error).__name__}. Pass a local copy with weights_path='.../model.safetensors', or set the "
                "perceptual and style loss weights to 0 (LossWeights(perceptual=0.0, style=0.0)) to train "
                "without VGG") from error
        source = f"{repo_id}/{filename}"
    else:
        path = Path(weights_path)
        if not path.is_file():
            raise ValueError(f"weights_path {weights_path} is not a file; pass the path of a VGG-16 model.safetensors")
        source = str(path)
    model = VGG16Features()
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt") as checkpoint:
            available = set(checkpoint.keys())
            state_dict = {key: checkpoint.get_tensor(key) for key in expected if key in available}
    except SafetensorError as error:
        raise ValueError(f"{source} is not a readable safetensors file ({error}); pass VGG-16 weights saved as "
                         "safetensors (pickled .bin/.pth files are not loaded)") from error
    missing = [key for key in expected if key not in state_dict]
    misshapen = [f"{key} {tuple(state_dict[key].shape)} (expected {tuple(expected[key].shape)})"
                 for key in state_dict if state_dict[key].shape != expected[key].shape]
    if missing or misshapen:
        raise ValueError(f"{source} does not hold VGG-16 features in the torchvision/timm layout: missing "
                         f"{missing or 'none'}, misshapen {misshapen or 'none'}; pass the weights of {VGG16_REPO_ID}")
    model.load_state_dict(state_dict)
    return model
