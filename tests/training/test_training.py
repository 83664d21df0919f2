"""hoginpaint.training (config, step, validation, checkpoints, export) and hoginpaint.hub.model_card, in process.

Tiny networks (base 8, one residual block) at 32 pixels, on the CPU.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from huggingface_hub import ModelCard

from hoginpaint import losses
from hoginpaint.networks import PatchDiscriminator
from hoginpaint.training import checkpoints, data, hog_model, options, trainer, types, validation
from hoginpaint.hog import guidance_target, hole_cells, to_gray
from hoginpaint.losses import VGG16Features
from hoginpaint.hub.model_card import render_model_card
from hoginpaint.networks import InpaintGenerator, StructureGenerator
from train_accelerate import build_models
from hoginpaint.pipeline import HOGInpaintPipeline

SIZE = 32
TINY = dict(resolution=SIZE, base_channels=8, residual_blocks=1)


@pytest.fixture()
def accelerator():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory) -> Path:
    """A VGG-16 file with random weights: the perceptual and style terms run, their values mean nothing."""
    path = tmp_path_factory.mktemp("vgg") / "model.safetensors"
    torch.manual_seed(0)
    safetensors.torch.save_model(VGG16Features(), str(path))
    return path


@pytest.fixture(scope="module")
def structure_folder(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("structure") / "generator"
    StructureGenerator(base_channels=8, residual_blocks=1).save_pretrained(folder)
    return folder


def _batch(seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=generator)
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, 8:20, 10:24] = 1
    return image, mask


def _config(**overrides) -> options.TrainConfig:
    return options.TrainConfig(**{**TINY, "perceptual_weight": 0.0, "style_weight": 0.0, **overrides})


def _prepared(accelerator, config):
    models = build_models(config)
    g_opt, d_opt = trainer.make_optimizers(models, config.learning_rate, config.d_lr_ratio,
                                           (config.adam_beta1, config.adam_beta2))
    generator, discriminator, g_opt, d_opt = accelerator.prepare(models.generator, models.discriminator, g_opt, d_opt)
    return dataclasses.replace(models, generator=generator, discriminator=discriminator), g_opt, d_opt


def _parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in module.named_parameters()}


# ---------------------------------------------------------------------------------------------------------------------
# Configuration


def test_parser_has_one_documented_option_per_field_with_the_dataclass_defaults():
    parser = options.build_parser()
    help_text = " ".join(parser.format_help().split())
    for field in dataclasses.fields(options.TrainConfig):
        assert f"--{field.name}" in help_text
        assert " ".join(field.metadata["help"].split())[:40] in help_text
    assert options.config_from_args([]) == options.TrainConfig()
    config = options.config_from_args(["--stage", "inpaint", "--base_channels", "8", "--no-streaming",
                                        "--max_train_samples", "5", "--learning_rate", "2e-4"])
    assert (config.stage, config.base_channels, config.streaming, config.max_train_samples, config.learning_rate) \
        == ("inpaint", 8, False, 5, 2e-4)
    with pytest.raises(SystemExit):
        options.config_from_args(["--stage", "edges"])


def test_a_discriminator_only_step_updates_d_alone_and_builds_no_generator_graph(accelerator, structure_folder):
    config = _config(stage="joint", structure_model=str(structure_folder))
    models, g_opt, d_opt = _prepared(accelerator, config)
    settings = hog_model.hog_settings(models, config)
    before_g, before_d = _parameters(models.generator), _parameters(models.discriminator)
    image, mask = _batch()
    result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, config.stage, config.loss_weights(),
                                settings, train_generator=False)
    assert result.finite and set(result.losses) == {"discriminator"}
    assert 0 < result.losses["discriminator"] < 10
    after_g, after_d = _parameters(models.generator), _parameters(models.discriminator)
    assert all(torch.equal(before_g[k], after_g[k]) for k in before_g)
    assert sum(not torch.equal(before_d[k], after_d[k]) for k in before_d) >= len(before_d) // 2
    assert all(p.grad is None for p in [*models.generator.parameters(), *models.discriminator.parameters()])
    assert not g_opt.state  # G's Adam moments were never touched


@pytest.mark.parametrize("overrides, message", [
    ({"stage": "joint"}, "--stage joint trains G guided by a trained G_H: pass --structure_model"),
    ({"model": "deepfill", "stage": "structure"}, "--model deepfill trains a single network.*--stage inpaint"),
    ({"push_to_hub": True}, "--push_to_hub needs --hub_model_id"),
    ({"resolution": 60}, "--resolution must be a multiple of 8"),
    ({"style_weight": -1.0}, "style must be a finite number >= 0"),
    ({"train_batch_size": 0}, "--train_batch_size must be at least 1"),
    ({"discriminator_only_steps": -1}, "--discriminator_only_steps must be >= 0"),
])
def test_config_refuses_bad_values_with_what_to_do(overrides, message):
    with pytest.raises(ValueError, match=message):
        options.TrainConfig(**overrides)


def test_paper_loss_weights_are_the_defaults():
    assert options.TrainConfig().loss_weights() == losses.LossWeights()


def test_missing_vgg_weights_fail_at_start_with_the_two_ways_out(monkeypatch, tmp_path):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr(losses, "hf_hub_download", offline)
    for vgg_weights in (None, str(tmp_path / "missing.safetensors")):
        with pytest.raises(ValueError, match="--vgg_weights PATH.*--perceptual_weight 0 --style_weight 0"):
            build_models(options.TrainConfig(**TINY, stage="inpaint", vgg_weights=vgg_weights))
    # Random weights only when asked for by name: the offline stand-in.
    stand_in = build_models(options.TrainConfig(**TINY, stage="inpaint", vgg_weights="random")).vgg
    assert stand_in.features[0].out_channels == 16
    # Without perceptual and style terms, no VGG is needed at all.
    assert build_models(_config(stage="inpaint")).vgg is None


def test_the_correction_options_reach_g_and_a_loaded_g_takes_this_runs(tmp_path):
    built = build_models(_config(stage="inpaint", prefill="biharmonic", correction_ramp=2.0,
                                          correction_lowpass=4)).generator
    assert (built.correction_ramp, built.correction_lowpass) == (2.0, 4)
    built.save_pretrained(tmp_path)  # a single generator folder
    loaded = build_models(_config(stage="inpaint", prefill="biharmonic", inpaint_model=str(tmp_path))).generator
    assert (loaded.correction_ramp, loaded.correction_lowpass) == (0.0, 0)  # fine-tuned under this run's options
    with pytest.raises(ValueError, match="without a pre-fill"):
        _config(stage="inpaint", correction_lowpass=4)
    with pytest.raises(ValueError, match="even period"):
        _config(stage="inpaint", prefill="biharmonic", correction_lowpass=3)


# ---------------------------------------------------------------------------------------------------------------------
# One step


@pytest.mark.parametrize("stage", ["structure", "inpaint", "joint", "deepfill"])
def test_each_stage_steps_with_finite_losses_and_updates_both_networks(stage, accelerator, vgg_weights,
                                                                        structure_folder):
    overrides = {"structure": dict(stage="structure"),
                 "inpaint": dict(stage="inpaint", perceptual_weight=0.1, style_weight=250.0,
                                 vgg_weights=str(vgg_weights)),
                 "joint": dict(stage="joint", structure_model=str(structure_folder)),
                 "deepfill": dict(model="deepfill", stage="inpaint")}[stage]
    config = _config(**overrides)
    models, g_opt, d_opt = _prepared(accelerator, config)
    settings = hog_model.hog_settings(models, config)
    before_g, before_d = _parameters(models.generator), _parameters(models.discriminator)
    guide = _parameters(models.structure_generator) if models.structure_generator is not None else {}
    image, mask = _batch()
    for _ in range(2):
        result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, config.stage,
                                     config.loss_weights(), settings)
        assert result.finite
    expected = {"structure": {"l1", "adversarial"}, "inpaint": {"l1", "adversarial", "perceptual", "style"},
                "joint": {"l1", "adversarial"}, "deepfill": {"l1_coarse", "l1_refined", "adversarial"}}[stage]
    assert set(result.losses) == {"discriminator", "generator_total"} | {f"generator_{k}" for k in expected}
    assert all(torch.isfinite(torch.tensor(value)) for value in result.losses.values())
    after_g, after_d = _parameters(models.generator), _parameters(models.discriminator)
    assert sum(not torch.equal(before_g[k], after_g[k]) for k in before_g) >= len(before_g) // 2
    assert sum(not torch.equal(before_d[k], after_d[k]) for k in before_d) >= len(before_d) // 2
    # Gradients are cleared after each update, and the generator's backward never reached the discriminator.
    assert all(p.grad is None for p in [*models.generator.parameters(), *models.discriminator.parameters()])
    assert all(p.requires_grad for p in models.discriminator.parameters())
    for name, value in guide.items():  # the joint stage's guide stays frozen
        assert torch.equal(value, dict(models.structure_generator.named_parameters())[name])


def test_structure_step_equals_a_hand_written_reference(accelerator):
    """Same initial weights, same batch: the step's updates equal EdgeConnect's order written out in plain torch."""
    config = _config(stage="structure")
    models, g_opt, d_opt = _prepared(accelerator, config)
    reference_g = StructureGenerator(base_channels=8, residual_blocks=1)
    reference_d = type(models.discriminator)(in_channels=2, base_channels=8)
    reference_g.load_state_dict(models.generator.state_dict())
    reference_d.load_state_dict(models.discriminator.state_dict())
    image, mask = _batch(3)
    trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, "structure", config.loss_weights(),
                        hog_model.hog_settings(models, config))

    ref_g_opt = torch.optim.Adam(reference_g.parameters(), lr=1e-4, betas=(0.0, 0.9))
    ref_d_opt = torch.optim.Adam(reference_d.parameters(), lr=1e-5, betas=(0.0, 0.9))
    target = guidance_target(image, reference_g.hog_settings())
    hog_known = target * (1 - hole_cells(mask, 8))
    gray = to_gray(image)
    hog_pred = reference_g(gray * (1 - mask), hog_known, mask)
    logits, _ = reference_d(torch.cat([torch.cat([target, gray], 1), torch.cat([hog_pred.detach(), gray], 1)]))
    real_logits, fake_logits = logits.chunk(2)
    losses.discriminator_loss(real_logits, fake_logits).backward()
    ref_d_opt.step()
    reference_d.requires_grad_(False)
    fake_logits, _ = reference_d(torch.cat([hog_pred, gray], 1))
    (losses.l1_loss(hog_pred, target) + losses.generator_adversarial_loss(fake_logits)).backward()
    ref_g_opt.step()

    for trained, reference in ((models.generator, reference_g), (models.discriminator, reference_d)):
        for (name, value), expected in zip(trained.state_dict().items(), reference.state_dict().values()):
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7, msg=name)


def test_a_nonfinite_loss_updates_nothing(accelerator):
    config = _config(stage="inpaint")
    models, g_opt, d_opt = _prepared(accelerator, config)
    before = {**_parameters(models.generator), **{f"d.{k}": v for k, v in _parameters(models.discriminator).items()}}
    image, mask = _batch()
    image[0, :, 0, 0] = float("nan")
    result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, "inpaint", config.loss_weights(),
                                 hog_model.hog_settings(models, config))
    assert not result.finite and not torch.isfinite(torch.tensor(result.losses["discriminator"]))
    after = {**_parameters(models.generator), **{f"d.{k}": v for k, v in _parameters(models.discriminator).items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not g_opt.state_dict()["state"] and not d_opt.state_dict()["state"]  # Adam never stepped


def test_the_deadline_rides_on_the_generators_finiteness_check(accelerator, monkeypatch):
    config = _config(stage="inpaint")
    models, g_opt, d_opt = _prepared(accelerator, config)
    gathered = []
    gather = accelerator.gather
    monkeypatch.setattr(accelerator, "gather", lambda tensor: gathered.append(tensor.clone()) or gather(tensor))
    image, mask = _batch()
    step = [accelerator, models, g_opt, d_opt, image, mask, "inpaint", config.loss_weights(),
            hog_model.hog_settings(models, config), "hog"]
    past = trainer.train_step(*step, deadline=time.monotonic() - 1)
    ahead = trainer.train_step(*step, deadline=time.monotonic() + 3600)
    without = trainer.train_step(*step)
    assert past.finite and past.past_deadline and not ahead.past_deadline and not without.past_deadline
    assert len(gathered) == 3 * 2  # two gathers a step (D's loss, G's loss): the deadline adds none
    assert [flags.tolist() for flags in gathered[:2]] == [[1.0, 0.0], [1.0, 1.0]]


# ---------------------------------------------------------------------------------------------------------------------
# Validation and metrics


def test_validation_psnr_and_ssim_are_the_evaluations():
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8
    identical = validation.image_metrics(image, image)
    assert identical["psnr_identical"] == 2 and identical["ssim"] == pytest.approx(1.0)  # +inf counted, as evaluation
    shifted = torch.cat([image[:1], image[1:] + 0.1])
    values = validation.image_metrics(shifted, image)
    assert values["psnr"] == pytest.approx(20.0, abs=1e-4) and values["psnr_identical"] == 1  # MSE 0.01
    assert validation.image_metrics(torch.rand_like(image), image)["ssim"] < 0.2


def test_validation_reports_metrics_and_a_four_column_grid(accelerator):
    config = _config(stage="inpaint")
    models, _, _ = _prepared(accelerator, config)
    image, mask = _batch(5)
    metrics, grid = validation.validate("inpaint", dataclasses.replace(
        models, generator=accelerator.unwrap_model(models.generator)), {"image": image, "mask": mask},
        hog_model.hog_settings(models, config))
    assert grid.shape == (3, 2 * SIZE, 4 * SIZE)
    torch.testing.assert_close(grid[:, :SIZE, 3 * SIZE:], image[0])  # last column: the target
    masked = grid[:, :SIZE, :SIZE]  # first column: the input with its hole painted white
    assert torch.all(masked[mask[0].expand(3, -1, -1) == 1] == 1)
    torch.testing.assert_close(masked * (1 - mask[0]), image[0] * (1 - mask[0]))
    assert 0 < metrics["psnr"] < 100 and -1 <= metrics["ssim"] <= 1
    assert models.generator.training  # restored


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoints_are_atomic_limited_and_resolved(accelerator, tmp_path, monkeypatch):
    config = _config(stage="structure")
    models, g_opt, d_opt = _prepared(accelerator, config)
    for step in (1, 2, 3):
        checkpoints.save_checkpoint(accelerator, tmp_path, step, {"global_step": step}, total_limit=2)
    assert [step for step, _ in checkpoints.list_checkpoints(tmp_path)] == [2, 3]
    assert checkpoints.resolve_checkpoint(tmp_path, "latest") == tmp_path / "checkpoint-3"
    assert {p.name for p in (tmp_path / "checkpoint-3").iterdir()} >= {"model.safetensors", "optimizer.bin",
                                                                      "training_state.json"}

    def killed(output_dir):  # a save that dies half-way through writing
        (Path(output_dir) / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(accelerator, "save_state", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(accelerator, tmp_path, 4, {"global_step": 4}, total_limit=2)
    assert (tmp_path / ".tmp-checkpoint-4").is_dir() and not (tmp_path / "checkpoint-4").exists()
    assert checkpoints.resolve_checkpoint(tmp_path, "latest") == tmp_path / "checkpoint-3"
    assert json.loads((tmp_path / "checkpoint-3" / "training_state.json").read_text()) == {"global_step": 3}
    assert checkpoints.remove_incomplete_checkpoints(tmp_path) == [tmp_path / ".tmp-checkpoint-4"]
    assert checkpoints.resolve_checkpoint(tmp_path / "empty", "latest") is None
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        checkpoints.resolve_checkpoint(tmp_path, str(tmp_path / ".tmp-checkpoint-4"))


def test_state_hash_tells_identical_weights_apart_from_different_ones():
    torch.manual_seed(0)
    model = InpaintGenerator(base_channels=8, residual_blocks=1)
    copy = InpaintGenerator(base_channels=8, residual_blocks=1)
    copy.load_state_dict(model.state_dict())
    assert checkpoints.state_hash(model) == checkpoints.state_hash(copy)
    with torch.no_grad():
        next(copy.parameters()).view(-1)[0] += 1e-6
    assert checkpoints.state_hash(model) != checkpoints.state_hash(copy)


# ---------------------------------------------------------------------------------------------------------------------
# Export and the model card


def test_structure_stage_exports_a_pipeline_with_a_fresh_inpaint_generator(tmp_path, structure_folder):
    config = _config(stage="structure")
    models = build_models(config)
    model = trainer.trained_model(config.model_options(), models, models.generator)
    assert model.untrained == ["inpaint_generator"]
    assert models.generator.training  # exporting leaves the trained module as it was
    model.save(tmp_path / "out", "card")
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path / "out")
    assert checkpoints.state_hash(loaded.structure_generator) == checkpoints.state_hash(models.generator)
    assert (tmp_path / "out" / "README.md").read_text() == "card"

    config = _config(stage="inpaint", structure_model=str(structure_folder))
    models = build_models(config)
    model = trainer.trained_model(config.model_options(), models, models.generator)
    assert model.untrained == []
    assert checkpoints.state_hash(model.pipeline.structure_generator) == checkpoints.state_hash(
        StructureGenerator.from_pretrained(structure_folder))


def _summary(**config_overrides) -> dict:
    config = _config(stage="inpaint", **config_overrides)
    models = build_models(config)
    model = trainer.trained_model(config.model_options(), models, models.generator)
    return {"config": config.to_dict(), "global_step": 120, "images_seen": 1920, "num_processes": 2,
            "wall_time_s": 3725.0, "skipped_images": 3, "final_validation": {"psnr": 21.5, "ssim": 0.734},
            "components": model.components(), "untrained_components": model.untrained}


def test_model_card_has_hub_metadata_and_the_run_filled_in():
    card = ModelCard(render_model_card(_summary(), repo_id="me/faces"))
    metadata = card.data.to_dict()
    assert metadata["library_name"] == "hoginpaint" and metadata["license"] == "other"
    assert set(metadata["tags"]) >= {"image-inpainting", "face", "gan", "hog"}
    assert metadata["datasets"] == ["flwrlabs/celeba"] and metadata["metrics"] == ["psnr", "ssim"]
    text = card.text
    assert 'HOGInpaintPipeline.from_pretrained("me/faces")' in text
    assert "| Steps | 120 (1920 images seen; 2 process(es) x batch 8" in text
    assert "1 h 02 min" in text and "PSNR 21.50 dB, SSIM 0.7340" in text
    assert "**Not a finished model.**" in text and "structure_generator" in text
    assert "Not evaluated yet" in text and "Nazeri, Kamyar" in text and "Salem" in text
    assert "L1 1, adversarial 0.1" in text  # perceptual and style at 0 are left out


def test_model_card_names_the_local_critic_and_the_discriminator_only_steps():
    window = ModelCard(render_model_card(_summary(hole_adversarial_weight=0.3))).text
    crop = ModelCard(render_model_card(_summary(hole_adversarial_weight=0.5, hole_critic="crop",
                                                discriminator_only_steps=150))).text
    assert "local hole critic (16x16 PatchGAN) 0.3" in window and "alone" not in window
    assert "hole crop critic (GLCIC-style, 64 px) 0.5" in crop and "16x16" not in crop
    luma = ModelCard(render_model_card(_summary(hole_adversarial_weight=1.0, hole_critic="crop_luma"))).text
    assert "hole crop critic on luminance (GLCIC-style, 64 px) 1" in luma
    assert "the discriminator alone for the first 150 steps" in crop


def test_model_card_renders_an_evaluation_table_and_a_local_dataset():
    summary = _summary(train_data_dir="/data/my-faces", mask_dir="/data/nvidia-masks")
    evaluation = {"NVIDIA 10-20 %": {"PSNR": 30.1, "SSIM": 0.91}, "NVIDIA 50-60 %": {"PSNR": 19.4}}
    card = ModelCard(render_model_card(summary, evaluation=evaluation))
    assert "datasets" not in card.data.to_dict()
    assert "| Setting | PSNR | SSIM |" in card.text
    assert "| NVIDIA 10-20 % | 30.1 | 0.91 |" in card.text and "| NVIDIA 50-60 % | 19.4 | – |" in card.text
    assert "`my-faces`" in card.text and "/data/" not in card.text  # no local paths leak into a public card
    with pytest.raises(ValueError, match="lacks \\['components'\\]"):
        render_model_card({key: value for key, value in summary.items() if key != "components"})


def test_model_card_lists_the_runs_that_made_the_model():
    summary = _summary()
    structure = {**summary, "config": {**summary["config"], "stage": "structure"}, "global_step": 600,
                 "images_seen": 4800, "wall_time_s": 2124.0}
    card = ModelCard(render_model_card(summary, history=[structure, summary], notes="Trained on a 2-core CPU."))
    assert "| `structure` | 600 | 4800 | 35 min 24 s |" in card.text
    assert "| `inpaint` | 120 | 1920 | 1 h 02 min |" in card.text
    assert "Trained on a 2-core CPU." in card.text
    assert "How this model was made" not in ModelCard(render_model_card(summary)).text


def test_deepfill_exports_an_inpainter_that_the_baselines_load(tmp_path):
    from hoginpaint.methods import load

    config = _config(model="deepfill", stage="inpaint")
    models = build_models(config)
    model = trainer.trained_model(config.model_options(), models, models.generator)
    assert model.components() == {"generator": {"base_channels": 8}} and model.untrained == []
    model.save(tmp_path / "deepfill", render_model_card({
        "config": config.to_dict(), "global_step": 1, "images_seen": 8, "components": model.components()}))
    inpainter = load("deepfill", model=str(tmp_path / "deepfill"))
    assert checkpoints.state_hash(inpainter.generator) == checkpoints.state_hash(models.generator)
    card = (tmp_path / "deepfill" / "README.md").read_text()
    assert "deepfill-v2" in card and 'load("deepfill", model=' in card and "SN-PatchGAN hinge" in card


def test_inpaint_losses_equal_a_hand_computed_reference_with_the_style_term_on_the_hole_only():
    torch.manual_seed(0)
    vgg = VGG16Features().eval()
    discriminator = PatchDiscriminator(in_channels=3, base_channels=8)
    target, prediction = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 10:26] = 1
    outputs = types.StageOutputs(real=target, fake=prediction, prediction=prediction, target=target,
                                    masked=target, guidance=mask, composited=prediction)
    weights = losses.LossWeights(l1_hole=6.0)
    with trainer.frozen(discriminator):
        terms = hog_model.generator_losses("inpaint", outputs, mask, discriminator, vgg, weights)
    hole_weight = mask * 6 + (1 - mask)
    assert torch.allclose(terms["l1"], (hole_weight * (prediction - target).abs()).mean())
    assert torch.allclose(terms["perceptual"], 0.1 * losses.perceptual_loss(vgg(prediction), vgg(target)))
    expected_style = 250 * losses.style_loss(vgg(prediction * mask), vgg(target * mask))
    whole_image_style = 250 * losses.style_loss(vgg(prediction), vgg(target))
    assert torch.allclose(terms["style"], expected_style)
    assert not torch.allclose(terms["style"], whole_image_style, rtol=0.05)  # the test can tell the two apart
    logits, _ = discriminator(prediction)
    assert torch.allclose(terms["adversarial"], 0.1 * losses.generator_adversarial_loss(logits))
    assert torch.allclose(terms["total"], sum(value for key, value in terms.items() if key != "total"))


def test_the_grid_term_is_weighted_in_the_inpaint_stages_and_absent_in_the_structure_stage():
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(in_channels=3, base_channels=8)
    target = torch.rand(2, 3, 64, 64)
    prediction = target + torch.where(torch.arange(64) % 4 == 0, 0.03, -0.01)[None, None, :, None]
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 4:60, 4:60] = 1
    outputs = types.StageOutputs(real=target, fake=prediction, prediction=prediction, target=target,
                                    masked=target, guidance=mask, composited=prediction)
    weights = losses.LossWeights(perceptual=0.0, style=0.0, grid=50.0)
    with trainer.frozen(discriminator):
        terms = hog_model.generator_losses("joint", outputs, mask, discriminator, None, weights)
        structure_terms = hog_model.generator_losses("structure", outputs, mask, discriminator, None, weights)
        unweighted = hog_model.generator_losses("joint", outputs, mask, discriminator, None,
                                               losses.LossWeights(perceptual=0.0, style=0.0))
    assert torch.allclose(terms["grid"], 50 * losses.grid_loss(prediction, target, mask))
    assert terms["grid"].item() > 0.01
    assert torch.allclose(terms["total"], terms["l1"] + terms["adversarial"] + terms["grid"])
    assert "grid" not in structure_terms and "grid" not in unweighted


@pytest.mark.parametrize("term,option,loss,floor", [
    ("hog", "hog_loss_weight", losses.hog_loss, 0.0),
    ("contrast", "contrast_loss_weight", losses.contrast_loss, 0.5),  # uniform noise: std 0.29 in every window
    ("hole_contrast", "hole_contrast_loss_weight", losses.hole_contrast_loss, 3.0),  # grey noise's std 0.19, x 20
])
def test_the_hole_terms_compare_the_composited_output_in_the_inpaint_stages_only(term, option, loss, floor):
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(in_channels=3, base_channels=8)
    target = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:48, 16:48] = 1
    composited = target * (1 - mask) + 0.5 * mask  # a flat fill
    outputs = types.StageOutputs(real=target, fake=composited, prediction=composited, target=target,
                                 masked=target, guidance=mask, composited=composited)
    weights = losses.LossWeights(perceptual=0.0, style=0.0, **{term: 20.0})
    with trainer.frozen(discriminator):
        terms = hog_model.generator_losses("joint", outputs, mask, discriminator, None, weights)
        structure_terms = hog_model.generator_losses("structure", outputs, mask, discriminator, None, weights)
    assert torch.allclose(terms[term], 20 * loss(composited, target, mask)) and terms[term] > floor
    assert torch.allclose(terms["total"], terms["l1"] + terms["adversarial"] + terms[term])
    assert term not in structure_terms
    assert getattr(options.TrainConfig(**{option: 20.0}).loss_weights(), term) == 20.0


def test_ema_update_warms_up_then_follows_the_decay():
    model, ema = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        ema.weight.zero_()
        model.weight.fill_(1.0)
    trainer.update_ema(ema, model, decay=0.999, step=0)  # warm-up: decay (1 + 0) / (10 + 0) = 0.1
    assert torch.allclose(ema.weight, torch.full((2, 2), 0.9))
    trainer.update_ema(ema, model, decay=0.5, step=1000)  # past the warm-up: the decay itself
    assert torch.allclose(ema.weight, torch.full((2, 2), 0.95))


def test_several_training_sources_are_interleaved_and_validated_together(shared_data, tmp_path):
    config = options.TrainConfig(train_data_dir=f"{shared_data / 'celeba'},{shared_data / 'faces'}",
                                  resolution=64, num_validation_images=5, mask_kind="rectangle")
    assert config.data_sources == [str(shared_data / "celeba"), str(shared_data / "faces")]
    batches = data.validation_data(config.data_options())
    batch = batches["holes"]
    assert batch["image"].shape == (5, 3, 64, 64) and batch["mask"].shape == (5, 1, 64, 64)
    # The same faces with facial-part holes, those dlib finds at 64 px (scaled up to 256 to look).
    parts = batches["parts"]
    assert 1 <= len(parts["image"]) <= 5 and parts["mask"].shape[1:] == (1, 64, 64)
    assert any(torch.equal(face, image) for face in parts["image"] for image in batch["image"])
    without = dataclasses.replace(config, validation_face_parts=False)
    assert set(data.validation_data(without.data_options())) == {"holes"}
    stream = data.load_image_datasets(config.data_sources, "train", "image")
    # CelebA's training images are 128 px, UTKFace's 200 px: one from each source in turn.
    sizes = [data.decode_image(example["image"]).size[0] for example, _ in zip(stream, range(6))]
    assert sizes == [128, 200, 128, 200, 128, 200]


def test_validation_metrics_of_one_channel_hog_images():
    hog = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    shifted = (hog + 0.1).clamp(0, 1)
    values = validation.image_metrics(shifted, hog)
    mse = (shifted - hog).pow(2).flatten(1).mean(1)
    assert values["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), abs=1e-4)


def test_structure_validation_measures_the_hole_cells_against_the_input_hog():
    from hoginpaint.hog import HOGSettings

    settings = HOGSettings(pixels_per_cell=4)
    target = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 5:7, 5:7] = 1  # inside cell (1, 1), which the HOG's gradient reaches from its neighbours too
    given = target.clone()
    given[..., 4:8, 4:8] = 0  # the input misses the hole's cell
    errors = validation.hog_hole_errors(target, given, target, mask, settings)
    assert errors["hog_hole_l1"] == 0.0
    cells = (validation.hole_cells(mask, 4) > 0).float()
    expected = float((target * cells)[..., 4:8, 4:8].sum() / cells.sum())
    assert errors["hog_hole_l1_input"] == pytest.approx(expected, rel=1e-5) and expected > 0


def test_structure_validation_reports_the_hog_hole_errors(accelerator):
    config = _config(stage="structure")
    models, _, _ = _prepared(accelerator, config)
    image, mask = _batch(5)
    metrics, _ = validation.validate("structure", dataclasses.replace(
        models, generator=accelerator.unwrap_model(models.generator)), {"image": image, "mask": mask},
        hog_model.hog_settings(models, config))
    assert metrics["hog_hole_l1"] > 0 and metrics["hog_hole_l1_input"] > 0


def test_the_local_hole_critic_trains_beside_the_patchgan_and_counts_the_hole_only():
    from hoginpaint.networks import HoleDiscriminator

    torch.manual_seed(0)
    critic = HoleDiscriminator(in_channels=3, base_channels=8).eval()  # spectral norm: no power step per call
    target = torch.rand(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:32, 16:32] = 1
    composited = target * (1 - mask) + 0.5 * mask
    outputs = types.StageOutputs(real=target, fake=composited, prediction=composited, target=target,
                                 masked=target, guidance=mask, composited=composited)
    whole_only = hog_model.discriminator_loss(critic.whole, outputs, mask)
    both = hog_model.discriminator_loss(critic, outputs, mask)
    local = critic(torch.cat([target, composited]), local=True)
    weight = losses.hole_patches(mask, local[:2])
    assert 0 < weight.mean() < 0.5  # only the patches over the hole count
    expected = losses.masked_discriminator_loss(local[:2], local[2:], weight)
    assert torch.allclose(both, whole_only + expected)
    # a change outside every counted window leaves the local term unchanged
    far = composited.clone()
    far[..., 56:, 56:] = 0
    shifted = critic(torch.cat([target, far]), local=True)
    assert torch.allclose(losses.masked_discriminator_loss(shifted[:2], shifted[2:], weight), expected)
    weights = losses.LossWeights(perceptual=0.0, style=0.0, hole_adversarial=0.5)
    with trainer.frozen(critic):
        terms = hog_model.generator_losses("joint", outputs, mask, critic, None, weights)
        plain = hog_model.generator_losses("joint", outputs, mask, critic.whole, None, weights)
    assert terms["hole_adversarial"] > 0 and "hole_adversarial" not in plain
    config = options.TrainConfig(stage="inpaint", hole_adversarial_weight=0.5, resolution=32, base_channels=8,
                                 residual_blocks=1, perceptual_weight=0, style_weight=0)
    assert isinstance(build_models(config).discriminator, HoleDiscriminator)
    assert not isinstance(build_models(dataclasses.replace(config, hole_adversarial_weight=0)).discriminator,
                          HoleDiscriminator)


def test_the_crop_critic_judges_each_holes_box_and_skips_images_without_a_hole():
    from hoginpaint.networks import HoleDiscriminator

    torch.manual_seed(0)
    critic = HoleDiscriminator(in_channels=3, base_channels=8, local_kind="crop").eval()
    target = torch.rand(3, 3, 64, 64)
    mask = torch.zeros(3, 1, 64, 64)
    mask[:2, :, 16:32, 16:32] = 1  # the third image has no hole
    composited = target * (1 - mask) + 0.5 * mask
    outputs = types.StageOutputs(real=target, fake=composited, prediction=composited, target=target,
                                 masked=target, guidance=mask, composited=composited)
    whole_only = hog_model.discriminator_loss(critic.whole, outputs, mask)
    both = hog_model.discriminator_loss(critic, outputs, mask)
    real_logits = critic(target, local=True, mask=mask)
    fake_logits = critic(composited, local=True, mask=mask)
    expected = (torch.nn.functional.softplus(-real_logits[:2]).mean()
                + torch.nn.functional.softplus(fake_logits[:2]).mean()) / 2
    assert torch.allclose(both, whole_only + expected)
    weights = losses.LossWeights(perceptual=0.0, style=0.0, hole_adversarial=0.5)
    with trainer.frozen(critic):
        terms = hog_model.generator_losses("joint", outputs, mask, critic, None, weights)
    assert torch.allclose(terms["hole_adversarial"], 0.5 * torch.nn.functional.softplus(-fake_logits[:2]).mean())
    config = options.TrainConfig(stage="inpaint", hole_adversarial_weight=0.5, hole_critic="crop", resolution=64,
                                 base_channels=8, residual_blocks=1, perceptual_weight=0, style_weight=0)
    built = build_models(config).discriminator
    assert isinstance(built, HoleDiscriminator) and built.local_kind == "crop"
    with pytest.raises(ValueError, match="unknown --hole_critic 'box'; expected one of window, crop"):
        options.TrainConfig(hole_critic="box")


def test_a_joint_step_with_the_crop_critic_trains_it(accelerator, structure_folder):
    config = _config(stage="joint", structure_model=str(structure_folder), hole_adversarial_weight=0.5,
                     hole_critic="crop")
    models, g_opt, d_opt = _prepared(accelerator, config)
    settings = hog_model.hog_settings(models, config)
    local_before = _parameters(models.discriminator.local)
    image, mask = _batch()
    result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, config.stage, config.loss_weights(),
                                settings)
    assert result.finite and result.losses["generator_hole_adversarial"] > 0
    reported = result.losses  # the two critics' losses, each and summed
    assert reported["discriminator_whole"] > 0 and reported["discriminator_hole"] > 0
    assert reported["discriminator"] == pytest.approx(reported["discriminator_whole"] + reported["discriminator_hole"],
                                                      rel=1e-5)
    local_after = _parameters(models.discriminator.local)
    assert all(not torch.equal(local_before[k], local_after[k]) for k in local_before)


def test_the_stage_is_checked_once_and_says_what_it_trains():
    config = options.config_from_args(["--stage", "joint", "--structure_model", "x"])
    assert config.stage is types.Stage.JOINT and config.stage == "joint"
    assert config.stage.guided_by_structure_generator and not config.stage.trains_structure
    assert options.TrainConfig(stage="structure").stage.trains_structure
    with pytest.raises(ValueError, match="--stage must be one of structure, inpaint, joint"):
        options.TrainConfig(stage="edges")
    with pytest.raises(SystemExit):
        options.config_from_args(["--stage", "edges"])
    assert json.loads(json.dumps(config.to_dict()))["stage"] == "joint"


def test_the_data_streams_get_the_data_options_only():
    config = options.TrainConfig(train_data_dir="a, b", landmarks="x.npz,y.npz", face_part_share=0.5,
                                 train_batch_size=4, dataloader_num_workers=0)
    data_options = config.data_options()
    assert data_options.sources == ("a", "b") and data_options.landmarks == ("x.npz", "y.npz")
    assert (data_options.batch_size, data_options.num_workers, data_options.face_part_share) == (4, 0, 0.5)
    assert not hasattr(data_options, "learning_rate")


def test_retarget_hog_moves_a_loaded_structure_generator_to_new_hog_settings(tmp_path, structure_folder):
    """A G_H trained with 8-px cells is fine-tuned with 4-px cells only when asked; the export records the new cells."""
    with pytest.raises(ValueError, match="--pixels_per_cell 8"):
        build_models(_config(stage="structure", structure_model=str(structure_folder), pixels_per_cell=4))
    with pytest.raises(ValueError, match="--retarget_hog .* --stage structure"):
        _config(stage="joint", structure_model=str(structure_folder), retarget_hog=True)
    config = _config(stage="structure", structure_model=str(structure_folder), pixels_per_cell=4, hog_scale=0.12,
                     retarget_hog=True)
    models = build_models(config)
    assert models.generator.hog_settings().pixels_per_cell == 4
    assert hog_model.hog_settings(models, config).scale == 0.12
    same = StructureGenerator.from_pretrained(structure_folder)
    assert checkpoints.state_hash(models.generator) == checkpoints.state_hash(same)  # the layers stay
    trainer.trained_model(config.model_options(), models, models.generator).save(tmp_path / "out", "card")
    saved = json.loads((tmp_path / "out" / "structure_generator" / "config.json").read_text())
    assert (saved["pixels_per_cell"], saved["hog_scale"]) == (4, 0.12)
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path / "out")
    assert loaded.structure_generator.hog_settings() == models.generator.hog_settings()


def test_a_cascade_trains_on_the_coarse_pipelines_fill_and_exports_it(accelerator, tmp_path):
    """--coarse_model: G_H and G see the coarse pipeline's result in the hole, and the export carries the coarse
    pipeline in coarse/."""
    from hoginpaint.pipeline import coarse_fill

    torch.manual_seed(2)
    coarse = HOGInpaintPipeline(StructureGenerator(8, 1, pixels_per_cell=4, prefill="biharmonic"),
                                InpaintGenerator(8, 1, prefill="biharmonic"), resolution=16)
    coarse.save_pretrained(tmp_path / "coarse")
    guide = tmp_path / "guide"
    StructureGenerator(8, 1, prefill="biharmonic").save_pretrained(guide)
    with pytest.raises(ValueError, match="--coarse_model .* a --prefill"):
        _config(stage="joint", structure_model=str(guide), coarse_model=str(tmp_path / "coarse"))
    HOGInpaintPipeline(coarse.structure_generator, coarse.inpaint_generator, resolution=SIZE).save_pretrained(
        tmp_path / "same")
    with pytest.raises(ValueError, match=f"coarse pipeline works at {SIZE} px, not below this pipeline's {SIZE} px"):
        build_models(_config(stage="inpaint", prefill="biharmonic", coarse_model=str(tmp_path / "same")))
    config = _config(stage="joint", structure_model=str(guide), prefill="biharmonic",
                     coarse_model=str(tmp_path / "coarse"))
    models, g_opt, d_opt = _prepared(accelerator, config)
    image, mask = _batch(3)
    settings = hog_model.hog_settings(models, config)
    outputs = trainer.forward_stage(config.stage, models, image, mask, settings)
    # G's input is the coarse fill: G's own forward on it gives the same raw output.
    expected = accelerator.unwrap_model(models.generator)(
        coarse_fill(models.coarse, image, mask), outputs.guidance, mask)
    torch.testing.assert_close(outputs.prediction, expected)
    result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, config.stage, config.loss_weights(),
                                settings)
    assert result.finite
    exported = trainer.trained_model(config.model_options(), models, accelerator.unwrap_model(models.generator))
    exported.save(tmp_path / "out", "card")
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path / "out")
    assert loaded.coarse.resolution == 16
    card = render_model_card({"config": config.to_dict(), "global_step": 1, "images_seen": 2,
                              "components": exported.components()})
    assert "**Coarse to fine.**" in card and "`coarse`" in card and str(tmp_path) not in card
    assert checkpoints.state_hash(loaded.coarse.inpaint_generator) == checkpoints.state_hash(coarse.inpaint_generator)
