"""Train the HOG-guided face inpainting GAN (Salem, Mahdi & Abbas), or the DeepFill v2 baseline, with 🤗 Accelerate.

EdgeConnect's schedule, one stage per run:

    accelerate launch train_accelerate.py --stage structure --output_dir out/structure
    accelerate launch train_accelerate.py --stage inpaint --output_dir out/inpaint --vgg_weights vgg16.safetensors
    accelerate launch train_accelerate.py --stage joint --output_dir out/joint \\
        --structure_model out/structure --inpaint_model out/inpaint --vgg_weights vgg16.safetensors

On CPUs, several processes: ``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 train_accelerate.py ...``.
Data: ``--dataset_name`` (Hub, streamed) or ``--train_data_dir`` (images or parquet shards); masks: ``--mask_dir``
(e.g. the NVIDIA irregular masks) or ``--mask_kind``. ``--help`` lists every option.

Output (``--output_dir``): the trained model in its Hub layout (a ``HOGInpaintPipeline``: ``model_index.json``,
``structure_generator/``, ``inpaint_generator/``; for DeepFill its generator's ``config.json`` +
``model.safetensors``), ``README.md`` (the model card), ``training_summary.json``, ``checkpoint-N/`` folders and
TensorBoard logs. A pipeline needs both generators: each stage saves the generator it trained and carries the other
one over from ``--structure_model`` / ``--inpaint_model``; without it, that one is freshly initialised and the
summary and card list it under ``untrained_components``.

Resuming (``--resume_from_checkpoint latest|PATH``) restores weights, optimisers and RNG states and continues at the
saved step. The data stream is not fast-forwarded: it is reshuffled with a seed derived from (``--seed``, step), and
masks are drawn from generators seeded the same way. A resumed run therefore neither re-reads the images it already
consumed to get back to its place nor repeats the interrupted epoch's order; the price is that this epoch's coverage
is statistical rather than exact.

A NaN or Inf loss is detected on every rank before its backward pass; that step's updates are skipped. After more
than ``--max_nonfinite_steps`` such steps in a row the run stops (exit status 3) without writing a final model: the
last checkpoint in the output folder is the last good state.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, gather_object, set_seed
from tqdm.auto import tqdm

from hoginpaint import hub
from hoginpaint.baselines.deepfill import DeepFillTraining
from hoginpaint.hub.model_card import render_model_card
from hoginpaint.training.checkpoints import (
    list_checkpoints,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    state_hash,
)
from hoginpaint.training.data import training_batches, validation_data
from hoginpaint.training.hog_model import HOGInpaintTraining, hog_settings
from hoginpaint.training.options import TrainConfig, config_from_args
from hoginpaint.training.trainer import make_optimizers, train_step, trained_model, update_ema
from hoginpaint.training.types import GANModels, TrainableModel, TrainedModel
from hoginpaint.training.validation import validate_batches

logger = get_logger(__name__, log_level="INFO")

# The models this script trains, by --model: each builds its networks from the options (`TrainableModel.build`).
MODELS: dict[str, type[TrainableModel]] = {"hoginpaint": HOGInpaintTraining, "deepfill": DeepFillTraining}

EXIT_NONFINITE = 3
EXIT_PUSH_FAILED = 4


class NonFiniteLossError(RuntimeError):
    """Training stopped because the losses stayed NaN/Inf for more steps than allowed."""


@dataclasses.dataclass
class Progress:
    """Counters that a checkpoint saves and a resume restores (`training_state.json`)."""

    global_step: int = 0
    images_seen: int = 0
    skipped_images: int = 0
    wall_time_s: float = 0.0


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    return config_from_args(argv, description=__doc__.split("\n\n")[0])


def build_models(config: TrainConfig) -> GANModels:
    """The networks of the run: `--model`'s `TrainableModel.build`."""
    return MODELS[config.model].build(config.model_options())


def main(config: TrainConfig) -> dict[str, Any]:
    """Train one stage as `config` says; returns the training summary (also written to the output folder)."""
    started = time.monotonic()
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(output_dir),
                                            logging_dir=str(output_dir / config.logging_dir)),
        # The local hole critic runs in a forward pass of its own, which leaves the 70x70 critic's weights unused.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.hole_adversarial_weight > 0)],
    )
    # Our messages at INFO; the libraries' (accelerate logs every file it saves) at WARNING.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        for stale in remove_incomplete_checkpoints(output_dir):
            logger.warning(f"removed {stale.name}, left by a save that was interrupted")
    accelerator.wait_for_everyone()
    set_seed(config.seed)

    models = build_models(config)  # fails here, before any data is read, on a bad reference or missing VGG weights
    settings = hog_settings(models, config)
    generator_optimizer, discriminator_optimizer = make_optimizers(models, config.learning_rate, config.d_lr_ratio,
                                                                       (config.adam_beta1, config.adam_beta2))
    generator, discriminator, generator_optimizer, discriminator_optimizer = accelerator.prepare(
        models.generator, models.discriminator, generator_optimizer, discriminator_optimizer)
    models = dataclasses.replace(
        models, generator=generator, discriminator=discriminator,
        **{name: getattr(models, name).to(accelerator.device)
           for name in ("structure_generator", "vgg", "coarse") if getattr(models, name) is not None})

    if config.ema_decay > 0:
        ema = copy.deepcopy(accelerator.unwrap_model(generator)).requires_grad_(False).eval()
        accelerator.register_for_checkpointing(ema)  # saved and restored with the training state
        models = dataclasses.replace(models, ema_generator=ema)

    progress = Progress()
    resume_path = resolve_checkpoint(output_dir, config.resume_from_checkpoint)
    if resume_path is not None:
        progress = resume(accelerator, resume_path, config, (generator_optimizer, discriminator_optimizer))
    elif config.resume_from_checkpoint == "latest":
        logger.info(f"no checkpoint in {output_dir} yet: starting from step 0")

    batches = training_batches(config.data_options(), accelerator.process_index, accelerator.num_processes,
                               progress.global_step)
    validation_batches = None
    if config.validation_steps >= 0 and accelerator.is_main_process:
        validation_batches = {name: {key: value.to(accelerator.device) for key, value in batch.items()}
                              for name, batch in validation_data(config.data_options()).items()}
    accelerator.init_trackers(f"{config.model}-{config.stage}", config=_tracker_config(config))

    try:
        status, validation = train(accelerator, config, models, (generator_optimizer, discriminator_optimizer),
                                   batches, validation_batches, settings, progress)
    finally:
        batches.close()  # stops the loader workers
    summary = finish(accelerator, config, models, progress, status, validation, started, resume_path)
    accelerator.end_training()
    if status != "completed":
        raise NonFiniteLossError(summary["message"])
    return summary


def resume(accelerator: Accelerator, checkpoint: Path, config: TrainConfig, optimizers: tuple) -> Progress:
    """Load `checkpoint` into the prepared models and optimisers; returns its counters.

    The learning rates are the config's, not the checkpoint's: a run resumed with another --learning_rate or
    --d_lr_ratio uses them from its first step (the Adam moments are kept).
    """
    state = json.loads((checkpoint / "training_state.json").read_text())
    for key in ("model", "stage"):
        if state[key] != getattr(config, key):
            raise ValueError(f"{checkpoint} was written by --{key} {state[key]}, not {getattr(config, key)}; resume "
                             f"with --{key} {state[key]} or start a new output_dir")
    accelerator.load_state(str(checkpoint))
    generator_optimizer, discriminator_optimizer = optimizers
    for optimizer, rate in ((generator_optimizer, config.learning_rate),
                            (discriminator_optimizer, config.learning_rate * config.d_lr_ratio)):
        for group in optimizer.param_groups:
            group["lr"] = rate
    logger.info(f"resumed from {checkpoint} at step {state['global_step']}")
    return Progress(**{field.name: state[field.name] for field in dataclasses.fields(Progress)})


def train(accelerator: Accelerator, config: TrainConfig, models: GANModels, optimizers: tuple, batches: Any,
          validation_batches: dict | None, settings: Any, progress: Progress) -> tuple[str, dict[str, float] | None]:
    """The loop: steps until `--max_train_steps`, with logging, checkpoints and validation on optimizer steps.

    Returns the status (``completed`` or ``nonfinite``) and the last validation metrics.
    """
    weights = config.loss_weights()
    warmup_weights = dataclasses.replace(weights, adversarial=0.0, structure_adversarial=0.0, feature_matching=0.0)
    deadline = None if config.max_train_minutes is None else time.monotonic() + 60 * config.max_train_minutes
    bar = tqdm(total=config.max_train_steps, initial=progress.global_step, desc="steps",
               disable=not accelerator.is_local_main_process)
    skipped_here = torch.zeros((), dtype=torch.long)  # undecodable images this rank skipped since the last sync
    nonfinite_in_a_row = 0
    validation = None
    # A run resumed from this output folder has its starting state on disk already.
    on_disk = (Path(config.output_dir) / f"checkpoint-{progress.global_step}").is_dir()
    saved_step = progress.global_step if progress.global_step and on_disk else None
    if progress.global_step == 0 and config.validation_steps > 0:
        # Where training starts from (with a pre-fill: the classical floor): the first point of the learning curve.
        validation = run_validation(accelerator, config, models, validation_batches, settings, 0, 0)
    run_started = time.monotonic()
    while progress.global_step < config.max_train_steps:
        batch = next(batches)
        skipped_here += batch["skipped"]
        image = batch["image"].to(accelerator.device, non_blocking=True)
        mask = batch["mask"].to(accelerator.device, non_blocking=True)
        step_weights = weights if progress.global_step >= config.adversarial_warmup_steps else warmup_weights
        train_generator = progress.global_step >= config.discriminator_only_steps
        result = train_step(accelerator, models, *optimizers, image, mask, config.stage, step_weights, settings,
                            config.guidance, deadline, train_generator)
        progress.images_seen += image.shape[0] * accelerator.num_processes
        if not result.finite:
            nonfinite_in_a_row += 1
            logger.warning(f"non-finite loss at step {progress.global_step} ({_format(result.losses)}); "
                           f"updates skipped ({nonfinite_in_a_row} in a row)")
            if nonfinite_in_a_row > config.max_nonfinite_steps:
                bar.close()
                _sync_counters(accelerator, progress, skipped_here, run_started)
                return "nonfinite", validation
            continue
        nonfinite_in_a_row = 0
        if not accelerator.sync_gradients:
            continue

        progress.global_step += 1
        if models.ema_generator is not None and train_generator:
            update_ema(models.ema_generator, accelerator.unwrap_model(models.generator), config.ema_decay,
                       progress.global_step)
        bar.update(1)
        bar.set_postfix({key: f"{value:.3g}" for key, value in result.losses.items()
                         if key in ("discriminator", "generator_total")})
        accelerator.log({f"loss/{key}": value for key, value in result.losses.items()}, step=progress.global_step)
        step = progress.global_step
        if config.checkpointing_steps and step % config.checkpointing_steps == 0 and step < config.max_train_steps:
            _sync_counters(accelerator, progress, skipped_here, run_started)
            run_started = time.monotonic()
            checkpoint(accelerator, config, models, progress)
            saved_step = step
        if config.validation_steps > 0 and step % config.validation_steps == 0 and step < config.max_train_steps:
            validation = run_validation(accelerator, config, models, validation_batches, settings, step,
                                        progress.images_seen)
        if result.past_deadline:  # the main process's clock, as of this step's loss check
            logger.info(f"--max_train_minutes {config.max_train_minutes} reached at step {step}: stopping")
            break
    bar.close()
    _sync_counters(accelerator, progress, skipped_here, run_started)
    if saved_step != progress.global_step:
        # The final state, so that a longer run can resume; `finish` pushes the final model.
        checkpoint(accelerator, config, models, progress, push_model=False)
    if config.validation_steps >= 0:
        validation = run_validation(accelerator, config, models, validation_batches, settings, progress.global_step,
                                    progress.images_seen)
    return "completed", validation


def _sync_counters(accelerator: Accelerator, progress: Progress, skipped_here: torch.Tensor,
                   run_started: float) -> None:
    """Add this rank's undecodable-image count since the last sync, summed over ranks, and the elapsed time."""
    skipped = int(accelerator.reduce(skipped_here.to(accelerator.device), reduction="sum"))
    skipped_here.zero_()
    if skipped:
        logger.warning(f"{skipped} undecodable images skipped since the last checkpoint")
    progress.skipped_images += skipped
    progress.wall_time_s += time.monotonic() - run_started
    accelerator.log({"data/skipped_images": progress.skipped_images}, step=progress.global_step)


def checkpoint(accelerator: Accelerator, config: TrainConfig, models: GANModels, progress: Progress,
               push_model: bool = True) -> Path:
    """Save the training state atomically; with `--push_checkpoints` (and `push_model`), push the current model."""
    state = {**dataclasses.asdict(progress), "model": config.model, "stage": config.stage}
    path = save_checkpoint(accelerator, config.output_dir, progress.global_step, state,
                           config.checkpoints_total_limit)
    logger.info(f"saved {path}")
    if push_model and config.push_checkpoints and accelerator.is_main_process:
        model = trained_model(config.model_options(), models, models.published_generator(accelerator))
        summary = {"config": config.to_dict(), **dataclasses.asdict(progress), "num_processes":
                   accelerator.num_processes, "components": model.components(),
                   "untrained_components": model.untrained, "final_validation": None}
        push(config, model, summary, f"Training checkpoint at step {progress.global_step}")
    accelerator.wait_for_everyone()
    return path


def run_validation(accelerator: Accelerator, config: TrainConfig, models: GANModels, batches: dict | None,
                   settings: Any, step: int, images_seen: int) -> dict[str, float] | None:
    """Validate on the main process (the others wait); log the metrics and image grids, save each grid as PNG
    (``step-N.png``; ``step-N-parts.png`` for the facial-part holes) and append the metrics to
    ``validation/metrics.jsonl`` (one line per validation: the learning curve)."""
    metrics = None
    if accelerator.is_main_process:
        unwrapped = dataclasses.replace(models, generator=models.published_generator(accelerator))
        with accelerator.autocast():
            metrics, grids = validate_batches(config.stage, unwrapped, batches, settings, config.guidance)
        accelerator.log({f"validation/{key}": value for key, value in metrics.items()}, step=step)
        tracker = accelerator.get_tracker("tensorboard", unwrap=True)
        folder = Path(config.output_dir) / "validation"
        folder.mkdir(exist_ok=True)
        for name, grid in grids.items():
            suffix = "" if name == "holes" else f"-{name}"
            tracker.add_image(f"validation{suffix}/masked | guidance | output | target", grid, global_step=step)
            _save_png(grid, folder / f"step-{step:07d}{suffix}.png")
        with open(folder / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({"step": step, "images_seen": images_seen, **metrics}) + "\n")
        logger.info(f"step {step}: validation PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}")
    accelerator.wait_for_everyone()
    return metrics


def finish(accelerator: Accelerator, config: TrainConfig, models: GANModels, progress: Progress, status: str,
           validation: dict | None, started: float, resumed_from: Path | None) -> dict[str, Any]:
    """Write the trained model, its card and `training_summary.json`; push if asked. Every rank must call it.

    The per-rank weight hashes in the summary show that data-parallel training kept the ranks identical.
    """
    hashes = {
        name: gather_object([state_hash(accelerator.unwrap_model(module))])
        for name, module in (("generator", models.generator), ("discriminator", models.discriminator))
    }
    summary: dict[str, Any] = {
        "status": status,
        "model": config.model,
        "stage": config.stage,
        **dataclasses.asdict(progress),
        "num_processes": accelerator.num_processes,
        "run_wall_time_s": time.monotonic() - started,
        "resumed_from": str(resumed_from) if resumed_from else None,
        "final_validation": validation,
        "rank_weight_hashes": hashes,
        "config": config.to_dict(),
    }
    output_dir = Path(config.output_dir)
    if status != "completed":
        last = list_checkpoints(output_dir)
        summary["message"] = (
            f"training stopped at step {progress.global_step}: the loss was NaN/Inf for more than "
            f"{config.max_nonfinite_steps} step(s) in a row, so no final model was written. The last good state is "
            f"{last[-1][1] if last else 'not saved (no checkpoint yet)'}; resume it with --resume_from_checkpoint "
            "latest, with a lower --learning_rate or --mixed_precision no")
    elif accelerator.is_main_process:
        model = trained_model(config.model_options(), models, models.published_generator(accelerator))
        summary.update(components=model.components(), untrained_components=model.untrained)
        model.save(output_dir, render_model_card(summary))
        if config.push_to_hub:
            summary["push"] = push(config, model, summary, f"Train {config.model} ({config.stage} stage), "
                                                           f"{progress.global_step} steps")
    if accelerator.is_main_process:
        (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info(f"wrote {output_dir / 'training_summary.json'}")
    accelerator.wait_for_everyone()
    return summary


def push(config: TrainConfig, model: TrainedModel, summary: dict[str, Any], message: str) -> dict[str, Any]:
    """Push the model, its card and the summary as one commit (`hoginpaint.hub.push_to_hub`, which retries).

    A failure is logged and returned, never raised: the local output stays as it is.
    """
    with tempfile.TemporaryDirectory(dir=config.output_dir, prefix=".push-") as folder:
        model.save(folder, render_model_card(summary, repo_id=config.hub_model_id))
        (Path(folder) / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        try:
            url = hub.push_to_hub(folder, config.hub_model_id, token=config.hub_token, private=config.hub_private,
                                  commit_message=message)
        except hub.HubError as error:
            logger.error(f"push to {config.hub_model_id} failed: {error}. The trained model is in {config.output_dir}; "
                         "push it later with HOGInpaintPipeline.from_pretrained(...).push_to_hub(...)")
            return {"status": "failed", "repo_id": config.hub_model_id, "error": str(error)}
    logger.info(f"pushed to {config.hub_model_id}: {url}")
    return {"status": "pushed", "repo_id": config.hub_model_id, "commit_url": url}


def _tracker_config(config: TrainConfig) -> dict[str, Any]:
    """TensorBoard's hyperparameters accept only numbers, strings and booleans."""
    return {key: value if isinstance(value, (int, float, str, bool)) else str(value)
            for key, value in config.to_dict().items()}


def _save_png(grid: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)
    Image.fromarray(array).save(path)


def _format(losses: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.4g}" for key, value in losses.items())


if __name__ == "__main__":
    arguments = parse_args()
    try:
        result = main(arguments)
    except NonFiniteLossError as error:
        logger.error(str(error))
        sys.exit(EXIT_NONFINITE)
    if result.get("push", {}).get("status") == "failed":
        sys.exit(EXIT_PUSH_FAILED)
