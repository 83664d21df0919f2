"""The options of `train_accelerate.py`: `TrainConfig`, the single source of their defaults, and its parser.

One dataclass field per option, with its default and help text (`hoginpaint.config.option`); `config_from_args`
parses and validates a command line into it. `hoginpaint.training` composes the run from it.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
import math
from typing import Any, Literal

from hoginpaint import config
from hoginpaint.config import option
from hoginpaint.hog import HOG_IMAGE_SCALE
from hoginpaint.losses import LossWeights
from hoginpaint.masks import GeneratedMaskKind
from hoginpaint.networks import HOLE_CRITICS, HoleCriticKind
from hoginpaint.prefill import PrefillKind, check_correction_lowpass, check_correction_ramp, check_prefill_kind
from hoginpaint.training.types import STAGES, Stage

ModelName = Literal["hoginpaint", "deepfill"]

_PAPER_WEIGHTS = LossWeights()


@dataclass(frozen=True)
class DataOptions:
    """What the data streams read of a run's options (`TrainConfig.data_options`; `hoginpaint.training.data`)."""

    sources: tuple[str, ...]
    train_split: str
    validation_split: str | None
    image_column: str
    streaming: bool
    shuffle_buffer_size: int
    shuffle_input_shards: int
    max_train_samples: int | None
    resolution: int
    mask_dir: str | None
    mask_kind: str
    face_part_share: float
    landmarks: tuple[str, ...]
    num_workers: int
    batch_size: int
    num_validation_images: int
    validation_face_parts: bool
    seed: int


@dataclass(frozen=True)
class ModelOptions:
    """What building and exporting a trainable model read of a run's options (`TrainConfig.model_options`;
    `TrainableModel.build` and `.export`): the networks, the trained companions, the losses that need more networks."""

    stage: Stage
    seed: int
    resolution: int
    base_channels: int | None
    residual_blocks: int
    pixels_per_cell: int
    hog_scale: float
    prefill: PrefillKind
    correction_ramp: float
    correction_lowpass: int
    structure_model: str | None
    inpaint_model: str | None
    coarse_model: str | None
    retarget_hog: bool
    vgg_weights: str | None
    needs_vgg: bool  # the perceptual or style loss is on
    hole_critic: str | None  # --hole_critic where --hole_adversarial_weight > 0 (D gets that local critic), else None


@dataclass
class TrainConfig:
    """Every option of `train_accelerate.py`; the argument parser is generated from these fields."""

    # What to train
    model: ModelName = option("hoginpaint", "which model to train: the paper's HOG-guided GAN or the DeepFill v2 "
                                             "baseline (one network; use --stage inpaint with it)")
    stage: Stage = option("structure", "structure: G_H + D_H on HOG images; inpaint: G + D guided by the "
                                        "ground-truth HOG; joint: G guided by the frozen G_H's prediction "
                                        "(needs --structure_model)")
    structure_model: str | None = option(None, "a trained structure generator (local folder or Hub id; a pipeline "
                                                "or a generator folder): fine-tuned by the structure stage, frozen "
                                                "guide of the joint stage, carried into the saved pipeline by the "
                                                "inpaint stage")
    retarget_hog: bool = option(False, "structure stage: fine-tune the loaded --structure_model to this run's "
                                       "--pixels_per_cell and --hog_scale (e.g. a 128-px G_H moved to 256 px with "
                                       "cells twice as large); without it, differing settings are an error")
    inpaint_model: str | None = option(None, "a trained inpainting generator (local folder or Hub id; a pipeline or "
                                              "a generator folder) to start G from (joint stage), or to carry into "
                                              "the saved pipeline (structure stage)")
    coarse_model: str | None = option(None, "a trained pipeline at a lower resolution (local folder or Hub id): "
                                            "the generators refine its result, upsampled into the hole, instead of "
                                            "the classical pre-fill (a coarse-to-fine cascade; the saved pipeline "
                                            "holds it in coarse/). Needs a --prefill")
    output_dir: str = option("hoginpaint-model", "where checkpoints, logs, the trained pipeline, "
                                                  "training_summary.json and the model card are written")

    # Networks
    resolution: int = option(256, "side of the square training images (a multiple of 4, at least 24)")
    base_channels: int | None = option(None, "width of the first generator and discriminator layer; default: "
                                              "the paper's (hoginpaint 64; DeepFill v2 48 for G, 64 for D)")
    residual_blocks: int = option(8, "residual blocks in each generator (paper: 8)")
    pixels_per_cell: int = option(8, "HOG cell size in pixels (paper: 8)")
    prefill: PrefillKind = option("none", "classical pre-fill of the hole that the generators refine "
                                           "(hoginpaint.prefill): none is the paper's (hole zeroed); biharmonic "
                                           "makes G and G_H predict a correction of a biharmonic fill, starting "
                                           "at that classical floor. Recorded in the generators' config.json")
    correction_ramp: float = option(0.0, "with a pre-fill: G's correction fades in over this many pixels from the "
                                         "hole's rim, where the classical fill is nearly exact (0: off; 4 measured "
                                         "best at 128 px, docs/correction_ramp.md). Recorded in G's config.json; "
                                         "a loaded --inpaint_model takes it")
    correction_lowpass: int = option(0, "with a pre-fill: G's correction is smoothed so that nothing of this period "
                                        "(pixels, even) or its divisors is left: 4 removes the 4-pixel grid that "
                                        "shows as stripes in large holes (0: off; docs/correction_lowpass.md). "
                                        "Recorded in G's config.json; a loaded --inpaint_model takes it")
    hog_scale: float = option(HOG_IMAGE_SCALE, "scale of the fixed curve 1 - exp(-hog / scale) that maps HOG images "
                                                "to [0, 1] (hoginpaint.hog; 0.05 suits 256 px with 8-pixel cells, "
                                                "0.12 suits 128 px with 4-pixel cells)")

    guidance: Literal["hog", "zeros"] = option("hog", "what guides G while it trains: the HOG image (the paper), or "
                                                    "zeros (an ablation that measures what the HOG guidance adds; "
                                                    "the exported model is not meant for use)")

    # Losses (defaults: the paper's weights, hoginpaint.losses.LossWeights)
    structure_l1_weight: float = option(_PAPER_WEIGHTS.structure_l1, "structure stage: L1 weight")
    structure_adversarial_weight: float = option(_PAPER_WEIGHTS.structure_adversarial,
                                                  "structure stage: adversarial weight")
    l1_weight: float = option(_PAPER_WEIGHTS.l1, "inpaint/joint stage: L1 weight")
    adversarial_weight: float = option(_PAPER_WEIGHTS.adversarial, "inpaint/joint stage: adversarial weight")
    perceptual_weight: float = option(_PAPER_WEIGHTS.perceptual, "inpaint/joint stage: VGG-16 perceptual weight "
                                                                   "(needs VGG weights)")
    style_weight: float = option(_PAPER_WEIGHTS.style, "inpaint/joint stage: VGG-16 style (Gram) weight "
                                                         "(needs VGG weights)")
    feature_matching_weight: float = option(_PAPER_WEIGHTS.feature_matching,
                                             "discriminator feature-matching weight (off in the paper)")
    l1_hole_weight: float = option(1.0, "weight of hole pixels in every L1 term, known pixels weighing 1 (1: the "
                                         "paper's plain mean; partial convolutions use 6)")
    grid_weight: float = option(_PAPER_WEIGHTS.grid, "inpaint/joint stage: weight of the loss on the hole's error "
                                                     "that repeats every 4 pixels in phase (losses.grid_loss; the "
                                                     "stripes of large holes; off in the paper; docs/grid_loss.md)")
    hog_loss_weight: float = option(_PAPER_WEIGHTS.hog, "inpaint/joint stage: weight of the loss on the hole cells' "
                                                        "orientation histograms (losses.hog_loss: the paper's own "
                                                        "structure feature, which a flat fill cannot satisfy; off in "
                                                        "the paper)")
    hole_adversarial_weight: float = option(_PAPER_WEIGHTS.hole_adversarial,
                                            "inpaint/joint stage: weight of a local critic's adversarial term over "
                                            "the hole (networks.HoleDiscriminator, trained beside the 70x70 "
                                            "PatchGAN; 0: off, the paper)")
    hole_critic: HoleCriticKind = option("window", "the local critic of --hole_adversarial_weight: window (16x16 "
                                                   "windows over the hole at full resolution) or crop (the hole's box "
                                                   "resized to 64 px and judged whole, GLCIC's local discriminator) or "
                                                   "crop_luma (the same on the crop's luminance)")
    contrast_loss_weight: float = option(_PAPER_WEIGHTS.contrast, "inpaint/joint stage: weight of the loss on the "
                                                                  "hole's local contrast (losses.contrast_loss: the "
                                                                  "luminance's standard deviation in 4-32 px windows "
                                                                  "against the target's; off in the paper)")
    hole_contrast_loss_weight: float = option(_PAPER_WEIGHTS.hole_contrast,
                                              "inpaint/joint stage: weight of the loss on the whole hole's contrast "
                                              "(losses.hole_contrast_loss: the luminance's standard deviation over "
                                              "the hole against the target's; off in the paper)")
    adversarial_warmup_steps: int = option(0, "optimizer steps trained without the adversarial and feature-matching "
                                               "terms before they are switched on (GLCIC's reconstruction warm-up; "
                                               "the discriminator still trains meanwhile)")
    discriminator_only_steps: int = option(0, "optimizer steps at the start of the run in which only the "
                                              "discriminator trains, against the fills of the generator as loaded "
                                              "(a critic that has learnt to tell before the generator hears it; "
                                              "G, its moving average and its optimizer stay as they are)")
    vgg_weights: str | None = option(None, "local VGG-16 model.safetensors (timm/vgg16.tv_in1k layout) for the "
                                            "perceptual and style losses; without it they are fetched from the Hub; "
                                            "'random': a random-weight stand-in at a quarter of the width "
                                            "(losses.random_vgg16_features)")

    # Data
    dataset_name: str = option("flwrlabs/celeba", "Hub dataset id (ignored when --train_data_dir is given)")
    train_data_dir: str | None = option(None, "a local folder of images or of parquet shards (Hub layout) to "
                                               "train on instead of --dataset_name; several, comma-separated, are "
                                               "interleaved (datasets.interleave_datasets, one image from each in "
                                               "turn) and validated on together")
    train_split: str = option("train", "split to train on")
    validation_split: str | None = option(None, "split to validate on; default: the first of validation, valid, "
                                                 "test that the dataset has")
    image_column: str = option("image", "column holding the images")
    streaming: bool = option(True, "stream the dataset (--no-streaming downloads and prepares it first)")
    shuffle_buffer_size: int = option(1000, "size of the streaming shuffle buffer")
    shuffle_input_shards: int = option(10, "shards read at once to fill the shuffle buffer (datasets' "
                                            "max_buffer_input_shards: more mixes better; above 1 they are read by "
                                            "threads, which take ~5 s to stop when training ends)")
    max_train_samples: int | None = option(None, "train on the first N images only (for debugging or quick runs)")
    mask_dir: str | None = option(None, "a folder of hole masks (the NVIDIA irregular set: training masks only, "
                                         "augmented); overrides --mask_kind")
    mask_kind: GeneratedMaskKind = option("free_form", "generated masks to train with when --mask_dir is not given")
    face_part_share: float = option(0.0, "share of the training holes placed over a facial part (one eye, both "
                                          "eyes, eyes and brows, nose, mouth, or a thick stroke across them; "
                                          "hoginpaint.masks.face_parts) from the --landmarks caches; images without "
                                          "cached landmarks get the other holes")
    landmarks: str | None = option(None, "landmark caches of the training images (comma-separated .npz files "
                                         "written by scripts/cache_landmarks.py), for --face_part_share")
    dataloader_num_workers: int = option(2, "data loader worker processes per rank")

    # Optimisation
    train_batch_size: int = option(8, "images per rank and step")
    gradient_accumulation_steps: int = option(1, "micro-batches accumulated per optimizer step")
    max_train_steps: int = option(10000, "optimizer steps to train for (counting the resumed ones)")
    max_train_minutes: float | None = option(None, "stop after this many minutes of training in this run (a "
                                                    "checkpoint and the model are written as at the last step); for "
                                                    "time-boxed runs, e.g. on a rented GPU")
    learning_rate: float = option(1e-4, "generator learning rate (Adam)")
    d_lr_ratio: float = option(0.1, "discriminator learning rate / generator learning rate")
    adam_beta1: float = option(0.0, "Adam beta1")
    adam_beta2: float = option(0.9, "Adam beta2")
    ema_decay: float = option(0.0, "decay of an exponential moving average of G's weights that validation and the "
                                    "exported model use (0: off, the paper; 0.999 as in MAT and Yazıcı et al. "
                                    "2019), warmed up as min(decay, (1 + step) / (10 + step))")
    mixed_precision: Literal["no", "fp16", "bf16"] = option("no", "mixed precision (fp16 needs CUDA)")
    seed: int = option(0, "seed of the weights, the data order and the masks")
    max_nonfinite_steps: int = option(0, "consecutive steps with a NaN/Inf loss tolerated (their updates are "
                                          "skipped) before training stops; 0 stops at the first")

    # Checkpoints, logging, validation
    checkpointing_steps: int = option(500, "save the training state every N steps (0: only at the end)")
    checkpoints_total_limit: int | None = option(3, "keep at most N checkpoints (oldest deleted first)")
    resume_from_checkpoint: str | None = option(None, "'latest' (the newest complete checkpoint in output_dir, "
                                                       "if any) or a checkpoint folder to continue from")
    validation_steps: int = option(500, "validate on a fixed batch every N steps (0: only at the end; "
                                         "-1: never)")
    num_validation_images: int = option(8, "images in the fixed validation batch")
    validation_face_parts: bool = option(True, "also validate on the same faces with a hole over the eyes, the nose "
                                                "or the mouth in turn (the evaluation's facial-part holes, placed from "
                                                "dlib's landmarks; faces dlib does not find are left out): the "
                                                "learning curve's parts_* metrics")
    logging_dir: str = option("logs", "TensorBoard log folder, relative to output_dir")

    # Hub
    push_to_hub: bool = option(False, "push the trained pipeline to the Hub at the end")
    hub_model_id: str | None = option(None, "Hub repository to push to ('org/name')")
    hub_token: str | None = option(None, "Hub token (default: the logged-in one)")
    hub_private: bool = option(False, "create the Hub repository as private")
    push_checkpoints: bool = option(False, "also push the pipeline at every checkpoint (one commit each)")

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
        check_correction_ramp(self.correction_ramp, self.prefill)
        check_correction_lowpass(self.correction_lowpass, self.prefill)
        for name in ("checkpointing_steps", "dataloader_num_workers", "max_nonfinite_steps",
                     "adversarial_warmup_steps", "discriminator_only_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.hole_critic not in HOLE_CRITICS:
            raise ValueError(f"unknown --hole_critic {self.hole_critic!r}; expected one of {', '.join(HOLE_CRITICS)}")
        if not 0.0 <= self.face_part_share <= 1.0:
            raise ValueError(f"--face_part_share must be in [0, 1], got {self.face_part_share}")
        if self.face_part_share and not self.landmark_paths:
            raise ValueError("--face_part_share places holes from cached landmarks: pass --landmarks (files written "
                             "by python scripts/cache_landmarks.py --data_dir DATA --output PATH)")
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
        if self.stage not in STAGES:
            raise ValueError(f"--stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        self.stage = Stage(self.stage)  # checked once; the stage's properties say what it trains
        if self.stage.guided_by_structure_generator and self.model == "hoginpaint" and not self.structure_model:
            raise ValueError("--stage joint trains G guided by a trained G_H: pass --structure_model (a folder or "
                             "Hub id written by the structure stage)")
        if self.retarget_hog and not (self.stage.trains_structure and self.structure_model):
            raise ValueError("--retarget_hog fine-tunes a loaded G_H to new HOG settings: use it with --stage "
                             "structure and --structure_model")
        if self.coarse_model and (self.model != "hoginpaint" or self.prefill == "none"):
            raise ValueError("--coarse_model makes the HOG-guided generators refine a coarse pipeline's result in "
                             "place of the classical pre-fill: use it with --model hoginpaint and a --prefill (the "
                             "kind the loaded generators were built with)")
        if self.model == "deepfill" and self.stage is not Stage.INPAINT:
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
            grid=self.grid_weight,
            hog=self.hog_loss_weight,
            hole_adversarial=self.hole_adversarial_weight,
            contrast=self.contrast_loss_weight,
            hole_contrast=self.hole_contrast_loss_weight,
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

    @property
    def landmark_paths(self) -> list[str]:
        """The comma-separated files of --landmarks."""
        return [part.strip() for part in (self.landmarks or "").split(",") if part.strip()]

    def data_options(self) -> DataOptions:
        """The options the data streams use."""
        return DataOptions(
            sources=tuple(self.data_sources), train_split=self.train_split, validation_split=self.validation_split,
            image_column=self.image_column, streaming=self.streaming, shuffle_buffer_size=self.shuffle_buffer_size,
            shuffle_input_shards=self.shuffle_input_shards, max_train_samples=self.max_train_samples,
            resolution=self.resolution, mask_dir=self.mask_dir, mask_kind=self.mask_kind,
            face_part_share=self.face_part_share, landmarks=tuple(self.landmark_paths),
            num_workers=self.dataloader_num_workers, batch_size=self.train_batch_size,
            num_validation_images=self.num_validation_images, validation_face_parts=self.validation_face_parts,
            seed=self.seed)

    def model_options(self) -> ModelOptions:
        """The options building and exporting the model use."""
        return ModelOptions(
            stage=self.stage, seed=self.seed, resolution=self.resolution, base_channels=self.base_channels,
            residual_blocks=self.residual_blocks, pixels_per_cell=self.pixels_per_cell, hog_scale=self.hog_scale,
            prefill=self.prefill, correction_ramp=self.correction_ramp, correction_lowpass=self.correction_lowpass,
            structure_model=self.structure_model, inpaint_model=self.inpaint_model,
            coarse_model=self.coarse_model, retarget_hog=self.retarget_hog,
            vgg_weights=self.vgg_weights, needs_vgg=self.loss_weights().needs_vgg,
            hole_critic=self.hole_critic if self.hole_adversarial_weight > 0 else None)

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
