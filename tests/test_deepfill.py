"""DeepFill v2: shapes and ranges at several sizes, the parameter count, contextual attention against a per-sample
reference and on an exact copy, training, Hub round trips, strict loading and the weight converter."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest

from hoginpaint.baselines.deepfill import ContextualAttention, DeepFillV2Generator, SNPatchDiscriminator


def _rectangle_mask(batch: int, height: int, width: int, top: int, left: int, size: int) -> torch.Tensor:
    mask = torch.zeros(batch, 1, height, width)
    mask[:, :, top:top + size, left:left + size] = 1.0
    return mask


@pytest.fixture(scope="module")
def full_generator() -> DeepFillV2Generator:
    torch.manual_seed(0)
    return DeepFillV2Generator().eval()


def test_parameter_count_is_the_documented_one(full_generator: DeepFillV2Generator) -> None:
    count = sum(parameter.numel() for parameter in full_generator.parameters())
    assert count == 4_052_478  # documented in DeepFillV2Generator's docstring; the paper says 4.1M
    assert 3_500_000 <= count <= 4_500_000


@pytest.mark.parametrize("height, width", [(256, 256), (512, 512), (77, 131)])
def test_forward_keeps_size_and_range(full_generator: DeepFillV2Generator, height: int, width: int) -> None:
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    mask = _rectangle_mask(1, height, width, height // 4, width // 4, min(height, width) // 2)
    with torch.no_grad():
        coarse, refined = full_generator(image, mask)
    for output in (coarse, refined):
        assert output.shape == (1, 3, height, width)
        assert torch.isfinite(output).all()
        assert output.min() >= 0.0 and output.max() <= 1.0


def test_forward_refuses_bad_input(full_generator: DeepFillV2Generator) -> None:
    image = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="mask has shape"):
        full_generator(image, torch.zeros(1, 1, 16, 32))
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        full_generator(image, torch.full((1, 1, 32, 32), 0.5))
    with pytest.raises(ValueError, match="at least 8x8"):
        full_generator(torch.rand(1, 3, 4, 32), torch.zeros(1, 1, 4, 32))
    with pytest.raises(ValueError, match="multiple of 4"):
        DeepFillV2Generator(base_channels=30)


def test_padding_to_a_multiple_of_8_only_reflects_the_input() -> None:
    """An odd-sized image gives the crop of what the generator gives on its reflect-padded version."""
    torch.manual_seed(0)
    generator = DeepFillV2Generator(base_channels=8).eval()
    image = torch.rand(1, 3, 29, 45)
    mask = _rectangle_mask(1, 29, 45, 8, 10, 12)
    padded_image = F.pad(image, (0, 3, 0, 3), mode="reflect")
    padded_mask = F.pad(mask, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        _, refined = generator(image, mask)
        _, refined_padded = generator(padded_image, padded_mask)
    torch.testing.assert_close(refined, refined_padded[..., :29, :45], rtol=0, atol=1e-6)


# ---- contextual attention -------------------------------------------------------------------------------------


def _reference_attention(foreground, background, mask, rate=2, kernel=3, fuse=3, scale=10.0):
    """The official formulation, one sample at a time: background patches as convolution filters, the fuse step
    on the (L_background, L_foreground) score image, and a transposed convolution to paste the raw patches."""
    outputs = []
    eye = torch.eye(fuse)[None, None]
    for f, b, m in zip(foreground, background, mask):
        f, b, m = f[None], b[None], m[None]
        channels, height, width = b.shape[1:]
        raw = F.unfold(b, 2 * rate, stride=rate, padding=rate // 2)  # (1, C*16, L)
        raw = raw.view(channels, 2 * rate, 2 * rate, -1).permute(3, 0, 1, 2)  # (L, C, 4, 4)
        f_small, b_small = f[:, :, ::rate, ::rate], b[:, :, ::rate, ::rate]
        h, w = b_small.shape[-2:]
        filters = F.unfold(b_small, kernel, padding=kernel // 2).view(channels, kernel, kernel, -1).permute(3, 0, 1, 2)
        norms = filters.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        scores = F.conv2d(f_small, filters / norms, padding=kernel // 2)  # (1, L_b, h, w)
        scores = F.conv2d(scores.view(1, 1, h * w, h * w), eye, padding=fuse // 2)
        scores = scores.view(1, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(1, 1, h * w, h * w)
        scores = F.conv2d(scores, eye, padding=fuse // 2)
        scores = scores.view(1, w, h, w, h).permute(0, 2, 1, 4, 3).reshape(1, h * w, h, w)
        hole = F.max_pool2d(F.max_pool2d(m, rate), kernel, stride=1, padding=kernel // 2) > 0
        valid = (~hole).flatten().float().view(1, -1, 1, 1)  # (1, L_b, 1, 1)
        scores = scores * scale - (1 - valid) * 1e30
        attention = torch.softmax(scores, dim=1) * valid
        outputs.append(F.conv_transpose2d(attention, raw, stride=rate, padding=rate // 2) / 4.0)
    return torch.cat(outputs)


def test_contextual_attention_matches_the_per_sample_reference() -> None:
    generator = torch.Generator().manual_seed(3)
    features = torch.rand(2, 6, 16, 20, generator=generator)
    mask = torch.stack([_rectangle_mask(1, 16, 20, 4, 4, 6)[0], _rectangle_mask(1, 16, 20, 8, 10, 8)[0]])
    attention = ContextualAttention(kernel_size=3, rate=2, fuse_kernel_size=3, softmax_scale=10.0)
    torch.testing.assert_close(attention(features, features, mask), _reference_attention(features, features, mask),
                               rtol=1e-4, atol=1e-5)


def test_contextual_attention_copies_an_exact_copy_of_the_hole() -> None:
    """The hole's features are an exact copy of a known region: attention must paste that region back.

    The background's own hole holds the same pattern scaled by 2 (cosine 1 as well): if hole patches were not
    excluded they would tie with the true source and the output would be 1.5 times the copy.
    """
    generator = torch.Generator().manual_seed(4)
    features = torch.rand(1, 8, 32, 32, generator=generator)
    hole = (slice(None), slice(None), slice(18, 30), slice(16, 28))
    features[hole] = features[:, :, 2:14, 4:16]  # source shifted by an even offset (the matching rate)
    background = features.clone()
    background[hole] = 2.0 * features[hole]
    mask = torch.zeros(1, 1, 32, 32)
    mask[hole] = 1.0
    output = ContextualAttention()(features, background, mask)
    # Inside the copied region, away from its rim (where the matched patches leave the copy), the output is the copy.
    interior = (slice(None), slice(None), slice(22, 26), slice(20, 24))
    torch.testing.assert_close(output[interior], features[interior], rtol=0, atol=1e-4)
    # With the hole everywhere nothing can be matched and the output is zero.
    assert ContextualAttention()(features, background, torch.ones(1, 1, 32, 32)).abs().max() == 0


# ---- discriminator --------------------------------------------------------------------------------------------


def test_sn_patch_discriminator_shapes() -> None:
    discriminator = SNPatchDiscriminator(base_channels=8)
    logits, features = discriminator(torch.rand(2, 3, 64, 96), torch.zeros(2, 1, 64, 96))
    assert logits.shape == (2, 32, 1, 2)
    assert [feature.shape[1] for feature in features] == [8, 16, 32, 32, 32, 32]
    assert all(isinstance(layer[0].parametrizations.weight[0], torch.nn.Module) for layer in discriminator.layers)
