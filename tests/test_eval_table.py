"""scripts/eval_table.py: one table from several evaluation runs over the same pairs."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("eval_table", Path(__file__).parents[1] / "scripts" / "eval_table.py")
eval_table = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(eval_table)

SETTINGS = {"dataset": "d", "split": "validation", "max_samples": 2, "seed": 0, "mask_dir": "m", "mask_split": "eval",
            "feature_masks": False, "resolution": 256}


def _run(path: Path, rows: dict[str, tuple[float, float, float]], **settings) -> Path:
    summary = [{"mask_set": "1-10%", "method": method, "samples": 2, "psnr": psnr, "ssim": ssim,
                "identity_distance": distance} for method, (psnr, ssim, distance) in rows.items()]
    path.write_text(json.dumps({"settings": {**SETTINGS, **settings}, "summary": summary}))
    return path


def test_methods_can_be_picked_from_a_run_and_the_first_method_is_judged(tmp_path):
    new = _run(tmp_path / "new.json", {"hoginpaint": (40.0, 0.98, 0.10), "deepfill": (35.0, 0.95, 0.20)})
    old = _run(tmp_path / "old.json", {"telea": (37.0, 0.97, 0.12), "deepfill": (30.0, 0.90, 0.30)})
    settings, table = eval_table.load_runs([str(new), f"{old}:telea"])
    assert table["1-10%"]["deepfill"]["psnr"] == 35.0  # the older run's deepfill was left out
    text = eval_table.render("t", settings, table)
    assert "| 1-10% (2) | HOG-guided | **40.00** | **0.980** | **0.100** | yes |" in text
    _, table = eval_table.load_runs([str(new), str(old)])
    assert table["1-10%"]["deepfill"]["psnr"] == 30.0  # without the pick, a later run's row replaces the earlier


def test_runs_over_other_faces_are_refused(tmp_path):
    first = _run(tmp_path / "a.json", {"hoginpaint": (40.0, 0.98, 0.10)})
    other = _run(tmp_path / "b.json", {"telea": (37.0, 0.97, 0.12)}, max_samples=3)
    with pytest.raises(SystemExit, match="other settings"):
        eval_table.load_runs([str(first), str(other)])


def test_learning_curves_keep_the_last_entry_of_a_repeated_step(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "plot_learning_curves", Path(__file__).parents[1] / "scripts" / "plot_learning_curves.py")
    plot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot)
    (tmp_path / "validation").mkdir()
    lines = [{"step": 0, "images_seen": 0, "psnr": 30.0}, {"step": 200, "images_seen": 1600, "psnr": 30.1},
             {"step": 200, "images_seen": 1600, "psnr": 30.2}, {"step": 100, "images_seen": 800, "psnr": 30.05}]
    (tmp_path / "validation" / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert [(entry["step"], entry["psnr"]) for entry in plot.read_curve(tmp_path)] == [(0, 30.0), (100, 30.05),
                                                                                       (200, 30.2)]
    with pytest.raises(SystemExit, match="not found"):
        plot.read_curve(tmp_path / "missing")


def test_paired_differences_say_which_wins_the_faces_can_tell_from_chance(tmp_path):
    import csv
    import math

    (tmp_path / "run").mkdir()
    metrics = _run(tmp_path / "run" / "metrics.json", {"hoginpaint": (31.0, 0.95, 0.30), "telea": (30.0, 0.94, 0.31)})
    # PSNR: hoginpaint is 1 dB better on every face (a sure win); identity: +0.1 / -0.12 (a tie the faces cannot
    # tell); one face's PSNR is infinite for both and is left out.
    faces = {"hoginpaint": [(31.0, 0.95, 0.40), (32.0, 0.96, 0.18), (math.inf, 1.0, 0.0)],
             "telea": [(30.0, 0.94, 0.30), (31.0, 0.95, 0.30), (math.inf, 1.0, 0.0)]}
    with open(tmp_path / "run" / "samples.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["method", "mask_set", "face", "psnr", "ssim", "identity_distance"])
        for method, rows in faces.items():
            for face, (psnr, ssim, distance) in enumerate(rows):
                writer.writerow([method, "1-10%", face, psnr, ssim, distance])
    samples = eval_table.load_samples([str(metrics)])
    assert eval_table.paired_difference(samples["1-10%", "hoginpaint"], samples["1-10%", "telea"], "psnr") == (
        1.0, 0.0, 2)
    mean, half, count = eval_table.paired_difference(samples["1-10%", "hoginpaint"], samples["1-10%", "telea"],
                                                     "identity_distance")
    assert count == 3 and mean == pytest.approx(-0.02 / 3) and half == pytest.approx(
        1.96 * math.sqrt(((0.1 - mean) ** 2 + (-0.12 - mean) ** 2 + mean ** 2) / 2) / math.sqrt(3))
    _, table = eval_table.load_runs([str(metrics)])
    text = eval_table.render_paired(table, samples)
    row = next(line for line in text.splitlines() if line.startswith("| 1-10% |"))
    psnr, ssim, identity = [cell.strip() for cell in row.strip("|").split("|")[1:]]
    assert psnr == "+1.000 ± 0.000 vs Telea ✓"
    assert identity.startswith("-0.0067 ± ") and not identity.endswith("✓")  # the tie carries no tick


def test_a_method_taken_under_another_name_is_compared_with_its_namesake(tmp_path):
    import csv

    for run, psnr in (("new", (31.0, 32.5)), ("old", (30.0, 31.0))):
        (tmp_path / run).mkdir()
        _run(tmp_path / run / "metrics.json", {"hoginpaint": (sum(psnr) / 2, 0.95, 0.3)})
        with open(tmp_path / run / "samples.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["method", "mask_set", "face", "psnr", "ssim", "identity_distance"])
            for face, value in enumerate(psnr):
                writer.writerow(["hoginpaint", "1-10%", face, value, 0.95, 0.3])
    specs = [str(tmp_path / "new" / "metrics.json"), f"{tmp_path / 'old' / 'metrics.json'}:hoginpaint=previous"]
    _, table = eval_table.load_runs(specs)
    assert set(table["1-10%"]) == {"hoginpaint", "previous"} and table["1-10%"]["previous"]["psnr"] == 30.5
    samples = eval_table.load_samples(specs)
    assert eval_table.paired_difference(samples["1-10%", "hoginpaint"], samples["1-10%", "previous"], "psnr")[0] == (
        pytest.approx(1.25))
    row = next(line for line in eval_table.render_paired(table, samples).splitlines() if line.startswith("| 1-10%"))
    assert "+1.250 ± 0.490 vs previous ✓" in row


def _realism_run(folder: Path, faces: dict[str, list[tuple[float, float, float]]]) -> Path:
    """A run whose samples.csv holds, per method and face, (hole detail, landmark error, boundary step vs truth)."""
    import csv

    folder.mkdir()
    summary = [{"mask_set": "eyes", "method": method, "samples": len(rows), "psnr": 30.0, "ssim": 0.9,
                "identity_distance": 0.3, "hole_contrast": 0.9, "hog_hole_distance": 0.003,
                "hole_detail": sum(row[0] for row in rows) / len(rows),
                "landmark_error": sum(row[1] for row in rows) / len(rows), "landmark_samples": len(rows),
                "boundary_step_vs_truth": sum(row[2] for row in rows) / len(rows)} for method, rows in faces.items()]
    (folder / "metrics.json").write_text(json.dumps({"settings": SETTINGS, "summary": summary}))
    with open(folder / "samples.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["method", "mask_set", "face", "psnr", "ssim", "identity_distance", "hole_detail",
                         "hole_contrast", "landmark_error", "hog_hole_distance", "boundary_step_vs_truth"])
        for method, rows in faces.items():
            for face, (detail, landmarks, step) in enumerate(rows):
                writer.writerow([method, "eyes", face, 30.0, 0.9, 0.3, detail, 0.9, landmarks, 0.003, step])
    return folder / "metrics.json"


def test_realism_is_best_closest_to_one_and_paired_on_the_distance_to_one(tmp_path):
    # Detail: hoginpaint overshoots (1.2, 1.1, 1.3: 0.2 from 1 on average), telea is flat (0.4, 0.5, 0.3: 0.6 from
    # 1, 0.4 further on every face), biharmonic overshoots more (1.8: 0.8 from 1). Raw, telea's detail is 0.8 lower:
    # only the distance to 1 says who is nearer. Landmark error: a tie with telea. Boundary step vs truth: 1.05
    # against 0.7, 0.25 nearer to 1 on every face. Contrast and HOG distance: ties (the first listed is in bold).
    metrics = _realism_run(tmp_path / "run", {
        "hoginpaint": [(1.2, 0.05, 1.05), (1.1, 0.04, 1.05), (1.3, 0.06, 1.05)],
        "telea": [(0.4, 0.05, 0.7), (0.5, 0.03, 0.7), (0.3, 0.07, 0.7)],
        "biharmonic": [(1.8, 0.10, 1.5), (1.8, 0.10, 1.5), (1.8, 0.10, 1.5)]})
    settings, table = eval_table.load_runs([str(metrics)])
    text = eval_table.render("t", settings, table)
    assert "| eyes (3) | HOG-guided | **1.20** | **0.90** | **0.050** (3) | **0.0030** | **1.05** | no |" in text
    assert "|  | biharmonic | 1.80 | 0.90 | 0.100 (3) | 0.0030 | 1.50 |  |" in text
    samples = eval_table.load_samples([str(metrics)])
    first, telea = samples["eyes", "hoginpaint"], samples["eyes", "telea"]
    mean, half, count = eval_table.paired_difference(first, telea, "hole_detail", "one")
    assert count == 3 and mean == pytest.approx(-0.4) and half == pytest.approx(0.0, abs=1e-12)
    assert eval_table.paired_difference(first, telea, "hole_detail")[0] == pytest.approx(0.8)  # the raw difference
    assert eval_table.paired_difference(first, telea, "boundary_step_vs_truth", "one")[0] == pytest.approx(-0.25)
    paired = eval_table.render_paired(table, samples)
    assert "hole detail (distance to 1)" in paired and "boundary step vs truth (distance to 1)" in paired
    row = [line for line in paired.splitlines() if line.startswith("| eyes |")][1]  # the realism table's row
    detail, contrast, landmarks, hog, step = [cell.strip() for cell in row.strip("|").split("|")[1:]]
    assert detail == "-0.400 ± 0.000 vs Telea ✓" and step == "-0.250 ± 0.000 vs Telea ✓"
    assert abs(float(landmarks.split()[0])) < 1e-12 and landmarks.endswith("vs Telea")  # a tie: no tick
    assert contrast == "+0.000 ± 0.000 vs Telea" and hog == "+0.00000 ± 0.00000 vs Telea"


def test_runs_without_realism_columns_keep_the_first_tables_only(tmp_path):
    metrics = _run(tmp_path / "metrics.json", {"hoginpaint": (31.0, 0.95, 0.30), "telea": (30.0, 0.94, 0.31)})
    settings, table = eval_table.load_runs([str(metrics)])
    assert not eval_table.has_realism(table) and "Realism" not in eval_table.render("t", settings, table)
