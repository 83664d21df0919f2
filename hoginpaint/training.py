"""What `train_accelerate.py` composes: the configuration, the models of each stage, one GAN step, validation and
atomic checkpoints.

The three stages are EdgeConnect's schedule (Nazeri et al. 2019) with the HOG image in place of edges (Salem, Mahdi &
Abbas): ``structure`` trains G_H and D_H, ``inpaint`` trains G and D guided by the ground-truth HOG image, ``joint``
trains G guided by the frozen G_H's composited prediction.

One step (`train_step`) orders its updates so that no autograd graph ever sees a parameter that an optimizer has
changed in place since the graph was built (EdgeConnect's users hit exactly that error):

1. the generator's forward pass;
2. the discriminator's step, on real images and on the *detached* fakes, in one forward pass;
3. the generator's step, through a *fresh* forward pass of the updated discriminator whose parameters are frozen
   for it (so the generator's backward neither reaches nor all-reduces the discriminator's gradients).

Both losses are checked for NaN/Inf on every rank *before* their backward pass, and all ranks agree on the verdict,
so a non-finite loss never updates a weight and never leaves one rank waiting for another's gradients.

Losses (`hoginpaint.losses`): the L1 term is the mean over all pixels (EdgeConnect's code further divides it by the
hole ratio; we keep the paper's plain weight); the style term compares the hole only, as EdgeConnect's; the
perceptual term the whole raw output.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from hoginpaint import config, losses
from hoginpaint.config import option
from hoginpaint.hog import HOG_IMAGE_SCALE, HOGSettings, guidance_target, to_gray
from hoginpaint.losses import LossWeights
from hoginpaint.networks import InpaintGenerator, PatchDiscriminator, StructureGenerator
from hoginpaint.prefill import PrefillKind, check_prefill_kind
from hoginpaint.stages import inpaint_stage, prefill_kind, structure_stage

Stage = Literal["structure", "inpaint", "joint"]
ModelName = Literal["hoginpaint", "deepfill"]
MaskKind = Literal["free_form", "irregular", "rectangle"]

_PAPER_WEIGHTS = LossWeights()
HOGINPAINT_WIDTH = 64  # EdgeConnect's / the paper's base width
DEEPFILL_GENERATOR_WIDTH = 48  # the official cnum
DEEPFILL_DISCRIMINATOR_WIDTH = 64


_option = option


@dataclass
class TrainConfig:
    """Every option of `train_accelerate.py`; the argument parser is generated from these fields."""

    # What to train
    model: ModelName = _option("hoginpaint", "which model to train: the paper's HOG-guided GAN or the DeepFill v2 "
                                             "baseline (one network; use --stage inpaint with it)")
    stage: Stage = _option("structure", "structure: G_H + D_H on HOG images; inpaint: G + D guided by the "
                                        "ground-truth HOG; joint: G guided by the frozen G_H's prediction "
                                        "(needs --structure_model)")
    structure_model: str | None = _option(None, "a trained structure generator (local folder or Hub id; a pipeline "
                                                "or a generator folder): frozen guide of the joint stage, and carried "
                                                "into the saved pipeline by the other stages")
    inpaint_model: str | None = _option(None, "a trained inpainting generator (local folder or Hub id; a pipeline or "
                                              "a generator folder) to start G from (joint stage), or to carry into "
                                              "the saved pipeline (structure stage)")
    output_dir: str = _option("hoginpaint-model", "where checkpoints, logs, the trained pipeline, "
                                                  "training_summary.json and the model card are written")

    # Networks
    resolution: int = _option(256, "side of the square training images (a multiple of 4, at least 24)")
    base_channels: int | None = _option(None, "width of the first generator and discriminator layer; default: "
                                              "the paper's (hoginpaint 64; DeepFill v2 48 for G, 64 for D)")
    residual_blocks: int = _option(8, "residual blocks in each generator (paper: 8)")
    pixels_per_cell: int = _option(8, "HOG cell size in pixels (paper: 8)")
    prefill: PrefillKind = _option("none", "classical pre-fill of the hole that the generators refine "
                                           "(hoginpaint.prefill): none is the paper's (hole zeroed); biharmonic "
                                           "makes G and G_H predict a correction of a biharmonic fill, starting "
                                           "at that classical floor. Recorded in the generators' config.json")
    hog_scale: float = _option(HOG_IMAGE_SCALE, "scale of the fixed curve 1 - exp(-hog / scale) that maps HOG images "
                                                "to [0, 1] (hoginpaint.hog; 0.05 suits 256 px with 8-pixel cells, "
                                                "0.12 suits 128 px with 4-pixel cells)")

    guidance: Literal["hog", "zeros"] = _option("hog", "what guides G while it trains: the HOG image (the paper), or "
                                                    "zeros (an ablation that measures what the HOG guidance adds; "
                                                    "the exported model is not meant for use)")

    # Losses (defaults: the paper's weights, hoginpaint.losses.LossWeights)
    structure_l1_weight: float = _option(_PAPER_WEIGHTS.structure_l1, "structure stage: L1 weight")
    structure_adversarial_weight: float = _option(_PAPER_WEIGHTS.structure_adversarial,
                                                  "structure stage: adversarial weight")
    l1_weight: float = _option(_PAPER_WEIGHTS.l1, "inpaint/joint stage: L1 weight")
    adversarial_weight: float = _option(_PAPER_WEIGHTS.adversarial, "inpaint/joint stage: adversarial weight")
    perceptual_weight: float = _option(_PAPER_WEIGHTS.perceptual, "inpaint/joint stage: VGG-16 perceptual weight "
                                                                   "(needs VGG weights)")
    style_weight: float = _option(_PAPER_WEIGHTS.style, "inpaint/joint stage: VGG-16 style (Gram) weight "
                                                         "(needs VGG weights)")
    feature_matching_weight: float = _option(_PAPER_WEIGHTS.feature_matching,
                                             "discriminator feature-matching weight (off in the paper)")
    l1_hole_weight: float = _option(1.0, "weight of hole pixels in every L1 term, known pixels weighing 1 (1: the "
                                         "paper's plain mean; partial convolutions use 6)")
    adversarial_warmup_steps: int = _option(0, "optimizer steps trained without the adversarial and feature-matching "
                                               "terms before they are switched on (GLCIC's reconstruction warm-up; "
                                               "the discriminator still trains meanwhile)")
    vgg_weights: str | None = _option(None, "local VGG-16 model.safetensors (timm/vgg16.tv_in1k layout) for the "
                                            "perceptual and style losses; without it they are fetched from the Hub")

    # Data
    dataset_name: str = _option("flwrlabs/celeba", "Hub dataset id (ignored when --train_data_dir is given)")
    train_data_dir: str | None = _option(None, "a local folder of images or of parquet shards (Hub layout) to "
                                               "train on instead of --dataset_name; several, comma-separated, are "
                                               "interleaved (datasets.interleave_datasets, one image from each in "
                                               "turn) and validated on together")
    train_split: str = _option("train", "split to train on")
    validation_split: str | None = _option(None, "split to validate on; default: the first of validation, valid, "
                                                 "test that the dataset has")
    image_column: str = _option("image", "column holding the images")
    streaming: bool = _option(True, "stream the dataset (--no-streaming downloads and prepares it first)")
    shuffle_buffer_size: int = _option(1000, "size of the streaming shuffle buffer")
    shuffle_input_shards: int = _option(10, "shards read at once to fill the shuffle buffer (datasets' "
                                            "max_buffer_input_shards: more mixes better; above 1 they are read by "
                                            "threads, which take ~5 s to stop when training ends)")
    max_train_samples: int | None = _option(None, "train on the first N images only (for debugging or quick runs)")
    mask_dir: str | None = _option(None, "a folder of hole masks (the NVIDIA irregular set: training masks only, "
                                         "augmented); overrides --mask_kind")
    mask_kind: MaskKind = _option("free_form", "generated masks to train with when --mask_dir is not given")
    dataloader_num_workers: int = _option(2, "data loader worker processes per rank")

    # Optimisation
    train_batch_size: int = _option(8, "images per rank and step")
    gradient_accumulation_steps: int = _option(1, "micro-batches accumulated per optimizer step")
    max_train_steps: int = _option(10000, "optimizer steps to train for (counting the resumed ones)")
    max_train_minutes: float | None = _option(None, "stop after this many minutes of training in this run (a "
                                                    "checkpoint and the model are written as at the last step); for "
                                                    "time-boxed runs, e.g. a GPU lease")
    learning_rate: float = _option(1e-4, "generator learning rate (Adam)")
    d_lr_ratio: float = _option(0.1, "discriminator learning rate / generator learning rate")
    adam_beta1: float = _option(0.0, "Adam beta1")
    adam_beta2: float = _option(0.9, "Adam beta2")
    ema_decay: float = _option(0.0, "decay of an exponential moving average of G's weights that validation and the "
                                    "exported model use (0: off, the paper; 0.999 as in MAT and Yazıcı et al. "
                                    "2019), warmed up as min(decay, (1 + step) / (10 + step))")
    mixed_precision: Literal["no", "fp16", "bf16"] = _option("no", "mixed precision (fp16 needs CUDA)")
    seed: int = _option(0, "seed of the weights, the data order and the masks")
    max_nonfinite_steps: int = _option(0, "consecutive steps with a NaN/Inf loss tolerated (their updates are "
                                          "skipped) before training stops; 0 stops at the first")

    # Checkpoints, logging, validation
    checkpointing_steps: int = _option(500, "save the training state every N steps (0: only at the end)")
    checkpoints_total_limit: int | None = _option(3, "keep at most N checkpoints (oldest deleted first)")
    resume_from_checkpoint: str | None = _option(None, "'latest' (the newest complete checkpoint in output_dir, "
                                                       "if any) or a checkpoint folder to continue from")
    validation_steps: int = _option(500, "validate on a fixed batch every N steps (0: only at the end; "
                                         "-1: never)")
    num_validation_images: int = _option(8, "images in the fixed validation batch")
    logging_dir: str = _option("logs", "TensorBoard log folder, relative to output_dir")

    # Hub
    push_to_hub: bool = _option(False, "push the trained pipeline to the Hub at the end")
    hub_model_id: str | None = _option(None, "Hub repository to push to ('org/name')")
    hub_token: str | None = _option(None, "Hub token (default: the logged-in one)")
    hub_private: bool = _option(False, "create the Hub repository as private")
    push_checkpoints: bool = _option(False, "also push the pipeline at every checkpoint (one commit each)")

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}")

        for name in ("resolution", "base_channels", "residual_blocks", "pixels_per_cell", "train_batch_size",
                     "gradient_accumulation_steps", "max_train_steps", "num_validation_images",
                     "shuffle_buffer_size", "shuffle_input_shards", "max_train_samples", "checkpoints_total_limit"):
            positive(name)
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise ValueError(f"--max_train_minutes must be positive, got {self.max_train_minutes}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"--ema_decay must be in [0, 1), got {self.ema_decay}")
        if not (math.isfinite(self.l1_hole_weight) and self.l1_hole_weight > 0):
            raise ValueError(f"--l1_hole_weight must be a positive number, got {self.l1_hole_weight}")
        check_prefill_kind(self.prefill)
        for name in ("checkpointing_steps", "dataloader_num_workers", "max_nonfinite_steps",
                     "adversarial_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.validation_steps < -1:
            raise ValueError(f"--validation_steps must be >= -1, got {self.validation_steps}")
        multiple = math.lcm(4, self.pixels_per_cell)  # the encoder halves twice; HOG cells tile the image
        if self.resolution % multiple or self.resolution < 24:
            raise ValueError(f"--resolution must be a multiple of {multiple} (4 and --pixels_per_cell) and at least "
                             f"24, got {self.resolution}")
        if self.learning_rate <= 0 or self.d_lr_ratio <= 0:
            raise ValueError(f"--learning_rate and --d_lr_ratio must be positive, got {self.learning_rate}, "
                             f"{self.d_lr_ratio}")
        self.loss_weights()  # LossWeights refuses negative or non-finite weights
        if self.stage == "joint" and self.model == "hoginpaint" and not self.structure_model:
            raise ValueError("--stage joint trains G guided by a trained G_H: pass --structure_model (a folder or "
                             "Hub id written by the structure stage)")
        if self.model == "deepfill" and self.stage != "inpaint":
            raise ValueError(f"--model deepfill trains a single network, not a {self.stage!r} stage; pass --stage "
                             "inpaint")
        if (self.push_to_hub or self.push_checkpoints) and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id (e.g. your-name/hoginpaint-celeba)")

    def loss_weights(self) -> LossWeights:
        return LossWeights(
            structure_l1=self.structure_l1_weight,
            structure_adversarial=self.structure_adversarial_weight,
            l1=self.l1_weight,
            adversarial=self.adversarial_weight,
            perceptual=self.perceptual_weight,
            style=self.style_weight,
            feature_matching=self.feature_matching_weight,
            l1_hole=self.l1_hole_weight,
        )

    @property
    def data_source(self) -> str:
        return self.train_data_dir or self.dataset_name

    @property
    def data_sources(self) -> list[str]:
        """The training sources: the comma-separated folders of --train_data_dir, else --dataset_name."""
        if self.train_data_dir:
            return [part.strip() for part in self.train_data_dir.split(",") if part.strip()]
        return [self.dataset_name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values of every field, the Hub token left out."""
        values = dataclasses.asdict(self)
        values["hub_token"] = None
        return values


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--option`` per `TrainConfig` field, its help and default from the field."""
    return config.build_parser(TrainConfig, description=description)


def config_from_args(argv: list[str] | None = None, description: str | None = None) -> TrainConfig:
    """Parse `argv` (default: sys.argv) into a validated `TrainConfig`; a bad value exits with the parser's usage."""
    return config.parse_config(TrainConfig, argv, parser=build_parser(description))


# ---------------------------------------------------------------------------------------------------------------------
# Models


@dataclass
class GANModels:
    """The networks of one run.

    `generator` / `discriminator` are trained. `structure_generator` is a frozen, trained G_H: the guide of the
    joint stage, or (inpaint stage, from `--structure_model`) only carried into the saved pipeline.
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
        generator: nn.Module = StructureGenerator(width, config.residual_blocks, pixels_per_cell=config.pixels_per_cell,
                                                  hog_scale=config.hog_scale, prefill=config.prefill)
        # D_H sees the HOG image and the grayscale face together, as EdgeConnect's edge discriminator.
        discriminator = PatchDiscriminator(in_channels=2, base_channels=width)
        if inpaint_generator is not None:
            inpaint_generator.requires_grad_(False).eval()
        return GANModels(HOGInpaintTraining(), generator, discriminator, None, inpaint_generator)

    generator = inpaint_generator.train() if inpaint_generator is not None else InpaintGenerator(
        width, config.residual_blocks, prefill=config.prefill)
    vgg = load_vgg(config) if config.loss_weights().needs_vgg else None
    return GANModels(HOGInpaintTraining(), generator, PatchDiscriminator(in_channels=3, base_channels=width),
                     structure_generator, None, vgg)


def load_vgg(config: TrainConfig) -> nn.Module:
    """VGG-16 features from `--vgg_weights` or the Hub; a clear `ValueError` (never random weights) if neither works."""
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


def all_finite(accelerator: Any, *values: torch.Tensor) -> bool:
    """Whether every value is finite on every rank (one tiny all-gather; all ranks get the same answer)."""
    finite = all(bool(torch.isfinite(value.detach()).all()) for value in values)
    flags = accelerator.gather(torch.tensor([float(finite)], device=accelerator.device))
    return bool(flags.min() > 0)


@dataclass
class StepResult:
    """The losses of one step as floats, and whether they were finite (if not, no weight was updated)."""

    losses: dict[str, float]
    finite: bool


def train_step(accelerator: Any, models: GANModels, generator_optimizer: torch.optim.Optimizer,
               discriminator_optimizer: torch.optim.Optimizer, image: torch.Tensor, mask: torch.Tensor,
               stage: Stage, weights: LossWeights, settings: HOGSettings,
               guidance_kind: Literal["hog", "zeros"] = "hog") -> StepResult:
    """One GAN update of the stage's generator and discriminator (see the module docstring for the order).

    `models.generator` / `.discriminator` and the optimizers are the ones `accelerator.prepare` returned.
    """
    with accelerator.accumulate(models.generator, models.discriminator):
        with accelerator.autocast():
            outputs = forward_stage(stage, models, image, mask, settings, guidance_kind)
            d_loss = models.trainer.discriminator_loss(models.discriminator, outputs, mask)
        if not all_finite(accelerator, d_loss):
            discriminator_optimizer.zero_grad(set_to_none=True)
            return StepResult({"discriminator": d_loss.item()}, finite=False)
        accelerator.backward(d_loss)
        discriminator_optimizer.step()
        discriminator_optimizer.zero_grad(set_to_none=True)

        with accelerator.autocast(), frozen(accelerator.unwrap_model(models.discriminator)) as discriminator:
            g_losses = models.trainer.generator_losses(stage, outputs, mask, discriminator, models.vgg, weights)
        reported = {"discriminator": d_loss.item(), **{f"generator_{k}": v.item() for k, v in g_losses.items()}}
        if not all_finite(accelerator, g_losses["total"]):
            generator_optimizer.zero_grad(set_to_none=True)
            return StepResult(reported, finite=False)
        accelerator.backward(g_losses["total"])
        generator_optimizer.step()
        generator_optimizer.zero_grad(set_to_none=True)
    return StepResult(reported, finite=True)


def make_optimizers(models: GANModels, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G (lr) and D (lr x d_lr_ratio), betas (adam_beta1, adam_beta2): EdgeConnect's (0, 0.9)."""
    betas = (config.adam_beta1, config.adam_beta2)
    generator_optimizer = torch.optim.Adam(models.generator.parameters(), lr=config.learning_rate, betas=betas)
    discriminator_optimizer = torch.optim.Adam(models.discriminator.parameters(),
                                               lr=config.learning_rate * config.d_lr_ratio, betas=betas)
    return generator_optimizer, discriminator_optimizer


# ---------------------------------------------------------------------------------------------------------------------
# Validation


def image_metrics(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Validation PSNR and SSIM of images in [0, 1] `(B, C, H, W)`, computed as the evaluation does
    (`hoginpaint.metrics`): PSNR is the mean over images that are not identical to their target (those are +inf and
    counted in ``psnr_identical``), SSIM scikit-image's Gaussian one, averaged."""
    from hoginpaint import metrics

    target, prediction = target.float().cpu(), prediction.float().cpu()
    mean_psnr, identical = metrics.finite_mean(metrics.psnr(target, prediction))
    return {"psnr": mean_psnr, "psnr_identical": identical, "ssim": float(metrics.ssim(target, prediction).mean())}


def identity_distance(prediction: torch.Tensor, target: torch.Tensor, side: int = 256) -> float:
    """Mean dlib face-descriptor distance between targets and predictions `(B, 3, H, W)`, both resized to `side`
    (dlib's detector misses faces much under 80 px); faces dlib does not find on the target are left out (NaN if
    none is found)."""
    import torch.nn.functional as F

    from hoginpaint import metrics

    def resized(images: torch.Tensor) -> torch.Tensor:
        images = images.float().cpu()
        if images.shape[-1] == side:
            return images
        return F.interpolate(images, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)

    try:
        distances = metrics.identity_distances(resized(target), resized(prediction))
    except (ImportError, RuntimeError) as error:  # dlib or its models missing (e.g. a bare GPU machine)
        warnings.warn(f"identity distance not measured: {error}", stacklevel=2)
        return math.nan
    found = distances[~torch.isnan(distances)]
    return float(found.mean()) if len(found) else math.nan


def image_grid(columns: list[torch.Tensor]) -> torch.Tensor:
    """Rows of images side by side: columns of `(B, 1|3, H, W)` → `(3, B·H, len(columns)·W)` in [0, 1]."""
    rgb = [column.float().clamp(0, 1).expand(-1, 3, -1, -1).cpu() for column in columns]
    rows = torch.cat(rgb, dim=3)  # (B, 3, H, n·W)
    return torch.cat(list(rows), dim=1)  # (3, B·H, n·W)


@torch.no_grad()
def validate(stage: Stage, models: GANModels, batch: dict[str, torch.Tensor], settings: HOGSettings,
             guidance_kind: Literal["hog", "zeros"] = "hog") -> tuple[dict[str, float], torch.Tensor]:
    """PSNR / SSIM of the composited output on the fixed validation batch, and its grid
    (masked | guidance | output | target). `models` hold unwrapped networks; modes are restored."""
    generator = models.generator
    was_training = generator.training
    generator.eval()
    try:
        outputs = forward_stage(stage, models, batch["image"], batch["mask"], settings, guidance_kind)
    finally:
        generator.train(was_training)
    metrics = image_metrics(outputs.composited, outputs.target)
    if stage != "structure" and models.trainer.measures_identity:
        metrics["identity_distance"] = identity_distance(outputs.composited, outputs.target)
    grid = image_grid([outputs.masked, outputs.guidance, outputs.composited, outputs.target])
    return metrics, grid


# ---------------------------------------------------------------------------------------------------------------------
# Data


def mask_source(config: TrainConfig, split: Literal["train", "eval"]) -> Any:
    """Masks for training (`--mask_dir`: the folder's training masks, augmented) or validation (its evaluation masks,
    as they are); without `--mask_dir`, generated masks of `--mask_kind` for both."""
    from hoginpaint.masks import FolderMasks, make_mask_source

    if config.mask_dir:
        return FolderMasks(config.mask_dir, split=split, augment=split == "train")
    return make_mask_source(config.mask_kind)


def training_batches(config: TrainConfig, rank: int, world_size: int, resume_step: int = 0) -> Iterator[dict]:
    """Endless batches of this rank's share of the training split (see `hoginpaint.data`), on the CPU."""
    from hoginpaint import data

    images = data.load_image_datasets(config.data_sources, config.train_split, config.image_column, config.streaming,
                                      seed=config.seed)
    images = data.training_stream(images, config.seed, rank, world_size, config.shuffle_buffer_size,
                                  config.shuffle_input_shards, config.max_train_samples, resume_step)
    stream = data.FaceMaskStream(images, config.image_column, config.resolution, mask_source(config, "train"),
                                 config.seed, rank, resume_step)
    loader = data.make_dataloader(stream, config.train_batch_size, config.dataloader_num_workers)
    return data.endless_batches(loader, stream)


def validation_data(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The fixed validation batch: the first `--num_validation_images` images of the validation split, with masks
    drawn from a generator seeded by `--seed` (the same batch at every validation and after a resume)."""
    from hoginpaint import data

    sources = config.data_sources
    batches = []
    for index, source in enumerate(sources):
        # An equal share of the batch from each source, the first ones taking the remainder.
        count = config.num_validation_images // len(sources) + (index < config.num_validation_images % len(sources))
        if count == 0:
            continue
        split = config.validation_split or data.validation_split_name(source)
        images = data.load_image_dataset(source, split, config.image_column, streaming=True)
        batches.append(data.validation_batch(images, config.image_column, config.resolution, count,
                                             mask_source(config, "eval"), config.seed))
    return {key: torch.cat([batch[key] for batch in batches]) for key in ("image", "mask")}


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
                inpaint = InpaintGenerator(width, config.residual_blocks, prefill=config.prefill).eval()
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
