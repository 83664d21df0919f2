"""The realism of the hole in training validation: values on known cases, and the keys `validate` returns."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hoginpaint import faces, realism
from hoginpaint.hog import HOGSettings
from hoginpaint.training import data, hog_model, options, validation
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


def test_face_part_batch_holes_the_eyes_nose_and_mouth_in_turn(val_faces):
    images = torch.cat([torch.nn.functional.interpolate(val_faces[:4], size=128, mode="area"),
                        torch.full((1, 3, 128, 128), 0.5)])  # a grey square: no face, left out
    batch = data.face_part_batch(images)
    assert len(batch["image"]) == 4 and torch.equal(batch["image"], images[:4])
    # Landmarks found independently at 256 px, halved to the batch's 128 px: each hole covers its part's points.
    references = realism.face_references(val_faces[:4])
    groups = {"eyes": faces.LEFT_EYE + faces.RIGHT_EYE, "nose": faces.NOSE,
              "mouth": faces.OUTER_LIPS}
    for turn, (mask, (_, landmarks)) in enumerate(zip(batch["mask"], references)):
        part = data.VALIDATION_FACE_PARTS[turn % 3]
        covered = {name: float(np.mean([mask[0, int(round(y / 2)), int(round(x / 2))].item()
                                        for x, y in landmarks[list(points)]]))
                   for name, points in groups.items()}
        assert covered[part] >= 0.9, (part, covered)
        # Margins reach the neighbours' nearest points (a nose hole takes the upper lip's top), not their bulk.
        assert all(value <= 0.3 for name, value in covered.items() if name != part), (part, covered)


def test_face_part_batch_without_faces_or_dlib_is_none(monkeypatch):
    assert data.face_part_batch(torch.full((2, 3, 64, 64), 0.5)) is None

    def missing(*args, **kwargs):
        raise ImportError("dlib is missing: pip install dlib-bin (prebuilt) or dlib")

    monkeypatch.setattr(realism, "face_references", missing)
    with pytest.warns(UserWarning, match="no facial-part validation: dlib is missing"):
        assert data.face_part_batch(torch.rand(2, 3, 64, 64)) is None


def test_validate_batches_prefixes_all_but_the_irregular_holes():
    config = options.TrainConfig(model="hoginpaint", stage="inpaint", resolution=32, base_channels=8,
                                 residual_blocks=1, perceptual_weight=0.0, style_weight=0.0)
    models = build_models(config)
    settings = hog_model.hog_settings(models, config)
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(3, 3, 32, 32, generator=generator)
    holes, parts = torch.zeros(3, 1, 32, 32), torch.zeros(2, 1, 32, 32)
    holes[:, :, 4:12, 4:28] = 1
    parts[:, :, 16:28, 8:20] = 1
    batches = {"holes": {"image": image, "mask": holes}, "parts": {"image": image[:2], "mask": parts}}
    metrics, grids = validation.validate_batches("inpaint", models, batches, settings)
    alone, hole_grid = validation.validate("inpaint", models, batches["holes"], settings)
    parts_alone, _ = validation.validate("inpaint", models, batches["parts"], settings)
    assert set(metrics) == set(alone) | {f"parts_{key}" for key in parts_alone}
    assert metrics["psnr"] == alone["psnr"] and metrics["parts_psnr"] == parts_alone["psnr"]
    assert metrics["psnr"] != metrics["parts_psnr"]
    assert torch.equal(grids["holes"], hole_grid) and grids["parts"].shape == (3, 2 * 32, 4 * 32)
