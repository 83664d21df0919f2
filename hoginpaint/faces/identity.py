"""Identity: dlib's 128-D face descriptors, and whether two faces are the same person.

dlib's ResNet-29 face recognition model (`dlib_face_recognition_resnet_model_v1`, packaged by
`face-recognition-models`), whose descriptors are 99.38 % accurate on LFW with the 0.6 threshold
(`SAME_PERSON_THRESHOLD`), run in torch from dlib's file (`hoginpaint.faces.recognition`), loaded once, on first
use. The evaluation, the validation during training and the Space all measure identity through `face_descriptor`
(or `face_descriptors`, several faces at once) and `identity_distance`.
"""
from __future__ import annotations

import numpy as np

from hoginpaint.faces.landmarks import (
    FaceBox,
    RGBImage,
    check_landmarks,
    detect_faces,
    dlib_module,
    predict_shape,
    to_rgb_array,
    whole_image_box,
)
from hoginpaint.faces.recognition import CHIP_PADDING, CHIP_SIZE, chip_descriptors

SAME_PERSON_THRESHOLD = 0.6  # dlib's: descriptors of one person are closer than this (99.38 % on LFW)


def face_descriptor(image: RGBImage, box: FaceBox | None = None, landmarks: np.ndarray | None = None) -> np.ndarray:
    """dlib's 128-D identity descriptor of one face → `(128,)` float64.

    The face is aligned as `face_recognition.face_encodings` does it: dlib's `get_face_chip` alignment (150 px, 25 %
    padding) from a shape — the 68 `landmarks` when given, else the 5-point shape predicted in `box` (as
    face_recognition's default "small" model). Without `box` or `landmarks` the largest detected face is used; when
    none is found, the whole image is taken as the face box. That fallback is meant for images that are face crops
    already (the evaluation's 256x256 aligned faces, where dlib misses a few faces that fill the frame); on other
    photos, detect first and pass the box. The network runs in torch (`hoginpaint.faces.recognition`, dlib's weights).
    """
    return face_descriptors([image], [landmarks], [box])[0]


def face_descriptors(images: list[RGBImage], landmarks: list[np.ndarray | None],
                     boxes: list[FaceBox | None] | None = None) -> np.ndarray:
    """`face_descriptor` of each image with its landmarks (and box) → `(N, 128)`, each exactly as alone."""
    if boxes is None:
        boxes = [None] * len(images)
    if not len(images) == len(landmarks) == len(boxes):
        raise ValueError(f"one landmarks array (or None) and box per image: got {len(images)} images, "
                         f"{len(landmarks)} landmarks and {len(boxes)} boxes")
    chips = [_face_chip(image, box, points) for image, box, points in zip(images, boxes, landmarks)]
    return chip_descriptors(chips)


def _face_chip(image: RGBImage, box: FaceBox | None, landmarks: np.ndarray | None) -> np.ndarray:
    array = to_rgb_array(image)
    dlib = dlib_module()
    if landmarks is not None:
        points = check_landmarks(landmarks)
        if box is None:
            (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
            box = FaceBox(int(left), int(top), int(np.ceil(right)), int(np.ceil(bottom)))
        parts = [dlib.point(int(round(x)), int(round(y))) for x, y in points]
        shape = dlib.full_object_detection(box.to_dlib(), parts)
    else:
        if box is None:
            boxes = detect_faces(array)
            box = boxes[0] if boxes else whole_image_box(array)
        shape = predict_shape(array, box, "landmarks5")
    return np.asarray(dlib.get_face_chip(array, shape, size=CHIP_SIZE, padding=CHIP_PADDING))


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two face descriptors; below `SAME_PERSON_THRESHOLD` means the same person."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != (128,) or b.shape != (128,):
        raise ValueError(f"face descriptors are (128,) arrays (from face_descriptor), got {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b))
