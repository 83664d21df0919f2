"""Facial-part training holes: where they fall, how large they are, and how the stream mixes them in."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoginpaint.training.data import FacePartMixing
from hoginpaint.training.landmarks import LandmarkCache, build_landmark_cache, image_key
from hoginpaint.masks.face_parts import FACE_PART_HOLES, FacePartMasks


def synthetic_landmarks(size: int = 128) -> np.ndarray:
    """68 points of a frontal face in a `size` crop: eyes at 0.35/0.65 of the width, nose, mouth below."""
    points = np.zeros((68, 2))
    points[:17] = np.stack([np.linspace(0.15, 0.85, 17), 0.5 + 0.35 * np.sin(np.linspace(0, np.pi, 17))], 1)
    points[17:22] = np.stack([np.linspace(0.25, 0.45, 5), np.full(5, 0.33)], 1)
    points[22:27] = np.stack([np.linspace(0.55, 0.75, 5), np.full(5, 0.33)], 1)
    points[27:36] = np.stack([np.full(9, 0.5), np.linspace(0.4, 0.6, 9)], 1)
    for start, centre in ((36, 0.35), (42, 0.65)):
        angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        points[start:start + 6] = np.stack([centre + 0.06 * np.cos(angles), 0.4 + 0.025 * np.sin(angles)], 1)
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[48:68] = np.stack([0.5 + 0.12 * np.cos(angles), 0.75 + 0.04 * np.sin(angles)], 1)
    return points * size


@pytest.mark.parametrize("hole", FACE_PART_HOLES)
def test_each_hole_covers_its_part_and_not_the_whole_face(hole):
    landmarks = synthetic_landmarks()
    masks = FacePartMasks(holes=(hole,), jitter=0.0, margin_range=(0.1, 0.1))
    mask = masks.sample(np.random.default_rng(0), 128, landmarks)
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert 0.005 < mask.mean() < 0.35
    x, y = {"left_eye": (0.35, 0.4), "right_eye": (0.65, 0.4), "eyes": (0.35, 0.4), "eyes_brows": (0.65, 0.34),
            "nose": (0.5, 0.55), "mouth": (0.5, 0.75)}.get(hole, (None, None))
    if x is not None:
        assert mask[int(y * 128), int(x * 128)] == 1.0
    if hole == "left_eye":
        assert mask[int(0.4 * 128), int(0.65 * 128)] == 0.0  # the other eye is left
    if hole == "stroke":  # a stroke passes through at least two part centres
        centres = [(0.35, 0.4), (0.65, 0.4), (0.5, 0.6), (0.5, 0.75)]
        assert sum(mask[int(cy * 128), int(cx * 128)] for cx, cy in centres) >= 2


def test_margin_and_jitter_scale_with_the_face():
    small = FacePartMasks(holes=("eyes",), jitter=0.0, margin_range=(0.1, 0.1))
    large = FacePartMasks(holes=("eyes",), jitter=0.0, margin_range=(0.4, 0.4))
    landmarks = synthetic_landmarks()
    assert large.sample(np.random.default_rng(0), 128, landmarks).sum() > 2 * small.sample(
        np.random.default_rng(0), 128, landmarks).sum()
    # the same face at twice the size gives about four times the hole
    half = small.sample(np.random.default_rng(0), 64, synthetic_landmarks(64)).sum()
    full = small.sample(np.random.default_rng(0), 128, landmarks).sum()
    assert 3.0 < full / half < 5.0


def test_seeded_draws_repeat_and_differ():
    masks, landmarks = FacePartMasks(), synthetic_landmarks()
    first = [masks.sample(np.random.default_rng(7), 128, landmarks) for _ in range(2)]
    assert np.array_equal(first[0], first[1])
    rng = np.random.default_rng(7)
    draws = [masks.sample(rng, 128, landmarks) for _ in range(12)]
    assert len({draw.tobytes() for draw in draws}) > 6


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown face-part holes"):
        FacePartMasks(holes=("ears",))
    with pytest.raises(ValueError, match="margin_range"):
        FacePartMasks(margin_range=(0.5, 0.1))
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        FacePartMasks().sample(np.random.default_rng(0), 128, np.zeros((5, 2)))


def test_landmark_cache_round_trip_and_mixing(tmp_path, monkeypatch):
    import hoginpaint.training.landmarks as landmark_cache
    from io import BytesIO
    from PIL import Image

    def encoded(colour):
        buffer = BytesIO()
        Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
        return {"bytes": buffer.getvalue(), "path": None}

    values = [encoded((i, 0, 0)) for i in range(6)] + [{"bytes": b"not an image", "path": None}]
    # dlib finds no face on flat colours: stand in for it, a face on every other image
    found = iter([synthetic_landmarks(1) if i % 2 == 0 else None for i in range(6)])
    monkeypatch.setattr(landmark_cache, "square_crop_landmarks", lambda image: next(found))
    counts = build_landmark_cache(values, tmp_path / "cache.npz", progress=False)
    assert counts == {"images": 7, "faces": 3, "undecodable": 1}
    cache = LandmarkCache([tmp_path / "cache.npz"])
    assert len(cache) == 3
    assert np.allclose(cache.lookup(values[2]), synthetic_landmarks(1), atol=1e-6)
    assert cache.lookup(values[1]) is None and image_key(values[1]) is not None

    mixing = FacePartMixing(cache, FacePartMasks(), share=1.0)
    mask = mixing.sample(np.random.default_rng(0), values[0], 128)
    assert isinstance(mask, torch.Tensor) and mask.shape == (1, 128, 128) and mask.sum() > 0
    assert mixing.sample(np.random.default_rng(0), values[1], 128) is None  # no landmarks: the other source
    assert FacePartMixing(cache, FacePartMasks(), share=0.0).sample(np.random.default_rng(0), values[0], 128) is None
    rng = np.random.default_rng(1)
    drawn = sum(FacePartMixing(cache, FacePartMasks(), 0.5).sample(rng, values[0], 64) is not None for _ in range(200))
    assert 70 < drawn < 130


def test_missing_or_bad_cache_says_how_to_write_one(tmp_path):
    with pytest.raises(ValueError, match="cache_landmarks.py"):
        LandmarkCache([tmp_path / "absent.npz"])
    np.savez(tmp_path / "bad.npz", keys=np.zeros((2, 12), np.uint8), landmarks=np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="cache_landmarks.py"):
        LandmarkCache([tmp_path / "bad.npz"])
