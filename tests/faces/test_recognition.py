"""dlib's face recognition ResNet in torch (`hoginpaint.faces.recognition`) against dlib's own computation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hoginpaint import faces
from hoginpaint.faces import recognition
from hoginpaint.faces.landmarks import dlib_module, landmarks68, model_path, predict_shape

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "astronaut.jpg"


def dlib_descriptor(image: np.ndarray, shape) -> np.ndarray:
    model = dlib_module().face_recognition_model_v1(str(model_path("recognition")))
    return np.array(model.compute_face_descriptor(image, shape))


def test_reads_the_whole_network_from_dlibs_file():
    weights = recognition.read_dlib_resnet(model_path("recognition"))
    assert weights["conv0.weight"].shape == (32, 3, 7, 7) and weights["conv28.weight"].shape == (256, 256, 3, 3)
    assert weights["affine28.gamma"].shape == (256,) and weights["fc"].shape == (256, 128)
    np.testing.assert_allclose(weights["means"], [122.782, 117.001, 104.298], atol=1e-3)  # dlib's example's means


def test_refuses_a_file_that_is_not_the_network(tmp_path):
    (tmp_path / "other.dat").write_bytes(b"\x01\x05con_4" + bytes(64))
    with pytest.raises(ValueError):
        recognition.read_dlib_resnet(tmp_path / "other.dat")


def test_descriptors_equal_dlibs(val_face_images):
    """On the astronaut (68 landmarks) and real faces (5-point shapes in the detected box), alone and batched."""
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    box = faces.detect_faces(photo)[0]
    points = landmarks68(photo, box)
    dlib = dlib_module()
    shape = dlib.full_object_detection(box.to_dlib(), [dlib.point(int(round(x)), int(round(y))) for x, y in points])
    expected = dlib_descriptor(photo, shape)
    ours = faces.face_descriptor(photo, landmarks=points)
    assert np.abs(ours - expected).max() < 1e-5 and np.linalg.norm(expected) > 0.5

    images = [np.asarray(image) for image in val_face_images[:4]]
    boxes = [(faces.detect_faces(image) or [faces.whole_image_box(image)])[0] for image in images]
    batched = faces.face_descriptors(images, [None] * 4, boxes)
    for image, box, descriptor in zip(images, boxes, batched):
        reference = dlib_descriptor(image, predict_shape(image, box, "landmarks5"))
        assert np.abs(descriptor - reference).max() < 1e-5
    # different people are told apart as dlib tells them apart
    distances = [faces.identity_distance(a, b) for i, a in enumerate(batched) for b in batched[i + 1:]]
    assert min(distances) > 0.3


def test_descriptors_need_one_landmarks_entry_per_image():
    with pytest.raises(ValueError, match="one landmarks array"):
        faces.face_descriptors([np.zeros((64, 64, 3), np.uint8)], [])
