"""One markdown table from several `python -m hoginpaint.evaluation` runs over the same faces and holes.

    python scripts/eval_table.py --title "CelebA test partition" \
        runs/eval/hoginpaint-celeba/metrics.json runs/eval/baselines-celeba/metrics.json

Runs made with the same `--dataset`, `--split`, `--max_samples`, `--seed`, `--mask_dir` and `--feature_masks` see
exactly the same (face, mask) pairs (the pairing is seeded; `hoginpaint.evaluation.run`), so methods evaluated in
separate runs can share a table; this script refuses runs whose settings differ. Per mask set: PSNR, SSIM and dlib
identity distance of every method, the best in bold, and whether the first method beats every other one.
A second table gives the realism of the hole (`hoginpaint.realism`, when the runs measured it): hole detail, hole
contrast and boundary step vs truth, whose best is the one closest to 1 (the ground truth's; less is flatter, more is
noise, streaks or a seam), and landmark error and HOG distance in the hole, whose best is the lowest.
`PATH:telea,biharmonic` takes only those methods of a run (e.g. to leave out an older model evaluated under the
same name as a newer one); `PATH:hoginpaint=previous` takes a method under another name, so that two checkpoints of
one model, evaluated in separate runs, can be compared face by face:

    python scripts/eval_table.py --paired new/metrics.json old/metrics.json:hoginpaint=previous

`--paired` adds tables from the runs' `samples.csv`: per mask set and metric, the first method minus the best other
one, face by face, as the mean with its 95 % interval (1.96 standard errors of the paired differences), and whether
the interval excludes zero in the first method's favour. A win whose interval includes zero is not one the faces can
tell from chance. For the metrics whose best is 1, the difference is that of the distances to 1, |x − 1| (negative:
the first method is the closer).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Literal

SHARED_SETTINGS = ("dataset", "split", "max_samples", "seed", "mask_dir", "mask_split", "feature_masks", "resolution")
# Which way is better: the higher, the lower, or the closer to 1 (a ratio to the ground truth's value).
Direction = Literal["higher", "lower", "one"]
METRICS: tuple[tuple[str, str, int, Direction], ...] = (
    ("psnr", "PSNR (dB)", 2, "higher"), ("ssim", "SSIM", 3, "higher"),
    ("identity_distance", "identity distance", 3, "lower"))
REALISM_METRICS: tuple[tuple[str, str, int, Direction], ...] = (
    ("hole_detail", "hole detail", 2, "one"), ("hole_contrast", "hole contrast", 2, "one"),
    ("landmark_error", "landmark error", 3, "lower"), ("hog_hole_distance", "HOG distance", 4, "lower"),
    ("boundary_step_vs_truth", "boundary step vs truth", 2, "one"))
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


def badness(value: float, direction: Direction) -> float:
    """How far `value` is from the best, lower being better: −value, value, or |value − 1|."""
    if direction == "higher":
        return -value
    return value if direction == "lower" else abs(value - 1)


def has_realism(table: dict[str, dict[str, dict]]) -> bool:
    """Whether the runs measured the realism of the hole (runs made before it was measured did not)."""
    return any(key in row for rows in table.values() for row in rows.values() for key, *_ in REALISM_METRICS)


def _finite(rows: dict[str, dict], key: str, leave_out: str | None = None) -> dict[str, float]:
    """{method: its value of `key`} over the methods (but `leave_out`) whose value is a finite number."""
    return {method: row[key] for method, row in rows.items() if method != leave_out
            and isinstance(row.get(key), (int, float)) and math.isfinite(row[key])}


def render_table(metrics: tuple[tuple[str, str, int, Direction], ...], table: dict[str, dict[str, dict]]) -> list[str]:
    """One row per (mask set, method) with `metrics` (the best of the set in bold) and, on the first method's row,
    whether it beats every other method on all of them. The landmark error is followed by its face count."""
    methods = list(dict.fromkeys(method for rows in table.values() for method in rows))
    first = methods[0]
    lines = ["| holes (faces) | method | " + " | ".join(title for _, title, _, _ in metrics) + " | beats all others |",
             "| --- " * (len(metrics) + 3) + "|"]
    for mask_set, rows in table.items():
        best, wins = {}, []
        for key, _, _, direction in metrics:
            finite = _finite(rows, key)
            best[key] = min(finite, key=lambda method: badness(finite[method], direction)) if finite else None
            wins.append(first in finite and all(badness(finite[first], direction) < badness(value, direction)
                                                for method, value in finite.items() if method != first))
        samples = next(iter(rows.values()))["samples"]
        for index, method in enumerate(method for method in methods if method in rows):
            cells = []
            for key, _, digits, _ in metrics:
                value = rows[method].get(key)
                measured = isinstance(value, (int, float)) and math.isfinite(value)
                text = f"{value:.{digits}f}" if measured else "–"
                text = f"**{text}**" if method == best[key] else text
                if key == "landmark_error" and "landmark_samples" in rows[method]:
                    text += f" ({rows[method]['landmark_samples']})"
                cells.append(text)
            verdict = ("yes" if all(wins) else "no") if method == first else ""
            label = f"{mask_set} ({samples})" if index == 0 else ""
            lines.append(f"| {label} | {LABELS.get(method, method)} | " + " | ".join(cells) + f" | {verdict} |")
    return lines


def render(title: str, settings: dict, table: dict[str, dict[str, dict]]) -> str:
    """The table of PSNR, SSIM and identity distance and, when the runs measured it, that of the hole's realism."""
    lines = [f"**{title}** ({settings['max_samples']} faces, split {settings['split']}, {settings['resolution']} px)",
             "", *render_table(METRICS, table)]
    if has_realism(table):
        lines += ["", "Realism of the hole. Best: closest to 1 (the ground truth's) for hole detail, hole contrast and "
                  "boundary step vs truth, lowest for landmark error (over the faces in brackets: a dlib face on the "
                  "ground truth and a landmark under the hole) and HOG distance.", "",
                  *render_table(REALISM_METRICS, table)]
    return "\n".join(lines) + "\n"


def _number(text: str | None) -> float:
    """A samples.csv cell as a float; NaN for an empty cell or a column the run did not write."""
    return float(text) if text else math.nan


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
                        key: _number(row.get(key)) for key, *_ in METRICS + REALISM_METRICS}
    return samples


def paired_difference(first: dict[int, dict[str, float]], other: dict[int, dict[str, float]], key: str,
                      direction: Direction = "higher") -> tuple[float, float, int]:
    """Mean of first − other over the faces both measured finitely, its 95 % half-interval, and the face count.

    For a metric whose best is 1 (`direction` "one") the difference is of the distances to 1, |first − 1| −
    |other − 1|: negative where the first method is the closer.
    """
    def measure(values: dict[str, float]) -> float:
        return abs(values[key] - 1) if direction == "one" else values[key]

    differences = [measure(first[face]) - measure(other[face]) for face in first.keys() & other.keys()
                   if math.isfinite(first[face][key]) and math.isfinite(other[face][key])]
    count = len(differences)
    if count < 2:
        return math.nan, math.nan, count
    mean = sum(differences) / count
    spread = math.sqrt(sum((value - mean) ** 2 for value in differences) / (count - 1))
    return mean, 1.96 * spread / math.sqrt(count), count


def render_paired_table(metrics: tuple[tuple[str, str, int, Direction], ...], table: dict[str, dict[str, dict]],
                        samples: dict) -> list[str]:
    """Per mask set and metric: the first method against the best other one (see the module docstring)."""
    first = next(iter(dict.fromkeys(method for rows in table.values() for method in rows)))
    titles = [f"{title} (distance to 1)" if direction == "one" else title for _, title, _, direction in metrics]
    lines = ["| holes | " + " | ".join(titles) + " |", "| --- " * (len(metrics) + 1) + "|"]
    for mask_set, rows in table.items():
        cells = []
        for key, _, digits, direction in metrics:
            others = _finite(rows, key, leave_out=first)
            if not others or (mask_set, first) not in samples:
                cells.append("–")
                continue
            best = min(others, key=lambda method: badness(others[method], direction))
            mean, half, _ = paired_difference(samples[mask_set, first], samples[mask_set, best], key, direction)
            if not math.isfinite(mean):
                cells.append(f"– vs {LABELS.get(best, best)}")
                continue
            better = (mean - half > 0) if direction == "higher" else (mean + half < 0)
            cells.append(f"{mean:+.{digits + 1}f} ± {half:.{digits + 1}f} vs {LABELS.get(best, best)}"
                         + (" ✓" if better else ""))
        lines.append(f"| {mask_set} | " + " | ".join(cells) + " |")
    return lines


def render_paired(table: dict[str, dict[str, dict]], samples: dict) -> str:
    """The paired differences of PSNR, SSIM and identity distance and, when measured, of the hole's realism."""
    first = next(iter(dict.fromkeys(method for rows in table.values() for method in rows)))
    lines = [f"Paired differences, {LABELS.get(first, first)} minus the best other method on each metric (mean ± 95 % "
             "interval over the faces; ✓: the interval excludes zero in its favour)", "",
             *render_paired_table(METRICS, table, samples)]
    if has_realism(table):
        lines += ["", f"Paired differences of the hole's realism, {LABELS.get(first, first)} minus the best other "
                  "method. For hole detail, hole contrast and boundary step vs truth, the difference of the distances "
                  "to 1 (the ground truth's value), |x − 1|: negative means closer to the ground truth.", "",
                  *render_paired_table(REALISM_METRICS, table, samples)]
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
