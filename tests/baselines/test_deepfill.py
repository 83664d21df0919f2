"""DeepFill v2: shapes and ranges at several sizes, the parameter count, contextual attention against a per-sample
reference and on an exact copy, training, Hub round trips, strict loading and the weight converter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from hoginpaint.baselines.convert_deepfill import convert_deepfill_state_dict
from hoginpaint.baselines.deepfill import (
    ContextualAttention,
    DeepFillInpainter,
    DeepFillLossWeights,
    DeepFillV2Generator,
    SNPatchDiscriminator,
    discriminator_loss,
    generate,
    generator_loss,
)


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


# ---- training -------------------------------------------------------------------------------------------------


def test_a_few_training_steps_lower_the_l1_loss(val_faces: torch.Tensor) -> None:
    faces = F.interpolate(val_faces[:4], size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    mask = _rectangle_mask(4, 64, 64, 16, 20, 24)
    torch.manual_seed(0)
    generator, discriminator = DeepFillV2Generator(base_channels=16), SNPatchDiscriminator(base_channels=16)
    generator_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def refined_l1() -> float:
        with torch.no_grad():
            return (generate(generator, faces, mask).refined - faces).abs().mean().item()

    before = refined_l1()
    for _ in range(10):
        output = generate(generator, faces, mask)
        losses = discriminator_loss(discriminator, faces, mask, output)
        discriminator_optimizer.zero_grad()
        losses["discriminator"].backward()
        discriminator_optimizer.step()
        losses = generator_loss(discriminator, faces, mask, output)
        generator_optimizer.zero_grad()
        losses["generator"].backward()
        generator_optimizer.step()
        assert all(torch.isfinite(value) for value in losses.values())
    assert set(losses) == {"l1_coarse", "l1_refined", "adversarial", "generator"}
    after = refined_l1()
    assert after < 0.9 * before, (before, after)


def test_generator_loss_is_the_weighted_sum() -> None:
    torch.manual_seed(0)
    generator, discriminator = DeepFillV2Generator(base_channels=8), SNPatchDiscriminator(base_channels=8)
    image, mask = torch.rand(2, 3, 32, 32), _rectangle_mask(2, 32, 32, 8, 8, 12)
    output = generate(generator, image, mask)
    torch.testing.assert_close(output.completed[mask.expand_as(image) == 0], image[mask.expand_as(image) == 0])
    weights = DeepFillLossWeights(l1_coarse=2.0, l1_refined=0.5, adversarial=0.1)
    discriminator.eval()  # no power iteration: both calls see the same normalised weights
    losses = generator_loss(discriminator, image, mask, output, weights)
    torch.testing.assert_close(losses["l1_coarse"], (2 * output.coarse - 2 * image).abs().mean())
    torch.testing.assert_close(
        losses["generator"], 2.0 * losses["l1_coarse"] + 0.5 * losses["l1_refined"] + 0.1 * losses["adversarial"])
    torch.testing.assert_close(losses["adversarial"], -discriminator(output.completed, mask)[0].mean())


# ---- Hub round trip and strict loading --------------------------------------------------------------------------


def test_save_and_load_are_bit_identical(tmp_path: Path) -> None:
    inpainter = DeepFillInpainter.from_config(base_channels=8, resolution=64, seed=3)
    inpainter.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["_class_name"] == "DeepFillInpainter"
    assert json.loads((tmp_path / "model" / "generator" / "config.json").read_text()) == {"base_channels": 8}
    loaded = DeepFillInpainter.from_pretrained(tmp_path / "model")
    assert loaded.resolution == 64
    for (name, saved), (_, restored) in zip(inpainter.generator.state_dict().items(),
                                            loaded.generator.state_dict().items()):
        assert torch.equal(saved, restored), name
    image = torch.rand(1, 3, 80, 72, generator=torch.Generator().manual_seed(5))
    mask = _rectangle_mask(1, 80, 72, 20, 20, 30)
    first = inpainter(image=image, mask_image=mask, output_type="pt").images[0]
    second = loaded(image=image, mask_image=mask, output_type="pt").images[0]
    assert torch.equal(first, second)
    known = mask[0].expand(3, -1, -1) == 0
    assert torch.equal(first[known], image[0][known])


def test_loading_is_strict_and_safetensors_only(tmp_path: Path) -> None:
    DeepFillInpainter.from_config(base_channels=8, resolution=64).save_pretrained(tmp_path / "model")
    generator_folder = tmp_path / "model" / "generator"

    # A config that does not match the weights is an error, never a partial load.
    (generator_folder / "config.json").write_text(json.dumps({"base_channels": 16}))
    with pytest.raises(ValueError, match="do not match DeepFillV2Generator"):
        DeepFillInpainter.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="loads strictly only"):
        DeepFillV2Generator.from_pretrained(generator_folder, strict=False)

    # Pickled weights are never loaded.
    (generator_folder / "config.json").write_text(json.dumps({"base_channels": 8}))
    state_dict = safetensors.torch.load_file(generator_folder / "model.safetensors")
    torch.save(state_dict, generator_folder / "pytorch_model.bin")
    (generator_folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="only pickled weights"):
        DeepFillInpainter.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="no model.safetensors"):
        DeepFillV2Generator.from_pretrained(generator_folder)

    # Another pipeline's folder is named as such.
    (tmp_path / "model" / "model_index.json").write_text(json.dumps({"_class_name": "HOGInpaintPipeline"}))
    with pytest.raises(ValueError, match="not a DeepFillInpainter"):
        DeepFillInpainter.from_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="resolution must be"):
        DeepFillInpainter(DeepFillV2Generator(base_channels=8), resolution=60)


# ---- converter for nipponjo/deepfillv2-pytorch weights ----------------------------------------------------------


def _port_layers(c: int) -> list[tuple[str, int, int, int, int, int, str]]:
    """The convolutions of nipponjo/deepfillv2-pytorch `model/networks.py` `Generator(cnum_in=5, cnum=c)` in forward
    order: (module path, in, out features, kernel, stride, dilation, activation); gated layers store 2*out outputs."""

    def down(name, cin, cout, hidden):
        return [(f"{name}.conv1_downsample.conv", cin, hidden, 3, 2, 1, "elu"),
                (f"{name}.conv2.conv", hidden, cout, 3, 1, 1, "elu")]

    def up(name, cin, cout, hidden):
        return [(f"{name}.conv1_upsample.conv.conv", cin, hidden, 3, 1, 1, "up"),
                (f"{name}.conv2.conv", hidden, cout, 3, 1, 1, "elu")]

    def bottleneck(prefix, first, last):
        rates = {2: 2, 3: 4, 4: 8, 5: 16}
        return [(f"{prefix}{i}.conv", 2 * c, 2 * c, 3, 1, rates.get(i, 1), "elu") for i in range(first, last + 1)]

    stage1 = [("stage1.conv1.conv", 5, c // 2, 5, 1, 1, "elu"), *down("stage1.down_block1", c // 2, c, c),
              *down("stage1.down_block2", c, 2 * c, 2 * c), *bottleneck("stage1.conv_bn", 1, 7),
              *up("stage1.up_block1", 2 * c, c, c), *up("stage1.up_block2", c, c // 4, c // 2),
              ("stage1.conv_to_rgb.conv", c // 4, 3, 3, 1, 1, "none")]
    branch1 = [("stage2.b1_conv1.conv", 3, c // 2, 5, 1, 1, "elu"), *down("stage2.b1_down_block1", c // 2, c, c // 2),
               *down("stage2.b1_down_block2", c, 2 * c, c), *bottleneck("stage2.b1_conv_bn", 1, 5)]
    branch2 = [("stage2.b2_conv1.conv", 3, c // 2, 5, 1, 1, "elu"), *down("stage2.b2_down_block1", c // 2, c, c // 2),
               *down("stage2.b2_down_block2", c, 2 * c, 2 * c),
               ("stage2.b2_conv_bn1.conv", 2 * c, 2 * c, 3, 1, 1, "relu")]
    after_attention = [("stage2.b2_conv_bn4.conv", 2 * c, 2 * c, 3, 1, 1, "elu"),
                       ("stage2.b2_conv_bn5.conv", 2 * c, 2 * c, 3, 1, 1, "elu")]
    merged = [("stage2.conv_bn6.conv", 4 * c, 2 * c, 3, 1, 1, "elu"),
              ("stage2.conv_bn7.conv", 2 * c, 2 * c, 3, 1, 1, "elu"),
              *up("stage2.up_block1", 2 * c, c, c), *up("stage2.up_block2", c, c // 4, c // 2),
              ("stage2.conv_to_rgb.conv", c // 4, 3, 3, 1, 1, "none")]
    return stage1 + branch1 + branch2 + after_attention + merged


def _synthetic_port_state_dict(c: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for name, cin, cout, kernel, _, _, activation in _port_layers(c):
        outputs = cout if activation == "none" else 2 * cout
        fan_in = cin * kernel * kernel
        weight = torch.randn(outputs, cin, kernel, kernel, generator=generator)
        state_dict[f"{name}.weight"] = weight * (2 / fan_in) ** 0.5
        state_dict[f"{name}.bias"] = torch.randn(outputs, generator=generator) * 0.1
    return state_dict


def _port_forward(state_dict: dict[str, torch.Tensor], c: int, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The port's forward pass written from its layer list, on the port's own keys: `(B, 3, H, W)` in [0, 1] →
    refined in [0, 1] (H, W multiples of 8). Contextual attention has no weights; ours is used."""
    layers = {layer[0]: layer for layer in _port_layers(c)}

    def run(names, x):
        for name in names:
            _, _, cout, kernel, stride, rate, activation = layers[name]
            if activation == "up":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, state_dict[f"{name}.weight"], state_dict[f"{name}.bias"], stride=stride,
                         padding=rate * (kernel - 1) // 2, dilation=rate)
            if activation != "none":
                features, gate = x.split(cout, dim=1)
                x = (F.relu(features) if activation == "relu" else F.elu(features)) * torch.sigmoid(gate)
        return x

    names = [layer[0] for layer in _port_layers(c)]
    stage1 = [n for n in names if n.startswith("stage1.")]
    branch1 = [n for n in names if n.startswith("stage2.b1_")]
    branch2 = [n for n in names if n.startswith("stage2.b2_") and "bn4" not in n and "bn5" not in n]
    after_attention = ["stage2.b2_conv_bn4.conv", "stage2.b2_conv_bn5.conv"]
    merged = [n for n in names if n.startswith("stage2.") and not n.startswith(("stage2.b1_", "stage2.b2_"))]

    x_in = (image * 2 - 1) * (1 - mask)
    ones = torch.ones_like(mask)
    coarse = torch.tanh(run(stage1, torch.cat([x_in, ones, ones * mask], dim=1)))
    x_now = coarse * mask + x_in * (1 - mask)
    hallucinated = run(branch1, x_now)
    features = run(branch2, x_now)
    attended = ContextualAttention()(features, features, F.max_pool2d(mask, 4))
    refined = torch.tanh(run(merged, torch.cat([hallucinated, run(after_attention, attended)], dim=1)))
    return (refined + 1) / 2


def test_converter_gives_a_strict_load_at_the_published_width() -> None:
    converted = convert_deepfill_state_dict(_synthetic_port_state_dict(48, seed=0))
    generator = DeepFillV2Generator()
    generator.load_state_dict(converted, strict=True)
    assert len(converted) == len(generator.state_dict()) == 84


def test_converted_weights_compute_the_port_forward() -> None:
    """Every weight lands where the port uses it: same refined output as the port's forward on its own keys."""
    c = 8
    port_state_dict = _synthetic_port_state_dict(c, seed=1)
    generator = DeepFillV2Generator(base_channels=c).eval()
    generator.load_state_dict(convert_deepfill_state_dict(port_state_dict, base_channels=c), strict=True)
    image = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    mask = torch.stack([_rectangle_mask(1, 48, 64, 8, 8, 20)[0], _rectangle_mask(1, 48, 64, 20, 30, 16)[0]])
    with torch.no_grad():
        _, refined = generator(image, mask)
        expected = _port_forward(port_state_dict, c, image, mask)
    torch.testing.assert_close(refined, expected, rtol=1e-4, atol=1e-5)


def test_converter_refuses_other_layouts() -> None:
    port = _synthetic_port_state_dict(8, seed=0)
    with pytest.raises(ValueError, match=r'pass checkpoint\["G"\]'):
        convert_deepfill_state_dict({"G": port, "D": {}}, base_channels=8)
    with pytest.raises(ValueError, match="TensorFlow-converted layout"):
        convert_deepfill_state_dict({"conv1.conv.weight": torch.zeros(1)}, base_channels=8)
    with pytest.raises(ValueError, match="expected .* for base_channels=16"):
        convert_deepfill_state_dict(port, base_channels=16)
    missing = dict(port)
    del missing["stage2.conv_bn6.conv.bias"]
    with pytest.raises(ValueError, match="stage2.conv_bn6.conv.bias is missing"):
        convert_deepfill_state_dict(missing, base_channels=8)
    with pytest.raises(ValueError, match="does not use"):
        convert_deepfill_state_dict({**port, "stage2.extra.weight": torch.zeros(1)}, base_channels=8)
