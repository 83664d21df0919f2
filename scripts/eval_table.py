"""One markdown table from several `python -m hoginpaint.evaluation` runs over the same faces and holes.

    python scripts/eval_table.py --title "CelebA test partition" \
        runs/eval/hoginpaint-celeba/metrics.json runs/eval/baselines-celeba/metrics.json

Runs made with the same `--dataset`, `--split`, `--max_samples`, `--seed`, `--mask_dir` and `--feature_masks` see
exactly the same (face, mask) pairs (the pairing is seeded; `hoginpaint.evaluation.run`), so methods evaluated in
separate runs can share a table; this script refuses runs whose settings differ. Per mask set: PSNR, SSIM and dlib
identity distance of every method, the best in bold, and whether the first method beats every other one.
`PATH:telea,biharmonic` takes only those methods of a run (e.g. to leave out an older model evaluated under the
same name as a newer one); `PATH:hoginpaint=previous` takes a method under another name, so that two checkpoints of
one model, evaluated in separate runs, can be compared face by face:

    python scripts/eval_table.py --paired new/metrics.json old/metrics.json:hoginpaint=previous

`--paired` adds a second table from the runs' `samples.csv`: per mask set and metric, the first method minus the best
other one, face by face, as the mean with its 95 % interval (1.96 standard errors of the paired differences), and
whether the interval excludes zero in the first method's favour. A win whose interval includes zero is not one the
faces can tell from chance.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

SHARED_SETTINGS = ("dataset", "split", "max_samples", "seed", "mask_dir", "mask_split", "feature_masks", "resolution")
METRICS = (("psnr", "PSNR", 2, max), ("ssim", "SSIM", 3, max), ("identity_distance", "identity distance", 3, min))
# The first method of the first run is compared against the others.
LABELS = {"hoginpaint": "HOG-guided", "deepfill": "DeepFill v2", "telea": "Telea", "biharmonic": "biharmonic",
          "navier-stokes": "Navier-Stokes"}


def split_spec(spec: str) -> tuple[Path, dict[str, str] | None]:
    """`PATH` or `PATH:METHOD,METHOD=NAME` → (the metrics.json path, {method: the name it takes in the table} of the
    methods to take from it, or None for all under their own names)."""
    path, _, methods = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if not methods:
        return Path(path), None
    names = {}
    for item in methods.split(","):
        method, _, name = item.partition("=")
        names[method] = name or method
    return Path(path), names


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
            table.setdefault(row["mask_set"], {})[only[row["method"]] if only else row["method"]] = row
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


def load_samples(specs: list[str]) -> dict[tuple[str, str], dict[int, dict[str, float]]]:
    """{(mask set, method): {face: {metric: value}}} from the `samples.csv` beside each metrics.json."""
    samples: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    for spec in specs:
        path, only = split_spec(str(spec))
        with open(path.parent / "samples.csv", newline="") as file:
            for row in csv.DictReader(file):
                if only is None or row["method"] in only:
                    name = only[row["method"]] if only else row["method"]
                    samples.setdefault((row["mask_set"], name), {})[int(row["face"])] = {
                        key: float(row[key]) for key, *_ in METRICS}
    return samples


def paired_difference(first: dict[int, dict[str, float]], other: dict[int, dict[str, float]], key: str
                      ) -> tuple[float, float, int]:
    """Mean of first − other over the faces both measured finitely, its 95 % half-interval, and the face count."""
    differences = [first[face][key] - other[face][key] for face in first.keys() & other.keys()
                   if math.isfinite(first[face][key]) and math.isfinite(other[face][key])]
    count = len(differences)
    if count < 2:
        return math.nan, math.nan, count
    mean = sum(differences) / count
    spread = math.sqrt(sum((value - mean) ** 2 for value in differences) / (count - 1))
    return mean, 1.96 * spread / math.sqrt(count), count


def render_paired(table: dict[str, dict[str, dict]], samples: dict) -> str:
    """Per mask set and metric: the first method against the best other one (see the module docstring)."""
    methods = list(dict.fromkeys(method for rows in table.values() for method in rows))
    first = methods[0]
    lines = [f"Paired differences, {LABELS.get(first, first)} minus the best other method on each metric (mean ± 95 % "
             "interval over the faces; ✓: the interval excludes zero in its favour)", "",
             "| holes | PSNR (dB) | SSIM | identity distance |", "| --- | --- | --- | --- |"]
    for mask_set, rows in table.items():
        cells = []
        for key, _, digits, pick in METRICS:
            others = {method: row.get(key) for method, row in rows.items() if method != first
                      and isinstance(row.get(key), (int, float)) and math.isfinite(row.get(key))}
            if not others or (mask_set, first) not in samples:
                cells.append("–")
                continue
            best = pick(others, key=others.get)
            mean, half, _ = paired_difference(samples[mask_set, first], samples[mask_set, best], key)
            better = (mean - half > 0) if pick is max else (mean + half < 0)
            cells.append(f"{mean:+.{digits + 1}f} ± {half:.{digits + 1}f} vs {LABELS.get(best, best)}"
                         + (" ✓" if better else ""))
        lines.append(f"| {mask_set} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", help="metrics.json files (PATH, or PATH:METHOD,METHOD to take only "
                                                   "those methods, METHOD=NAME to show one under another name); "
                                                   "the first run's first method is the one compared against all "
                                                   "others")
    parser.add_argument("--title", default="Evaluation")
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--paired", action="store_true", help="add the paired differences (from samples.csv)")
    args = parser.parse_args()
    settings, table = load_runs(args.metrics)
    text = render(args.title, settings, table)
    if args.paired:
        text += "\n" + render_paired(table, load_samples(args.metrics))
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
