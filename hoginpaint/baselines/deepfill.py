"""DeepFill v2: free-form inpainting with gated convolutions and contextual attention.

Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated Convolution", ICCV 2019 (arXiv:1806.03589);
the contextual attention layer is from Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR 2018.
The layer list, widths (cnum = 48) and loss follow the official TensorFlow code (JiahuiYu/generative_inpainting
v2.0.0, `inpaint_model.py`, `inpaint_ops.py`): a coarse encoder-dilated-decoder of gated convolutions, then a
refinement network whose dilated-convolution branch and contextual-attention branch are merged and decoded.

Deliberate differences from the official code, each for a stated reason:
- Convolutions pad with zeros symmetrically (PyTorch's `padding=dilation * (k - 1) // 2`), not TensorFlow's "SAME",
  which pads stride-2 layers one pixel more on the bottom/right. This is the layout of the widely used PyTorch port
  (nipponjo/deepfillv2-pytorch, `model/networks.py`), whose weights `convert_deepfill.py` converts.
- Contextual attention is batched (the official code loops over the batch and uses the first sample's mask for all),
  marks a background patch as a hole patch when ANY pixel under it is in the hole (max-pooled mask, where the
  official code samples the mask by nearest neighbour) and gives hole patches zero weight by excluding them from the
  softmax (the official code zeroes their scores, so they still take part in the normalisation).
- Images of any size: the generator reflect-pads to a multiple of 8 (the attention layer matches at 1/8 of the input
  resolution) and crops the outputs back.
- He-uniform initialisation with zero biases (the official code keeps TensorFlow's Glorot default).

Public pieces: `DeepFillV2Generator` and `SNPatchDiscriminator` (networks); `generate`, `discriminator_loss`,
`generator_loss`, `DeepFillLossWeights` (training, pure loss computations); `DeepFillInpainter` (inference with the
HOG pipeline's call and Hub layout). `hoginpaint.baselines.convert_deepfill` converts the published PyTorch weights.

One file of ~500 lines on purpose: the whole baseline — networks (~300 lines of it), inference wrapper (~50) and the
trainer's `DeepFillTraining` (~100) — is in one place, so that no module of the HOG model names DeepFill's pieces
and a reader of the baseline needs no other file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from hoginpaint import hub
from hoginpaint.baselines import BaselineOutput
from hoginpaint.inference import Inpainter, ModelRun
from hoginpaint.hog import HOGSettings
from hoginpaint.losses import LossWeights, hinge_discriminator_loss, hinge_generator_loss, l1_loss
from hoginpaint.training.types import (
    GANModels,
    GuidanceKind,
    Stage,
    StageOutputs,
    TrainedModel,
    detached_copy,
    show_masked,
)

if TYPE_CHECKING:
    from hoginpaint.training.options import ModelOptions

DEEPFILL_GENERATOR_WIDTH = 48  # the official cnum
DEEPFILL_DISCRIMINATOR_WIDTH = 64

# The attention layer matches patches at 1/8 of the input: two stride-2 convolutions, then its own rate 2.
SIZE_MULTIPLE = 8


class GatedConv2d(nn.Module):
    """Gated convolution: `activation(features) * sigmoid(gate)`, both halves of one convolution's output.

    The official `gen_conv`: one convolution with `2 * out_channels` outputs, split into features and gates.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: Literal["elu", "relu"] = "elu",
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels, 2 * out_channels, kernel_size, stride, padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
        )
        self.activation = nn.ELU() if activation == "elu" else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).split(self.out_channels, dim=1)
        return self.activation(features) * torch.sigmoid(gate)


class GatedDeconv2d(nn.Module):
    """The official `gen_deconv`: nearest-neighbour upsampling by 2, then a 3x3 gated convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def _dilated_block(channels: int) -> list[nn.Module]:
    """The four dilated 3x3 gated convolutions (rates 2, 4, 8, 16) that widen the receptive field at 1/4 scale."""
    return [GatedConv2d(channels, channels, 3, dilation=rate) for rate in (2, 4, 8, 16)]


class ContextualAttention(nn.Module):
    """Fill the hole's features with a softmax-weighted copy of the known region's features.

    Matching is done at 1/`rate` of the feature resolution: every `kernel_size` x `kernel_size` background patch is
    normalised to unit length and used as a convolution filter on the foreground (cosine-like scores, the foreground
    is not normalised, as in the official code); `fuse_kernel_size` > 1 adds the scores of neighbouring pairs along
    both axes (attention propagation, which favours coherent large patches); hole patches are excluded; the softmax
    over background patches (scores times `softmax_scale`) weights `2 * rate`-sized raw background patches, pasted
    back with a transposed convolution at stride `rate` (here `F.fold`, which is the same sum).
    """

    def __init__(
        self, kernel_size: int = 3, rate: int = 2, fuse_kernel_size: int = 3, softmax_scale: float = 10.0
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.rate = rate
        self.fuse_kernel_size = fuse_kernel_size
        self.softmax_scale = softmax_scale

    def forward(self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`foreground`, `background` `(B, C, H, W)` (one shape), `mask` `(B, 1, H, W)` (1 = hole) → `(B, C, H, W)`.

        H and W must be multiples of `rate`.
        """
        height, width = background.shape[-2:]
        rate, kernel = self.rate, self.kernel_size
        if foreground.shape != background.shape or mask.shape[2:] != background.shape[2:]:
            raise ValueError(f"foreground {tuple(foreground.shape)}, background {tuple(background.shape)} and mask "
                             f"{tuple(mask.shape)} must share batch and size; pass feature maps of one shape")
        if height % rate or width % rate:
            raise ValueError(f"feature map is {height}x{width}; contextual attention needs multiples of {rate}")

        # Raw patches (2*rate wide, stride rate) from the full-resolution background: what gets pasted.
        pad_before, pad_after = rate // 2, rate - rate // 2
        padded = F.pad(background, (pad_before, pad_after, pad_before, pad_after))
        raw_patches = F.unfold(padded, 2 * rate, stride=rate)  # (B, C*(2r)^2, L), L = (H/r)*(W/r)

        # Matching at 1/rate: the nearest-neighbour downsampling of the official code is taking every rate-th pixel.
        small_foreground = foreground[:, :, ::rate, ::rate]  # (B, C, h, w)
        small_background = background[:, :, ::rate, ::rate]
        small_height, small_width = small_background.shape[-2:]
        background_patches = F.unfold(small_background, kernel, padding=kernel // 2)  # (B, C*k*k, L)
        background_patches = background_patches / background_patches.norm(dim=1, keepdim=True).clamp_min(1e-4)
        foreground_patches = F.unfold(small_foreground, kernel, padding=kernel // 2)  # (B, C*k*k, L)
        scores = foreground_patches.transpose(1, 2) @ background_patches  # (B, L_foreground, L_background)
        if self.fuse_kernel_size > 1:
            scores = self._propagate(scores, small_height, small_width)

        # A background patch is usable only if no pixel under it (at matching resolution) is in the hole.
        small_mask = F.max_pool2d(mask, rate)  # (B, 1, h, w)
        hole_patch = F.max_pool2d(small_mask, kernel, stride=1, padding=kernel // 2) > 0
        valid = ~hole_patch.flatten(1)[:, None, :]  # (B, 1, L_background)
        scores = (scores * self.softmax_scale).masked_fill(~valid, torch.finfo(scores.dtype).min)
        # With no usable patch at all the softmax is uniform; multiplying by `valid` then gives zero features.
        attention = torch.softmax(scores, dim=2) * valid  # (B, L_foreground, L_background)

        pasted = raw_patches @ attention.transpose(1, 2)  # (B, C*(2r)^2, L_foreground)
        output = F.fold(pasted, (height + rate, width + rate), 2 * rate, stride=rate)
        # Each pixel is covered by 2x2 overlapping pasted patches.
        return output[:, :, pad_before:pad_before + height, pad_before:pad_before + width] / 4.0

    def _propagate(self, scores: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Sum scores along diagonals of the (foreground, background) score matrix: left-right, then top-bottom.

        Neighbouring flat indices are horizontal neighbours in row-major order, so an identity kernel on the
        `(L, L)` matrix adds the scores of (p - 1, q - 1) and (p + 1, q + 1); transposing both positions to
        column-major order and repeating does the same vertically (the official `fuse` step, including its wrap at
        row ends).
        """
        batch, length = scores.shape[0], height * width
        size = self.fuse_kernel_size
        eye = torch.eye(size, dtype=scores.dtype, device=scores.device)[None, None]  # (1, 1, k, k)

        def fuse(matrix: torch.Tensor) -> torch.Tensor:
            return F.conv2d(matrix.reshape(batch, 1, length, length), eye, padding=size // 2)

        scores = fuse(scores).reshape(batch, height, width, height, width)
        scores = scores.permute(0, 2, 1, 4, 3)  # column-major positions: (B, w, h, w, h)
        scores = fuse(scores).reshape(batch, width, height, width, height)
        return scores.permute(0, 2, 1, 4, 3).reshape(batch, length, length)


class CoarseNetwork(nn.Module):
    """Stage 1: masked image + ones + mask (5 channels, [-1, 1]) → coarse image in [-1, 1]."""

    def __init__(self, base_channels: int = 48) -> None:
        super().__init__()
        c = base_channels
        self.encoder = nn.Sequential(
            GatedConv2d(5, c // 2, 5),
            GatedConv2d(c // 2, c, 3, stride=2),
            GatedConv2d(c, c, 3),
            GatedConv2d(c, 2 * c, 3, stride=2),
            GatedConv2d(2 * c, 2 * c, 3),
        )
        self.middle = nn.Sequential(
            GatedConv2d(2 * c, 2 * c, 3),
            *_dilated_block(2 * c),
            GatedConv2d(2 * c, 2 * c, 3),
            GatedConv2d(2 * c, 2 * c, 3),
        )
        self.decoder = nn.Sequential(
            GatedDeconv2d(2 * c, c),
            GatedConv2d(c, c, 3),
            GatedDeconv2d(c, c // 2),
            GatedConv2d(c // 2, c // 4, 3),
            nn.Conv2d(c // 4, 3, 3, padding=1),  # to RGB: the official conv17 is not gated
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.middle(self.encoder(x)))


class RefinementNetwork(nn.Module):
    """Stage 2: the coarse result pasted into the known image (3 channels, [-1, 1]) → refined image in [-1, 1]."""

    def __init__(self, base_channels: int = 48) -> None:
        super().__init__()
        c = base_channels
        self.conv_branch = nn.Sequential(  # "hallucination": dilated convolutions
            GatedConv2d(3, c // 2, 5),
            GatedConv2d(c // 2, c // 2, 3, stride=2),
            GatedConv2d(c // 2, c, 3),
            GatedConv2d(c, c, 3, stride=2),
            GatedConv2d(c, 2 * c, 3),
            GatedConv2d(2 * c, 2 * c, 3),
            *_dilated_block(2 * c),
        )
        self.attention_encoder = nn.Sequential(
            GatedConv2d(3, c // 2, 5),
            GatedConv2d(c // 2, c // 2, 3, stride=2),
            GatedConv2d(c // 2, c, 3),
            GatedConv2d(c, 2 * c, 3, stride=2),
            GatedConv2d(2 * c, 2 * c, 3),
            GatedConv2d(2 * c, 2 * c, 3, activation="relu"),  # the official pmconv6: ReLU before matching
        )
        self.contextual_attention = ContextualAttention(kernel_size=3, rate=2, fuse_kernel_size=3, softmax_scale=10.0)
        self.attention_decoder = nn.Sequential(GatedConv2d(2 * c, 2 * c, 3), GatedConv2d(2 * c, 2 * c, 3))
        self.decoder = nn.Sequential(
            GatedConv2d(4 * c, 2 * c, 3),
            GatedConv2d(2 * c, 2 * c, 3),
            GatedDeconv2d(2 * c, c),
            GatedConv2d(c, c, 3),
            GatedDeconv2d(c, c // 2),
            GatedConv2d(c // 2, c // 4, 3),
            nn.Conv2d(c // 4, 3, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hallucinated = self.conv_branch(x)  # (B, 2c, H/4, W/4)
        features = self.attention_encoder(x)  # (B, 2c, H/4, W/4)
        feature_mask = F.max_pool2d(mask, 4)  # (B, 1, H/4, W/4), 1 wherever the hole reaches
        attended = self.attention_decoder(self.contextual_attention(features, features, feature_mask))
        # channels: 2c from the dilated branch, 2c from the attention branch
        return self.decoder(torch.cat([hallucinated, attended], dim=1))


class DeepFillV2Generator(
    nn.Module,
    hub.StrictHubMixin,
    PyTorchModelHubMixin,
    library_name="hoginpaint",
    tags=["image-inpainting", "deepfill-v2"],
    paper_url="https://arxiv.org/abs/1806.03589",
):
    """DeepFill v2's two-stage generator. 4,052,478 parameters at `base_channels=48` (the official cnum).

    `forward(image, mask)`: image `(B, 3, H, W)` in [0, 1], mask `(B, 1, H, W)` in {0, 1} (1 = hole), any H, W >= 8
    → `(coarse, refined)`, each `(B, 3, H, W)` in [0, 1] over the whole image (not composited with the input).
    """

    def __init__(self, base_channels: int = 48) -> None:
        super().__init__()
        if base_channels < 4 or base_channels % 4:
            raise ValueError(f"base_channels is {base_channels}; pass a positive multiple of 4 (the official is 48)")
        self.base_channels = base_channels
        self.coarse = CoarseNetwork(base_channels)
        self.refine = RefinementNetwork(base_channels)
        for module in self.modules():
            # He initialisation, zero biases: the signal still shrinks through ~17 gated layers (each gate is about
            # 0.5 at the start), but less than with PyTorch's or TensorFlow's (Glorot) defaults.
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image_and_mask(image, mask)
        height, width = image.shape[-2:]
        pad_bottom, pad_right = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
        if pad_bottom or pad_right:
            image = F.pad(image, (0, pad_right, 0, pad_bottom), mode="reflect")
            mask = F.pad(mask, (0, pad_right, 0, pad_bottom), mode="reflect")

        masked_image = (image * 2.0 - 1.0) * (1.0 - mask)  # [-1, 1], the hole at 0
        ones = torch.ones_like(mask)
        # channels: 3 masked RGB, 1 ones (tells the convolutions where the image border is), 1 mask
        coarse = self.coarse(torch.cat([masked_image, ones, ones * mask], dim=1))
        refined = self.refine(coarse * mask + masked_image * (1.0 - mask), mask)

        coarse, refined = ((output[..., :height, :width] + 1.0) / 2.0 for output in (coarse, refined))
        return coarse, refined


def check_image_and_mask(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise `ValueError` unless image is `(B, 3, H, W)` and mask `(B, 1, H, W)` in {0, 1}, with H, W >= 8."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image has shape {tuple(image.shape)}; pass a (B, 3, H, W) tensor in [0, 1]")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but image has {tuple(image.shape)}; "
            f"pass a (B, 1, H, W) mask of the image's batch size and size"
        )
    if min(image.shape[2:]) < SIZE_MULTIPLE:
        raise ValueError(f"image is {image.shape[2]}x{image.shape[3]}; DeepFill needs at least 8x8 pixels")
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("mask has values other than 0 and 1; threshold it first (1 = hole)")


class SNPatchDiscriminator(nn.Module):
    """SN-PatchGAN: six 5x5 stride-2 spectral-normalised convolutions with LeakyReLU(0.2), on image + mask.

    `forward(image, mask)`: image `(B, 3, H, W)` in [0, 1], mask `(B, 1, H, W)` → `(logits, features)`; logits
    `(B, 4 * base_channels, ceil(H/64), ceil(W/64))`, one hinge-loss score per feature and location (the official
    code flattens them; the loss is the same mean); `features` are the six activations.
    """

    def __init__(self, base_channels: int = 64) -> None:
        super().__init__()
        c = base_channels
        widths = [4, c, 2 * c, 4 * c, 4 * c, 4 * c, 4 * c]  # input: RGB in [-1, 1] + mask
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.utils.parametrizations.spectral_norm(nn.Conv2d(widths[i], widths[i + 1], 5, 2, padding=2)),
                nn.LeakyReLU(0.2),
            )
            for i in range(6)
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image * 2.0 - 1.0, mask], dim=1)
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return x, features


# ---------------------------------------------------------------------------------------------------------------------
# Inference wrapper: the HOG pipeline's call, Hub layout and resolution handling

MODEL_INDEX_NAME = hub.MODEL_INDEX_NAME
GENERATOR_FOLDER = "generator"


class DeepFillInpainter(Inpainter):
    """DeepFill v2 behind `HOGInpaintPipeline`'s call: resize to `resolution`, fill, paste the hole back.

    Hub layout (as the pipeline's, `hoginpaint.hub`): `model_index.json` {"_class_name": "DeepFillInpainter",
    "_hoginpaint_version", "generator": "generator", "resolution"} at the root, `generator/` with `config.json` +
    `model.safetensors`. Only the generator is stored: the discriminator is needed for training only.
    The call (`inpainter(image=..., mask_image=..., output_type="pil", feather=4)` → `BaselineOutput`) is the
    shared one of `hoginpaint.inference.Inpainter`; `from_pretrained`, `save_pretrained` and `push_to_hub` come from
    `hoginpaint.hub.ComponentModel`.
    """

    COMPONENTS = {GENERATOR_FOLDER: DeepFillV2Generator}
    NOUN = "model"
    KIND = "DeepFill model"
    CARD_TITLE = "DeepFill v2 (hoginpaint baseline)"
    CARD_TAGS = ("image-inpainting", "deepfill-v2")
    CARD_DESCRIPTION = (
        "The generator of Yu et al., \"Free-Form Image Inpainting with Gated Convolution\" (ICCV 2019), as "
        "implemented in [hoginpaint](https://github.com/) {version}, used there as a baseline for HOG-guided face "
        "inpainting.")
    CARD_USAGE = """
from hoginpaint.baselines.deepfill import DeepFillInpainter

inpainter = DeepFillInpainter.from_pretrained("<this repository>")
out = inpainter(image="face.jpg", mask_image="mask.png")  # mask: white = hole
out.images[0].save("restored.png")
"""

    def __init__(self, generator: DeepFillV2Generator, resolution: int = 256) -> None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16 or \
                resolution % SIZE_MULTIPLE:
            raise ValueError(f"resolution must be an int >= 16 and a multiple of {SIZE_MULTIPLE}, got {resolution!r}")
        self.generator = generator.eval()
        self.resolution = resolution

    @classmethod
    def from_config(cls, base_channels: int = 48, resolution: int = 256, seed: int = 0) -> DeepFillInpainter:
        """An inpainter with an untrained generator (weights depend on `seed` only), for tests and benchmarks."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = DeepFillV2Generator(base_channels=base_channels)
        return cls(generator, resolution=resolution)

    def _run(self, image: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor | None = None) -> ModelRun:
        """The generator on a `(B, 3, R, R)` batch: the refined hole with the known pixels kept (the shared call:
        `hoginpaint.inference.Inpainter.__call__`). `filled` is never passed: DeepFill refines no pre-fill."""
        return ModelRun(result=generate(self.generator, image, mask).completed)

    def _output(self, images: list, masked: list, run: ModelRun, mask: torch.Tensor) -> BaselineOutput:
        return BaselineOutput(images=images, masked=masked, result_tensor=run.result, mask_tensor=mask)


# ---------------------------------------------------------------------------------------------------------------------
# Training: pure loss computations (the caller runs backward and the optimiser steps)


@dataclass(frozen=True)
class DeepFillLossWeights:
    """The official `inpaint.yml`: `l1_loss_alpha: 1` on both stages' outputs, `gan_loss_alpha: 1` (hinge)."""

    l1_coarse: float = 1.0
    l1_refined: float = 1.0
    adversarial: float = 1.0


@dataclass
class DeepFillOutput:
    """One generator pass: raw outputs of both stages and the completed image, all `(B, 3, H, W)` in [0, 1]."""

    coarse: torch.Tensor
    refined: torch.Tensor
    completed: torch.Tensor  # refined inside the hole, the input elsewhere: what the discriminator judges


def generate(generator: DeepFillV2Generator, image: torch.Tensor, mask: torch.Tensor) -> DeepFillOutput:
    """Run the generator on `image` `(B, 3, H, W)` in [0, 1] with `mask` `(B, 1, H, W)` (1 = hole)."""
    coarse, refined = generator(image, mask)
    return DeepFillOutput(coarse=coarse, refined=refined, completed=refined * mask + image * (1.0 - mask))


def discriminator_loss(
    discriminator: SNPatchDiscriminator, image: torch.Tensor, mask: torch.Tensor, output: DeepFillOutput
) -> dict[str, torch.Tensor]:
    """SN-PatchGAN hinge loss on real images and the (detached) completed ones → `{"discriminator": loss}`.

    Real and fake go through the discriminator as one batch, as in the official code (one power iteration of the
    spectral norm per step). Call this, step the discriminator, then call `generator_loss`.
    """
    logits, _ = discriminator(torch.cat([image, output.completed.detach()]), torch.cat([mask, mask]))
    real_logits, fake_logits = logits.chunk(2)
    return {"discriminator": hinge_discriminator_loss(real_logits, fake_logits)}


def generator_loss(
    discriminator: SNPatchDiscriminator,
    image: torch.Tensor,
    mask: torch.Tensor,
    output: DeepFillOutput,
    weights: DeepFillLossWeights = DeepFillLossWeights(),
) -> dict[str, torch.Tensor]:
    """L1 of both stages over the whole image + hinge adversarial loss → `{"l1_coarse", "l1_refined",
    "adversarial", "generator"}` (the last is the weighted sum to back-propagate).

    L1 is measured on images in [-1, 1] (twice the [0, 1] value), the scale of the official code, so that its
    weights keep their balance against the adversarial term. The discriminator's parameters receive gradients from
    this loss too: zero them before its next step (or set `requires_grad_(False)` while calling this).
    """
    l1_coarse = 2.0 * l1_loss(output.coarse, image)
    l1_refined = 2.0 * l1_loss(output.refined, image)
    fake_logits, _ = discriminator(output.completed, mask)
    adversarial = hinge_generator_loss(fake_logits)
    total = weights.l1_coarse * l1_coarse + weights.l1_refined * l1_refined + weights.adversarial * adversarial
    return {"l1_coarse": l1_coarse, "l1_refined": l1_refined, "adversarial": adversarial, "generator": total}


@dataclass
class DeepFillStageOutputs(StageOutputs):
    """The trainer's stage outputs plus DeepFill's own (coarse, refined, completed), which its losses need."""

    output: DeepFillOutput | None = None


class DeepFillTraining:
    """DeepFill v2 behind the trainer's `hoginpaint.training.TrainableModel` interface: one network (the `inpaint`
    stage), its discriminator judging the completed image with the mask, hinge losses with its own weights."""

    name = "deepfill"
    measures_identity = False

    def forward(self, stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                settings: HOGSettings, guidance: GuidanceKind) -> DeepFillStageOutputs:
        output = generate(models.generator, image, mask)
        # The discriminator judges the completed image (refined hole, known pixels kept).
        return DeepFillStageOutputs(real=image, fake=output.completed, prediction=output.refined, target=image,
                                    masked=show_masked(image, mask), guidance=output.coarse,
                                    composited=output.completed, output=output)

    def discriminator_loss(self, discriminator: SNPatchDiscriminator, outputs: DeepFillStageOutputs,
                           mask: torch.Tensor, terms: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return discriminator_loss(discriminator, outputs.target, mask, outputs.output)["discriminator"]

    def generator_losses(self, stage: Stage, outputs: DeepFillStageOutputs, mask: torch.Tensor,
                         discriminator: SNPatchDiscriminator, vgg: nn.Module | None,
                         weights: LossWeights) -> dict[str, torch.Tensor]:
        """DeepFill v2's own terms and weights (`generator_loss`); the HOG model's `weights` do not apply."""
        terms = generator_loss(discriminator, outputs.target, mask, outputs.output)
        terms["total"] = terms.pop("generator")
        return terms

    @staticmethod
    def build(options: ModelOptions) -> GANModels:
        """A fresh generator (`--base_channels`, default the official cnum 48) and discriminator (default 64)."""
        torch.manual_seed(options.seed)  # the same initial weights on every rank
        generator = DeepFillV2Generator(options.base_channels or DEEPFILL_GENERATOR_WIDTH)
        return GANModels(DeepFillTraining(), generator,
                         SNPatchDiscriminator(options.base_channels or DEEPFILL_DISCRIMINATOR_WIDTH))

    def export(self, options: ModelOptions, models: GANModels, generator: DeepFillV2Generator) -> TrainedModel:
        return TrainedModel(DeepFillInpainter(detached_copy(generator), resolution=options.resolution))
