"""Validation during training: PSNR / SSIM (as the evaluation computes them), dlib identity distance, the realism of
the hole (as the evaluation measures it: `hoginpaint.realism`) and an image grid of the stage's output on fixed
batches: ``"holes"`` (the run's masks; its metrics unprefixed) and ``"parts"`` (holes over the eyes, nose and mouth;
metrics ``parts_*``), so that the learning curve shows what PSNR on irregular holes hides."""
from __future__ import annotations

import math
import warnings

import torch

from hoginpaint.hog import HOGSettings, hole_cells
from hoginpaint.training.options import Stage
from hoginpaint.training.trainer import GANModels, GuidanceKind, forward_stage


def image_metrics(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Validation PSNR and SSIM of images in [0, 1] `(B, C, H, W)`, computed as the evaluation does
    (`hoginpaint.metrics`): PSNR is the mean over images that are not identical to their target (those are +inf and
    counted in ``psnr_identical``), SSIM scikit-image's Gaussian one, averaged."""
    from hoginpaint import metrics

    # The structure stage validates 1-channel HOG images: as three equal channels, PSNR and SSIM are the 1-channel ones.
    target, prediction = (images.float().cpu().expand(-1, 3, -1, -1) for images in (target, prediction))
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


def hog_hole_errors(hog_pred: torch.Tensor, hog_input: torch.Tensor, hog_target: torch.Tensor, mask: torch.Tensor,
                    settings: HOGSettings) -> dict[str, float]:
    """Mean absolute error of scaled HOG images `(B, 1, H, W)` over the cells the hole can change: G_H's prediction
    (``hog_hole_l1``) and what G_H was given there (``hog_hole_l1_input``: the pre-fill's HOG, or zeros) — the floor
    that G_H must beat."""
    cells = hole_cells(mask.to(hog_target.device), settings.pixels_per_cell).to(hog_target.dtype)
    count = cells.sum().clamp(min=1)
    return {"hog_hole_l1": float(((hog_pred - hog_target).abs() * cells).sum() / count),
            "hog_hole_l1_input": float(((hog_input - hog_target).abs() * cells).sum() / count)}


def hole_realism(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, settings: HOGSettings
                 ) -> dict[str, float]:
    """The realism of the hole in RGB outputs `(B, 3, H, W)` in [0, 1] with holes `mask` `(B, 1, H, W)` (1 = hole),
    as `hoginpaint.realism` measures it, each the mean over the images where it is defined (NaN if none):
    ``hole_detail`` and ``hole_contrast`` (1 = the target's), ``hog_hole_distance`` (in the run's HOG cells) and
    ``landmark_error`` (dlib at 256 px; NaN with a warning where dlib or its models are missing)."""
    from hoginpaint import realism

    prediction, target, mask = (images.float().cpu() for images in (prediction, target, mask))
    with torch.autocast("cpu", enabled=False):  # measured in float64, whatever precision the step trains in
        values = {
            "hole_detail": realism.hole_detail(target, prediction, mask),
            "hole_contrast": realism.hole_contrast(target, prediction, mask),
            "hog_hole_distance": realism.hog_hole_distance(target, prediction, mask, settings.pixels_per_cell,
                                                           settings.orientations),
        }
        try:
            values["landmark_error"] = realism.landmark_error(target, prediction, mask)
        except (ImportError, RuntimeError) as error:  # dlib or its models missing (e.g. a bare GPU machine)
            warnings.warn(f"landmark error not measured: {error}", stacklevel=2)
            values["landmark_error"] = torch.tensor([math.nan])
    return {name: float(column.nanmean()) for name, column in values.items()}


def image_grid(columns: list[torch.Tensor]) -> torch.Tensor:
    """Rows of images side by side: columns of `(B, 1|3, H, W)` → `(3, B·H, len(columns)·W)` in [0, 1]."""
    rgb = [column.float().clamp(0, 1).expand(-1, 3, -1, -1).cpu() for column in columns]
    rows = torch.cat(rgb, dim=3)  # (B, 3, H, n·W)
    return torch.cat(list(rows), dim=1)  # (3, B·H, n·W)


@torch.no_grad()
def validate(stage: Stage, models: GANModels, batch: dict[str, torch.Tensor], settings: HOGSettings,
             guidance_kind: GuidanceKind = "hog") -> tuple[dict[str, float], torch.Tensor]:
    """PSNR / SSIM of the composited output on the fixed validation batch (and for the RGB stages the identity
    distance and the hole's realism, `hole_realism`), and its grid (masked | guidance | output | target). `models`
    hold unwrapped networks; modes are restored."""
    generator = models.generator
    was_training = generator.training
    generator.eval()
    try:
        outputs = forward_stage(stage, models, batch["image"], batch["mask"], settings, guidance_kind)
    finally:
        generator.train(was_training)
    metrics = image_metrics(outputs.composited, outputs.target)
    if stage == "structure":
        metrics.update(hog_hole_errors(outputs.composited, outputs.guidance, outputs.target, batch["mask"], settings))
    if stage != "structure" and models.trainer.measures_identity:
        metrics["identity_distance"] = identity_distance(outputs.composited, outputs.target)
    if stage != "structure":
        metrics.update(hole_realism(outputs.composited, outputs.target, batch["mask"], settings))
    grid = image_grid([outputs.masked, outputs.guidance, outputs.composited, outputs.target])
    return metrics, grid


def validate_batches(stage: Stage, models: GANModels, batches: dict[str, dict[str, torch.Tensor]],
                     settings: HOGSettings, guidance_kind: GuidanceKind = "hog"
                     ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """`validate` on each named batch of `training.data.validation_data`: one dict of metrics, those of the
    ``"holes"`` batch unprefixed and the others' prefixed by their name (``parts_psnr``), and the grids by name."""
    metrics: dict[str, float] = {}
    grids = {}
    for name, batch in batches.items():
        values, grids[name] = validate(stage, models, batch, settings, guidance_kind)
        prefix = "" if name == "holes" else f"{name}_"
        metrics.update({f"{prefix}{key}": value for key, value in values.items()})
    return metrics, grids
