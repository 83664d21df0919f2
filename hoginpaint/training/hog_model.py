"""The HOG-guided GAN as a trainable model: its networks for each stage, its forward pass, its losses and the
pipeline a run publishes (`HOGInpaintTraining`, the trainer's `TrainableModel`).

The three stages are EdgeConnect's schedule (Nazeri et al. 2019) with the HOG image in place of edges (Salem, Mahdi &
Abbas): ``structure`` trains G_H and D_H, ``inpaint`` trains G and D guided by the ground-truth HOG image, ``joint``
trains G guided by the frozen G_H's composited prediction.

Losses (`hoginpaint.losses`): the L1 term is the mean over all pixels (EdgeConnect's code further divides it by the
hole ratio; we keep the paper's plain weight); the style term compares the hole only, as EdgeConnect's; the
perceptual term the whole raw output.
"""
from __future__ import annotations

import torch
from torch import nn

from hoginpaint import losses
from hoginpaint.hog import HOGSettings, guidance_target, to_gray
from hoginpaint.losses import LossWeights
from hoginpaint.networks import HoleDiscriminator, InpaintGenerator, PatchDiscriminator, StructureGenerator
from hoginpaint.pipeline import coarse_fill
from hoginpaint.stages import inpaint_stage, prefill_kind, structure_stage
from hoginpaint.training.options import ModelOptions
from hoginpaint.training.types import (
    GANModels,
    GuidanceKind,
    Stage,
    StageOutputs,
    TrainedModel,
    detached_copy,
    show_masked,
)

HOGINPAINT_WIDTH = 64  # EdgeConnect's / the paper's base width


def new_structure_generator(options: ModelOptions) -> StructureGenerator:
    """A freshly initialised G_H with the run's network options."""
    return StructureGenerator(options.base_channels or HOGINPAINT_WIDTH, options.residual_blocks,
                              pixels_per_cell=options.pixels_per_cell, hog_scale=options.hog_scale,
                              prefill=options.prefill)


def new_inpaint_generator(options: ModelOptions) -> InpaintGenerator:
    """A freshly initialised G with the run's network options."""
    return InpaintGenerator(options.base_channels or HOGINPAINT_WIDTH, options.residual_blocks, prefill=options.prefill,
                            correction_ramp=options.correction_ramp, correction_lowpass=options.correction_lowpass)


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


def hog_settings(models: GANModels, options: ModelOptions) -> HOGSettings:
    """The HOG settings of the targets: those of the trained G_H when there is one, else the options'."""
    if models.structure_generator is not None:
        return models.structure_generator.hog_settings()
    return HOGSettings(orientations=9, pixels_per_cell=options.pixels_per_cell, scale=options.hog_scale)


def build_hog_models(options: ModelOptions) -> GANModels:
    """Everything a run of the HOG-guided GAN needs, loaded or initialised before training starts, so that a bad
    reference or missing VGG weights fail at once: the trained generator (fresh, `--inpaint_model` for inpaint/joint,
    or `--structure_model` for the structure stage), a fresh discriminator, the trained companions
    (`--structure_model`, `--inpaint_model`) and the VGG-16 features."""
    torch.manual_seed(options.seed)  # the same initial weights on every rank
    width = options.base_channels or HOGINPAINT_WIDTH
    structure_generator = inpaint_generator = None
    if options.structure_model:
        structure_generator = load_generator(StructureGenerator, options.structure_model, "structure_generator")
        structure_generator.requires_grad_(False).eval()
        if options.retarget_hog:  # the layers do not depend on the HOG settings; the fine-tune learns the new ones
            structure_generator.retarget_hog(options.pixels_per_cell, options.hog_scale)
        if structure_generator.pixels_per_cell != options.pixels_per_cell:
            raise ValueError(f"{options.structure_model} was trained with --pixels_per_cell "
                             f"{structure_generator.pixels_per_cell}, not {options.pixels_per_cell}; pass "
                             f"--pixels_per_cell {structure_generator.pixels_per_cell}")
        if structure_generator.hog_scale != options.hog_scale:
            raise ValueError(f"{options.structure_model} was trained with --hog_scale {structure_generator.hog_scale}, "
                             f"not {options.hog_scale}; pass --hog_scale {structure_generator.hog_scale}")
    if options.inpaint_model:
        inpaint_generator = load_generator(InpaintGenerator, options.inpaint_model, "inpaint_generator")
    for name, loaded in (("--structure_model", structure_generator), ("--inpaint_model", inpaint_generator)):
        if loaded is not None and loaded.prefill != options.prefill:
            raise ValueError(f"{getattr(options, name[2:])} ({name}) was trained with --prefill {loaded.prefill}, not "
                             f"{options.prefill}; pass --prefill {loaded.prefill}")
    coarse = load_coarse(options) if options.coarse_model else None

    if options.stage.trains_structure:
        # A trained G_H (--structure_model) is fine-tuned; otherwise G_H starts fresh.
        generator: nn.Module = (structure_generator.requires_grad_(True).train() if structure_generator is not None
                                else new_structure_generator(options))
        # D_H sees the HOG image and the grayscale face together, as EdgeConnect's edge discriminator.
        discriminator = PatchDiscriminator(in_channels=2, base_channels=width)
        if inpaint_generator is not None:
            inpaint_generator.requires_grad_(False).eval()
        return GANModels(HOGInpaintTraining(), generator, discriminator, None, inpaint_generator, coarse=coarse)

    generator = inpaint_generator.train() if inpaint_generator is not None else new_inpaint_generator(options)
    # a loaded G is fine-tuned under this run's ramp and low-pass
    generator.correction_ramp, generator.correction_lowpass = options.correction_ramp, options.correction_lowpass
    vgg = load_vgg(options) if options.needs_vgg else None
    # With --hole_adversarial_weight, D adds a local critic of the hole (HoleDiscriminator).
    discriminator = (HoleDiscriminator(in_channels=3, base_channels=width, local_kind=options.hole_critic)
                     if options.hole_critic else PatchDiscriminator(in_channels=3, base_channels=width))
    return GANModels(HOGInpaintTraining(), generator, discriminator,
                     structure_generator, None, vgg, coarse=coarse)


def load_coarse(options: ModelOptions):
    """The frozen `--coarse_model` pipeline, checked against this run (a lower resolution)."""
    from hoginpaint.pipeline import HOGInpaintPipeline, check_coarse

    coarse = HOGInpaintPipeline.from_pretrained(options.coarse_model)
    check_coarse(coarse, options.resolution, options.prefill)
    for generator in (coarse.structure_generator, coarse.inpaint_generator):
        generator.requires_grad_(False).eval()
    return coarse


def load_vgg(options: ModelOptions) -> nn.Module:
    """VGG-16 features from `--vgg_weights` or the Hub; `--vgg_weights random`: the random-weight stand-in
    (`losses.random_vgg16_features`, seeded by `--seed`). A clear `ValueError` if neither works: random weights only
    when asked for by name."""
    if options.vgg_weights == losses.RANDOM_VGG:
        return losses.random_vgg16_features(seed=options.seed)
    try:
        return losses.load_vgg16_features(weights_path=options.vgg_weights)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"the perceptual and style losses need pretrained VGG-16 weights, which could not be loaded: {error}. "
            "Pass --vgg_weights PATH (a local model.safetensors of timm/vgg16.tv_in1k), or train without them with "
            "--perceptual_weight 0 --style_weight 0"
        ) from error



def hog_forward(stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                settings: HOGSettings, guidance_kind: GuidanceKind = "hog") -> StageOutputs:
    """The HOG-guided GAN's stage outputs (`HOGInpaintTraining.forward`)."""
    stage = Stage(stage)
    with torch.no_grad():
        target_hog = guidance_target(image, settings)
    # In a cascade the generators refine the coarse pipeline's result instead of their classical pre-fill.
    coarse = coarse_fill(models.coarse, image, mask) if models.coarse is not None else None
    if stage.trains_structure:
        # Called through a DDP wrapper when there is one, so that gradients are synchronised; the settings are passed
        # in because the wrapper does not forward `hog_settings()`.
        result = structure_stage(models.generator, image, mask, settings, filled=coarse)
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
    filled = coarse
    if not stage.guided_by_structure_generator:
        guidance = target_hog  # known cells and ground-truth hole cells: the whole ground-truth HOG image
    else:
        with torch.no_grad():
            structure = structure_stage(models.structure_generator, image, mask, filled=coarse)
        guidance = structure.guidance
        if prefill_kind(models.structure_generator) == prefill_kind(models.generator):
            filled = structure.filled
    if guidance_kind == "zeros":
        guidance = torch.zeros_like(guidance)
    raw, composited = inpaint_stage(models.generator, image, mask, guidance, filled=filled)
    return StageOutputs(real=image, fake=raw, prediction=raw, target=image, masked=show_masked(image, mask),
                        guidance=guidance, composited=composited)


def has_hole_critic(discriminator: nn.Module) -> bool:
    """Whether `discriminator` (or the module a DDP wrapper holds) has the local hole critic."""
    return isinstance(getattr(discriminator, "module", discriminator), HoleDiscriminator)


def hole_critic_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """The local critic's loss of a `HoleDiscriminator`, `real` against `fake` (detach it yourself), in one forward
    pass, over the logits on the hole of `mask` (for the crop critics: over the images that have a hole)."""
    local = discriminator(torch.cat([real, fake]), local=True, mask=torch.cat([mask, mask]))
    real_local, fake_local = local.chunk(2)
    return losses.masked_discriminator_loss(real_local, fake_local, losses.hole_patches(mask, fake_local))


def discriminator_loss(discriminator: nn.Module, outputs: StageOutputs, mask: torch.Tensor,
                       terms: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The HOG-guided GAN's discriminator loss on real inputs and detached fakes, in one forward pass; with a
    `HoleDiscriminator`, plus its local critic's loss over the hole (target against the detached composited output).
    With the local critic and a `terms` dict, its two parts are put there, detached: ``"whole"`` and ``"hole"``."""
    logits, _ = discriminator(torch.cat([outputs.real, outputs.fake.detach()]))  # (2B, 1, h, w)
    real_logits, fake_logits = logits.chunk(2)
    loss = losses.discriminator_loss(real_logits, fake_logits)
    if has_hole_critic(discriminator):
        hole = hole_critic_loss(discriminator, outputs.target, outputs.composited.detach(), mask)
        if terms is not None:
            terms.update(whole=loss.detach(), hole=hole.detach())
        loss = loss + hole
    return loss


def generator_losses(stage: Stage, outputs: StageOutputs, mask: torch.Tensor, discriminator: nn.Module,
                     vgg: nn.Module | None, weights: LossWeights) -> dict[str, torch.Tensor]:
    """The HOG-guided GAN's weighted generator loss terms and their sum (``"total"``); `discriminator` must be
    frozen."""
    structure = Stage(stage).trains_structure
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
    if not structure and weights.hole_adversarial > 0 and has_hole_critic(discriminator):
        local = discriminator(outputs.composited, local=True, mask=mask)
        terms["hole_adversarial"] = weights.hole_adversarial * losses.masked_generator_adversarial_loss(
            local, losses.hole_patches(mask, local))
    if not structure and weights.hog > 0:
        terms["hog"] = weights.hog * losses.hog_loss(outputs.composited, outputs.target, mask)
    if not structure and weights.contrast > 0:
        terms["contrast"] = weights.contrast * losses.contrast_loss(outputs.composited, outputs.target, mask)
    if not structure and weights.hole_contrast > 0:
        terms["hole_contrast"] = weights.hole_contrast * losses.hole_contrast_loss(outputs.composited, outputs.target,
                                                                                   mask)
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



def hog_export(options: ModelOptions, models: GANModels, generator: nn.Module) -> TrainedModel:
    """The HOG-guided pipeline around the trained (unwrapped) `generator` (`HOGInpaintTraining.export`).

    structure stage: the trained G_H with the G of `--inpaint_model`, else a fresh G (untrained);
    inpaint stage: the trained G with the G_H of `--structure_model`, else a fresh G_H (untrained);
    joint stage: the trained G with its frozen guide G_H.
    """
    from hoginpaint.pipeline import HOGInpaintPipeline

    trained = detached_copy(generator)
    untrained = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        if options.stage.trains_structure:
            structure = trained
            if models.inpaint_generator is not None:
                inpaint = detached_copy(models.inpaint_generator)
            else:
                inpaint = new_inpaint_generator(options).eval()
                untrained = ["inpaint_generator"]
        else:
            inpaint = trained
            if models.structure_generator is not None:
                structure = detached_copy(models.structure_generator)
            else:
                structure = new_structure_generator(options).eval()
                untrained = ["structure_generator"]
    return TrainedModel(HOGInpaintPipeline(structure, inpaint, resolution=options.resolution, coarse=models.coarse),
                        untrained)


class HOGInpaintTraining:
    """The HOG-guided GAN behind the trainer's `TrainableModel` interface (stages: structure, inpaint, joint)."""

    name = "hoginpaint"
    measures_identity = True
    forward = staticmethod(hog_forward)
    discriminator_loss = staticmethod(discriminator_loss)
    generator_losses = staticmethod(generator_losses)
    build = staticmethod(build_hog_models)
    export = staticmethod(hog_export)
