"""One GAN step and what the trainer does around it, for any `TrainableModel`
(`hoginpaint.training.types`): the stage's forward pass, the ordered updates, the moving average of G's weights,
the optimizers and the model a run publishes.

One step (`train_step`) orders its updates so that no autograd graph ever sees a parameter that an optimizer has
changed in place since the graph was built (EdgeConnect's users hit exactly that error):

1. the generator's forward pass;
2. the discriminator's step, on real images and on the *detached* fakes, in one forward pass;
3. the generator's step, through a *fresh* forward pass of the updated discriminator whose parameters are frozen
   for it (so the generator's backward neither reaches nor all-reduces the discriminator's gradients).

Both losses are checked for NaN/Inf on every rank *before* their backward pass, and all ranks agree on the verdict
(`agree`: one tiny all-gather, which also carries the main process's clock for `--max_train_minutes`), so a
non-finite loss never updates a weight and never leaves one rank waiting for another's gradients.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hoginpaint.losses import LossWeights
from hoginpaint.training.options import ModelOptions
from hoginpaint.hog import HOGSettings
from hoginpaint.training.types import GANModels, GuidanceKind, Stage, StageOutputs, TrainedModel


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """`ema ← d·ema + (1 - d)·model` for parameters (buffers copied), with d = min(decay, (1 + step) / (10 + step))."""
    decay = min(decay, (1 + step) / (10 + step))
    for average, current in zip(ema.parameters(), model.parameters()):
        average.lerp_(current.detach().to(average.dtype), 1 - decay)
    for average, current in zip(ema.buffers(), model.buffers()):
        average.copy_(current)


def forward_stage(stage: Stage, models: GANModels, image: torch.Tensor, mask: torch.Tensor,
                  settings: HOGSettings, guidance_kind: GuidanceKind = "hog") -> StageOutputs:
    """Run the stage's generator on `image` `(B, 3, H, W)` with holes `mask` `(B, 1, H, W)` (1 = hole).

    `settings` are the HOG settings of the targets (`hog_settings`). The model's own `forward` does the work.
    """
    return models.trainer.forward(stage, models, image, mask, settings, guidance_kind)


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
               guidance_kind: GuidanceKind = "hog", deadline: float | None = None,
               train_generator: bool = True) -> StepResult:
    """One GAN update of the stage's generator and discriminator (see the module docstring for the order).

    `models.generator` / `.discriminator` and the optimizers are the ones `accelerator.prepare` returned. Without
    `train_generator` only the discriminator steps, against the fakes of a forward pass without a graph (the
    generator's losses are neither computed nor reported; `past_deadline` is checked with the discriminator's loss).
    """
    with accelerator.accumulate(models.generator, models.discriminator):
        with accelerator.autocast(), torch.set_grad_enabled(train_generator):
            outputs = forward_stage(stage, models, image, mask, settings, guidance_kind)
        d_terms: dict[str, torch.Tensor] = {}  # a discriminator of several critics reports each
        with accelerator.autocast():
            d_loss = models.trainer.discriminator_loss(models.discriminator, outputs, mask, d_terms)
        d_reported = {"discriminator": d_loss.item(), **{f"discriminator_{k}": v.item() for k, v in d_terms.items()}}
        finite, past_deadline = agree(accelerator, d_loss, None if train_generator else deadline)
        if not finite:
            discriminator_optimizer.zero_grad(set_to_none=True)
            return StepResult(d_reported, finite=False)
        accelerator.backward(d_loss)
        discriminator_optimizer.step()
        discriminator_optimizer.zero_grad(set_to_none=True)
        if not train_generator:
            return StepResult(d_reported, finite=True, past_deadline=past_deadline)

        with accelerator.autocast(), frozen(accelerator.unwrap_model(models.discriminator)) as discriminator:
            g_losses = models.trainer.generator_losses(stage, outputs, mask, discriminator, models.vgg, weights)
        reported = {**d_reported, **{f"generator_{k}": v.item() for k, v in g_losses.items()}}
        finite, past_deadline = agree(accelerator, g_losses["total"], deadline)
        if not finite:
            generator_optimizer.zero_grad(set_to_none=True)
            return StepResult(reported, finite=False, past_deadline=past_deadline)
        accelerator.backward(g_losses["total"])
        generator_optimizer.step()
        generator_optimizer.zero_grad(set_to_none=True)
    return StepResult(reported, finite=True, past_deadline=past_deadline)


def make_optimizers(models: GANModels, learning_rate: float, d_lr_ratio: float, betas: tuple[float, float]
                    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for G (`learning_rate`) and D (`learning_rate` x `d_lr_ratio`) with `betas` (EdgeConnect's (0, 0.9))."""
    generator_optimizer = torch.optim.Adam(models.generator.parameters(), lr=learning_rate, betas=betas)
    discriminator_optimizer = torch.optim.Adam(models.discriminator.parameters(), lr=learning_rate * d_lr_ratio,
                                               betas=betas)
    return generator_optimizer, discriminator_optimizer


def trained_model(options: ModelOptions, models: GANModels, generator: nn.Module) -> TrainedModel:
    """The publishable model around the trained (unwrapped) `generator`: the model's own `export`."""
    return models.trainer.export(options, models, generator)


