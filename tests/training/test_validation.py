"""The realism of the hole in training validation: values on known cases, and the keys `validate` returns."""
from __future__ import annotations

import math

import pytest
import torch

from hoginpaint import faces, realism
from hoginpaint.hog import HOGSettings
from hoginpaint.training import hog_model, options, validation
from train_accelerate import build_models

REALISM_KEYS = {"hole_detail", "hole_contrast", "hog_hole_distance", "landmark_error"}


def test_hole_realism_of_the_target_and_of_a_flat_fill(val_faces):
    images = val_faces[:3]
    references = realism.face_references(images[:2])
    eyes = torch.stack([torch.from_numpy(faces.feature_mask(landmarks, 256, "eyes")) for _, landmarks in references])
    mask = torch.cat([eyes[:, None], torch.zeros(1, 1, 256, 256)])  # the third image has no hole: left out
    settings = HOGSettings()
    assert validation.hole_realism(images, images, mask, settings) == {
        "hole_detail": 1.0, "hole_contrast": 1.0, "hog_hole_distance": 0.0, "landmark_error": 0.0}
    colour = (images * (1 - mask)).sum((2, 3), keepdim=True) / (1 - mask).sum((2, 3), keepdim=True)
    flat = images * (1 - mask) + colour * mask
    values = validation.hole_realism(flat, images, mask, settings)
    assert values["hole_detail"] == 0.0 and values["hole_contrast"] == 0.0
    expected = realism.hog_hole_distance(images[:2], flat[:2], mask[:2]).mean().item()
    assert values["hog_hole_distance"] == pytest.approx(expected, rel=1e-12) and expected > 0
    assert 0.01 < values["landmark_error"] < 1


def test_hole_realism_without_dlib_leaves_the_landmark_error_out(monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("dlib is missing: pip install dlib-bin (prebuilt) or dlib")

    monkeypatch.setattr(realism, "landmark_error", missing)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    with pytest.warns(UserWarning, match="landmark error not measured: dlib is missing"):
        values = validation.hole_realism(image, image, mask, HOGSettings(pixels_per_cell=4))
    assert math.isnan(values["landmark_error"]) and values["hole_detail"] == 1.0


@pytest.mark.parametrize("model", ["hoginpaint", "deepfill"])
def test_rgb_validation_reports_the_hole_realism(model):
    config = options.TrainConfig(model=model, stage="inpaint", resolution=32, base_channels=8, residual_blocks=1,
                                 perceptual_weight=0.0, style_weight=0.0)
    models = build_models(config)
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 10:24] = 1
    metrics, _ = validation.validate("inpaint", models, {"image": image, "mask": mask},
                                     hog_model.hog_settings(models, config))
    assert REALISM_KEYS <= set(metrics)
    assert 0 < metrics["hole_detail"] < 100 and 0 < metrics["hole_contrast"] < 100
    assert metrics["hog_hole_distance"] > 0
    assert math.isnan(metrics["landmark_error"])  # noise: dlib finds no face to measure
