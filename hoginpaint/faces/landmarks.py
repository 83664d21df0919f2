"""Faces with dlib: the frontal face detector, the 68 landmarks, and the facial parts they outline.

The models are dlib's, as packaged by `face-recognition-models` (Adam Geitgey's `face_recognition` uses the same):
the HOG + linear SVM frontal face detector (`dlib.get_frontal_face_detector`) and the 68- and 5-point shape
predictors (Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of Regression Trees", CVPR 2014;
iBUG 300-W point order). Models are loaded once, on first use (`hoginpaint.faces.identity` adds the recognition model).

- Detection: `detect_faces` (largest first), `whole_image_box`, `fills_face_crop` (whether a box is the face of an image
  that is itself a face crop) and `face_crop_boxes` (weak detections in such an image, for a face a large hole hides).
- Landmarks: `landmarks68`, the iBUG point ranges (`LEFT_EYE` …), `anchor_points` (eye and mouth centres, what
  alignment maps) and `feature_mask` (a hole over the eyes, the nose or the mouth).

Images are RGB: PIL images, uint8 arrays `(H, W, 3)`, or float tensors `(3, H, W)` in [0, 1] (rounded to 8 bits,
as dlib works on 8-bit pixels). Coordinates are pixels of that image, x right, y down; landmark `(x, y)` rows.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import cv2
import numpy as np
import torch
from PIL import Image

# Point ranges of the 68-point (iBUG 300-W) layout.
LEFT_EYE = tuple(range(36, 42))  # the eye on the left of the image (the person's right eye)
RIGHT_EYE = tuple(range(42, 48))
LEFT_BROW = tuple(range(17, 22))
RIGHT_BROW = tuple(range(22, 27))
NOSE = tuple(range(27, 36))
MOUTH = tuple(range(48, 68))
OUTER_LIPS = tuple(range(48, 60))

FacePart = Literal["eyes", "nose", "mouth"]
FACE_PARTS: tuple[str, ...] = ("eyes", "nose", "mouth")
RGBImage = Union[Image.Image, np.ndarray, torch.Tensor]

_MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}

# An image is taken as a face crop when it is about square and a weak detection (the detector's threshold lowered
# to FACE_CROP_THRESHOLD; `hoginpaint.faces.framing` asks the mean of two classical fills' scores to reach it) fills
# FACE_CROP_MIN_SHARE of its shorter side, near its centre: a face whose eyes or mouth a large hole hides scores low
# but still fills the frame. On 90 CelebA faces under 40-60 % NVIDIA holes, the landmarks from such weak boxes were
# within 15 px (at 256 px) of the intact face's in 51 of 75 detections.
FACE_CROP_MAX_ASPECT = 1.35
FACE_CROP_MIN_SHARE = 0.35
FACE_CROP_THRESHOLD = -1.0
FACE_CROP_MAX_OFFSET = 0.15  # the box's centre lies within this share of the side from the image's centre line


@dataclass(frozen=True)
class FaceBox:
    """A detected face: dlib's rectangle (inclusive pixel corners; may reach outside the image) and its score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0

    @property
    def area(self) -> int:
        return (self.right - self.left + 1) * (self.bottom - self.top + 1)

    def to_dlib(self):
        import dlib

        return dlib.rectangle(self.left, self.top, self.right, self.bottom)



# ---------------------------------------------------------------------------------------------------------------------
# Models, loaded once


def model_path(name: Literal["landmarks68", "landmarks5", "recognition"]) -> Path:
    """The file of one of dlib's models in the installed `face-recognition-models` package.

    Found through the import system, without importing the package: its `__init__` needs `pkg_resources`, which
    setuptools no longer ships (81+), although its data files are what we need.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the face models are missing: pip install face-recognition-models (dlib's detector, "
                          "landmark and recognition models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / _MODEL_FILES[name]
    if not path.is_file():
        raise ImportError(f"{path} is missing from the face-recognition-models package; reinstall it "
                          "(pip install --force-reinstall face-recognition-models)")
    return path


def dlib_module():
    """dlib, imported on first use, or an ImportError that says how to install it."""
    try:
        import dlib
    except ImportError as error:
        raise ImportError("dlib is missing: pip install dlib-bin (prebuilt) or dlib") from error
    return dlib


@functools.cache
def _detector():
    return dlib_module().get_frontal_face_detector()


@functools.cache
def _shape_predictor(name: Literal["landmarks68", "landmarks5"]):
    return dlib_module().shape_predictor(str(model_path(name)))


# ---------------------------------------------------------------------------------------------------------------------
# Detection and landmarks


def to_rgb_array(image: RGBImage) -> np.ndarray:
    """An RGB image as the contiguous uint8 `(H, W, 3)` array dlib reads."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"an image tensor must be float (3, H, W) in [0, 1], got {image.dtype} "
                             f"{tuple(image.shape)}; index a batch with image[i]")
        array = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"an image array must be uint8 RGB (H, W, 3), got {image.dtype} {image.shape}; "
                             "convert floats with (image * 255).round().astype(np.uint8)")
        array = image
    else:
        raise ValueError(f"cannot read an image from {type(image).__name__}; pass a PIL image, a uint8 (H, W, 3) "
                         "array or a float (3, H, W) tensor")
    return np.ascontiguousarray(array)


def detect_faces(image: RGBImage, upsample: int = 1, threshold: float = 0.0) -> list[FaceBox]:
    """Frontal faces found by dlib's HOG detector, largest first.

    `upsample`: how many times the detector doubles the image first (finds faces down to ~40 px instead of ~80 px,
    about 4x slower per step). `threshold`: the detection score to reach (dlib's default 0; lower finds more,
    false faces included).
    """
    if isinstance(upsample, bool) or not isinstance(upsample, int) or upsample < 0:
        raise ValueError(f"upsample must be an int >= 0, got {upsample!r}")
    rectangles, scores, _ = _detector().run(to_rgb_array(image), upsample, float(threshold))
    boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rectangles, scores)]
    return sorted(boxes, key=lambda box: box.area, reverse=True)


def whole_image_box(image: RGBImage) -> FaceBox:
    """The whole image as a face box (for crops that are known to hold one face)."""
    height, width = to_rgb_array(image).shape[:2]
    return FaceBox(0, 0, width - 1, height - 1)


def predict_shape(image: np.ndarray, box: FaceBox, model: Literal["landmarks68", "landmarks5"]):
    """dlib's shape (68 or 5 points) of the face in `box` of the uint8 `(H, W, 3)` `image`."""
    if not isinstance(box, FaceBox):
        raise ValueError(f"box must be a FaceBox (from detect_faces or whole_image_box), got {type(box).__name__}")
    return _shape_predictor(model)(image, box.to_dlib())


def landmarks68(image: RGBImage, box: FaceBox) -> np.ndarray:
    """The 68 iBUG landmarks of the face in `box` → `(68, 2)` float64 `(x, y)` pixels."""
    shape = predict_shape(to_rgb_array(image), box, "landmarks68")
    return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """`landmarks` as a finite `(68, 2)` float64 array, or a ValueError that says what they must be."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise ValueError(f"landmarks must be a finite (68, 2) array of (x, y) pixels (from landmarks68), got shape "
                         f"{landmarks.shape}")
    return landmarks


def fills_face_crop(box: FaceBox, height: int, width: int) -> bool:
    """Whether `box` is the face of a face crop `height` x `width`: the image about square (FACE_CROP_MAX_ASPECT),
    the box filling its shorter side (FACE_CROP_MIN_SHARE), centred across it (FACE_CROP_MAX_OFFSET) and brows to
    chin below its middle."""
    side = min(height, width)
    centre_x, centre_y = (box.left + box.right + 1) // 2, (box.top + box.bottom + 1) // 2  # as dlib's center()
    return (max(height, width) <= FACE_CROP_MAX_ASPECT * side
            and box.right - box.left + 1 >= FACE_CROP_MIN_SHARE * side
            and abs(centre_x - width / 2) <= FACE_CROP_MAX_OFFSET * side
            and 0.4 * height <= centre_y <= 0.75 * height)


def face_crop_boxes(image: RGBImage, threshold: float = FACE_CROP_THRESHOLD) -> list[FaceBox]:
    """Weak detections, down to `threshold`, in an image that is itself a face crop (`fills_face_crop`), best first;
    [] for other images. See `FACE_CROP_THRESHOLD`."""
    array = to_rgb_array(image)
    height, width = array.shape[:2]
    if max(height, width) > FACE_CROP_MAX_ASPECT * min(height, width):
        return []
    rectangles, scores, _ = _detector().run(array, 1, float(threshold))
    boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(score)) for r, score in zip(rectangles, scores)]
    return sorted([box for box in boxes if fills_face_crop(box, height, width)], key=lambda box: box.score,
                  reverse=True)


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """The framing's anchors of a face: left eye centre, right eye centre, mouth centre → `(3, 2)`."""
    landmarks = check_landmarks(landmarks)
    return np.stack([landmarks[list(LEFT_EYE)].mean(axis=0), landmarks[list(RIGHT_EYE)].mean(axis=0),
                     landmarks[list(MOUTH)].mean(axis=0)])


# ---------------------------------------------------------------------------------------------------------------------
# Feature masks


def feature_mask(landmarks: np.ndarray, size: int | tuple[int, int], part: FacePart,
                 margin: float = 0.15) -> np.ndarray:
    """A hole over one facial part, from the 68 landmarks → `(H, W)` float32 in {0, 1}, 1 = hole.

    The hole is the convex hull of the part's landmarks — each eye (36-41, 42-47) on its own, the nose (27-35), the
    outer lips (48-59) — dilated by `margin` times the distance between the eye centres (an elliptic kernel), so it
    scales with the face. `size`: the image's side or `(H, W)`; `landmarks` are pixels of that image.
    """
    landmarks = check_landmarks(landmarks)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if part not in FACE_PARTS:
        raise ValueError(f"unknown face part {part!r}; expected one of {', '.join(FACE_PARTS)}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0 (a fraction of the eye distance), got {margin!r}")
    groups = {"eyes": (LEFT_EYE, RIGHT_EYE), "nose": (NOSE,), "mouth": (OUTER_LIPS,)}[part]
    left_eye, right_eye = anchor_points(landmarks)[:2]
    radius = int(round(margin * float(np.linalg.norm(right_eye - left_eye))))
    # Drawn and dilated in the window the hole can reach: the cost follows the face, not the photo.
    points = np.round(landmarks[[index for group in groups for index in group]]).astype(np.int64)
    left, top = np.maximum(points.min(axis=0) - radius - 1, 0)
    right, bottom = np.minimum(points.max(axis=0) + radius + 2, (width, height))
    mask = np.zeros((height, width), dtype=np.float32)
    if left >= right or top >= bottom:
        return mask
    window = np.zeros((bottom - top, right - left), dtype=np.uint8)
    for group in groups:
        hull = cv2.convexHull((np.round(landmarks[list(group)]) - (left, top)).astype(np.int32))
        cv2.fillConvexPoly(window, hull, 1)
    if radius > 0:
        window = cv2.dilate(window, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    mask[top:bottom, left:right] = window
    return mask
