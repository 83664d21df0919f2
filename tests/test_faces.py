"""dlib faces on real validation faces: detection, landmarks, identity, alignment round trip, feature masks."""
from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint import faces


@pytest.fixture(scope="module")
def detected(val_face_images: list[Image.Image]) -> list[tuple[Image.Image, faces.FaceBox]]:
    """The validation faces in which dlib finds a face, with the largest box."""
    pairs = [(image, boxes[0]) for image in val_face_images if (boxes := faces.detect_faces(image))]
    assert len(pairs) >= 6, f"dlib found a face in only {len(pairs)} of {len(val_face_images)} validation faces"
    return pairs


@pytest.fixture(scope="module")
def descriptors(val_face_images: list[Image.Image]) -> list[np.ndarray]:
    return [faces.face_descriptor(image) for image in val_face_images]


def test_detection_and_landmarks(detected) -> None:
    for image, box in detected:
        # UTKFace crops are tight: the face fills most of the 256 px frame.
        assert 120 <= box.right - box.left <= 300, box
        points = faces.landmarks68(image, box)
        assert points.shape == (68, 2)
        left_eye, right_eye, mouth = faces.anchor_points(points)
        assert left_eye[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < mouth[1]  # upright face
        # Validation faces are UTKFace crops too: their eyes and mouth sit near the measured training framing.
        assert np.abs(np.stack([left_eye, right_eye, mouth]) - faces.UTKFACE_FRAMING.points(256)).max() < 20


def test_descriptor_is_deterministic_and_robust_to_jpeg(val_face_images, descriptors) -> None:
    for image, descriptor in zip(val_face_images[:4], descriptors):
        assert descriptor.shape == (128,)
        assert faces.identity_distance(descriptor, faces.face_descriptor(image)) < 1e-6
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=75)
        recompressed = Image.open(buffer).convert("RGB")
        assert faces.identity_distance(descriptor, faces.face_descriptor(recompressed)) < 0.3


def test_different_people_are_far_apart(descriptors) -> None:
    # The eight validation faces are eight different people.
    distances = [faces.identity_distance(a, b) for a, b in itertools.combinations(descriptors, 2)]
    assert np.mean(distances) > 0.75  # well above SAME_PERSON_THRESHOLD
    assert np.mean(np.array(distances) < faces.SAME_PERSON_THRESHOLD) < 0.1


def test_descriptor_inputs_agree(detected) -> None:
    image, box = detected[0]
    array = np.array(image)
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    from_box = faces.face_descriptor(image, box=box)
    assert faces.identity_distance(from_box, faces.face_descriptor(array, box=box)) < 1e-9
    assert faces.identity_distance(from_box, faces.face_descriptor(tensor, box=box)) < 1e-9
    # The 68-point shape aligns slightly differently from the 5-point one, but it is the same face.
    from_landmarks = faces.face_descriptor(image, landmarks=faces.landmarks68(image, box))
    assert faces.identity_distance(from_box, from_landmarks) < 0.3


def test_whole_image_fallback_when_no_face() -> None:
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    assert faces.detect_faces(blank) == []
    descriptor = faces.face_descriptor(blank)
    expected = faces.face_descriptor(blank, box=faces.whole_image_box(blank))
    assert faces.identity_distance(descriptor, expected) == 0.0


def test_align_matches_the_training_framing(detected) -> None:
    image, box = detected[0]
    # Shrink, rotate and shift the face inside a bigger photo, then align it back.
    photo = Image.new("RGB", (400, 360), (20, 40, 60))
    photo.paste(image.resize((180, 180), Image.BICUBIC).rotate(12, resample=Image.BICUBIC, fillcolor=(20, 40, 60)),
                (150, 90))
    photo_box = faces.detect_faces(photo)[0]
    aligned = faces.align_face(photo, photo_box, size=256)
    assert aligned.image.size == (256, 256) and aligned.transform.shape == (2, 3)
    anchors = faces.anchor_points(faces.landmarks68(aligned.image, faces.detect_faces(aligned.image)[0]))
    target = faces.UTKFACE_FRAMING.points(256)
    assert np.abs(anchors - target).max() < 12  # pixels of 256: a few landmark-noise pixels


def test_align_then_paste_back_reproduces_the_photo(detected) -> None:
    image, box = detected[1]
    photo = Image.new("RGB", (320, 300), (200, 180, 160))
    photo.paste(image.rotate(-8, resample=Image.BICUBIC, fillcolor=(200, 180, 160)), (40, 20))
    landmarks = faces.landmarks68(photo, faces.detect_faces(photo)[0])
    aligned = faces.align_face(photo, landmarks, size=256)

    pixels, inside = faces.unwarp_from_aligned(aligned.image, aligned.transform, photo.size)
    original = np.asarray(photo, dtype=np.float32)
    face_region = sum(faces.feature_mask(landmarks, (300, 320), part) for part in faces.FACE_PARTS) > 0
    assert inside[face_region].all()
    error = np.abs(pixels - original)[face_region]
    assert error.mean() < 0.6 and np.percentile(error, 99) < 3  # 8-bit levels: interpolation error only

    hole = np.zeros((300, 320), np.float32)
    hole[120:180, 140:200] = 1
    pasted = np.asarray(faces.paste_aligned(photo, aligned.image, aligned.transform, hole))
    assert np.array_equal(pasted[hole == 0], np.asarray(photo)[hole == 0])  # outside the hole: bit-identical
    assert np.abs(pasted[hole == 1].astype(float) - original[hole == 1]).mean() < 0.6

    # A mask carried into the crop covers the same place there.
    aligned_hole = faces.warp_mask_to_aligned(hole, aligned.transform, 256)
    centre = aligned.transform @ np.array([170.0, 150.0, 1.0])
    assert aligned_hole[int(centre[1]), int(centre[0])] == 1
    # ... grown by the bicubic read's reach (about 2 px around a 60 px square) and no more.
    assert 1.0 < aligned_hole.sum() / (hole.sum() * abs(np.linalg.det(aligned.transform[:, :2]))) < 1.2


@pytest.mark.parametrize("part, indices", [("eyes", faces.LEFT_EYE + faces.RIGHT_EYE), ("nose", faces.NOSE),
                                           ("mouth", faces.MOUTH)])
def test_feature_masks_cover_their_part(detected, part, indices) -> None:
    image, box = detected[0]
    landmarks = faces.landmarks68(image, box)
    mask = faces.feature_mask(landmarks, 256, part)
    assert mask.shape == (256, 256) and mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    own = np.round(landmarks[list(indices)]).astype(int)
    assert mask[own[:, 1], own[:, 0]].all()
    chin = np.round(landmarks[8]).astype(int)
    assert mask[min(chin[1], 255), chin[0]] == 0
    assert 0.005 < mask.mean() < 0.2
    others = {"eyes": faces.MOUTH, "nose": faces.OUTER_LIPS[:1] + faces.OUTER_LIPS[6:7], "mouth": faces.LEFT_EYE}
    away = np.round(landmarks[list(others[part])]).astype(int)
    assert not mask[away[:, 1], away[:, 0]].any()
    assert faces.feature_mask(landmarks, 256, part, margin=0.3).sum() > mask.sum()


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        faces.detect_faces(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        faces.feature_mask(np.zeros((5, 2)), 64, "eyes")
    with pytest.raises(ValueError, match="unknown face part"):
        faces.feature_mask(np.zeros((68, 2)), 64, "ears")
    with pytest.raises(ValueError, match="descriptors are"):
        faces.identity_distance(np.zeros(128), np.zeros(64))
