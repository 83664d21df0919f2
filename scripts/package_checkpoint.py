"""Copy trained runs into `checkpoints/` as the shipped models, with model cards that say how they were made.

    python scripts/package_checkpoint.py --runs ~/hoginpaint-runs \
        --hoginpaint structure inpaint joint2 --deepfill deepfill \
        --evaluation eval-500/metrics.json --notes "Trained on a 2-core CPU ..."

The last run named for each model holds the exported pipeline (`model_index.json` + subfolders); every run's
`training_summary.json` goes into the card's history. Weights are copied as they are (float32 safetensors), or with
`--fp16` stored as float16 (half the size; they load into the float32 networks, and the script prints the largest
change of a pipeline output on a test image, so the cost in quality is seen before it is shipped). The
`metrics.json` files of `python -m hoginpaint.evaluation` fill the card's
evaluation table for the methods and mask sets it holds.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint.hub.model_card import render_model_card  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
METRICS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "L1", "identity_distance": "identity distance",
           "same_person_rate": "same person (<0.6)"}


def evaluation_table(metrics_files: list[Path], method: str) -> dict[str, dict[str, str]]:
    """"mask set (N faces)" → {metric: value} for `method`, from evaluations' metrics.json files, in order."""
    table: dict[str, dict[str, str]] = {}
    for metrics_file in metrics_files:
        run = json.loads(metrics_file.read_text())
        dataset = Path(str(run.get("settings", {}).get("dataset", ""))).name
        for row in run["summary"]:
            if row["method"] != method:
                continue
            values = {label: (f"{row[key]:.4g}" if isinstance(row.get(key), (int, float)) else "–")
                      for key, label in METRICS.items()}
            prefix = f"{dataset}: " if len(metrics_files) > 1 and dataset else ""
            table[f"{prefix}{row['mask_set']} ({row['samples']} faces)"] = values
    return table


def to_fp16(folder: Path) -> None:
    """Rewrite every `model.safetensors` under `folder` with its floating-point tensors as float16."""
    import safetensors.torch

    for path in folder.rglob("model.safetensors"):
        tensors = safetensors.torch.load_file(str(path))
        half = {key: value.half() if value.is_floating_point() else value for key, value in tensors.items()}
        safetensors.torch.save_file(half, str(path))


def fp16_change(original: Path, packaged: Path, method: str) -> float:
    """Largest absolute change of the model's output (in [0, 1]) on a seeded test image and hole, fp16 vs float32."""
    import torch

    from hoginpaint import methods

    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 160, 160, generator=generator)
    mask = torch.zeros(1, 160, 160)
    mask[:, 40:120, 50:110] = 1
    before = methods.load(method, str(original))(image=image, mask_image=mask, output_type="pt").images[0]
    after = methods.load(method, str(packaged))(image=image, mask_image=mask, output_type="pt").images[0]
    return float((before - after).abs().max())


def package(name: str, runs: list[Path], evaluation: list[Path], notes: str, method: str, fp16: bool = False) -> Path:
    summaries = [json.loads((run / "training_summary.json").read_text()) for run in runs]
    final = runs[-1]
    target = CHECKPOINTS / name
    if target.exists():
        shutil.rmtree(target)  # replace the previous version rather than pile versions up
    target.mkdir(parents=True)
    shutil.copy2(final / "model_index.json", target / "model_index.json")
    index = json.loads((final / "model_index.json").read_text())
    for key, folder in index.items():
        if not key.startswith("_") and isinstance(folder, str) and (final / folder).is_dir():
            shutil.copytree(final / folder, target / folder)
    table = evaluation_table(evaluation, method) if evaluation else None
    card = render_model_card(summaries[-1], repo_id=f"checkpoints/{name}", evaluation=table, history=summaries,
                             notes=notes)
    (target / "README.md").write_text(card, encoding="utf-8")
    if fp16:
        to_fp16(target)
        print(f"{name}: weights stored as float16; largest output change on a test image "
              f"{fp16_change(final, target, method):.2e}")
    print(f"wrote {target} from {', '.join(run.name for run in runs)}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="the folder holding the run folders")
    parser.add_argument("--hoginpaint", nargs="+", required=True, help="run folders, the exported pipeline last")
    parser.add_argument("--deepfill", nargs="+", default=None,
                        help="run folders, the exported inpainter last (default: leave checkpoints/deepfill as it is)")
    parser.add_argument("--evaluation", type=Path, nargs="*", default=[],
                        help="metrics.json files of python -m hoginpaint.evaluation")
    parser.add_argument("--notes", default="", help="how the models were made (hardware, budget)")
    parser.add_argument("--fp16", action="store_true", help="store the weights as float16")
    args = parser.parse_args()
    package("hoginpaint", [args.runs / run for run in args.hoginpaint], args.evaluation, args.notes, "hoginpaint",
            args.fp16)
    if args.deepfill:
        package("deepfill", [args.runs / run for run in args.deepfill], args.evaluation, args.notes, "deepfill",
                args.fp16)


if __name__ == "__main__":
    main()
