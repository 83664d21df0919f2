"""Generators and discriminator: shapes and ranges over every variant, parameter counts, Hub round trips (strict,
safetensors only), the PatchGAN's 70x70 receptive field, the dilated residual blocks, spectral norm and init."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.nn.utils import parametrize

import hoginpaint.networks as networks
from hoginpaint.hog import HOG_IMAGE_SCALE
from hoginpaint.networks import InpaintGenerator, PatchDiscriminator, ResnetBlock, StructureGenerator
from tests.hub_server import HubServer

REPO_ROOT = Path(__file__).resolve().parent.parent
PAPER: dict = {}
TINY = {"base_channels": 8, "residual_blocks": 1}
KINDS = ("structure", "inpaint", "discriminator-hog", "discriminator-rgb")

# Measured once and written into the networks' docstrings; test_parameter_counts keeps both honest.
PARAMETER_COUNTS = {
    ("structure", "paper"): 10_761_089,
    ("structure", "tiny"): 40_561,
    ("inpaint", "paper"): 10_777_731,
    ("inpaint", "tiny"): 42_195,
    ("discriminator-hog", "paper"): 2_761_728,
    ("discriminator-hog", "tiny"): 44_160,
    ("discriminator-rgb", "paper"): 2_763_776,
    ("discriminator-rgb", "tiny"): 44_416,
}


def build(kind: str, config: dict) -> nn.Module:
    if kind == "structure":
        return StructureGenerator(**config)
    if kind == "inpaint":
        return InpaintGenerator(**config)
    base = {"base_channels": config["base_channels"]} if "base_channels" in config else {}
    return PatchDiscriminator(1 if kind == "discriminator-hog" else 3, **base)


def generator_inputs(kind: str, batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.7).float()
    image = torch.rand(batch, 3 if kind == "inpaint" else 1, height, width, generator=generator) * (1 - mask)
    guidance = torch.rand(batch, 1, height, width, generator=generator)
    return image, guidance * (1 - mask) if kind == "structure" else guidance, mask


def closed_form_count(kind: str, config: dict) -> int:
    """Parameters counted layer by layer from EdgeConnect's architecture (weights + biases)."""
    b = config.get("base_channels", 64)
    n = config.get("residual_blocks", 8)
    if kind.startswith("discriminator"):
        cin = 1 if kind == "discriminator-hog" else 3
        return 16 * (cin * b + b * 2 * b + 2 * b * 4 * b + 4 * b * 8 * b + 8 * b)  # 4x4 convs, no bias (SN)
    cin, cout, block_bias = (3, 1, 0) if kind == "structure" else (5, 3, 1)  # SN blocks have no bias
    encoder = (49 * cin * b + b) + (16 * b * 2 * b + 2 * b) + (16 * 2 * b * 4 * b + 4 * b)
    middle = n * 2 * (9 * 4 * b * 4 * b + block_bias * 4 * b)
    decoder = (16 * 4 * b * 2 * b + 2 * b) + (16 * 2 * b * b + b) + (49 * b * cout + cout)
    return encoder + middle + decoder


# ---------------------------------------------------------------------------------------------------------------------
# Every variant: forward, counts


@pytest.mark.parametrize("config_name", ["tiny", "paper"])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes_ranges_and_finite(kind: str, config_name: str) -> None:
    torch.manual_seed(0)
    model = build(kind, TINY if config_name == "tiny" else PAPER).eval()
    # Paper configs: one 64x64 forward; tiny: a batch of two at a non-square size.
    batch, height, width = (1, 64, 64) if config_name == "paper" else (2, 48, 64)
    with torch.no_grad():
        if kind.startswith("discriminator"):
            x = torch.rand(batch, model.in_channels, height, width)
            logits, features = model(x)
            base = model.conv1[0].out_channels
            assert logits.shape == (batch, 1, height // 8 - 2, width // 8 - 2)
            assert [tuple(f.shape) for f in features] == [
                (batch, base, height // 2, width // 2), (batch, 2 * base, height // 4, width // 4),
                (batch, 4 * base, height // 8, width // 8), (batch, 8 * base, height // 8 - 1, width // 8 - 1)]
            assert all(torch.isfinite(t).all() for t in [logits, *features])
            # Logits, not probabilities: the raw output of the last conv, no sigmoid after it.
            assert torch.equal(logits, model.conv5(features[-1]))
            assert isinstance(model.conv5[-1], nn.Conv2d)
        else:
            out = model(*generator_inputs(kind, batch, height, width))
            assert out.shape == (batch, 1 if kind == "structure" else 3, height, width)
            assert torch.isfinite(out).all()
            assert out.min() >= 0 and out.max() <= 1
            assert out.std() > 0  # not a constant image


@pytest.mark.parametrize("config_name", ["tiny", "paper"])
@pytest.mark.parametrize("kind", KINDS)
def test_parameter_counts_match_documented_and_closed_form(kind: str, config_name: str) -> None:
    config = TINY if config_name == "tiny" else PAPER
    model = build(kind, config)
    documented = PARAMETER_COUNTS[(kind, config_name)]
    assert model.parameter_count() == documented == closed_form_count(kind, config)
    assert f"{documented:,}" in networks.__doc__
    assert f"{documented:,}" in type(model).__doc__


def test_structure_generator_without_spectral_norm_has_block_biases() -> None:
    plain = StructureGenerator(**TINY, use_spectral_norm=False)
    sn = StructureGenerator(**TINY)
    assert plain.parameter_count() - sn.parameter_count() == 2 * 4 * TINY["base_channels"]  # one block, two biases
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())


# ---------------------------------------------------------------------------------------------------------------------
# Architecture details


def test_encoder_middle_decoder_layout() -> None:
    model = InpaintGenerator(**TINY)
    b = TINY["base_channels"]
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (5, b, (7, 7), (1, 1)), (b, 2 * b, (4, 4), (2, 2)), (2 * b, 4 * b, (4, 4), (2, 2))]
    assert isinstance(model.encoder[0], nn.ReflectionPad2d) and model.encoder[0].padding == (3, 3, 3, 3)
    tconvs = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in tconvs] == [(4 * b, 2 * b, (2, 2)), (2 * b, b, (2, 2))]
    assert isinstance(model.decoder[-1], nn.Conv2d) and model.decoder[-1].kernel_size == (7, 7)
    norms = [m for m in model.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not n.track_running_stats and not n.affine for n in norms)
    assert len(model.middle) == TINY["residual_blocks"] and all(isinstance(m, ResnetBlock) for m in model.middle)


@pytest.mark.parametrize("generator_class", [StructureGenerator, InpaintGenerator])
def test_residual_blocks_use_dilation_2(generator_class: type) -> None:
    model = generator_class(base_channels=4, residual_blocks=2)
    for block in model.middle:
        pad, conv = block.conv_block[0], block.conv_block[1]
        assert conv.dilation == (2, 2) and pad.padding == (2, 2, 2, 2)
        assert block.conv_block[5].dilation == (1, 1)
        # Impulse response of the dilated conv: taps two pixels apart, a 5x5 footprint with holes.
        impulse = torch.zeros(1, 16, 11, 11)
        impulse[0, :, 5, 5] = 1.0
        with torch.no_grad():
            response = conv(pad(impulse)) - conv(pad(torch.zeros_like(impulse)))
        touched = response.abs().sum(dim=(0, 1)) > 0
        expected = torch.zeros(11, 11, dtype=torch.bool)
        expected[3:8:2, 3:8:2] = True
        assert torch.equal(touched, expected)


def test_residual_block_adds_its_input() -> None:
    block = ResnetBlock(4, dilation=2)
    nn.init.zeros_(block.conv_block[5].weight)
    nn.init.zeros_(block.conv_block[5].bias)
    x = torch.randn(2, 4, 12, 12)
    assert torch.equal(block(x), x)  # zero residual branch → identity (no ReLU after the sum)


def test_spectral_norm_placement_and_effect() -> None:
    torch.manual_seed(0)
    model = StructureGenerator(**TINY)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # Every conv but the last one (EdgeConnect's EdgeGenerator).
    assert [parametrize.is_parametrized(c, "weight") for c in convs] == [True] * (len(convs) - 1) + [False]
    for conv in convs[:-1]:
        weight = conv.weight.transpose(0, 1) if isinstance(conv, nn.ConvTranspose2d) else conv.weight
        sigma = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1).detach(), ord=2)
        assert 0.95 < sigma < 1.1  # normalised to unit spectral norm (up to the power iteration's estimate)
    discriminator = PatchDiscriminator(3, base_channels=8)
    dconvs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert len(dconvs) == 5 and all(parametrize.is_parametrized(c, "weight") and c.bias is None for c in dconvs)
    assert not any(parametrize.is_parametrized(m) for m in InpaintGenerator(**TINY).modules())


def test_edgeconnect_init() -> None:
    torch.manual_seed(0)
    model = InpaintGenerator(base_channels=32, residual_blocks=1)
    weight = model.middle[0].conv_block[1].weight  # 128·128·9 samples
    assert abs(weight.mean().item()) < 1e-3 and abs(weight.std().item() - 0.02) < 5e-4
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, nn.Conv2d))
    sn = StructureGenerator(base_channels=32, residual_blocks=1)
    original = sn.middle[0].conv_block[1].parametrizations.weight.original
    assert abs(original.std().item() - 0.02) < 5e-4


def discriminator_receptive_field(model: PatchDiscriminator) -> int:
    """From the layers: walking back from one logit, r ← (r - 1)·stride + kernel."""
    field = 1
    for conv in reversed([m for m in model.modules() if isinstance(m, nn.Conv2d)]):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


@pytest.mark.parametrize("use_spectral_norm", [True, False])
def test_discriminator_receptive_field_is_70x70(use_spectral_norm: bool) -> None:
    torch.manual_seed(0)
    model = PatchDiscriminator(3, base_channels=4, use_spectral_norm=use_spectral_norm).double()
    assert discriminator_receptive_field(model) == 70
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64, requires_grad=True)
    logits, _ = model(x)
    row, col = 7, 5
    logits[0, 0, row, col].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    # Each conv has padding 1: a logit at (i, j) starts at 8·i - 23 in the input (-1, -2, ·2 - 1, ·2 - 1, ·2 - 1).
    expected = torch.zeros(128, 128, dtype=torch.bool)
    expected[8 * row - 23:8 * row - 23 + 70, 8 * col - 23:8 * col - 23 + 70] = True
    assert torch.equal(touched, expected)


# ---------------------------------------------------------------------------------------------------------------------
# Hub: save_pretrained / from_pretrained


@pytest.mark.parametrize("kind,config", [("structure", TINY), ("structure", {**TINY, "use_spectral_norm": False}),
                                         ("structure", {**TINY, "pixels_per_cell": 4, "hog_scale": 0.1}),
                                         ("inpaint", TINY)])
def test_save_pretrained_from_pretrained_is_bit_identical(kind: str, config: dict, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build(kind, config)
    inputs = generator_inputs(kind, 2, 32, 32)
    model.train()
    for _ in range(3):  # training-mode forwards move spectral norm's power-iteration vectors away from their init
        model(*inputs)
    model.eval()
    with torch.no_grad():
        expected = model(*inputs)
    model.save_pretrained(tmp_path)
    saved_config = json.loads((tmp_path / "config.json").read_text())
    default_config = build(kind, {})._hub_mixin_config
    assert saved_config == {**default_config, **config}

    torch.manual_seed(1)  # a different init: only the file can make the outputs match
    loaded = type(model).from_pretrained(tmp_path)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), expected)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    if config.get("use_spectral_norm", kind == "structure"):
        assert parametrize.is_parametrized(loaded.encoder[1], "weight")
        assert any(key.endswith("._u") for key in safetensors.torch.load_file(tmp_path / "model.safetensors"))
    if kind == "structure":
        assert loaded.hog_scale == config.get("hog_scale", HOG_IMAGE_SCALE)
        assert loaded.pixels_per_cell == config.get("pixels_per_cell", 8)


@pytest.mark.parametrize("override", [{"base_channels": 16}, {"residual_blocks": 2}, {"use_spectral_norm": False}])
def test_config_that_does_not_match_the_weights_is_refused(override: dict, tmp_path: Path) -> None:
    StructureGenerator(**TINY).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="config does not match the weights") as error:
        StructureGenerator.from_pretrained(tmp_path, **override)
    assert str(tmp_path) in str(error.value)
    # The same mismatch written into config.json itself.
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **override}))
    with pytest.raises(ValueError, match="config does not match the weights"):
        StructureGenerator.from_pretrained(tmp_path)


def test_extra_key_in_weights_is_refused(tmp_path: Path) -> None:
    model = InpaintGenerator(**TINY)
    model.save_pretrained(tmp_path)
    state = safetensors.torch.load_file(tmp_path / "model.safetensors")
    safetensors.torch.save_file({**state, "extra.weight": torch.zeros(1)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="1 unexpected: extra.weight"):
        InpaintGenerator.from_pretrained(tmp_path)


def test_non_strict_loading_is_refused(tmp_path: Path) -> None:
    InpaintGenerator(**TINY).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="loads strictly only"):
        InpaintGenerator.from_pretrained(tmp_path, strict=False)


def test_pickle_only_folder_is_refused_without_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = InpaintGenerator(**TINY)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")

    def never(*args, **kwargs):
        raise AssertionError("torch.load must not be called")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ValueError, match=r"only pickled weights .*\(pytorch_model\.bin\) and no model\.safetensors.*never unpickles"):
        InpaintGenerator.from_pretrained(tmp_path)


def test_folder_without_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no config.json"):
        InpaintGenerator.from_pretrained(tmp_path)  # an empty folder
    InpaintGenerator(**TINY).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="has config.json but no model.safetensors"):
        InpaintGenerator.from_pretrained(tmp_path)


def _run_python(code: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    # A subprocess: huggingface_hub reads HF_HOME, HF_HUB_OFFLINE and HF_ENDPOINT when it is imported.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(PYTHONPATH=str(REPO_ROOT), **env_overrides)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_hub_repo_from_offline_cache_and_uncached_repo(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = StructureGenerator(**TINY).eval()
    inputs = generator_inputs("structure", 1, 32, 32)
    with torch.no_grad():
        torch.save(model(*inputs), tmp_path / "expected.pt")
    torch.save(inputs, tmp_path / "inputs.pt")
    # A pre-filled Hub cache holding someone/hog-structure at one commit.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_cache = tmp_path / "home" / "hub" / "models--someone--hog-structure"
    model.save_pretrained(repo_cache / "snapshots" / commit)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(commit)
    result = _run_python(f"""
        import torch
        from hoginpaint.networks import StructureGenerator
        model = StructureGenerator.from_pretrained("someone/hog-structure")
        with torch.no_grad():
            assert torch.equal(model(*torch.load({str(tmp_path / 'inputs.pt')!r})),
                               torch.load({str(tmp_path / 'expected.pt')!r}))
        try:
            StructureGenerator.from_pretrained("someone/not-cached")
        except ValueError as error:
            print("REFUSED:", error)
        """, {"HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert ("REFUSED: Hub repository 'someone/not-cached': config.json is not in the local Hugging Face cache and the "
            "Hub is offline") in result.stdout


def test_hub_repo_without_safetensors_is_refused_and_no_pickle_is_requested(tmp_path: Path) -> None:
    # The Hub of tests/hub_server.py holding a repository with a pickle only; the client's cache in tmp_path, where
    # huggingface_hub notes the files the Hub says a commit lacks.
    with HubServer() as server:
        server.add_repo("someone/pickle-only", {"pytorch_model.bin": b"a pickle, never to be requested"})
        result = _run_python("""
            from hoginpaint.networks import InpaintGenerator
            try:
                InpaintGenerator.from_pretrained("someone/pickle-only")
            except ValueError as error:
                print("REFUSED:", error)
            """, {"HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "home")})
    requested = [path for _, path in server.requests]
    assert result.returncode == 0, result.stderr
    assert "REFUSED: Hub repository 'someone/pickle-only' has no config.json" in result.stdout
    assert any(path.endswith("/config.json") for path in requested)
    assert not any(path.endswith((".bin", ".pt", ".pth")) for path in requested)


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("height,width", [(30, 32), (32, 18), (33, 33)])
def test_sizes_not_multiple_of_4_are_refused(height: int, width: int) -> None:
    model = StructureGenerator(**TINY)
    with pytest.raises(ValueError, match="multiples of 4.*pad or resize"):
        model(*generator_inputs("structure", 1, height, width))


def test_smallest_sizes() -> None:
    model = InpaintGenerator(**TINY).eval()
    assert model(*generator_inputs("inpaint", 1, 12, 20)).shape == (1, 3, 12, 20)
    with pytest.raises(ValueError, match="at least 12"):
        model(*generator_inputs("inpaint", 1, 8, 16))
    discriminator = PatchDiscriminator(1, base_channels=4)
    assert discriminator(torch.rand(1, 1, 24, 24))[0].shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="at least 24"):
        discriminator(torch.rand(1, 1, 23, 40))


def test_bad_generator_inputs_are_refused() -> None:
    model = InpaintGenerator(**TINY)
    image, guidance, mask = generator_inputs("inpaint", 2, 16, 16)
    with pytest.raises(ValueError, match=r"masked_image must be a \(B, 3, H, W\) tensor, got \(2, 1, 16, 16\)"):
        model(image[:, :1], guidance, mask)
    with pytest.raises(ValueError, match="disagree in batch size or height/width"):
        model(image, guidance[:1], mask)
    with pytest.raises(ValueError, match=r"mask must be a \(B, 1, H, W\) tensor"):
        model(image, guidance, mask[0])
    with pytest.raises(ValueError, match=r"x must be a \(B, 3, H, W\) tensor"):
        PatchDiscriminator(3, base_channels=4)(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize("factory,argument,value", [
    (StructureGenerator, "base_channels", 0), (StructureGenerator, "residual_blocks", -1),
    (StructureGenerator, "orientations", 2.5), (StructureGenerator, "pixels_per_cell", True),
    (StructureGenerator, "hog_scale", 0.0), (StructureGenerator, "hog_scale", float("nan")),
    (StructureGenerator, "hog_scale", "0.05"), (StructureGenerator, "use_spectral_norm", 1),
    (InpaintGenerator, "base_channels", "64"), (InpaintGenerator, "residual_blocks", 0),
    (PatchDiscriminator, "in_channels", 0), (PatchDiscriminator, "base_channels", 1.0),
    (PatchDiscriminator, "use_spectral_norm", None),
])
def test_bad_constructor_arguments_are_refused(factory: type, argument: str, value: object) -> None:
    kwargs = {"in_channels": 3} if factory is PatchDiscriminator else {}
    with pytest.raises(ValueError, match=argument):
        factory(**{**kwargs, argument: value})


# ---------------------------------------------------------------------------------------------------------------------
# The hole crop critic


def test_hole_boxes_are_squares_around_the_hole_widened_and_kept_inside():
    mask = torch.zeros(4, 1, 64, 64)
    mask[0, :, 20:30, 10:40] = 1  # 10 x 30: side 30 * 1.4 = 42 around the centre (25, 25)
    mask[1, :, 0:4, 60:64] = 1  # a corner: min_side 16, shifted inside
    mask[2, :, 5:60, 0:64] = 1  # wider than the image allows: clipped to 64
    boxes = networks.hole_boxes(mask)
    assert boxes[0] == (4, 4, 46, 46)
    assert boxes[1] == (0, 48, 16, 64)
    assert boxes[2] == (0, 0, 64, 64)
    assert boxes[3] == (0, 0, 64, 64)  # no hole: the whole image


def test_crop_holes_resizes_each_box_and_passes_gradients_to_it_alone():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 20:30, 10:40] = 1
    mask[1, :, 30:50, 30:50] = 1  # side 20 * 1.4 = 28 around (40, 40): rows and columns 26-54
    crops = networks.crop_holes(images, mask, 32)
    assert crops.shape == (2, 3, 32, 32)
    expected = torch.nn.functional.interpolate(images[1:, :, 26:54, 26:54], size=(32, 32), mode="bilinear",
                                               align_corners=False, antialias=True)
    assert torch.allclose(crops[1:], expected)
    crops[1].sum().backward()
    assert images.grad[0].abs().sum() == 0
    inside = torch.zeros(64, 64, dtype=torch.bool)
    inside[26:54, 26:54] = True
    assert images.grad[1][:, ~inside].abs().sum() == 0 and images.grad[1][:, inside].abs().min() > 0


def test_the_crop_critic_gives_one_logit_per_image_and_needs_the_holes():
    torch.manual_seed(0)
    critic = networks.HoleDiscriminator(in_channels=3, base_channels=8, local_kind="crop").eval()
    images = torch.rand(3, 3, 96, 96)
    mask = torch.zeros(3, 1, 96, 96)
    mask[:, :, 30:50, 20:70] = 1
    assert critic(images, local=True, mask=mask).shape == (3, 1, 1, 1)
    logits, features = critic(images)  # the 70x70 PatchGAN, as a PatchDiscriminator
    assert logits.shape == (3, 1, 10, 10) and len(features) == 4
    # The logit depends on the hole's box only.
    changed = images.clone()
    changed[:, :, 90:, :5] = 0
    assert torch.equal(critic(changed, local=True, mask=mask), critic(images, local=True, mask=mask))
    with pytest.raises(ValueError, match="the crop critic needs the holes of the 3 images"):
        critic(images, local=True)
    with pytest.raises(ValueError, match="unknown local critic 'box'"):
        networks.HoleDiscriminator(3, local_kind="box")
    with pytest.raises(ValueError, match="crop_size must be a power of two, at least 32"):
        networks.HoleDiscriminator(3, local_kind="crop", crop_size=48)
    for size in (32, 128):
        sized = networks.HoleDiscriminator(3, 8, local_kind="crop", crop_size=size)
        assert sized(images, local=True, mask=mask).shape == (3, 1, 1, 1)


def test_the_luminance_crop_critic_is_blind_to_colour_that_keeps_the_luminance():
    from hoginpaint.hog import GRAY_WEIGHTS

    torch.manual_seed(0)
    critic = networks.HoleDiscriminator(in_channels=3, base_channels=8, local_kind="crop_luma").eval()
    images = torch.rand(2, 3, 64, 64) * 0.5 + 0.25
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 20:40, 20:40] = 1
    # A chroma shift orthogonal to the luminance weights: same gray image, other colours.
    weights = torch.tensor(GRAY_WEIGHTS)
    shift = torch.tensor([1.0, -1.0, 0.0])
    shift -= (shift @ weights) / (weights @ weights) * weights
    tinted = images + 0.1 * shift.view(1, 3, 1, 1)
    logits = critic(images, local=True, mask=mask)
    assert logits.shape == (2, 1, 1, 1)
    assert torch.allclose(critic(tinted, local=True, mask=mask), logits, atol=1e-6)
    rgb = networks.HoleDiscriminator(in_channels=3, base_channels=8, local_kind="crop").eval()
    assert not torch.allclose(rgb(tinted, local=True, mask=mask), rgb(images, local=True, mask=mask), atol=1e-6)
    assert critic.local[0].in_channels == 1 and rgb.local[0].in_channels == 3
