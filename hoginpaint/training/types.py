"""The trainer's shared types: what the trainer knows of a model (`TrainableModel`), the networks of a run
(`GANModels`), one stage's outputs (`StageOutputs`) and what a run publishes (`TrainedModel`).

Both trainable models implement `TrainableModel` on these types: the HOG-guided GAN
(`hoginpaint.training.hog_model.HOGInpaintTraining`) and DeepFill v2 (`hoginpaint.baselines.deepfill.DeepFillTraining`).
Nothing here depends on either model, so each imports this module and neither imports the other.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
from torch import nn

from hoginpaint.hog import HOGSettings
from hoginpaint.losses import LossWeights

if TYPE_CHECKING:
    from hoginpaint.training.options import ModelOptions



class Stage(StrEnum):
    """EdgeConnect's schedule, one stage per run. A member equals its name as a string (``Stage.JOINT == "joint"``).

    ``structure`` trains G_H and D_H; ``inpaint`` trains G and D guided by the ground-truth HOG image; ``joint`` trains
    G guided by the frozen G_H's composited prediction.
    """

    STRUCTURE = "structure"
    INPAINT = "inpaint"
    JOINT = "joint"

    @property
    def trains_structure(self) -> bool:
        """Whether the stage trains G_H (its outputs are HOG images), not G (RGB images)."""
        return self is Stage.STRUCTURE

    @property
    def guided_by_structure_generator(self) -> bool:
        """Whether G is guided by a trained G_H's prediction (else by the ground-truth HOG image)."""
        return self is Stage.JOINT


STAGES: tuple[str, ...] = tuple(stage.value for stage in Stage)
GuidanceKind = Literal["hog", "zeros"]


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
    coarse: Any = None  # a frozen lower-resolution pipeline whose result the generators refine (--coarse_model)

    @property
    def name(self) -> str:
        return self.trainer.name

    def published_generator(self, accelerator: Any) -> nn.Module:
        """What validation and export use: the moving average when there is one, else the trained generator."""
        return self.ema_generator if self.ema_generator is not None else accelerator.unwrap_model(self.generator)




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



class TrainableModel(Protocol):
    """What the trainer knows of a model, and all it knows: how its networks are built from the options, the
    stage's outputs on a batch, the discriminator's loss, the generator's weighted loss terms, and the model a run
    publishes. The HOG-guided GAN's is `hoginpaint.training.hog_model.HOGInpaintTraining`; DeepFill v2's is
    `hoginpaint.baselines.deepfill.DeepFillTraining`."""

    name: str
    measures_identity: bool  # whether validation reports the identity distance (RGB outputs of a face model)

    @staticmethod
    def build(options: ModelOptions) -> GANModels: ...

    def forward(self, stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                settings: HOGSettings, guidance: GuidanceKind) -> StageOutputs: ...

    def discriminator_loss(self, discriminator: nn.Module, outputs: StageOutputs, mask: torch.Tensor,
                           terms: dict[str, torch.Tensor] | None = None) -> torch.Tensor: ...

    def generator_losses(self, stage: Stage, outputs: StageOutputs, mask: torch.Tensor, discriminator: nn.Module,
                         vgg: nn.Module | None, weights: LossWeights) -> dict[str, torch.Tensor]: ...

    def export(self, options: ModelOptions, models: GANModels, generator: nn.Module) -> TrainedModel: ...


def show_masked(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`image` with its hole painted white, for viewing."""
    return image * (1 - mask) + mask


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


