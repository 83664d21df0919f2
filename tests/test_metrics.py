"""Metrics against hand values and against scikit-image on real faces; the learned metrics' skip messages."""
from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

from hoginpaint import metrics


@pytest.fixture(scope="module")
def face_pairs(val_faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Four real faces at 128 px and a degraded copy of each (blended with another face, plus noise)."""
    faces = torch.nn.functional.interpolate(val_faces, size=128, mode="area")
    generator = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.randn(faces[:4].shape, generator=generator)
    degraded = (0.7 * faces[:4] + 0.3 * faces[4:8] + noise).clamp(0, 1)
    return faces[:4], degraded


def test_identical_images() -> None:
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(metrics.l1(images, images), torch.zeros(3, dtype=torch.float64))
    assert torch.isposinf(metrics.psnr(images, images)).all()
    assert torch.allclose(metrics.ssim(images, images), torch.ones(3, dtype=torch.float64), atol=1e-12)
    big = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(metrics.ssim_gray(big, big), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_psnr_and_l1_hand_values() -> None:
    images = 0.9 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    shifted = images + 0.1  # MSE 0.01 → 10 log10(1 / 0.01) = 20 dB
    assert torch.allclose(metrics.psnr(images, shifted), torch.full((2,), 20.0, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(metrics.l1(images, shifted), torch.full((2,), 0.1, dtype=torch.float64), atol=1e-6)
    half = images.clone()
    half[:, :, :8] += 0.1  # MSE 0.005 on half the pixels
    assert metrics.psnr(images, half)[0].item() == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-4)


def test_finite_mean_reports_infinite_psnr_apart() -> None:
    mean, infinite = metrics.finite_mean([20.0, math.inf, 30.0, math.nan])
    assert (mean, infinite) == (25.0, 1)
    mean, infinite = metrics.finite_mean(torch.tensor([math.inf, math.inf]))
    assert math.isnan(mean) and infinite == 2


def test_ssim_matches_skimage_on_real_faces(face_pairs) -> None:
    truth, degraded = face_pairs
    ours = metrics.ssim(truth, degraded).numpy()
    reference = [
        structural_similarity(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=-1,
                              data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for a, b in zip(truth, degraded)
    ]
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
    assert 0.2 < ours.min() and ours.max() < 0.95  # a real degradation, far from both ends


def test_ssim_gray_matches_edgeconnect_script(face_pairs) -> None:
    truth, degraded = face_pairs
    ours = metrics.ssim_gray(truth, degraded).numpy()
    # scripts/metrics.py of knazeri/edge-connect: rgb2gray, then compare_ssim(data_range=1, win_size=51) with
    # skimage's defaults of that time (uniform window, sample covariance).
    reference = [
        structural_similarity(rgb2gray(a.permute(1, 2, 0).numpy()), rgb2gray(b.permute(1, 2, 0).numpy()),
                              data_range=1, win_size=51)
        for a, b in zip(truth, degraded)
    ]
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
    assert not np.allclose(ours, metrics.ssim(truth, degraded).numpy(), atol=1e-2)  # a different statistic


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="same size"):
        metrics.l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        metrics.psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="smaller than the 51x51"):
        metrics.ssim_gray(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_same_person_threshold() -> None:
    distances = torch.tensor([0.1, 0.59, 0.6, 0.9, math.nan], dtype=torch.float64)
    same = metrics.same_person(distances)
    assert same[:4].tolist() == [1.0, 1.0, 0.0, 0.0] and math.isnan(same[4].item())


def test_identity_distances_on_real_faces(val_faces: torch.Tensor) -> None:
    truth = val_faces[:4]
    others = val_faces[[2, 3, 0, 1]]  # four different people
    assert metrics.identity_distances(truth, truth).abs().max().item() < 1e-6
    different = metrics.identity_distances(truth, others)
    assert (different > metrics.faces.SAME_PERSON_THRESHOLD).all() and different.mean() > 0.75
    # The result's descriptor is taken in the ground truth's face box.
    box = metrics.faces.detect_faces(truth[0])[0]
    direct = metrics.faces.identity_distance(metrics.faces.face_descriptor(truth[0], box=box),
                                             metrics.faces.face_descriptor(others[0], box=box))
    assert different[0].item() == pytest.approx(direct, abs=1e-12)
    blank = torch.full_like(truth[:1], 0.5)  # no face on the ground truth → not measured
    assert metrics.identity_distances(blank, truth[:1]).isnan().all()


def test_lpips_skip_message_without_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips → ImportError
    skipped = metrics.load_lpips()
    assert isinstance(skipped, metrics.Skipped)
    assert str(skipped).startswith("skipped: the lpips package is not installed")


def test_lpips_skip_message_without_the_weights(monkeypatch, tmp_path) -> None:
    fake = types.ModuleType("lpips")
    fake.LPIPS = lambda **kwargs: pytest.fail("LPIPS must not be built without its weights")
    monkeypatch.setitem(sys.modules, "lpips", fake)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    skipped = metrics.load_lpips()
    assert isinstance(skipped, metrics.Skipped) and metrics.LPIPS_WEIGHTS_FILE in skipped.reason
    assert str(tmp_path / "checkpoints") in skipped.reason


def test_fid_skip_messages(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    assert str(metrics.load_fid()).startswith("skipped: the pytorch-fid package is not installed")

    package = types.ModuleType("pytorch_fid")
    score, inception = types.ModuleType("pytorch_fid.fid_score"), types.ModuleType("pytorch_fid.inception")
    score.calculate_frechet_distance = lambda *args: pytest.fail("no FID without weights")
    inception.InceptionV3 = type("InceptionV3", (), {"BLOCK_INDEX_BY_DIM": {2048: 3}})
    for name, module in (("pytorch_fid", package), ("pytorch_fid.fid_score", score),
                         ("pytorch_fid.inception", inception)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    skipped = metrics.load_fid()
    assert isinstance(skipped, metrics.Skipped) and metrics.FID_WEIGHTS_FILE in skipped.reason


def test_grid_peak_rises_with_stripes_at_the_grid_period() -> None:
    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 96, 96, generator=generator), 3, 1, 1)  # falling spectrum
    masks = torch.zeros(4, 1, 96, 96)
    masks[:, :, 16:80, 20:84] = 1
    rows = torch.arange(96.0).view(1, 1, 96, 1)
    striped = smooth + 0.05 * torch.cos(2 * torch.pi * rows / 4)  # 4-pixel stripes
    plain, stripes = metrics.grid_peak(smooth, masks), metrics.grid_peak(striped, masks)
    assert plain < 1.5 and stripes > 10 * plain
    # the same stripes at twice the size are found with scale 0.5 (a 4-px grid of a half-resolution model)
    upsampled = torch.nn.functional.interpolate(striped, scale_factor=2, mode="nearest")
    assert metrics.grid_peak(upsampled, torch.nn.functional.interpolate(masks, scale_factor=2), scale=0.5) > 10 * plain
    small = torch.zeros(4, 1, 96, 96)
    small[:, :, 40:50, 40:50] = 1
    assert math.isnan(metrics.grid_peak(striped, small))  # no hole large enough to tell
    with pytest.raises(ValueError, match="masks must be"):
        metrics.grid_peak(smooth, masks[:, :, :50])
