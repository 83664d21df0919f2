"""The recipe ablation: what each training lever does to validation PSNR, SSIM and identity distance at one budget.

    python scripts/ablation.py --runs_dir ~/hoginpaint-runs/ablation [--images 2400] [--only NAME ...]
    python scripts/ablation.py --runs_dir ~/hoginpaint-runs/ablation --report_only   # table and curves only

Every variant trains G with `train_accelerate.py` for the same number of images, from the same seed, on the same
data (CelebA + UTKFace, NVIDIA training masks) at a reduced width (`ABLATION_SIZE`), validating every
`--validation_every` steps on the same 32 faces (16 CelebA test-partition, 16 UTKFace validation) with
evaluation-reserved masks: PSNR, SSIM and dlib identity distance of the composited result. The variants change one
lever against the reference recipe (biharmonic pre-fill, hole-weighted L1). `inpaint`-stage variants are guided by
the ground-truth HOG image; `joint` variants by a trained G_H (`--structure_model`), as at inference, which is
where the paper's claim (HOG guidance helps) is measured against zero guidance.

Writes, into `--output`: `ablation.md` (the table) and `ablation_curves.png` (validation PSNR and identity distance
against images seen, one line per variant). Runs resume (`--resume_from_checkpoint latest`) and finished runs are
not retrained.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared" / "data"

ABLATION_SIZE = ["--resolution", "128", "--base_channels", "16", "--residual_blocks", "2", "--pixels_per_cell", "4",
                 "--hog_scale", "0.12"]
REFERENCE = ["--prefill", "biharmonic", "--l1_hole_weight", "6"]
# name → (stage, arguments on top of the common ones). The first is the reference of the deltas.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "reference: biharmonic pre-fill + hole L1 6:1": ("inpaint", REFERENCE),
    "paper: no pre-fill, plain L1": ("inpaint", ["--prefill", "none", "--l1_hole_weight", "1"]),
    "pre-fill, plain L1": ("inpaint", ["--prefill", "biharmonic", "--l1_hole_weight", "1"]),
    "no adversarial term": ("inpaint", REFERENCE + ["--adversarial_weight", "0"]),
    "+ L1-only warm-up (first half)": ("inpaint", REFERENCE + ["--adversarial_warmup_steps", "HALF"]),
    "joint: G_H's HOG guidance": ("joint", REFERENCE),
    "joint: guidance → zeros": ("joint", REFERENCE + ["--guidance", "zeros"]),
    "+ learning rate 5e-4": ("inpaint", REFERENCE + ["--learning_rate", "5e-4"]),
    "+ EMA of G's weights (0.999)": ("inpaint", REFERENCE + ["--ema_decay", "0.999"]),
    "+ feature matching 10": ("inpaint", REFERENCE + ["--feature_matching_weight", "10"]),
    "HOG guidance → zeros (ground-truth-HOG stage)": ("inpaint", REFERENCE + ["--guidance", "zeros"]),
    "+ learning rate 1e-3 (LaMa's)": ("inpaint", REFERENCE + ["--learning_rate", "1e-3"]),
    "+ perceptual 0.1 + style 250 on random VGG features": (
        "inpaint", REFERENCE + ["--perceptual_weight", "0.1", "--style_weight", "250", "--vgg_weights", "random"]),
    "+ perceptual 0.1 on random VGG features (no style)": (
        "inpaint", REFERENCE + ["--perceptual_weight", "0.1", "--style_weight", "0", "--vgg_weights", "random"]),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:60]


def run_variant(name: str, stage: str, extra: list[str], args: argparse.Namespace) -> Path:
    output = Path(args.runs_dir).expanduser() / slug(name)
    if (output / "training_summary.json").is_file():
        return output
    steps = args.images // args.batch_size
    extra = [str(steps // 2) if value == "HALF" else value for value in extra]
    command = [
        sys.executable, str(REPO_ROOT / "train_accelerate.py"), "--stage", stage, *ABLATION_SIZE,
        "--train_data_dir", f"{SHARED / 'celeba'},{SHARED / 'faces'}",
        "--mask_dir", str(SHARED / "masks" / "nvidia-irregular-test"),
        "--mixed_precision", "bf16", "--perceptual_weight", "0", "--style_weight", "0",
        "--train_batch_size", str(args.batch_size), "--max_train_steps", str(steps),
        "--validation_steps", str(args.validation_every), "--num_validation_images", "32",
        "--checkpointing_steps", str(args.validation_every * 4), "--checkpoints_total_limit", "1",
        "--resume_from_checkpoint", "latest", "--dataloader_num_workers", "1", "--seed", "0",
        "--output_dir", str(output),
        *extra,  # last, so that a variant's options override the common ones (argparse: the last one wins)
    ]
    if stage == "joint":
        if not args.structure_model:
            raise SystemExit(f"{name!r} needs --structure_model (a trained G_H with --prefill biharmonic)")
        command += ["--structure_model", args.structure_model]
    print(f"\n=== {name}: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    return output


def read_curve(output: Path) -> list[dict]:
    path = output / "validation" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, curves = [], {}
    for name, (stage, _) in VARIANTS.items():
        curve = read_curve(Path(args.runs_dir).expanduser() / slug(name))
        if curve and curve[-1]["step"] > 0:  # a variant stopped before its first step has nothing to say
            curves[name] = curve
            rows.append((name, stage, curve[-1]))
    extra = {}
    for spec in args.also:  # other runs' curves, for the plot only: LABEL=RUN_DIR
        label, _, folder = spec.partition("=")
        if read_curve(Path(folder).expanduser()):
            extra[label] = read_curve(Path(folder).expanduser())
    if not rows:
        raise SystemExit(f"no finished variant in {args.runs_dir}")
    reference = rows[0][2] if rows[0][0] == next(iter(VARIANTS)) else None
    lines = [f"Budget: {args.images:,} images per variant, batch {args.batch_size}, 128 px, base 16, 2 residual "
             "blocks, bf16 autocast, one CPU thread each. Validation: 32 faces (16 CelebA test-partition, 16 "
             "UTKFace) with evaluation-reserved NVIDIA masks (all buckets), composited result at 128 px; identity "
             "distance by dlib on 256 px upsamplings (lower is better).", "",
             "| variant | stage | images | PSNR (dB) | Δ PSNR | SSIM | identity distance | Δ identity |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    # Every pre-fill variant starts at the fill itself (zero-initialised correction); the paper's starts far below.
    floor = next((curve[0] for name, curve in curves.items()
                  if curve[0]["step"] == 0 and "--prefill" in VARIANTS[name][1]
                  and VARIANTS[name][1][VARIANTS[name][1].index("--prefill") + 1] == "biharmonic"), None)
    if floor is not None and reference is not None:
        lines.append(f"| biharmonic fill alone (any pre-fill variant at step 0) | – | 0 | {floor['psnr']:.2f} | "
                     f"{floor['psnr'] - reference['psnr']:+.2f} | {floor['ssim']:.4f} | "
                     f"{floor['identity_distance']:.3f} | "
                     f"{floor['identity_distance'] - reference['identity_distance']:+.3f} |")
    for name, stage, last in rows:
        def delta(key: str, digits: int) -> str:
            if reference is None or not math.isfinite(last.get(key, math.nan)):
                return ""
            return f"{last[key] - reference[key]:+.{digits}f}"
        lines.append(f"| {name} | {stage} | {last['images_seen']:,} | {last['psnr']:.2f} | {delta('psnr', 2)} | "
                     f"{last['ssim']:.4f} | {last.get('identity_distance', math.nan):.3f} | "
                     f"{delta('identity_distance', 3)} |")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    figure, axes = plt.subplots(1, 3, figsize=(18, 5))
    colours = {name: plt.get_cmap("tab20")(index) for index, name in enumerate([*VARIANTS, *extra])}
    for name, curve in {**curves, **extra}.items():
        seen = [point["images_seen"] for point in curve]
        style = dict(marker=".", label=name, color=colours[name])
        axes[0].plot(seen, [point["psnr"] for point in curve], **style)
        axes[1].plot(seen, [point["psnr"] for point in curve], **style)
        axes[2].plot(seen, [point.get("identity_distance", math.nan) for point in curve], **style)
    if floor is not None:  # the zoom: the variants around the floor
        best = max(point["psnr"] for curve in [*curves.values(), *extra.values()] for point in curve)
        axes[1].set_ylim(floor["psnr"] - 0.3, best + 0.1)
    if floor is not None:
        for axis, key in ((axes[0], "psnr"), (axes[1], "psnr"), (axes[2], "identity_distance")):
            axis.axhline(floor[key], color="grey", linestyle="--", linewidth=1, label="biharmonic fill alone")
    axes[0].set(xlabel="images seen", ylabel="validation PSNR (dB)", title="PSNR (higher is better)")
    axes[1].set(xlabel="images seen", ylabel="validation PSNR (dB)", title="PSNR around the biharmonic floor")
    axes[2].set(xlabel="images seen", ylabel="identity distance", title="dlib identity distance (lower is better)")
    axes[2].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(output / "ablation_curves.png", dpi=100)
    print(f"wrote {output / 'ablation.md'} and {output / 'ablation_curves.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs_dir", default="~/hoginpaint-runs/ablation")
    parser.add_argument("--output", default=str(REPO_ROOT / "docs"))
    parser.add_argument("--images", type=int, default=2400, help="training images per variant")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--validation_every", type=int, default=50, help="steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--structure_model", default=None, help="trained G_H for the joint variants")
    parser.add_argument("--only", nargs="+", default=None, help="variant names (default: all)")
    parser.add_argument("--report_only", action="store_true")
    parser.add_argument("--also", nargs="*", default=[], help="LABEL=RUN_DIR: another run's learning curve to plot")
    args = parser.parse_args()
    if not args.report_only:
        for name, (stage, extra) in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            if stage == "joint" and not args.structure_model:
                print(f"skipping {name!r}: pass --structure_model")
                continue
            run_variant(name, stage, extra, args)
    report(args)


if __name__ == "__main__":
    main()
