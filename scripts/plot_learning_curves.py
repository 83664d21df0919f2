"""Validation PSNR, identity distance and the hole's realism (where measured) against images seen, for one or more
training runs.

    python scripts/plot_learning_curves.py "HOG-guided=~/hoginpaint-runs/joint" \
        "DeepFill v2=~/hoginpaint-runs/deepfill" --mark "32000=correction ramp from here" --output docs/learning_curves.png

Reads each run's `validation/metrics.jsonl` (written by `train_accelerate.py`; a resumed run may repeat a step: the
last entry of a step counts). Runs validated on the same faces (the same `--num_validation_images` and data) share
a plot fairly: the x axis is images seen, so runs of other batch sizes line up.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curve(run_dir: Path) -> list[dict]:
    """The run's validation entries, one per step (the last written), in step order."""
    path = run_dir / "validation" / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass a run folder of train_accelerate.py (with --validation_steps)")
    by_step = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            by_step[entry["step"]] = entry
    return [by_step[step] for step in sorted(by_step)]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    parser.add_argument("--mark", nargs="*", default=[], help="IMAGES=TEXT: a vertical line at that many images")
    parser.add_argument("--output", type=Path, default=Path("docs/learning_curves.png"))
    args = parser.parse_args()
    curves = {}
    for spec in args.runs:
        label, _, folder = spec.partition("=")
        if not folder:
            raise SystemExit(f"{spec!r}: pass LABEL=RUN_DIR")
        curves[label] = read_curve(Path(folder).expanduser())
    keys = [("psnr", "validation PSNR (dB)"), ("identity_distance", "identity distance (dlib, lower is better)"),
            ("hole_detail", "hole detail (1 = the ground truth's)"),
            ("landmark_error", "landmark error under the hole (lower is better)"),
            ("hog_hole_l1", "G_H: HOG error in the hole cells (lower is better)"),
            ("parts_psnr", "eye, nose, mouth holes: PSNR (dB)"),
            ("parts_hole_detail", "eye, nose, mouth holes: hole detail"),
            ("parts_hole_contrast", "eye, nose, mouth holes: hole contrast"),
            ("parts_landmark_error", "eye, nose, mouth holes: landmark error")]
    keys = [(key, title) for key, title in keys if any(key in entry for curve in curves.values() for entry in curve)]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4 * rows), squeeze=False)
    for axis in axes.flat[len(keys):]:
        axis.remove()
    for axis, (key, title) in zip(axes.flat, keys):
        for label, curve in curves.items():
            points = [(entry["images_seen"], entry[key]) for entry in curve if entry.get(key) is not None]
            if points:
                axis.plot(*zip(*points), marker=".", label=label)
            if key == "hog_hole_l1" and any("hog_hole_l1_input" in entry for entry in curve):
                floor = [(entry["images_seen"], entry["hog_hole_l1_input"]) for entry in curve
                         if "hog_hole_l1_input" in entry]
                axis.plot(*zip(*floor), linestyle="--", color="grey", label=f"{label}: its input (pre-fill HOG)")
        for mark in args.mark:
            images, _, text = mark.partition("=")
            axis.axvline(float(images), color="grey", linestyle=":")
            axis.annotate(text, (float(images), 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=8,
                          color="grey", ha="right")
        axis.set_xlabel("training images seen")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=100)
    for label, curve in curves.items():
        last = curve[-1]
        print(f"{label}: {len(curve)} validations, last at {last['images_seen']} images: PSNR {last['psnr']:.2f} dB"
              + (f", identity distance {last['identity_distance']:.3f}" if last.get("identity_distance") else ""))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
