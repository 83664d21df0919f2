"""Generators and discriminators of the two-stage HOG-guided face inpainting GAN.

Salem, Mahdi & Abbas, "A Novel Face Inpainting Approach Based on Guided Deep Learning": EdgeConnect's design
(Nazeri et al., "EdgeConnect: Generative Image Inpainting with Adversarial Edge Learning", ICCV Workshops 2019) with
the HOG image of the face in place of Canny edges. The networks are EdgeConnect's (`src/networks.py`):

- generators: encoder (7x7 conv, two stride-2 4x4 convs; base → 2·base → 4·base channels), residual blocks with
  dilation 2, decoder (two stride-2 4x4 transposed convs, 7x7 conv); instance norm, ReLU, reflection padding;
  weights drawn from N(0, 0.02), biases zero. The structure generator G_H has spectral norm on every conv but the
  last, as EdgeConnect's EdgeGenerator; the inpainting generator G has none, as EdgeConnect's InpaintGenerator.
- discriminators: 70x70 PatchGAN, five 4x4 convs, LeakyReLU 0.2, spectral norm (without bias).

Parameter counts (measured; `tests/test_networks.py` checks them against the closed form):

====================  =====================  ==============================================
network               paper config            tiny config (base_channels=8, residual_blocks=1)
====================  =====================  ==============================================
StructureGenerator    10,761,089              40,561
InpaintGenerator      10,777,731              42,195
PatchDiscriminator    2,761,728 (1 channel)   44,160 (1 channel)
                      2,763,776 (3 channels)  44,416 (3 channels)
====================  =====================  ==============================================

Both generators are `huggingface_hub.PyTorchModelHubMixin`s: `save_pretrained` writes `config.json` (the
constructor arguments) and `model.safetensors`; `from_pretrained` (`hoginpaint.hub.StrictHubMixin`) loads strictly and
only from safetensors.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from hoginpaint.hog import HOG_IMAGE_SCALE, HOGSettings, to_gray
from hoginpaint.hub import StrictHubMixin
from hoginpaint.prefill import (
    PrefillKind, check_correction_lowpass, check_correction_ramp, check_prefill_kind, correction_ramp, lowpass_correction,
)

# Smallest side the generators accept: the residual blocks reflection-pad the (H/4, W/4) bottleneck by 2, which
# needs at least 3 pixels there.
MIN_GENERATOR_SIDE = 12
# Smallest side the discriminator accepts: its five 4x4 convs leave at least one logit.
MIN_DISCRIMINATOR_SIDE = 24

# ---------------------------------------------------------------------------------------------------------------------
# Argument checks


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _check_images(expected: dict[str, tuple[object, int]], min_side: int, multiple: int) -> None:
    """Each named tensor is `(B, channels, H, W)`; all share B, H and W; H, W are multiples of `multiple`."""
    sizes = {}
    for name, (tensor, channels) in expected.items():
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[1] != channels:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{name} must be a (B, {channels}, H, W) tensor, got {shape}")
        sizes[name] = (tensor.shape[0], tensor.shape[2], tensor.shape[3])
    if len(set(sizes.values())) > 1:
        described = ", ".join(f"{name} {b}x{h}x{w}" for name, (b, h, w) in sizes.items())
        raise ValueError(f"inputs disagree in batch size or height/width (B x H x W): {described}; pass tensors of "
                         "one batch and one size")
    _, height, width = next(iter(sizes.values()))
    if height % multiple or width % multiple:
        padded = (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
        raise ValueError(f"height and width must be multiples of {multiple} (the encoder halves them twice and the "
                         f"decoder doubles them back), got {height}x{width}; pad or resize the input to a multiple "
                         f"of {multiple}, e.g. {padded[0]}x{padded[1]}")
    if height < min_side or width < min_side:
        raise ValueError(f"height and width must be at least {min_side}, got {height}x{width}; pad or resize the "
                         "input")


# ---------------------------------------------------------------------------------------------------------------------
# Layers


def _conv(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
          dilation: int = 1, bias: bool = True, transposed: bool = False, use_spectral_norm: bool = False) -> nn.Module:
    """A conv with EdgeConnect's init (weights ~ N(0, 0.02), bias 0), optionally spectrally normalised."""
    conv_class = nn.ConvTranspose2d if transposed else nn.Conv2d
    conv = conv_class(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      bias=bias)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    # After the init: the parametrization's power iteration starts from the weight it will normalise.
    return spectral_norm(conv) if use_spectral_norm else conv


class InstanceNorm2d(nn.InstanceNorm2d):
    """EdgeConnect's instance norm (no affine, no running statistics), computed as a group norm of one channel per group.

    The same normalisation (biased variance, eps 1e-5, equal to `nn.InstanceNorm2d` to float rounding), but PyTorch's
    instance norm reshapes to `(1, B·C, H, W)` and runs batch norm, which is slower on the CPU and copies
    channels-last input; group norm has native NCHW and channels-last kernels (`benchmarks/bench_inference.py`).
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_features, eps=self.eps)


class ResnetBlock(nn.Module):
    """EdgeConnect's residual block: `x + IN(conv3x3(ReLU(IN(conv3x3_dilated(x)))))`, shape-preserving.

    No bias where spectral norm is on (EdgeConnect's choice); no ReLU after the sum.
    """

    def __init__(self, channels: int, dilation: int = 2, use_spectral_norm: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            _conv(channels, channels, 3, dilation=dilation, bias=not use_spectral_norm,
                  use_spectral_norm=use_spectral_norm),
            InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            _conv(channels, channels, 3, bias=not use_spectral_norm, use_spectral_norm=use_spectral_norm),
            InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _Generator(nn.Module):
    """EdgeConnect's generator body: `encoder` → `middle` → `decoder`, `(B, in, H, W)` → `(B, out, H, W)` logits.

    `use_spectral_norm` puts spectral norm on every conv except the last one (EdgeConnect's EdgeGenerator).
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int, residual_blocks: int,
                 use_spectral_norm: bool, zero_output: bool = False) -> None:
        super().__init__()
        base, sn = base_channels, use_spectral_norm
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            _conv(in_channels, base, 7, use_spectral_norm=sn),
            InstanceNorm2d(base),
            nn.ReLU(inplace=True),
            _conv(base, 2 * base, 4, stride=2, padding=1, use_spectral_norm=sn),
            InstanceNorm2d(2 * base),
            nn.ReLU(inplace=True),
            _conv(2 * base, 4 * base, 4, stride=2, padding=1, use_spectral_norm=sn),
            InstanceNorm2d(4 * base),
            nn.ReLU(inplace=True),
        )
        self.middle = nn.Sequential(*(ResnetBlock(4 * base, dilation=2, use_spectral_norm=sn)
                                      for _ in range(residual_blocks)))
        self.decoder = nn.Sequential(
            _conv(4 * base, 2 * base, 4, stride=2, padding=1, transposed=True, use_spectral_norm=sn),
            InstanceNorm2d(2 * base),
            nn.ReLU(inplace=True),
            _conv(2 * base, base, 4, stride=2, padding=1, transposed=True, use_spectral_norm=sn),
            InstanceNorm2d(base),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            _conv(base, out_channels, 7),
        )
        if zero_output:
            # A generator that refines a pre-fill starts as the identity: its correction is exactly zero.
            nn.init.zeros_(self.decoder[-1].weight)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)  # (B, 4·base, H/4, W/4)
        x = self.middle(x)  # (B, 4·base, H/4, W/4)
        return self.decoder(x)  # (B, out, H, W), logits

    def _record(self, name: str, value: float) -> None:
        """Put a changed option into the config that `save_pretrained` writes (an option left off stays unwritten)."""
        config = getattr(self, "_hub_mixin_config", None)
        if isinstance(config, dict) and (value or name in config):
            config[name] = value

    def parameter_count(self) -> int:
        """Number of trainable parameters (spectral norm's power-iteration vectors are buffers, not counted)."""
        return sum(parameter.numel() for parameter in self.parameters())


# ---------------------------------------------------------------------------------------------------------------------
# The networks


def _check_hog_scale(hog_scale: float) -> None:
    if isinstance(hog_scale, bool) or not isinstance(hog_scale, (int, float)) or not (
            math.isfinite(hog_scale) and hog_scale > 0):
        raise ValueError(f"hog_scale must be a positive finite number, got {hog_scale!r}")


class StructureGenerator(_Generator, StrictHubMixin, PyTorchModelHubMixin, library_name="hoginpaint", pipeline_tag="image-to-image",
                         tags=["face-inpainting", "hog"]):
    """G_H: predicts the full scaled HOG image of a face from its masked grayscale, masked HOG image and mask.

    `orientations`, `pixels_per_cell` and `hog_scale` do not change the layers; they are the HOG settings of the
    targets it was trained on, kept in its config so that the pipeline computes the same HOG. `prefill` (see
    `hoginpaint.prefill`): ``none`` is the paper's G_H (hole zeroed in its inputs, sigmoid output); otherwise the
    stage fills the hole classically before G_H sees it, and G_H predicts a correction of the pre-filled face's HOG
    image (its last layer starts at zero, so an untrained G_H returns that HOG image).
    Parameters: 10,761,089 at the paper config, 40,561 at `base_channels=8, residual_blocks=1`.
    """

    def __init__(self, base_channels: int = 64, residual_blocks: int = 8, orientations: int = 9,
                 pixels_per_cell: int = 8, hog_scale: float = HOG_IMAGE_SCALE, use_spectral_norm: bool = True,
                 prefill: PrefillKind = "none") -> None:
        _check_positive_int("base_channels", base_channels)
        _check_positive_int("residual_blocks", residual_blocks)
        _check_positive_int("orientations", orientations)
        _check_positive_int("pixels_per_cell", pixels_per_cell)
        _check_hog_scale(hog_scale)
        _check_bool("use_spectral_norm", use_spectral_norm)
        check_prefill_kind(prefill)
        super().__init__(in_channels=3, out_channels=1, base_channels=base_channels, residual_blocks=residual_blocks,
                         use_spectral_norm=use_spectral_norm, zero_output=prefill != "none")
        self.prefill = prefill
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.hog_scale = float(hog_scale)

    def hog_settings(self) -> HOGSettings:
        """The HOG settings of this model's targets: the pipeline and training compute their HOG images with these."""
        return HOGSettings(orientations=self.orientations, pixels_per_cell=self.pixels_per_cell, scale=self.hog_scale)

    def retarget_hog(self, pixels_per_cell: int, hog_scale: float) -> None:
        """Take new HOG settings before fine-tuning (e.g. cells twice as large at twice the resolution): the layers
        stay; `save_pretrained` records the new settings. Only a fine-tune on the new targets makes them right."""
        _check_positive_int("pixels_per_cell", pixels_per_cell)
        _check_hog_scale(hog_scale)
        self.pixels_per_cell, self.hog_scale = pixels_per_cell, float(hog_scale)
        self._record("pixels_per_cell", pixels_per_cell)
        self._record("hog_scale", float(hog_scale))

    def forward(self, masked_gray: torch.Tensor, masked_hog: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`(B, 1, H, W)` ×3 (H, W multiples of 4, at least 12) → predicted scaled HOG image `(B, 1, H, W)` in [0, 1].

        With a pre-fill, `masked_gray` and `masked_hog` hold the pre-filled face (not zeros) in the hole.
        """
        _check_images({"masked_gray": (masked_gray, 1), "masked_hog": (masked_hog, 1), "mask": (mask, 1)},
                      min_side=MIN_GENERATOR_SIDE, multiple=4)
        x = torch.cat([masked_gray, masked_hog, mask], dim=1)  # (B, 3, H, W): gray, HOG image, mask (1 = hole)
        if self.prefill != "none":
            return (masked_hog + self.body(x)).clamp(0, 1)  # a correction of the pre-fill's HOG image
        return torch.sigmoid(self.body(x))


class InpaintGenerator(_Generator, StrictHubMixin, PyTorchModelHubMixin, library_name="hoginpaint", pipeline_tag="image-to-image",
                       tags=["face-inpainting", "hog"]):
    """G: predicts the RGB face from the masked face, the HOG guidance and the mask (EdgeConnect's InpaintGenerator).

    `prefill` (see `hoginpaint.prefill`): ``none`` is the paper's G (hole zeroed in its input, output
    (tanh + 1) / 2); otherwise the stage fills the hole classically before G sees it, and G predicts a correction of
    that fill (its last layer starts at zero, so an untrained G returns the pre-fill: it starts at the classical
    floor). `correction_ramp` (pixels, with a pre-fill only; 0: off): the correction fades in over this many pixels
    from the hole's rim (`hoginpaint.prefill.correction_ramp`), where the classical fill is nearly exact; the pipeline
    applies the same ramp, scaled to the photo, when it adds the upsampled correction to a full-resolution fill.
    `correction_lowpass` (pixels, even, with a pre-fill only; 0: off): the correction is smoothed so that nothing of
    this period or its divisors is left (`hoginpaint.prefill.lowpass_correction`: the 4-pixel grid of G's encoder
    and of 4-pixel HOG cells otherwise shows as stripes in large holes).
    Parameters: 10,777,731 at the paper config, 42,195 at `base_channels=8, residual_blocks=1`.
    """

    def __init__(self, base_channels: int = 64, residual_blocks: int = 8, prefill: PrefillKind = "none",
                 correction_ramp: float = 0.0, correction_lowpass: int = 0) -> None:
        _check_positive_int("base_channels", base_channels)
        _check_positive_int("residual_blocks", residual_blocks)
        check_prefill_kind(prefill)
        check_correction_ramp(correction_ramp, prefill)
        check_correction_lowpass(correction_lowpass, prefill)
        super().__init__(in_channels=5, out_channels=3, base_channels=base_channels, residual_blocks=residual_blocks,
                         use_spectral_norm=False, zero_output=prefill != "none")
        self.prefill = prefill
        self.correction_ramp = correction_ramp
        self.correction_lowpass = correction_lowpass

    @property
    def correction_ramp(self) -> float:
        return self._correction_ramp

    @correction_ramp.setter
    def correction_ramp(self, pixels: float) -> None:
        """Set the ramp (e.g. to fine-tune a loaded G under another); `save_pretrained` records the new value."""
        check_correction_ramp(pixels, self.prefill)
        self._correction_ramp = float(pixels)
        self._record("correction_ramp", float(pixels))

    @property
    def correction_lowpass(self) -> int:
        return self._correction_lowpass

    @correction_lowpass.setter
    def correction_lowpass(self, period: int) -> None:
        """Set the low-pass (e.g. to measure a loaded G with and without it); `save_pretrained` records the new value."""
        check_correction_lowpass(period, self.prefill)
        self._correction_lowpass = period
        self._record("correction_lowpass", period)

    def forward(self, masked_image: torch.Tensor, guidance: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)`, `(B, 1, H, W)`, `(B, 1, H, W)` (H, W multiples of 4, at least 12) → `(B, 3, H, W)` in [0, 1].

        With a pre-fill, `masked_image` holds the pre-filled face (not zeros) in the hole.
        """
        _check_images({"masked_image": (masked_image, 3), "guidance": (guidance, 1), "mask": (mask, 1)},
                      min_side=MIN_GENERATOR_SIDE, multiple=4)
        x = torch.cat([masked_image, guidance, mask], dim=1)  # (B, 5, H, W): RGB, HOG guidance, mask (1 = hole)
        if self.prefill != "none":
            correction = lowpass_correction(self.body(x), mask, self.correction_lowpass)
            if self.correction_ramp > 0:
                correction = correction * correction_ramp(mask, self.correction_ramp).to(correction.dtype)
            return (masked_image + correction).clamp(0, 1)  # a correction of the pre-fill
        return (torch.tanh(self.body(x)) + 1) / 2


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (EdgeConnect's Discriminator without the sigmoid: the losses take logits).

    Five 4x4 convs, channels base, 2·base, 4·base, 8·base, 1 and strides 2, 2, 2, 1, 1, padding 1; LeakyReLU 0.2 after
    all but the last; spectral norm and no bias on every conv when `use_spectral_norm`. Each logit sees a 70x70 input
    window. Parameters: 2,761,728 (1 input channel) / 2,763,776 (3) at base 64; 44,160 / 44,416 at base 8.
    """

    def __init__(self, in_channels: int, base_channels: int = 64, use_spectral_norm: bool = True) -> None:
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("base_channels", base_channels)
        _check_bool("use_spectral_norm", use_spectral_norm)
        super().__init__()
        self.in_channels = in_channels
        base, sn = base_channels, use_spectral_norm

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            conv = _conv(cin, cout, 4, stride=stride, padding=1, bias=not sn, use_spectral_norm=sn)
            return nn.Sequential(conv, nn.LeakyReLU(0.2))

        self.conv1 = block(in_channels, base, 2)
        self.conv2 = block(base, 2 * base, 2)
        self.conv3 = block(2 * base, 4 * base, 2)
        self.conv4 = block(4 * base, 8 * base, 1)
        self.conv5 = nn.Sequential(_conv(8 * base, 1, 4, padding=1, bias=not sn, use_spectral_norm=sn))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`(B, in_channels, H, W)`, H, W ≥ 24 → logits `(B, 1, ~H/8 - 2, ~W/8 - 2)` and the 4 hidden activations."""
        _check_images({"x": (x, self.in_channels)}, min_side=MIN_DISCRIMINATOR_SIDE, multiple=1)
        conv1 = self.conv1(x)  # (B, base, H/2, W/2)
        conv2 = self.conv2(conv1)  # (B, 2·base, H/4, W/4)
        conv3 = self.conv3(conv2)  # (B, 4·base, H/8, W/8)
        conv4 = self.conv4(conv3)  # (B, 8·base, H/8 - 1, W/8 - 1)
        logits = self.conv5(conv4)  # (B, 1, H/8 - 2, W/8 - 2)
        return logits, [conv1, conv2, conv3, conv4]

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(parameter.numel() for parameter in self.parameters())


HoleCriticKind = Literal["window", "crop", "crop_luma"]
HOLE_CRITICS: tuple[str, ...] = get_args(HoleCriticKind)


def hole_boxes(mask: torch.Tensor, pad: float = 0.2, min_side: int = 16) -> list[tuple[int, int, int, int]]:
    """Per image of `mask` `(B, 1, H, W)` (1 = hole), the square `(top, left, bottom, right)` around its hole: the
    hole's bounding box widened by `pad` of its longer side on each side and to at least `min_side`, shifted to lie
    inside the image (clipped where the image is smaller). The whole image where there is no hole."""
    height, width = mask.shape[-2:]
    hole = mask[:, 0] > 0
    rows, cols = hole.any(dim=2).float(), hole.any(dim=1).float()  # (B, H), (B, W)
    # First and one-past-last hole row and column of each image, fetched from the device at once.
    edges = torch.stack([rows.argmax(1), height - rows.flip(1).argmax(1), cols.argmax(1),
                         width - cols.flip(1).argmax(1), rows.amax(1).long()], dim=1).tolist()
    boxes = []
    for top, bottom, left, right, has_hole in edges:
        if not has_hole:
            boxes.append((0, 0, height, width))
            continue
        side = max(bottom - top, right - left)
        side = min(max(round(side * (1 + 2 * pad)), min_side), height, width)
        top = min(max((top + bottom - side) // 2, 0), height - side)
        left = min(max((left + right - side) // 2, 0), width - side)
        boxes.append((top, left, top + side, left + side))
    return boxes


def crop_holes(images: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """`images` `(B, C, H, W)` cropped to each image's `hole_boxes` and resized to `size` x `size` (bilinear,
    antialiased; differentiable in `images`) → `(B, C, size, size)`. `mask` `(B, 1, H, W)`."""
    return torch.cat([F.interpolate(images[i:i + 1, :, top:bottom, left:right], size=(size, size), mode="bilinear",
                                    align_corners=False, antialias=True)
                      for i, (top, left, bottom, right) in enumerate(hole_boxes(mask))])


class HoleDiscriminator(nn.Module):
    """The 70x70 PatchGAN and a local critic of the hole.

    `forward(x)` is the 70x70 PatchGAN's (`(logits, features)`), so this stands in for a `PatchDiscriminator`;
    `forward(x, local=True, mask=mask)` gives the local critic's logits. The local critics (`local_kind`):

    - ``"window"``: a 16x16 PatchGAN at the image's full resolution, logits `(B, 1, H/2 - 3, W/2 - 3)`: three 4x4
      convs (base channels stride 2, 2·base stride 1, 1 stride 1; LeakyReLU 0.2; spectral norm), each logit seeing a
      16x16 window, about an eye's width in a 128-px face. It judges texture.
    - ``"crop"``: GLCIC's local discriminator: the hole's box (`hole_boxes`, widened by a fifth on each side) cropped
      and resized to `crop_size` px, judged whole, logits `(B, 1, 1, 1)`: 4x4 convs of base, 2·base, 4·base,
      4·base channels at stride 2 down to 4x4 (`crop_size` 64), then one 4x4 conv without padding (LeakyReLU 0.2,
      spectral norm). Every crop is framed on its hole, so it need not find the part first: it judges whether the
      hole holds an eye, a nose or a mouth, which a critic of the whole face learns far more slowly.
    - ``"crop_luma"``: the same on the crop's luminance (`hoginpaint.hog.to_gray`), so that its gradient shapes the
      hole's light and dark and leaves its colour to the other terms (an RGB critic's pull can draw coloured fringes).

    The losses (`hoginpaint.training.hog_model`) count the local logits over the hole only (for the crop critics:
    the images that have a hole), so it rewards features where the 70x70 critic, which sees the whole face at once,
    cannot tell a blank eye from a drawn one.
    """

    def __init__(self, in_channels: int, base_channels: int = 64, use_spectral_norm: bool = True,
                 local_kind: str = "window", crop_size: int = 64) -> None:
        if local_kind not in HOLE_CRITICS:
            raise ValueError(f"unknown local critic {local_kind!r}; expected one of {', '.join(HOLE_CRITICS)}")
        if local_kind != "window" and (crop_size < 32 or crop_size & (crop_size - 1)):
            raise ValueError(f"crop_size must be a power of two, at least 32, got {crop_size}")
        super().__init__()
        self.whole = PatchDiscriminator(in_channels, base_channels, use_spectral_norm)
        self.local_kind, self.crop_size = local_kind, crop_size
        sn, base = use_spectral_norm, base_channels
        if local_kind == "window":
            self.local = nn.Sequential(
                _conv(in_channels, base, 4, stride=2, padding=1, bias=not sn, use_spectral_norm=sn),
                nn.LeakyReLU(0.2),
                _conv(base, 2 * base, 4, stride=1, padding=1, bias=not sn, use_spectral_norm=sn),
                nn.LeakyReLU(0.2),
                _conv(2 * base, 1, 4, stride=1, padding=1, bias=not sn, use_spectral_norm=sn),
            )
            return
        layers: list[nn.Module] = []
        channels, side = (1 if local_kind == "crop_luma" else in_channels), crop_size
        for width in (base, 2 * base, 4 * base, *([4 * base] * (int(math.log2(crop_size)) - 5))):
            layers += [_conv(channels, width, 4, stride=2, padding=1, bias=not sn, use_spectral_norm=sn),
                       nn.LeakyReLU(0.2)]
            channels, side = width, side // 2
        layers.append(_conv(channels, 1, side, stride=1, padding=0, bias=not sn, use_spectral_norm=sn))
        self.local = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, local: bool = False, mask: torch.Tensor | None = None):
        """`(B, in_channels, H, W)` → the 70x70 critic's `(logits, features)`, or with `local` the local critic's
        logits; the crop critics need the holes `mask` `(B, 1, H, W)` (1 = hole)."""
        if not local:
            return self.whole(x)
        _check_images({"x": (x, self.whole.in_channels)}, min_side=MIN_DISCRIMINATOR_SIDE, multiple=1)
        if self.local_kind == "window":
            return self.local(x)  # (B, 1, H/2 - 3, W/2 - 3)
        if mask is None or mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"the crop critic needs the holes of the {x.shape[0]} images, (B, 1, H, W) = "
                             f"{(x.shape[0], 1, *x.shape[-2:])}, got {None if mask is None else tuple(mask.shape)}")
        crops = crop_holes(x, mask, self.crop_size)
        return self.local(to_gray(crops) if self.local_kind == "crop_luma" else crops)  # (B, 1, 1, 1)
