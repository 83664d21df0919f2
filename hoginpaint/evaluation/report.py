"""What `python -m hoginpaint.evaluation` writes, from the `EvaluationResult` of a run.

In the output folder: `metrics.csv` (one row per method x mask set), `samples.csv` (one row per method x mask set x
face), `metrics.json` (settings, summary, skipped metrics, timings; NaN written as null), `report.md` (markdown tables
for the model card, with the settings: pixel and identity metrics, then the realism of the hole), `plot_<metric>.png`
(each metric of `SUMMARY_METRICS` against the mean hole ratio of the NVIDIA mask sets, one line per method, and a
dashed line at the ground truth's value for the realism metrics) and `grid_<mask set>.png` (masked | each method |
ground truth).
`scripts/eval_table.py` and `scripts/package_checkpoint.py` read `metrics.json`.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SUMMARY_METRICS = ("l1", "psnr", "ssim", "ssim_gray", "identity_distance", "same_person_rate", "hole_detail",
                   "hole_contrast", "landmark_error", "hog_hole_distance", "boundary_step_vs_truth")
METRIC_TITLES = {"l1": "L1", "psnr": "PSNR (dB)", "ssim": "SSIM", "ssim_gray": "SSIM-gray (EdgeConnect)",
                 "identity_distance": "identity distance (dlib)", "same_person_rate": "same-person rate (< 0.6)",
                 "hole_detail": "hole detail (result / truth)", "hole_contrast": "hole contrast (result / truth)",
                 "landmark_error": "landmark error (/ eye distance)", "hog_hole_distance": "HOG distance in the hole",
                 "boundary_step_vs_truth": "boundary step (result / truth)"}
# What the ground truth itself scores on the realism metrics: the target every method is read against.
GROUND_TRUTH_VALUES = {"hole_detail": 1.0, "hole_contrast": 1.0, "landmark_error": 0.0, "hog_hole_distance": 0.0,
                       "boundary_step_vs_truth": 1.0}


@dataclass
class EvaluationResult:
    """What an evaluation measured: every output is written from it."""

    samples: list[dict[str, Any]]  # one row per method x mask set x face
    summary: list[dict[str, Any]]  # one row per method x mask set
    seconds: dict[str, float]  # time spent inside each method's calls
    grids: dict[str, dict[str, list[torch.Tensor]]]  # mask set → {"masked", <method>..., "ground truth"} images


def write_outputs(output_dir: Path, result: EvaluationResult, settings: dict[str, Any], untrained: bool = False
                  ) -> None:
    """Write every output of an evaluation into `output_dir` (see the module docstring).

    `settings`: what `metrics.json` records and the report lists — the run's options plus `methods` (a line
    "label: what it ran with" per method), `faces`, `faces_without_detection`, `pairs`, `learned_metrics` (name →
    what became of it) and `wall_seconds`. `untrained`: as in `render_report`.
    """
    write_csv(output_dir / "metrics.csv", result.summary)
    write_csv(output_dir / "samples.csv", result.samples)
    document = {"settings": settings, "summary": [{k: _json_value(v) for k, v in row.items()} for row in
                                                  result.summary],
                "seconds": result.seconds}
    (output_dir / "metrics.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    (output_dir / "report.md").write_text(render_report(result, settings, untrained), encoding="utf-8")
    plot_metrics(result, output_dir)
    plot_grids(result, output_dir)


def _json_value(value: Any) -> Any:
    """NaN → None (JSON has no NaN); everything else as is."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _format(value: float, digits: int, scale: float = 1.0) -> str:
    return "–" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"


def render_report(result: EvaluationResult, settings: dict[str, Any], untrained: bool = False) -> str:
    """The markdown report: settings, one table per mask kind, their realism tables (`render_realism`), skipped
    metrics, timings.

    `settings` as `write_outputs` takes them; `untrained`: a network ran with random weights (the report says so
    first).
    """
    lines = ["# Evaluation", ""]
    if untrained:
        lines += ["> **Untrained networks**: the methods marked RANDOM INIT ran with random weights. Their numbers "
                  "test the evaluation, not the method.", ""]
    lines += ["## Settings", ""]
    lines += [f"- {method}" for method in settings["methods"]]
    lines += [f"- {key}: `{value}`" for key, value in settings.items()
              if key not in ("methods", "learned_metrics", "wall_seconds")]
    lines += [""]
    headers = ["Method", "Holes", "Hole %", "L1 (%)", "PSNR (dB)", "SSIM", "SSIM-gray", "ID distance",
               "Same person (%)", "Faces"]
    for kind, title in (("nvidia", "Irregular holes (NVIDIA masks)"), ("feature", "Facial-feature holes")):
        rows = [row for row in result.summary if row["kind"] == kind]
        if not rows:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in sorted(rows, key=lambda row: row["method"]):
            psnr = _format(row["psnr"], 2) + (f" (+{row['psnr_infinite']} inf)" if row["psnr_infinite"] else "")
            cells = [row["method"], row["mask_set"], _format(row["mean_hole_ratio"], 1, 100),
                     _format(row["l1"], 2, 100), psnr, _format(row["ssim"], 3), _format(row["ssim_gray"], 3),
                     _format(row["identity_distance"], 3), _format(row["same_person_rate"], 1, 100),
                     str(row["samples"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Metrics are per face on the whole image, averaged. PSNR: mean over finite values; identical images "
              "(+inf) are counted apart. ID distance: dlib face-descriptor distance between ground truth and result; "
              "same person: distance < 0.6. Faces without a dlib detection on the ground truth are left out of the "
              f"identity columns: {settings['faces_without_detection']} of {settings['faces']}.", ""]
    lines += render_realism(result)
    lines += ["## Learned metrics", ""]
    lines += [f"- {name.upper()}: {reason}" for name, reason in settings["learned_metrics"].items()]
    lines += ["", "## Time", ""]
    lines += [f"- {label}: {seconds:.1f} s in its calls, {seconds / max(1, settings['pairs']):.3f} s per face"
              for label, seconds in result.seconds.items()]
    lines += [f"- whole run: {settings['wall_seconds']:.0f} s", ""]
    return "\n".join(lines)


def render_realism(result: EvaluationResult) -> list[str]:
    """The report's realism section: per mask kind, a ground-truth row per set (the target of each column) and a row
    per method and set; then what the columns mean."""
    headers = ["Method", "Holes", "Detail", "Contrast", "Landmark error", "Landmark faces (left out: no face / no "
               "point)", "HOG distance", "Boundary step vs truth", "Boundary ratio", "Faces"]
    lines = []
    for kind, title in (("nvidia", "Irregular holes (NVIDIA masks)"), ("feature", "Facial-feature holes")):
        rows = [row for row in result.summary if row["kind"] == kind]
        if not rows:
            continue
        lines += [f"## Realism of the hole: {title}", "", "| " + " | ".join(headers) + " |",
                  "|" + "---|" * len(headers)]
        # One row of each set gives the ground truth's columns: the counts and its boundary ratio are method-free.
        sets = {row["mask_set"]: row for row in rows}
        table = [("ground truth", row, True) for row in sets.values()]
        table += [(row["method"], row, False) for row in sorted(rows, key=lambda row: row["method"])]
        for label, row, truth in table:
            value = {name: GROUND_TRUTH_VALUES[name] if truth else row[name] for name in GROUND_TRUTH_VALUES}
            ratio = row["boundary_step_ratio_truth" if truth else "boundary_step_ratio"]
            cells = [label, row["mask_set"], _format(value["hole_detail"], 2), _format(value["hole_contrast"], 2),
                     _format(value["landmark_error"], 3),
                     f"{row['landmark_samples']} ({row['landmark_no_face']} / {row['landmark_no_point']})",
                     _format(value["hog_hole_distance"], 4), _format(value["boundary_step_vs_truth"], 2),
                     f"{_format(ratio, 2)} ({row['boundary_ratio_samples']})", str(row["samples"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if lines:
        lines += ["Realism (`hoginpaint.realism`), per face in the hole, averaged over the faces where defined. Detail "
                  "(mean |Laplacian| of the luminance in the hole eroded by 2 px), contrast (its standard deviation) "
                  "and boundary step vs truth (the mean luminance step across the hole's border) are the result's "
                  "over the ground truth's: 1 is the photo's, less is flatter or smoother, more is noise, streaks or a "
                  "seam, so the best is the closest to 1. Landmark error: dlib's 68 points under the hole, predicted "
                  "on the result in the ground truth's face box, mean distance over the inter-ocular distance (at 256 "
                  "px); faces with no dlib face on the ground truth or no landmark under the hole are left out and "
                  "counted. HOG distance: mean absolute difference of the luminance's HOG cell histograms over the "
                  "cells the hole reaches. Boundary ratio: the border's step over that across copies of the hole's "
                  "outline elsewhere in the same photo (no ground truth needed; the ground-truth row gives the "
                  "photo's own), with the faces a copy fitted for in brackets.", ""]
    return lines


def plot_metrics(result: EvaluationResult, output_dir: Path) -> list[Path]:
    """`plot_<metric>.png`: each summary metric against the NVIDIA sets' mean hole ratio, one line per method."""
    plt = _pyplot()
    rows = [row for row in result.summary if row["kind"] == "nvidia"]
    written = []
    for metric in SUMMARY_METRICS if rows else ():
        figure, axes = plt.subplots(figsize=(5, 3.5))
        for label in dict.fromkeys(row["method"] for row in rows):
            points = sorted((row["mean_hole_ratio"] * 100, row[metric]) for row in rows if row["method"] == label)
            axes.plot(*zip(*points), marker="o", label=label)
        if metric in GROUND_TRUTH_VALUES:
            axes.axhline(GROUND_TRUTH_VALUES[metric], color="gray", linestyle="--", label="ground truth")
        axes.set_xlabel("mean hole ratio (%)")
        axes.set_ylabel(METRIC_TITLES[metric])
        axes.grid(alpha=0.3)
        axes.legend()
        written.append(_save(figure, output_dir / f"plot_{metric}.png"))
    return written


def plot_grids(result: EvaluationResult, output_dir: Path) -> list[Path]:
    """`grid_<mask set>.png`: one row per face, columns masked | each method | ground truth."""
    plt = _pyplot()
    written = []
    for name, columns in result.grids.items():
        count = len(columns["masked"])
        if count == 0:
            continue
        figure, axes = plt.subplots(count, len(columns), figsize=(2 * len(columns), 2 * count), squeeze=False)
        for column, (title, images) in enumerate(columns.items()):
            for row, image in enumerate(images):
                axes[row, column].imshow(image.permute(1, 2, 0).numpy())
                axes[row, column].set_axis_off()
            axes[0, column].set_title(title, fontsize=9)
        written.append(_save(figure, output_dir / f"grid_{name.replace('%', 'pct')}.png"))
    return written


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display), imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    """Lay `figure` out, write it to `path` and close it."""
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)
    return path
