"""The Hub model card of a trained model: the repository's `model_card.md` (a Jinja template with YAML metadata),
filled from the `training_summary.json` that `train_accelerate.py` writes and, when there are any, evaluation results.

    card = render_model_card(summary, repo_id="me/hoginpaint-celeba",
                             evaluation={"NVIDIA masks 10-20 %": {"PSNR": 31.2, "SSIM": 0.93}})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "model_card.md"
TAGS = ["image-inpainting", "face", "gan", "hog"]

_MASK_KINDS = {
    "free_form": "DeepFill v2's free-form brush strokes (Yu et al. 2019), generated on the fly.",
    "irregular": "random lines, circles and elliptic arcs (the irregular-mask generator used to reproduce Liu et al. "
                 "2018), generated on the fly.",
    "rectangle": "one random rectangle covering 10-40 % of the image, generated on the fly.",
}


def _public_name(reference: str | None) -> str | None:
    """A Hub id as it is; a local folder by its name only (no local paths in a public card)."""
    if not reference:
        return None
    return Path(reference).name if Path(reference).expanduser().exists() else reference


def render_model_card(summary: dict[str, Any], repo_id: str | None = None,
                      evaluation: dict[str, dict[str, float | str]] | None = None,
                      template_path: str | Path = TEMPLATE_PATH, history: list[dict[str, Any]] | None = None,
                      notes: str | None = None) -> str:
    """The model card (Markdown with YAML front matter) of the run described by `summary`.

    Args:
        summary: the content of ``training_summary.json`` (keys ``config``, ``global_step``, ``images_seen``,
            ``num_processes``, ``wall_time_s``, ``skipped_images``, ``final_validation``, ``components``,
            ``untrained_components``).
        repo_id: the Hub repository the card is for (used in the usage snippet); default ``config.hub_model_id``.
        evaluation: optional results table, setting → {metric: value}; the card says "not evaluated yet" without.
        template_path: the Jinja template, by default the repository's ``model_card.md``.
        history: the summaries of every run that led to this model, in order (e.g. structure, inpaint, joint), shown
            as a table of stages, steps, images seen and wall time.
        notes: free text about how the model was made (hardware, budget), shown under the history.
    """
    missing = [key for key in ("config", "global_step", "images_seen", "components") if key not in summary]
    if missing:
        raise ValueError(f"the training summary lacks {missing}; pass the training_summary.json of a finished run")
    config = summary["config"]
    repo_id = repo_id or config.get("hub_model_id") or f"path/to/{Path(config['output_dir']).name}"
    is_hub_dataset = not config.get("train_data_dir")
    metrics = sorted({metric for values in (evaluation or {}).values() for metric in values})
    card_data = ModelCardData(
        library_name="hoginpaint",
        license="other",
        license_name="non-commercial-research",
        pipeline_tag="image-to-image",
        tags=TAGS + (["deepfill-v2"] if config["model"] == "deepfill" else []),
        datasets=[config["dataset_name"]] if is_hub_dataset else None,
        metrics=["psnr", "ssim"],
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        untrained=summary.get("untrained_components") or [],
        prefill=config.get("prefill", "none"),
        coarse=_public_name(config.get("coarse_model")),
        untrained_text=" and ".join(f"`{name}`" for name in summary.get("untrained_components") or []),
        dataset_description=_dataset_description(config, is_hub_dataset),
        mask_description=_mask_description(config),
        loss_description=_loss_description(config),
        network_description=_network_description(summary["components"]),
        wall_time=_duration(summary.get("wall_time_s")),
        global_step=summary["global_step"],
        images_seen=summary["images_seen"],
        num_processes=summary.get("num_processes", 1),
        skipped_images=summary.get("skipped_images", 0),
        final_validation=summary.get("final_validation"),
        evaluation=evaluation,
        evaluation_metrics=metrics,
        history=[{"stage": run["config"]["stage"], "steps": run["global_step"], "images": run["images_seen"],
                  "wall_time": _duration(run.get("wall_time_s"))} for run in history or []],
        notes=notes,
        **{key: config[key] for key in ("model", "stage", "resolution", "train_batch_size",
                                        "gradient_accumulation_steps", "learning_rate", "d_lr_ratio", "adam_beta1",
                                        "adam_beta2", "mixed_precision", "num_validation_images")},
    )
    return str(card)


def _dataset_description(config: dict[str, Any], is_hub_dataset: bool) -> str:
    if is_hub_dataset:
        name = config["dataset_name"]
        source = f"[{name}](https://huggingface.co/datasets/{name})"
    else:
        folders = [Path(part.strip()).name for part in config["train_data_dir"].split(",") if part.strip()]
        source = (f"a local dataset folder (`{folders[0]}`)" if len(folders) == 1 else
                  "local dataset folders " + ", ".join(f"`{name}`" for name in folders) + ", interleaved one image "
                  "from each in turn")
    limit = f", its first {config['max_train_samples']} images" if config.get("max_train_samples") else ""
    return f"Trained on {source}, split `{config['train_split']}`{limit}, column `{config['image_column']}`."


def _mask_description(config: dict[str, Any]) -> str:
    if config.get("mask_dir"):
        description = (f"masks from the folder `{Path(config['mask_dir']).name}` (for the NVIDIA irregular mask set of "
                       "Liu et al. 2018: only the training masks, whose index is not a multiple of 10), randomly "
                       "flipped, rotated, shifted and dilated.")
    else:
        description = _MASK_KINDS[config["mask_kind"]]
    share = config.get("face_part_share") or 0.0
    if share:
        description += (f" {share:.0%} of the holes were instead placed over a facial part from dlib's 68 landmarks "
                        "(one eye, both eyes, eyes and brows, nose, mouth, or a thick stroke across them; random "
                        "margins and jitter), for the images whose landmarks were found.")
    return description


def _loss_description(config: dict[str, Any]) -> str:
    if config["model"] == "deepfill":
        return "DeepFill v2's: L1 on the coarse and the refined output (1 each) + SN-PatchGAN hinge loss (1)"
    structure = config["stage"] == "structure"  # the run's config as JSON: the stage by its name
    if structure:
        terms = {"L1": config["structure_l1_weight"], "adversarial": config["structure_adversarial_weight"]}
    else:
        terms = {"L1": config["l1_weight"], "adversarial": config["adversarial_weight"],
                 "perceptual (VGG-16)": config["perceptual_weight"], "style (VGG-16 Gram)": config["style_weight"]}
    terms["feature matching"] = config["feature_matching_weight"]
    if not structure:
        terms["grid (4-pixel periodic error)"] = config.get("grid_weight", 0.0)
        terms["HOG (hole cells' orientation histograms)"] = config.get("hog_loss_weight", 0.0)
        critic = {"crop": "hole crop critic (GLCIC-style, 64 px)",
                  "crop_luma": "hole crop critic on luminance (GLCIC-style, 64 px)"}.get(
            config.get("hole_critic"), "local hole critic (16x16 PatchGAN)")
        terms[critic] = config.get("hole_adversarial_weight", 0.0)
        terms["hole contrast (local standard deviation, 4-32 px)"] = config.get("contrast_loss_weight", 0.0)
        terms["hole contrast (standard deviation over the hole)"] = config.get("hole_contrast_loss_weight", 0.0)
    described = ", ".join(f"{name} {weight:g}" for name, weight in terms.items() if weight > 0)
    extras = []
    if config.get("l1_hole_weight", 1.0) != 1.0:
        extras.append(f"hole pixels weigh {config['l1_hole_weight']:g}x in L1")
    if config.get("adversarial_warmup_steps"):
        extras.append(f"L1 only for the first {config['adversarial_warmup_steps']} steps")
    if config.get("discriminator_only_steps"):
        extras.append(f"the discriminator alone for the first {config['discriminator_only_steps']} steps")
    if config.get("ema_decay"):
        extras.append(f"exported weights: moving average of G's, decay {config['ema_decay']:g}")
    return described + (f" ({'; '.join(extras)})" if extras else "")


def _network_description(components: dict[str, dict[str, Any]]) -> str:
    names = {"structure_generator": "G_H", "inpaint_generator": "G", "generator": "DeepFill v2 generator"}
    return "; ".join(
        f"{names.get(name, name)}: " + ", ".join(f"{key} {value}" for key, value in sorted(config.items()))
        for name, config in components.items()
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def default_model_card(model: Any) -> str:
    """The minimal card `save_pretrained` writes when given none (training passes a fuller one): Hub metadata, what
    the model is, its resolution and components' configs, and how to use it.

    `model` is a `hoginpaint.hub.ComponentModel`; its class gives `CARD_TITLE`, `CARD_TAGS`, `CARD_DESCRIPTION`
    and `CARD_USAGE` (Python code, with ``<this repository>`` where the repository id goes).
    """
    import json

    import hoginpaint

    tags = "\n".join(f"- {tag}" for tag in model.CARD_TAGS)
    components = "\n".join(
        f"- {name.replace('_', ' ').capitalize()}: `{json.dumps(getattr(model, name)._hub_mixin_config, sort_keys=True)}`"
        for name in model.COMPONENTS)
    description = model.CARD_DESCRIPTION.format(version=hoginpaint.__version__)
    return f"""---
library_name: hoginpaint
pipeline_tag: image-to-image
tags:
{tags}
---

# {model.CARD_TITLE}

{description}

- Model resolution: {model.resolution}x{model.resolution}
{components}

## Usage

```python
{model.CARD_USAGE.strip()}
```
"""
