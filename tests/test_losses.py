"""Losses against hand-computed values, LossWeights, and VGG16Features (random weights on purpose; the pretrained ones
come from the Hub, which tests never reach: a local file, a pre-filled offline cache, and an empty offline cache)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from hoginpaint.losses import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LossWeights,
    VGG16Features,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    gram_matrix,
    grid_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    l1_loss,
    load_vgg16_features,
    masked_l1_loss,
    perceptual_loss,
    style_loss,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
VGG_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17)
VGG_CONV_SHAPES = ((64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256), (512, 256))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------------------------------------------------------------
# Adversarial


def test_discriminator_loss_matches_the_formula_and_edgeconnect_bce() -> None:
    real = torch.tensor([[2.0, -1.0], [0.0, 3.5]])
    fake = torch.tensor([[0.5, -3.0], [1.0, -0.25]])
    expected = (sum(softplus(-r) for r in real.flatten().tolist()) / 4
                + sum(softplus(f) for f in fake.flatten().tolist()) / 4) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    edgeconnect = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real))
                   + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros_like(fake))) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(edgeconnect.item(), rel=1e-5)


def test_generator_adversarial_loss_matches_the_formula() -> None:
    fake = torch.tensor([0.0, 2.0, -4.0])
    expected = (math.log(2) + softplus(-2.0) + softplus(4.0)) / 3
    assert generator_adversarial_loss(fake).item() == pytest.approx(expected, rel=1e-6)
    # Stable for large logits (the logit form, not log(sigmoid)).
    assert generator_adversarial_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)


def test_hinge_losses_match_hand_values() -> None:
    real = torch.tensor([0.5, 2.0])
    fake = torch.tensor([-2.0, 0.3])
    # relu(1 - real) = [0.5, 0] → 0.25; relu(1 + fake) = [0, 1.3] → 0.65; 0.5·0.25 + 0.5·0.65
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.45)
    assert hinge_generator_loss(fake).item() == pytest.approx(0.85)


def test_feature_matching_loss_hand_value_and_detached_targets() -> None:
    real = [torch.tensor([1.0, 2.0], requires_grad=True), torch.zeros(1, 3, requires_grad=True)]
    fake = [torch.tensor([0.0, 4.0], requires_grad=True), torch.tensor([[3.0, 0.0, -3.0]], requires_grad=True)]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(((1 + 2) / 2 + (3 + 0 + 3) / 3) / 2)
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None
    with pytest.raises(ValueError, match="same length"):
        feature_matching_loss(real, fake[:1])


# ---------------------------------------------------------------------------------------------------------------------
# Reconstruction


def test_l1_loss_hand_value_and_shape_check() -> None:
    pred = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert l1_loss(pred, target).item() == pytest.approx((1 + 0 + 0.5 + 0.25) / 4)
    with pytest.raises(ValueError, match="shapes must match"):
        l1_loss(pred, target[:1])


def test_masked_l1_loss_weights_hole_and_known_pixels() -> None:
    pred = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.0, 0.0]).view(1, 2, 1, 3)
    target = torch.zeros(1, 2, 1, 3)
    mask = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)  # 1 = hole, broadcast over both channels
    # |diff| = [0, 1, .5 | .25, 0, 0]; weights hole 10, known 2 → [0, 2, 5 | 2.5, 0, 0], mean over 6 elements
    loss = masked_l1_loss(pred, target, mask, weight_known=2.0, weight_missing=10.0)
    assert loss.item() == pytest.approx((2 + 5 + 2.5) / 6)
    assert masked_l1_loss(pred, target, mask).item() == pytest.approx(l1_loss(pred, target).item())
    with pytest.raises(ValueError, match="mask must be"):
        masked_l1_loss(pred, target, mask[..., :2])


# ---------------------------------------------------------------------------------------------------------------------
# Perceptual, Gram, style


def test_gram_matrix_matches_einsum() -> None:
    features = torch.randn(2, 5, 4, 3, generator=torch.Generator().manual_seed(0))
    expected = torch.einsum("bchw,bdhw->bcd", features, features) / (5 * 4 * 3)
    assert torch.allclose(gram_matrix(features), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gram_matrix(features[0])


def test_style_loss_hand_value_and_zero_for_identical_features() -> None:
    a = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    b = torch.zeros(1, 1, 1, 2)
    # gram(a) = (1 + 4) / (1·1·2) = 2.5, gram(b) = 0; two identical layers summed → 5
    assert style_loss([a, a], [b, b]).item() == pytest.approx(5.0)
    features = [torch.randn(2, 4, 6, 6), torch.randn(2, 8, 3, 3)]
    assert style_loss(features, [f.clone() for f in features]).item() == 0.0
    # Gram matrices ignore where the activation is: a spatially shuffled map has the same style.
    shuffled = [f.flatten(2)[..., torch.randperm(f.shape[2] * f.shape[3])].view_as(f) for f in features]
    assert style_loss(features, shuffled).item() == pytest.approx(0.0, abs=1e-6)


def test_perceptual_loss_sums_per_layer_mean_l1() -> None:
    pred = [torch.ones(1, 2, 2, 2), torch.full((1, 4, 1, 1), 3.0)]
    target = [torch.zeros(1, 2, 2, 2), torch.ones(1, 4, 1, 1)]
    assert perceptual_loss(pred, target).item() == pytest.approx(1.0 + 2.0)
    with pytest.raises(ValueError, match="layer 1"):
        perceptual_loss(pred, [target[0], torch.ones(1, 4, 2, 2)])


# ---------------------------------------------------------------------------------------------------------------------
# LossWeights


def _hole_and_face(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    face = torch.rand(2, 3, size, size) * 2 - 1
    hole = torch.zeros(2, 1, size, size)
    hole[:, :, 8:56, 4:60] = 1
    return face, hole


def test_grid_loss_hand_value_for_stripes_in_phase_with_the_pixel_grid() -> None:
    face, hole = _hole_and_face()
    rows = torch.arange(64)
    stripes = torch.where(rows % 4 == 1, 0.03, -0.01)[None, None, :, None]  # mean 0; phase deviations 0.03, -0.01
    # tiles at least half hole: the four 32x32 ones; each phase mean is the stripe value at that phase
    assert grid_loss(face + stripes, face, hole).item() == pytest.approx((0.03 ** 2 + 3 * 0.01 ** 2) / 4, rel=1e-5)
    assert grid_loss(face + stripes, face, hole, window=16).item() == pytest.approx((0.03 ** 2 + 3 * 0.01 ** 2) / 4,
                                                                                  rel=1e-5)
    # stripes outside the hole cost nothing; a constant offset, or stripes of another period, cost (almost) nothing
    assert grid_loss(face + stripes * (1 - hole), face, hole).item() == 0
    assert grid_loss(face + 0.2, face, hole).item() == pytest.approx(0, abs=1e-12)
    period_5 = torch.where(rows % 5 == 1, 0.04, -0.01)[None, None, :, None]
    assert grid_loss(face + period_5, face, hole).item() < 0.05 * grid_loss(face + stripes, face, hole).item()


def test_grid_loss_is_zero_without_large_holes_keeps_the_graph_and_checks_its_arguments() -> None:
    face, hole = _hole_and_face()
    small = torch.zeros_like(hole)
    small[:, :, 10:20, 10:20] = 1  # no 32x32 tile is half hole
    prediction = (face + 0.1).requires_grad_()
    loss = grid_loss(prediction, face, small)
    assert loss.item() == 0
    loss.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() == 0
    # a size that is not a multiple of the window is padded with known pixels
    assert grid_loss(face[..., :60, :52] + 0.01 * (torch.arange(52) % 4 == 0), face[..., :60, :52],
                     hole[..., :60, :52]).item() > 0
    with pytest.raises(ValueError, match="mask"):
        grid_loss(face, face, hole[:, :, :32])
    with pytest.raises(ValueError, match="multiple of period"):
        grid_loss(face, face, hole, period=4, window=30)


def test_grid_loss_gradient_removes_a_stripe_and_ignores_unpredictable_detail_on_average() -> None:
    face, hole = _hole_and_face()
    stripes = torch.where(torch.arange(64) % 4 == 0, 0.03, -0.01)[None, None, :, None]
    prediction = (face + stripes).requires_grad_()
    grid_loss(prediction, face, hole).backward()
    step = prediction.grad / prediction.grad.abs().max()
    # descending the gradient lowers the stripe at every hole pixel of its phase, raises it at the others
    inside = hole.bool().expand_as(step)
    assert (step[:, :, 8:56:4][inside[:, :, 8:56:4]] > 0).all()
    assert (step[:, :, 9:56:4][inside[:, :, 9:56:4]] < 0).all()
    assert (step[~inside] == 0).all()


def test_loss_weights_defaults_are_the_papers() -> None:
    assert asdict(LossWeights()) == {"structure_l1": 1.0, "structure_adversarial": 1.0, "l1": 1.0, "adversarial": 0.1,
                                     "perceptual": 0.1, "style": 250.0, "feature_matching": 0.0,
                                     "l1_hole": 1.0, "grid": 0.0, "hog": 0.0, "hole_adversarial": 0.0,
                                     "contrast": 0.0, "hole_contrast": 0.0}
    assert LossWeights().needs_vgg and not LossWeights(perceptual=0.0, style=0.0).needs_vgg


@pytest.mark.parametrize("field,value", [("style", -1.0), ("l1", float("nan")), ("adversarial", "0.1"),
                                         ("perceptual", True)])
def test_loss_weights_refuse_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        LossWeights(**{field: value})


# ---------------------------------------------------------------------------------------------------------------------
# VGG16Features


@pytest.fixture(scope="module")
def vgg() -> VGG16Features:
    torch.manual_seed(0)
    return VGG16Features()


def reference_vgg16_activations(state: dict[str, torch.Tensor], image: torch.Tensor) -> list[torch.Tensor]:
    """VGG-16 written out layer by layer (torchvision's config "D": 64, 64, M, 128, 128, M, 256 ×3, M, 512...)."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def conv(x: torch.Tensor, index: int) -> torch.Tensor:
        return F.relu(F.conv2d(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1))

    relu1_1 = conv((image - mean) / std, 0)
    relu2_1 = conv(F.max_pool2d(conv(relu1_1, 2), 2), 5)
    relu3_1 = conv(F.max_pool2d(conv(relu2_1, 7), 2), 10)
    relu4_1 = conv(F.max_pool2d(conv(conv(relu3_1, 12), 14), 2), 17)
    return [relu1_1, relu2_1, relu3_1, relu4_1]


def test_vgg16_features_layout_and_parity_with_a_written_out_vgg(vgg: VGG16Features) -> None:
    state = vgg.state_dict()
    expected_keys = [f"features.{i}.{p}" for i in VGG_CONV_INDICES for p in ("weight", "bias")]
    assert list(state) == expected_keys
    assert [tuple(state[f"features.{i}.weight"].shape[:2]) for i in VGG_CONV_INDICES] == list(VGG_CONV_SHAPES)
    image = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    outputs = vgg(image)
    reference = reference_vgg16_activations(state, image)
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 32, 40), (2, 128, 16, 20), (2, 256, 8, 10), (2, 512, 4, 5)]
    for output, expected in zip(outputs, reference):
        assert torch.allclose(output, expected, atol=1e-5)
    with pytest.raises(ValueError, match="RGB images"):
        vgg(image[:, :1])


def test_vgg16_features_are_frozen_but_pass_gradients(vgg: VGG16Features) -> None:
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    target = torch.rand(1, 3, 16, 16)
    loss = perceptual_loss(vgg(pred), vgg(target)) + style_loss(vgg(pred), vgg(target))
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
    assert perceptual_loss(vgg(target), vgg(target.clone())).item() == 0.0


def test_random_vgg16_stand_in_is_seeded_narrow_frozen_and_structural() -> None:
    from hoginpaint.losses import random_vgg16_features

    first, again, other = random_vgg16_features(0), random_vgg16_features(0), random_vgg16_features(1)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    features = first(image)
    assert [tuple(f.shape[1:]) for f in features] == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]
    assert all(torch.equal(a, b) for a, b in zip(features, again(image)))  # the seed decides the weights
    assert not torch.equal(features[0], other(image)[0])
    assert not any(p.requires_grad for p in first.parameters())
    assert all(layer.bias.abs().max() == 0 for layer in first.features if isinstance(layer, torch.nn.Conv2d))
    # Kaiming (fan-out) weights keep the deepest features alive: no layer of ReLUs all zero.
    assert all(f.abs().mean() > 1e-3 for f in features)
    # Per unit of L1, replacing a patch costs more than a small uniform brightness change (measured: 3.35 vs 2.63).
    shifted = (image + 0.02).clamp(0, 1)
    noisy = image.clone()
    noisy[:, :, 8:24, 8:24] = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    l1_shift, l1_noise = (shifted - image).abs().mean(), (noisy - image).abs().mean()
    per_l1 = [perceptual_loss(first(x), features).item() / l1 for x, l1 in ((shifted, l1_shift), (noisy, l1_noise))]
    assert per_l1[1] > 1.1 * per_l1[0]
    with pytest.raises(ValueError, match="width_divisor"):
        VGG16Features(width_divisor=0)


def fake_timm_vgg16_file(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file with timm/vgg16.tv_in1k's key names: the needed convs (random values), deeper convs and
    the classifier (tiny stand-ins, to be ignored)."""
    generator = torch.Generator().manual_seed(2)
    tensors = {}
    for index, (cout, cin) in zip(VGG_CONV_INDICES, VGG_CONV_SHAPES):
        tensors[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * 0.05
        tensors[f"features.{index}.bias"] = torch.randn(cout, generator=generator)
    for key in ("features.19.weight", "features.21.bias", "pre_logits.fc1.weight", "head.fc.weight"):
        tensors[key] = torch.zeros(2)
    safetensors.torch.save_file(tensors, path)
    return tensors


def test_load_vgg16_features_from_a_local_file(tmp_path: Path) -> None:
    tensors = fake_timm_vgg16_file(tmp_path / "model.safetensors")
    model = load_vgg16_features(weights_path=str(tmp_path / "model.safetensors"))
    state = model.state_dict()
    assert set(state) == {k for k in tensors if not k.startswith(("features.19", "features.21", "pre_", "head"))}
    for key, value in state.items():
        assert torch.equal(value, tensors[key]), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_load_vgg16_features_refuses_incomplete_and_pickled_files(tmp_path: Path) -> None:
    tensors = fake_timm_vgg16_file(tmp_path / "full.safetensors")
    safetensors.torch.save_file({k: v for k, v in tensors.items() if k != "features.17.weight"},
                                tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"missing \['features.17.weight'\]"):
        load_vgg16_features(weights_path=str(tmp_path / "missing.safetensors"))
    safetensors.torch.save_file({**tensors, "features.0.weight": torch.zeros(64, 1, 3, 3)},
                                tmp_path / "misshapen.safetensors")
    with pytest.raises(ValueError, match=r"misshapen \['features.0.weight \(64, 1, 3, 3\)"):
        load_vgg16_features(weights_path=str(tmp_path / "misshapen.safetensors"))
    torch.save(tensors, tmp_path / "vgg16.pth")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_vgg16_features(weights_path=str(tmp_path / "vgg16.pth"))
    with pytest.raises(ValueError, match="is not a file"):
        load_vgg16_features(weights_path=str(tmp_path / "absent.safetensors"))


def _run_offline(code: str, hf_home: Path) -> subprocess.CompletedProcess:
    # A subprocess: huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when it is imported.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(PYTHONPATH=str(REPO_ROOT), HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_load_vgg16_features_offline_with_empty_cache_says_what_to_do(tmp_path: Path) -> None:
    result = _run_offline("""
        from hoginpaint.losses import load_vgg16_features
        try:
            load_vgg16_features()
        except RuntimeError as error:
            print("MESSAGE:", error)
        """, tmp_path / "empty-hf-home")
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "MESSAGE: the VGG-16 weights could not be fetched" in message
    assert "timm/vgg16.tv_in1k" in message and "weights_path" in message
    assert "perceptual and style loss weights to 0" in message


def test_load_vgg16_features_from_a_prefilled_offline_cache(tmp_path: Path) -> None:
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo_cache = tmp_path / "hf-home" / "hub" / "models--timm--vgg16.tv_in1k"
    (repo_cache / "snapshots" / commit).mkdir(parents=True)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(commit)
    fake_timm_vgg16_file(repo_cache / "snapshots" / commit / "model.safetensors")
    fake_timm_vgg16_file(tmp_path / "reference.safetensors")
    result = _run_offline(f"""
        import torch
        from hoginpaint.losses import load_vgg16_features
        hub, local = load_vgg16_features(), load_vgg16_features(weights_path={str(tmp_path / 'reference.safetensors')!r})
        assert all(torch.equal(a, b) for a, b in zip(hub.state_dict().values(), local.state_dict().values()))
        print("LOADED", len(hub.state_dict()))
        """, tmp_path / "hf-home")
    assert result.returncode == 0, result.stderr
    assert "LOADED 16" in result.stdout


# ---------------------------------------------------------------------------------------------------------------------
# HOG loss


def _textured(seed: int = 0, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 3, size // 4, size // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_soft_histograms_follow_the_hard_ones():
    from hoginpaint.hog import hog_histograms, to_gray
    from hoginpaint.losses import soft_orientation_histograms

    gray = to_gray(_textured(1, 64))
    soft = soft_orientation_histograms(gray, pixels_per_cell=4)
    hard = hog_histograms(gray, orientations=9, pixels_per_cell=4)
    assert soft.shape == hard.shape == (2, 9, 16, 16)
    # the same votes, spread over neighbouring bins: per-cell totals scale together and the bins correlate
    correlation = torch.corrcoef(torch.stack([soft.flatten(), hard.flatten()]))[0, 1]
    assert correlation > 0.8
    # a vertical edge votes into the bins around 0 degrees (horizontal gradient), none at 90
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1
    histogram = soft_orientation_histograms(edge, pixels_per_cell=8)[0, :, 0, 0]
    assert histogram[0] > 0 and histogram[-1] > 0 and histogram[4] == 0


def test_hog_loss_is_zero_for_the_target_and_large_for_a_flat_fill():
    from hoginpaint.losses import hog_loss

    target = _textured()
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    assert hog_loss(target, target, mask) == 0
    flat = target * (1 - mask) + mask * (target * mask).sum((2, 3), keepdim=True) / mask.sum((2, 3), keepdim=True)
    noisy = (target + 0.01 * torch.randn(target.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    noisy = target * (1 - mask) + noisy * mask
    # the flat fill is nearer in L1 than a noisy copy of the truth would be far, but far in HOG
    assert hog_loss(flat, target, mask) > 3 * hog_loss(target * (1 - mask) + (target * 0.98 + 0.01) * mask,
                                                        target, mask)
    assert hog_loss(noisy, target, mask) > 0
    # cells away from the hole do not count
    changed = target.clone()
    changed[..., :4, :4] = 0
    assert hog_loss(changed, target, mask) == 0
    assert hog_loss(target, target, torch.zeros_like(mask)) == 0


def test_hog_loss_gradient_is_finite_on_flat_regions_and_pulls_towards_the_target():
    from hoginpaint.losses import hog_loss

    target = _textured(2)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 4:20, 4:20] = 1
    fill = torch.full_like(target, 0.5).requires_grad_(True)
    loss = hog_loss(target * (1 - mask) + fill * mask, target, mask)
    loss.backward()
    assert torch.isfinite(fill.grad).all() and fill.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples of 4"):
        hog_loss(torch.zeros(1, 3, 30, 30), torch.zeros(1, 3, 30, 30), torch.zeros(1, 1, 30, 30))


def test_contrast_loss_known_answers():
    from hoginpaint.hog import to_gray
    from hoginpaint.losses import contrast_loss, local_contrast

    target = _textured()  # (2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:16, 8:16] = 1  # exactly one 8x8 window
    assert contrast_loss(target, target, mask) == 0
    assert contrast_loss(target * 0, target, torch.zeros_like(mask)) == 0  # no hole: nothing to compare
    # a flat fill of that window scores the target's standard deviation there (the fill's is 0, or 1e-3: the
    # sqrt(1e-6) that keeps the gradient finite on flat windows)
    flat = target.clone()
    flat[..., 8:16, 8:16] = 0.5
    expected = to_gray(target)[..., 8:16, 8:16].std((1, 2, 3), unbiased=False).mean()
    assert contrast_loss(flat, target, mask, windows=(8,)).item() == pytest.approx(expected.item() - 1e-3, abs=1e-4)
    # contrast, not position: the window mirrored left-right has the same standard deviation
    mirrored = target.clone()
    mirrored[..., 8:16, 8:16] = target[..., 8:16, 8:16].flip(-1)
    assert contrast_loss(mirrored, target, mask, windows=(8,)).item() == pytest.approx(0, abs=1e-3)
    # windows without a hole pixel do not count (the 32-px window holds the whole image)
    changed = target.clone()
    changed[..., 24:, 24:] = 0
    assert contrast_loss(changed, target, mask, windows=(4, 8, 16)) == 0
    assert contrast_loss(changed, target, mask) > 0
    # border windows cut by the image edge use the pixels they hold
    assert local_contrast(to_gray(target), 32).shape == (2, 1, 1, 1)
    assert local_contrast(to_gray(target[..., :30, :30]), 8).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="windows"):
        contrast_loss(target, target, mask, windows=(1,))
    with pytest.raises(ValueError, match="RGB"):
        contrast_loss(target[:, :1], target[:, :1], mask)


def test_contrast_loss_keeps_small_contrast_in_bfloat16():
    from hoginpaint.losses import contrast_loss

    # a standard deviation of a few thousandths around 0.5 (skin), in values bfloat16 holds exactly
    target = (0.5 + 0.02 * _textured(4)).bfloat16()
    mask = torch.ones(2, 1, 32, 32)
    flat = torch.full_like(target, 0.5)
    exact = contrast_loss(flat.float(), target.float(), mask)
    assert exact > 0.001
    assert contrast_loss(flat, target, mask.bfloat16()).item() == pytest.approx(exact.item(), rel=0.01)


def test_contrast_loss_gradient_raises_a_flat_fills_contrast():
    from hoginpaint.losses import contrast_loss

    target = _textured(2)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 4:20, 4:20] = 1
    noise = 0.01 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    fill = (0.5 + noise).requires_grad_(True)  # nearly flat: the mean that L1 pays for
    composite = lambda fill: target * (1 - mask) + fill * mask  # noqa: E731
    before = contrast_loss(composite(fill), target, mask)
    before.backward()
    assert torch.isfinite(fill.grad).all()
    stepped = (fill - 20 * fill.grad).detach()
    assert contrast_loss(composite(stepped), target, mask) < before
    assert stepped[..., 4:20, 4:20].std() > fill.detach()[..., 4:20, 4:20].std()


def test_hog_loss_weight_adds_a_term_to_the_inpainting_loss():
    from hoginpaint.losses import LossWeights

    assert LossWeights().hog == 0
    with pytest.raises(ValueError, match="hog"):
        LossWeights(hog=-1)


def test_hole_contrast_loss_known_answers():
    from hoginpaint.losses import hole_contrast_loss, to_gray
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 8:24, 8:24] = 1  # the second image has no hole: it is left out of the mean
    assert hole_contrast_loss(target, target, mask).item() == pytest.approx(0, abs=1e-6)
    assert hole_contrast_loss(target * 0, target, torch.zeros_like(mask)) == 0  # no hole: nothing to compare
    gray = to_gray(target[:1])[mask[:1].bool()]
    flat = target * (1 - mask) + 0.5 * mask
    expected = gray.std(unbiased=False).item() - 1e-3  # a flat fill's standard deviation reads sqrt(1e-6)
    assert hole_contrast_loss(flat, target, mask).item() == pytest.approx(expected, abs=1e-4)
    # contrast, not position: the hole's pixels shuffled have the same standard deviation
    shuffled = target.clone()
    shuffled[0, :, 8:24, 8:24] = target[0, :, 8:24, 8:24].flip(1, 2)
    assert hole_contrast_loss(shuffled, target, mask).item() == pytest.approx(0, abs=1e-5)
    # what lies outside the hole does not count
    outside = target.clone()
    outside[0, :, :4] = 1
    assert hole_contrast_loss(outside, target, mask).item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        hole_contrast_loss(target[:, :1], target[:, :1], mask)


def test_hole_contrast_loss_gradient_raises_a_flat_fills_contrast():
    from hoginpaint.losses import hole_contrast_loss
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    fill = (0.5 + 0.01 * torch.randn(1, 3, 32, 32)).requires_grad_()
    before = hole_contrast_loss(target * (1 - mask) + fill * mask, target, mask)
    before.backward()
    stepped = (fill - 5.0 * fill.grad).detach()
    assert hole_contrast_loss(target * (1 - mask) + stepped * mask, target, mask) < before
    assert fill.grad[..., :8, :].abs().sum() == 0  # no gradient outside the hole
