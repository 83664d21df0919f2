"""The evaluation end to end on a few real faces and NVIDIA masks, its pairing rule, and its refusals."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint import metrics, realism
from hoginpaint.evaluation import measures, report, run
from hoginpaint.methods import load
from hoginpaint.masks import FolderMasks
from tests.conftest import load_validation_faces, pil_to_tensor

RESOLUTION = 64


def run_args(faces_dir: Path, mask_dir: Path, output_dir: Path, seed: int = 0) -> list[str]:
    return ["--methods", "telea", "hoginpaint", "--random_init", "--random_init_base_channels", "8",
            "--random_init_residual_blocks", "1", "--dataset", str(faces_dir), "--split", "validation",
            "--max_samples", "4", "--resolution", str(RESOLUTION), "--mask_dir", str(mask_dir), "--buckets", "0", "5",
            "--feature_masks", "--batch_size", "3", "--grid_images", "2", "--seed", str(seed),
            "--output_dir", str(output_dir)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def first_run(faces_dir, nvidia_mask_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("evaluation")
    run.main(run_args(faces_dir, nvidia_mask_dir, output_dir))
    return output_dir


def test_pairing_rule() -> None:
    order = run.pairing(seed=0, bucket=2, num_faces=450, num_masks=200)
    assert sorted(order[:200]) == list(range(200))  # every mask once before any repeats
    assert np.array_equal(order[200:400], order[:200])
    assert np.array_equal(run.pairing(0, 2, 30, 200), order[:30])  # a face's mask ignores max_samples
    assert not np.array_equal(run.pairing(1, 2, 30, 200), order[:30])
    assert not np.array_equal(run.pairing(0, 3, 30, 200), order[:30])


def test_writes_every_output_with_sane_values(first_run: Path) -> None:
    names = {path.name for path in first_run.iterdir()}
    sets = ["1-10%", "50-60%", "eyes", "nose", "mouth"]
    assert {"metrics.csv", "samples.csv", "metrics.json", "report.md"} <= names
    assert {f"plot_{metric}.png" for metric in report.SUMMARY_METRICS} <= names
    assert {f"grid_{name.replace('%', 'pct')}.png" for name in sets} <= names
    grid = Image.open(first_run / "grid_eyes.png")
    assert grid.size == (800, 400)  # 4 columns (masked, telea, hoginpaint, ground truth) x 2 faces, 200 px each

    summary = read_csv(first_run / "metrics.csv")
    assert [(row["method"], row["mask_set"]) for row in summary] == \
        [(method, name) for method in ("telea", "hoginpaint (random init)") for name in sets]
    for row in summary:
        assert int(row["samples"]) == 4 and int(row["identity_samples"]) + int(row["no_face"]) == 4
        landmarks = [int(row[key]) for key in ("landmark_samples", "landmark_no_face", "landmark_no_point")]
        assert sum(landmarks) == 4 and (row["kind"] == "nvidia" or landmarks[2] == 0)  # a feature hole covers one
        ratio_limit = 5 if row["method"] == "telea" else 50  # an untrained network's noise scores far above 1
        for name in ("hole_detail", "hole_contrast", "boundary_step_vs_truth"):
            assert 0 <= float(row[name]) < ratio_limit
        assert 0 <= float(row["landmark_error"]) < 1 and 0 < float(row["hog_hole_distance"]) < 0.1
        assert 0 <= int(row["boundary_ratio_samples"]) <= 4
        assert 0 < float(row["l1"]) < 0.3 and 10 < float(row["psnr"]) < 60 and int(row["psnr_infinite"]) == 0
        assert 0 < float(row["ssim"]) <= 1 and 0 < float(row["ssim_gray"]) <= 1
        assert 0 <= float(row["identity_distance"]) < 1.5 and 0 <= float(row["same_person_rate"]) <= 1
    by_set = {(row["method"], row["mask_set"]): row for row in summary}
    assert 0.01 < float(by_set["telea", "1-10%"]["mean_hole_ratio"]) < 0.1
    assert 0.5 < float(by_set["telea", "50-60%"]["mean_hole_ratio"]) < 0.6
    assert float(by_set["telea", "1-10%"]["l1"]) < float(by_set["telea", "50-60%"]["l1"])

    samples = read_csv(first_run / "samples.csv")
    pairs = {method: [(s["mask_set"], s["face"], s["mask"]) for s in samples if s["method"] == method]
             for method in ("telea", "hoginpaint (random init)")}
    assert len(pairs["telea"]) == 20 and pairs["telea"] == pairs["hoginpaint (random init)"]  # same pairs

    document = json.loads((first_run / "metrics.json").read_text())
    assert document["settings"]["faces"] == 4 and len(document["summary"]) == 10
    report_text = (first_run / "report.md").read_text()
    assert "RANDOM INIT" in report_text and "| telea | 50-60% |" in report_text
    assert "## Realism of the hole: Facial-feature holes" in report_text
    assert "| ground truth | eyes | 1.00 | 1.00 | 0.000 |" in report_text
    assert {"hole_detail", "landmark_no_face", "boundary_step_ratio_truth"} <= set(document["summary"][0])
    for name in ("lpips", "fid"):  # skipped here (no weights offline), with the reason in the JSON and the report
        loaded = getattr(metrics, f"load_{name}")()
        if isinstance(loaded, metrics.Skipped):
            assert document["settings"]["learned_metrics"][name] == str(loaded)
            assert f"- {name.upper()}: {loaded}" in report_text


def test_sample_values_match_a_direct_computation(first_run, faces_dir, nvidia_mask_dir) -> None:
    sample = next(s for s in read_csv(first_run / "samples.csv") if s["method"] == "telea"
                  and s["mask_set"] == "50-60%" and s["face"] == "2")
    source = FolderMasks(nvidia_mask_dir, buckets=[5], split="eval", augment=False)
    mask = torch.from_numpy(source.mask(source.indices.index(int(sample["mask"])), RESOLUTION))[None, None]
    truth = pil_to_tensor(load_validation_faces(faces_dir, 3, size=RESOLUTION))[2:3]
    result = load("telea")(image=truth, mask_image=mask, output_type="pt").images[0][None]
    assert float(sample["hole_ratio"]) == pytest.approx(float(mask.mean()), abs=1e-9)
    assert float(sample["l1"]) == pytest.approx(metrics.l1(truth, result).item(), abs=1e-9)
    assert float(sample["ssim_gray"]) == pytest.approx(metrics.ssim_gray(truth, result).item(), abs=1e-9)
    expected = {"hole_detail": realism.hole_detail(truth, result, mask),
                "hole_contrast": realism.hole_contrast(truth, result, mask),
                "landmark_error": realism.landmark_error(truth, result, mask),
                "hog_hole_distance": realism.hog_hole_distance(truth, result, mask),
                "boundary_step_vs_truth": realism.boundary_step(result, mask) / realism.boundary_step(truth, mask),
                "boundary_step_ratio": realism.boundary_step_ratio(result, mask),
                "boundary_step_ratio_truth": realism.boundary_step_ratio(truth, mask)}
    for name, value in expected.items():
        assert float(sample[name]) == pytest.approx(value.item(), abs=1e-9, nan_ok=True), name


def test_rerun_is_identical(first_run, faces_dir, nvidia_mask_dir, tmp_path) -> None:
    run.main(run_args(faces_dir, nvidia_mask_dir, tmp_path))
    for name in ("metrics.csv", "samples.csv"):
        assert (tmp_path / name).read_text() == (first_run / name).read_text()


def test_bad_options_are_refused(faces_dir) -> None:
    base = dict(dataset=str(faces_dir), feature_masks=True)
    with pytest.raises(ValueError, match="needs trained weights"):
        run.EvalConfig(methods=["hoginpaint"], **base)
    with pytest.raises(ValueError, match="unknown method 'lama'"):
        run.EvalConfig(methods=["lama"], **base)
    with pytest.raises(ValueError, match="classical method without weights"):
        run.EvalConfig(methods=["telea=some/model"], **base)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        run.EvalConfig(methods=["telea"], dataset=str(faces_dir))
    with pytest.raises(ValueError, match="listed twice"):
        run.EvalConfig(methods=["telea", "telea"], **base)
    with pytest.raises(SystemExit):
        run.config_from_args(["--methods", "telea", "--resolution", "48", "--feature_masks"])


def _ground_truth_method(image: torch.Tensor, mask_image: torch.Tensor, output_type: str) -> SimpleNamespace:
    """A method whose result is the ground truth itself."""
    return SimpleNamespace(images=list(image))


def _flat_method(image: torch.Tensor, mask_image: torch.Tensor, output_type: str) -> SimpleNamespace:
    """A method that fills each hole with one colour: the mean of the face's known pixels."""
    known = 1 - mask_image
    colour = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    return SimpleNamespace(images=list(image * known + colour * mask_image))


@pytest.fixture(scope="module")
def known_results(faces_dir, nvidia_mask_dir) -> report.EvaluationResult:
    """The ground truth and a flat fill evaluated on 4 faces, NVIDIA 10-20 % holes and the facial-feature holes."""
    config = run.EvalConfig(methods=["telea"], dataset=str(faces_dir), mask_dir=str(nvidia_mask_dir), buckets=[1],
                            feature_masks=True, resolution=RESOLUTION, batch_size=3, grid_images=0)
    images = pil_to_tensor(load_validation_faces(faces_dir, 4, size=RESOLUTION))
    ground_truth = measures.analyse_faces(images)
    mask_sets = run.nvidia_mask_sets(config, len(images)) + run.feature_mask_sets(ground_truth, RESOLUTION)
    methods = {"truth": _ground_truth_method, "flat": _flat_method}
    return run.run_evaluation(config, methods, images, mask_sets, ground_truth, progress=False)


def test_realism_of_the_ground_truth_and_of_a_flat_fill(known_results) -> None:
    truth = [s for s in known_results.samples if s["method"] == "truth"]
    flat = [s for s in known_results.samples if s["method"] == "flat"]
    assert len(truth) == len(flat) == 16  # 4 faces x (10-20 %, eyes, nose, mouth)
    for sample in truth:
        assert sample["hole_detail"] == 1.0 and sample["hole_contrast"] == 1.0
        assert sample["hog_hole_distance"] == 0.0 and sample["boundary_step_vs_truth"] == 1.0
        assert sample["landmark_error"] == 0.0 or (math.isnan(sample["landmark_error"]) and sample["kind"] == "nvidia")
        assert sample["boundary_step_ratio"] == pytest.approx(sample["boundary_step_ratio_truth"], nan_ok=True)
    for sample in flat:
        assert sample["hole_detail"] == 0.0 and sample["hole_contrast"] == 0.0 and sample["hog_hole_distance"] > 0
    rows = {(row["method"], row["mask_set"]): row for row in known_results.summary}
    for part in ("eyes", "nose", "mouth"):
        assert rows["truth", part]["landmark_error"] == 0.0 and rows["flat", part]["landmark_error"] > 0.01
        assert rows["truth", part]["landmark_samples"] == rows["flat", part]["landmark_samples"] == 4
        assert rows["flat", part]["boundary_step_vs_truth"] != 1.0
    for row in known_results.summary:
        faces = row["landmark_samples"] + row["landmark_no_face"] + row["landmark_no_point"]
        assert faces == row["samples"] == 4
        assert row["boundary_step_ratio_truth"] == pytest.approx(
            rows["truth", row["mask_set"]]["boundary_step_ratio_truth"], nan_ok=True)


def test_landmark_references_at_the_working_size_are_the_ground_truth_analysis(val_faces) -> None:
    images = val_faces[:2]
    ground_truth = measures.analyse_faces(images)
    references = measures.landmark_references(images, ground_truth)  # 256 px: analyse_faces' detection, not a new one
    for (box, landmarks), fresh in zip(references, realism.face_references(images, measures.LANDMARK_SIDE)):
        assert box == fresh[0] and np.array_equal(landmarks, fresh[1])
