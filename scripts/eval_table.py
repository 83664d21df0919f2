"""One markdown table from several `python -m hoginpaint.evaluate` runs over the same faces and holes.

    python scripts/eval_table.py --title "CelebA test partition" \
        runs/eval/hoginpaint-celeba/metrics.json runs/eval/baselines-celeba/metrics.json

Runs made with the same `--dataset`, `--split`, `--max_samples`, `--seed`, `--mask_dir` and `--feature_masks` see
exactly the same (face, mask) pairs (the pairing is seeded; `hoginpaint.evaluate`), so methods evaluated in
separate runs can share a table; this script refuses runs whose settings differ. Per mask set: PSNR, SSIM and dlib
identity distance of every method, the best in bold, and whether the first method beats every other one.
`PATH:telea,biharmonic` takes only those methods of a run (e.g. to leave out an older model evaluated under the
same name as a newer one).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

SHARED_SETTINGS = ("dataset", "split", "max_samples", "seed", "mask_dir", "mask_split", "feature_masks", "resolution")
METRICS = (("psnr", "PSNR", 2, max), ("ssim", "SSIM", 3, max), ("identity_distance", "identity distance", 3, min))
# The first method of the first run is compared against the others.
LABELS = {"hoginpaint": "HOG-guided", "deepfill": "DeepFill v2", "telea": "Telea", "biharmonic": "biharmonic",
          "navier-stokes": "Navier-Stokes"}


def split_spec(spec: str) -> tuple[Path, set[str] | None]:
    """`PATH` or `PATH:METHOD,METHOD` → (the metrics.json path, the methods to take from it or None for all)."""
    path, _, methods = spec.rpartition(":") if ":" in spec else (spec, "", "")
    return Path(path), (set(methods.split(",")) if methods else None)


def load_runs(specs: list[str]) -> tuple[dict, dict[str, dict[str, dict]]]:
    """The shared settings and {mask set: {method: summary row}} of the runs, in the order given."""
    settings, table = None, {}
    for spec in specs:
        path, only = split_spec(str(spec))
        run = json.loads(path.read_text())
        mine = {key: run["settings"].get(key) for key in SHARED_SETTINGS}
        if settings is None:
            settings = mine
        elif mine != settings:
            raise SystemExit(f"{path} was evaluated with other settings ({mine}) than the first run ({settings}); "
                             "its faces and holes differ, so it cannot share the table")
        for row in run["summary"]:
            if only is not None and row["method"] not in only:
                continue
            table.setdefault(row["mask_set"], {})[row["method"]] = row
    return settings, table


def render(title: str, settings: dict, table: dict[str, dict[str, dict]]) -> str:
    """One row per (mask set, method): PSNR, SSIM, identity distance (best of the set in bold); on the first
    method's row, whether it beats every other method on all three."""
    methods = list(dict.fromkeys(method for rows in table.values() for method in rows))
    first = methods[0]
    lines = [f"**{title}** ({settings['max_samples']} faces, split {settings['split']}, {settings['resolution']} px)",
             "", "| holes (faces) | method | PSNR (dB) | SSIM | identity distance | beats all others |",
             "| --- | --- | --- | --- | --- | --- |"]
    for mask_set, rows in table.items():
        best, wins = {}, []
        for key, _, _, pick in METRICS:
            finite = {method: row.get(key) for method, row in rows.items()
                      if isinstance(row.get(key), (int, float)) and math.isfinite(row.get(key))}
            best[key] = pick(finite, key=finite.get) if finite else None
            wins.append(first in finite and all((finite[first] > value) if pick is max else (finite[first] < value)
                                                for method, value in finite.items() if method != first))
        samples = next(iter(rows.values()))["samples"]
        for index, method in enumerate(method for method in methods if method in rows):
            cells = []
            for key, _, digits, _ in METRICS:
                value = rows[method].get(key)
                text = "–" if not isinstance(value, (int, float)) or not math.isfinite(value) else f"{value:.{digits}f}"
                cells.append(f"**{text}**" if method == best[key] else text)
            verdict = ("yes" if all(wins) else "no") if method == first else ""
            label = f"{mask_set} ({samples})" if index == 0 else ""
            lines.append(f"| {label} | {LABELS.get(method, method)} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", help="metrics.json files (PATH or PATH:METHOD,METHOD to take only "
                                                   "those methods); the first run's first method is the one "
                                                   "compared against all others")
    parser.add_argument("--title", default="Evaluation")
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    settings, table = load_runs(args.metrics)
    text = render(args.title, settings, table)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
