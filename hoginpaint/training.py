"""What `train_accelerate.py` composes for one run: the models of each stage, one GAN step, and the model a run
publishes. Its options are `hoginpaint.train_config.TrainConfig`; its data `hoginpaint.data`; its validation
`hoginpaint.validation`; its checkpoints `hoginpaint.checkpoints`.

The trainer knows a model only through `TrainableModel` (its stage outputs, its two losses, its export):
`HOGInpaintTraining` here, `hoginpaint.baselines.deepfill.DeepFillTraining` for the baseline.

The three stages are EdgeConnect's schedule (Nazeri et al. 2019) with the HOG image in place of edges (Salem, Mahdi &
Abbas): ``structure`` trains G_H and D_H, ``inpaint`` trains G and D guided by the ground-truth HOG image, ``joint``
trains G guided by the frozen G_H's composited prediction.

One step (`train_step`) orders its updates so that no autograd graph ever sees a parameter that an optimizer has
changed in place since the graph was built (EdgeConnect's users hit exactly that error):

1. the generator's forward pass;
2. the discriminator's step, on real images and on the *detached* fakes, in one forward pass;
3. the generator's step, through a *fresh* forward pass of the updated discriminator whose parameters are frozen
   for it (so the generator's backward neither reaches nor all-reduces the discriminator's gradients).

Both losses are checked for NaN/Inf on every rank *before* their backward pass, and all ranks agree on the verdict
(`agree`: one tiny all-gather, which also carries the main process's clock for `--max_train_minutes`), so a
non-finite loss never updates a weight and never leaves one rank waiting for another's gradients.

Losses (`hoginpaint.losses`): the L1 term is the mean over all pixels (EdgeConnect's code further divides it by the
hole ratio; we keep the paper's plain weight); the style term compares the hole only, as EdgeConnect's; the
perceptual term the whole raw output.

Why one file of ~460 lines: the trainer's types and step, and the HOG model's `TrainableModel` (the other one,
DeepFill's, lives with its networks). Moving the HOG half out would need the shared types (`GANModels`,
`StageOutputs`, `TrainedModel`) in a third module that both import, only to save a few lines.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from hoginpaint import losses
from hoginpaint.hog import HOGSettings, guidance_target, to_gray
from hoginpaint.losses import LossWeights
from hoginpaint.networks import InpaintGenerator, PatchDiscriminator, StructureGenerator
from hoginpaint.stages import inpaint_stage, prefill_kind, structure_stage
from hoginpaint.train_config import (
    DEEPFILL_DISCRIMINATOR_WIDTH,
    DEEPFILL_GENERATOR_WIDTH,
    HOGINPAINT_WIDTH,
    Stage,
    TrainConfig,
)

# ---------------------------------------------------------------------------------------------------------------------
# Models


@dataclass
class GANModels:
    """The networks of one run.

    `generator` / `discriminator` are trained. `structure_generator` is a frozen, trained G_H: the guide of the
    joint stage, or (inpaint stage, from `--structure_model`) only carried into the saved pipeline; in the structure
    stage a `--structure_model` is the `generator`, fine-tuned.
    `inpaint_generator` is a trained G the structure stage carries into the saved pipeline (`--inpaint_model`).
    `vgg` holds the perceptual / style features (None when those weights are 0).
    """

    trainer: TrainableModel  # what the trainer knows of the model: forward, losses, export
    generator: nn.Module
    discriminator: nn.Module
    structure_generator: nn.Module | None = None
    inpaint_generator: nn.Module | None = None
    vgg: nn.Module | None = None
    ema_generator: nn.Module | None = None  # the moving average of `generator`'s weights (--ema_decay)

    @property
    def name(self) -> str:
        return self.trainer.name

    def published_generator(self, accelerator: Any) -> nn.Module:
        """What validation and export use: the moving average when there is one, else the trained generator."""
        return self.ema_generator if self.ema_generator is not None else accelerator.unwrap_model(self.generator)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """`ema ← d·ema + (1 - d)·model` for parameters (buffers copied), with d = min(decay, (1 + step) / (10 + step))."""
    decay = min(decay, (1 + step) / (10 + step))
    for average, current in zip(ema.parameters(), model.parameters()):
        average.lerp_(current.detach().to(average.dtype), 1 - decay)
    for average, current in zip(ema.buffers(), model.buffers()):
        average.copy_(current)


def load_generator(cls: type[nn.Module], reference: str, component: str) -> nn.Module:
    """`cls` from `reference`: a pipeline (its `component` subfolder) or a single generator, folder or Hub id."""
    from hoginpaint import hub

    try:
        index = hub.read_json(reference, "model_index.json")
    except hub.MissingFileError:
        return hub.load_component(cls, reference)
    if component not in index:
        raise ValueError(f"{hub.describe(reference)} is a pipeline without a {component!r}; pass a pipeline "
                         "written by hoginpaint or a generator folder")
    return hub.load_component(cls, reference, subfolder=index[component])


def hog_settings(models: GANModels, config: TrainConfig) -> HOGSettings:
    """The HOG settings of the targets: those of the trained G_H when there is one, else the config's."""
    if models.structure_generator is not None:
        return models.structure_generator.hog_settings()
    return HOGSettings(orientations=9, pixels_per_cell=config.pixels_per_cell, scale=config.hog_scale)


def build_models(config: TrainConfig) -> GANModels:
    """Everything a run needs, loaded or initialised before training starts, so that a bad reference or missing VGG
    weights fail at once: the trained generator (fresh, or `--inpaint_model` for inpaint/joint), a fresh
    discriminator, the trained companions (`--structure_model`, `--inpaint_model`) and the VGG-16 features."""
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    if config.model == "deepfill":
        from hoginpaint.baselines.deepfill import DeepFillTraining, DeepFillV2Generator, SNPatchDiscriminator

        generator = DeepFillV2Generator(config.base_channels or DEEPFILL_GENERATOR_WIDTH)
        return GANModels(DeepFillTraining(), generator,
                         SNPatchDiscriminator(config.base_channels or DEEPFILL_DISCRIMINATOR_WIDTH))

    width = config.base_channels or HOGINPAINT_WIDTH
    structure_generator = inpaint_generator = None
    if config.structure_model:
        structure_generator = load_generator(StructureGenerator, config.structure_model, "structure_generator")
        structure_generator.requires_grad_(False).eval()
        if structure_generator.pixels_per_cell != config.pixels_per_cell:
            raise ValueError(f"{config.structure_model} was trained with --pixels_per_cell "
                             f"{structure_generator.pixels_per_cell}, not {config.pixels_per_cell}; pass "
                             f"--pixels_per_cell {structure_generator.pixels_per_cell}")
        if structure_generator.hog_scale != config.hog_scale:
            raise ValueError(f"{config.structure_model} was trained with --hog_scale {structure_generator.hog_scale}, "
                             f"not {config.hog_scale}; pass --hog_scale {structure_generator.hog_scale}")
    if config.inpaint_model:
        inpaint_generator = load_generator(InpaintGenerator, config.inpaint_model, "inpaint_generator")
    for name, loaded in (("--structure_model", structure_generator), ("--inpaint_model", inpaint_generator)):
        if loaded is not None and loaded.prefill != config.prefill:
            raise ValueError(f"{getattr(config, name[2:])} ({name}) was trained with --prefill {loaded.prefill}, not "
                             f"{config.prefill}; pass --prefill {loaded.prefill}")

    if config.stage == "structure":
        # A trained G_H (--structure_model) is fine-tuned; otherwise G_H starts fresh.
        generator: nn.Module = (structure_generator.requires_grad_(True).train() if structure_generator is not None
                                else StructureGenerator(width, config.residual_blocks,
                                                        pixels_per_cell=config.pixels_per_cell,
                                                        hog_scale=config.hog_scale, prefill=config.prefill))
        # D_H sees the HOG image and the grayscale face together, as EdgeConnect's edge discriminator.
        discriminator = PatchDiscriminator(in_channels=2, base_channels=width)
        if inpaint_generator is not None:
            inpaint_generator.requires_grad_(False).eval()
        return GANModels(HOGInpaintTraining(), generator, discriminator, None, inpaint_generator)

    generator = inpaint_generator.train() if inpaint_generator is not None else InpaintGenerator(
        width, config.residual_blocks, prefill=config.prefill, correction_ramp=config.correction_ramp,
        correction_lowpass=config.correction_lowpass)
    # a loaded G is fine-tuned under this run's ramp and low-pass
    generator.correction_ramp, generator.correction_lowpass = config.correction_ramp, config.correction_lowpass
    vgg = load_vgg(config) if config.loss_weights().needs_vgg else None
    return GANModels(HOGInpaintTraining(), generator, PatchDiscriminator(in_channels=3, base_channels=width),
                     structure_generator, None, vgg)


def load_vgg(config: TrainConfig) -> nn.Module:
    """VGG-16 features from `--vgg_weights` or the Hub; `--vgg_weights random`: the random-weight stand-in
    (`losses.random_vgg16_features`, seeded by `--seed`). A clear `ValueError` if neither works: random weights only
    when asked for by name."""
    if config.vgg_weights == losses.RANDOM_VGG:
        return losses.random_vgg16_features(seed=config.seed)
    try:
        return losses.load_vgg16_features(weights_path=config.vgg_weights)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"the perceptual and style losses need pretrained VGG-16 weights, which could not be loaded: {error}. "
            "Pass --vgg_weights PATH (a local model.safetensors of timm/vgg16.tv_in1k), or train without them with "
            "--perceptual_weight 0 --style_weight 0"
        ) from error


# ---------------------------------------------------------------------------------------------------------------------
# One step


@dataclass
class StageOutputs:
    """One stage's generator output on a batch, and what its discriminator compares.

    `real` / `fake` are the discriminator's inputs; `prediction` is the generator's raw output and `target` what it
    should be; `masked`, `guidance` and `composited` are for viewing and metrics (output with the known part pasted
    back). All `(B, C, H, W)`.
    """

    real: torch.Tensor
    fake: torch.Tensor
    prediction: torch.Tensor
    target: torch.Tensor
    masked: torch.Tensor
    guidance: torch.Tensor
    composited: torch.Tensor


GuidanceKind = Literal["hog", "zeros"]


class TrainableModel(Protocol):
    """What the trainer knows of a model, and all it knows: the stage's outputs on a batch, the discriminator's
    loss, the generator's weighted loss terms, and the model a run publishes. The HOG-guided GAN's is
    `HOGInpaintTraining` (here); DeepFill v2's is `hoginpaint.baselines.deepfill.DeepFillTraining`."""

    name: str
    measures_identity: bool  # whether validation reports the identity distance (RGB outputs of a face model)

    def forward(self, stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                settings: HOGSettings, guidance: GuidanceKind) -> StageOutputs: ...

    def discriminator_loss(self, discriminator: nn.Module, outputs: StageOutputs,
                           mask: torch.Tensor) -> torch.Tensor: ...

    def generator_losses(self, stage: Stage, outputs: StageOutputs, mask: torch.Tensor, discriminator: nn.Module,
                         vgg: nn.Module | None, weights: LossWeights) -> dict[str, torch.Tensor]: ...

    def export(self, config: TrainConfig, models: GANModels, generator: nn.Module) -> TrainedModel: ...


def show_masked(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`image` with its hole painted white, for viewing."""
    return image * (1 - mask) + mask


def forward_stage(stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                  settings: HOGSettings, guidance_kind: GuidanceKind = "hog") -> StageOutputs:
    """Run the stage's generator on `image` `(B, 3, H, W)` with holes `mask` `(B, 1, H, W)` (1 = hole).

    `settings` are the HOG settings of the targets (`hog_settings`). The model's own `forward` does the work.
    """
    return models.trainer.forward(stage, models, image, mask, settings, guidance_kind)


def hog_forward(stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                settings: HOGSettings, guidance_kind: GuidanceKind = "hog") -> StageOutputs:
    """The HOG-guided GAN's stage outputs (`HOGInpaintTraining.forward`)."""
    with torch.no_grad():
        target_hog = guidance_target(image, settings)
    if stage == "structure":
        # Called through a DDP wrapper when there is one, so that gradients are synchronised; the settings are passed
        # in because the wrapper does not forward `hog_settings()`.
        result = structure_stage(models.generator, image, mask, settings)
        gray = to_gray(image)
        return StageOutputs(
            real=torch.cat([target_hog, gray], dim=1),  # (B, 2, H, W): HOG image, grayscale face
            fake=torch.cat([result.hog_pred, gray], dim=1),
            prediction=result.hog_pred,
            target=target_hog,
            masked=show_masked(image, mask),
            guidance=result.hog_known,
            composited=result.guidance,
        )
    filled = None
    if stage == "inpaint":
        guidance = target_hog  # known cells and ground-truth hole cells: the whole ground-truth HOG image
    else:
        with torch.no_grad():
            structure = structure_stage(models.structure_generator, image, mask)
        guidance = structure.guidance
        if prefill_kind(models.structure_generator) == prefill_kind(models.generator):
            filled = structure.filled
    if guidance_kind == "zeros":
        guidance = torch.zeros_like(guidance)
    raw, composited = inpaint_stage(models.generator, image, mask, guidance, filled=filled)
    return StageOutputs(real=image, fake=raw, prediction=raw, target=image, masked=show_masked(image, mask),
                        guidance=guidance, composited=composited)


def discriminator_loss(discriminator: nn.Module, outputs: StageOutputs, mask: torch.Tensor) -> torch.Tensor:
    """The HOG-guided GAN's discriminator loss on real inputs and detached fakes, in one forward pass."""
    logits, _ = discriminator(torch.cat([outputs.real, outputs.fake.detach()]))  # (2B, 1, h, w)
    real_logits, fake_logits = logits.chunk(2)
    return losses.discriminator_loss(real_logits, fake_logits)


def generator_losses(stage: Stage, outputs: StageOutputs, mask: torch.Tensor, discriminator: nn.Module,
                     vgg: nn.Module | None, weights: LossWeights) -> dict[str, torch.Tensor]:
    """The HOG-guided GAN's weighted generator loss terms and their sum (``"total"``); `discriminator` must be
    frozen."""
    structure = stage == "structure"
    if weights.feature_matching > 0:
        logits, features = discriminator(torch.cat([outputs.real, outputs.fake]))
        fake_logits = logits.chunk(2)[1]
        real_features, fake_features = zip(*(feature.chunk(2) for feature in features))
    else:
        fake_logits, _ = discriminator(outputs.fake)
    terms = {
        "l1": (weights.structure_l1 if structure else weights.l1)
        * weights.reconstruction(outputs.prediction, outputs.target, mask),
        "adversarial": (weights.structure_adversarial if structure else weights.adversarial)
        * losses.generator_adversarial_loss(fake_logits),
    }
    if weights.feature_matching > 0:
        terms["feature_matching"] = weights.feature_matching * losses.feature_matching_loss(
            list(real_features), list(fake_features))
    if not structure and weights.grid > 0:
        terms["grid"] = weights.grid * losses.grid_loss(outputs.prediction, outputs.target, mask)
    if not structure and vgg is not None:
        with torch.no_grad():
            target_features = vgg(outputs.target)
            target_hole_features = vgg(outputs.target * mask)
        if weights.perceptual > 0:
            terms["perceptual"] = weights.perceptual * losses.perceptual_loss(vgg(outputs.prediction),
                                                                              target_features)
        if weights.style > 0:
            # EdgeConnect's style term compares the hole only.
            terms["style"] = weights.style * losses.style_loss(vgg(outputs.prediction * mask), target_hole_features)
    terms["total"] = sum(terms.values())
    return terms


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """`module` with `requires_grad` off for its parameters inside the block (restored after)."""
    flags = [parameter.requires_grad for parameter in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter, flag in zip(module.parameters(), flags):
            parameter.requires_grad_(flag)


def agree(accelerator: Any, loss: torch.Tensor, deadline: float | None = None) -> tuple[bool, bool]:
    """(is `loss` finite on every rank, is the main process past `deadline`, a `time.monotonic()` value or None for
    never), from one tiny all-gather, so that every rank decides alike."""
    past = deadline is not None and time.monotonic() >= deadline
    flags = torch.tensor([float(bool(torch.isfinite(loss.detach()).all())), float(past)], device=accelerator.device)
    flags = accelerator.gather(flags).view(-1, 2)  # (ranks, 2)
    return bool(flags[:, 0].min() > 0), bool(flags[0, 1] > 0)


@dataclass
class StepResult:
    """The losses of one step as floats, whether they were finite (if not, no weight was updated), and whether the
    main process was past the step's `deadline` when the generator's loss was checked (`agree`)."""

    losses: dict[str, float]
    finite: bool
    past_deadline: bool = False


def train_step(accelerator: Any, models: GANModels, generator_optimizer: torch.optim.Optimizer,
               discriminator_optimizer: torch.optim.Optimizer, image: torch.Tensor, mask: torch.Tensor,
               stage: Stage, weights: LossWeights, settings: HOGSettings,
               guidance_kind: Literal["hog", "zeros"] = "hog", deadline: float | None = None) -> StepResult:
    """One GAN update of the stage's generator and discriminator (see the module docstring for the order).

    `models.generator` / `.discriminator` and the optimizers are the ones `accelerator.prepare` returned.
    """
    with accelerator.accumulate(models.generator, models.discriminator):
        with accelerator.autocast():
            outputs = forward_stage(stage, models, image, mask, settings, guidance_kind)
            d_loss = models.trainer.discriminator_loss(models.discriminator, outputs, mask)
        finite, _ = agree(accelerator, d_loss)
        if not finite:
            discriminator_optimizer.zero_grad(set_to_none=True)
            return StepResult({"discriminator": d_loss.item()}, finite=False)
        accelerator.backward(d_loss)
        discriminator_optimizer.step()
        discriminator_optimizer.zero_grad(set_to_none=True)

        with accelerator.autocast(), frozen(accelerator.unwrap_model(models.discriminator)) as discriminator:
            g_losses = models.trainer.generator_losses(stage, outputs, mask, discriminator, models.vgg, weights)
        reported = {"discriminator": d_loss.item(), **{f"generator_{k}": v.item() for k, v in g_losses.items()}}
        finite, past_deadline = agree(accelerator, g_losses["total"], deadline)
        if not finite:
            generator_optimizer.zero_grad(set_to_none=True)
            return StepResult(reported, finite=False, past_deadline=past_deadline)
        accelerator.backward(g_losses["total"])
        generator_optimizer.step()
        generator_optimizer.zero_grad(set_to_none=True)
    return StepResult(reported, finite=True, past_deadline=past_deadline)


def make_optimizers(models: GANModels, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G (lr) and D (lr x d_lr_ratio), betas (adam_beta1, adam_beta2): EdgeConnect's (0, 0.9)."""
    betas = (config.adam_beta1, config.adam_beta2)
    generator_optimizer = torch.optim.Adam(models.generator.parameters(), lr=config.learning_rate, betas=betas)
    discriminator_optimizer = torch.optim.Adam(models.discriminator.parameters(),
                                               lr=config.learning_rate * config.d_lr_ratio, betas=betas)
    return generator_optimizer, discriminator_optimizer


# ---------------------------------------------------------------------------------------------------------------------
# The trained model


@dataclass
class TrainedModel:
    """What a run publishes: a `HOGInpaintPipeline`, or for DeepFill v2 a `DeepFillInpainter`; both write their Hub
    layout with `save_pretrained(folder, model_card=...)`.

    `untrained` names the pipeline components that no stage has trained yet (freshly initialised so that the
    layout is complete; the model card says so).
    """

    pipeline: Any
    untrained: list[str] = field(default_factory=list)

    def components(self) -> dict[str, dict[str, Any]]:
        """Each component's constructor arguments (its config.json)."""
        names = ("generator",) if hasattr(self.pipeline, "generator") else ("structure_generator", "inpaint_generator")
        return {name: dict(getattr(self.pipeline, name)._hub_mixin_config) for name in names}

    def save(self, directory: str | Path, model_card: str) -> Path:
        """Write the model in its Hub layout, with `model_card` as its README."""
        return self.pipeline.save_pretrained(directory, model_card=model_card)


def detached_copy(module: nn.Module) -> nn.Module:
    """A CPU float32 copy in eval mode, so that exporting never changes the module being trained."""
    module = copy.deepcopy(module).cpu().float().eval()
    return module.requires_grad_(False)


def trained_model(config: TrainConfig, models: GANModels, generator: nn.Module) -> TrainedModel:
    """The publishable model around the trained (unwrapped) `generator`: the model's own `export`."""
    return models.trainer.export(config, models, generator)


def hog_export(config: TrainConfig, models: GANModels, generator: nn.Module) -> TrainedModel:
    """The HOG-guided pipeline around the trained (unwrapped) `generator` (`HOGInpaintTraining.export`).

    structure stage: the trained G_H with the G of `--inpaint_model`, else a fresh G (untrained);
    inpaint stage: the trained G with the G_H of `--structure_model`, else a fresh G_H (untrained);
    joint stage: the trained G with its frozen guide G_H.
    """
    from hoginpaint.pipeline import HOGInpaintPipeline

    trained = detached_copy(generator)
    width = config.base_channels or HOGINPAINT_WIDTH
    untrained = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.stage == "structure":
            structure = trained
            if models.inpaint_generator is not None:
                inpaint = detached_copy(models.inpaint_generator)
            else:
                inpaint = InpaintGenerator(width, config.residual_blocks, prefill=config.prefill,
                                           correction_ramp=config.correction_ramp,
                                           correction_lowpass=config.correction_lowpass).eval()
                untrained = ["inpaint_generator"]
        else:
            inpaint = trained
            if models.structure_generator is not None:
                structure = detached_copy(models.structure_generator)
            else:
                structure = StructureGenerator(width, config.residual_blocks, pixels_per_cell=config.pixels_per_cell,
                                               hog_scale=config.hog_scale, prefill=config.prefill).eval()
                untrained = ["structure_generator"]
    return TrainedModel(HOGInpaintPipeline(structure, inpaint, resolution=config.resolution), untrained)


class HOGInpaintTraining:
    """The HOG-guided GAN behind the trainer's `TrainableModel` interface (stages: structure, inpaint, joint)."""

    name = "hoginpaint"
    measures_identity = True
    forward = staticmethod(hog_forward)
    discriminator_loss = staticmethod(discriminator_loss)
    generator_losses = staticmethod(generator_losses)
    export = staticmethod(hog_export)
