"""Faces with dlib: detection, 68 landmarks, identity descriptors, alignment to the training framing, feature masks.

The models are dlib's, as packaged by `face-recognition-models` (Adam Geitgey's `face_recognition` uses the same):
the HOG + linear SVM frontal face detector (`dlib.get_frontal_face_detector`), the 68- and 5-point shape predictors
(Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of Regression Trees", CVPR 2014; iBUG 300-W
point order) and the ResNet-29 face recognition model whose 128-D descriptors are 99.38 % accurate on LFW with the
0.6 threshold (`SAME_PERSON_THRESHOLD`). Models are loaded once, on first use.

Alignment (`align_face`) maps a face onto the framing of the training data: UTKFace's "aligned & cropped" faces,
tight 200x200 crops. The framing constants (`UTKFACE_FRAMING`) were measured with the 68-point model on the first
50 training faces in which dlib finds a face (`train-00000-of-00008.parquet`, detector upsampled once), as fractions
of the side (x right, y down), mean ± standard deviation:

- centre of the left eye in the image (points 36-41): (0.297 ± 0.016, 0.298 ± 0.013)
- centre of the right eye in the image (points 42-47): (0.683 ± 0.015, 0.297 ± 0.012)
- centre of the mouth (points 48-67): (0.490 ± 0.008, 0.710 ± 0.010)
- so: eye distance 0.386 ± 0.022 of the side, eye line tilted -0.1 ± 2.6 degrees, chin (point 8) at y = 0.985.

Images are RGB: PIL images, uint8 arrays `(H, W, 3)`, or float tensors `(3, H, W)` in [0, 1] (rounded to 8 bits,
as dlib works on 8-bit pixels). Coordinates are pixels of that image, x right, y down; landmark `(x, y)` rows.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Literal, Union

import cv2
import numpy as np
import torch
from PIL import Image

SAME_PERSON_THRESHOLD = 0.6  # dlib's: descriptors of one person are closer than this (99.38 % on LFW)

# Point ranges of the 68-point (iBUG 300-W) layout.
LEFT_EYE = tuple(range(36, 42))  # the eye on the left of the image (the person's right eye)
RIGHT_EYE = tuple(range(42, 48))
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


@dataclass(frozen=True)
class Framing:
    """Where the eye centres and the mouth centre of an aligned face lie, as fractions of the crop's side."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    mouth: tuple[float, float]

    def points(self, size: int) -> np.ndarray:
        """The three anchor points in pixels of a `size` x `size` crop, `(3, 2)` float64."""
        return np.array([self.left_eye, self.right_eye, self.mouth], dtype=np.float64) * size


UTKFACE_FRAMING = Framing(left_eye=(0.297, 0.298), right_eye=(0.683, 0.297), mouth=(0.490, 0.710))


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


@dataclass
class AlignedFace:
    """The output of `align_face`.

    `image`: the aligned `size` x `size` RGB crop. `transform`: `(2, 3)` float64 affine map of original pixel
    coordinates to crop coordinates (`[x', y'] = transform @ [x, y, 1]`, OpenCV's `warpAffine` convention).
    `landmarks`: the face's 68 landmarks in the original image.
    """

    image: Image.Image
    transform: np.ndarray
    landmarks: np.ndarray

    @property
    def size(self) -> int:
        return self.image.size[0]


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


def _dlib():
    try:
        import dlib
    except ImportError as error:
        raise ImportError("dlib is missing: pip install dlib-bin (prebuilt) or dlib") from error
    return dlib


@functools.cache
def _detector():
    return _dlib().get_frontal_face_detector()


@functools.cache
def _shape_predictor(name: Literal["landmarks68", "landmarks5"]):
    return _dlib().shape_predictor(str(model_path(name)))


@functools.cache
def _recognition_model():
    return _dlib().face_recognition_model_v1(str(model_path("recognition")))


# ---------------------------------------------------------------------------------------------------------------------
# Detection, landmarks, descriptors


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


def _shape(image: np.ndarray, box: FaceBox, model: Literal["landmarks68", "landmarks5"]):
    if not isinstance(box, FaceBox):
        raise ValueError(f"box must be a FaceBox (from detect_faces or whole_image_box), got {type(box).__name__}")
    return _shape_predictor(model)(image, box.to_dlib())


def landmarks68(image: RGBImage, box: FaceBox) -> np.ndarray:
    """The 68 iBUG landmarks of the face in `box` → `(68, 2)` float64 `(x, y)` pixels."""
    shape = _shape(to_rgb_array(image), box, "landmarks68")
    return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise ValueError(f"landmarks must be a finite (68, 2) array of (x, y) pixels (from landmarks68), got shape "
                         f"{landmarks.shape}")
    return landmarks


def face_descriptor(image: RGBImage, box: FaceBox | None = None, landmarks: np.ndarray | None = None) -> np.ndarray:
    """dlib's 128-D identity descriptor of one face → `(128,)` float64.

    The face is aligned as `face_recognition.face_encodings` does it: dlib's `get_face_chip` alignment (150 px, 25 %
    padding) from a shape — the 68 `landmarks` when given, else the 5-point shape predicted in `box` (as
    face_recognition's default "small" model). Without `box` or `landmarks` the largest detected face is used; when
    none is found, the whole image is taken as the face box. That fallback is meant for images that are face crops
    already (the evaluation's 256x256 aligned faces, where dlib misses a few faces that fill the frame); on other
    photos, detect first and pass the box.
    """
    array = to_rgb_array(image)
    dlib = _dlib()
    if landmarks is not None:
        points = _check_landmarks(landmarks)
        if box is None:
            (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
            box = FaceBox(int(left), int(top), int(np.ceil(right)), int(np.ceil(bottom)))
        parts = [dlib.point(int(round(x)), int(round(y))) for x, y in points]
        shape = dlib.full_object_detection(box.to_dlib(), parts)
    else:
        if box is None:
            boxes = detect_faces(array)
            box = boxes[0] if boxes else whole_image_box(array)
        shape = _shape(array, box, "landmarks5")
    return np.array(_recognition_model().compute_face_descriptor(array, shape), dtype=np.float64)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two face descriptors; below `SAME_PERSON_THRESHOLD` means the same person."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != (128,) or b.shape != (128,):
        raise ValueError(f"face descriptors are (128,) arrays (from face_descriptor), got {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b))


# ---------------------------------------------------------------------------------------------------------------------
# Alignment and paste-back


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking `source` points onto `target`
    (Umeyama 1991, without reflection) → `(2, 3)`."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / source_centred.var(axis=0).sum()
    linear = scale * rotation
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """The framing's anchors of a face: left eye centre, right eye centre, mouth centre → `(3, 2)`."""
    landmarks = _check_landmarks(landmarks)
    return np.stack([landmarks[list(LEFT_EYE)].mean(axis=0), landmarks[list(RIGHT_EYE)].mean(axis=0),
                     landmarks[list(MOUTH)].mean(axis=0)])


def align_face(image: RGBImage, box_or_landmarks: FaceBox | np.ndarray, size: int = 256,
               framing: Framing = UTKFACE_FRAMING) -> AlignedFace:
    """A square `size` x `size` crop of the face, rotated and scaled into `framing` (the training data's).

    `box_or_landmarks`: a `FaceBox` (its 68 landmarks are predicted) or the `(68, 2)` landmarks. The similarity
    transform that best maps the face's eye and mouth centres onto the framing's (least squares) warps the image
    (bicubic; outside the photo the border is mirrored). Undo it with `paste_aligned` / `unwarp_from_aligned`.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    array = to_rgb_array(image)
    if isinstance(box_or_landmarks, FaceBox):
        landmarks = landmarks68(array, box_or_landmarks)
    else:
        landmarks = _check_landmarks(box_or_landmarks)
    transform = _similarity(anchor_points(landmarks), framing.points(size))
    crop = cv2.warpAffine(array, transform, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return AlignedFace(image=Image.fromarray(crop), transform=transform, landmarks=landmarks)


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """The inverse of a `(2, 3)` affine map (crop → original for `AlignedFace.transform`)."""
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (2, 3):
        raise ValueError(f"an affine transform is a (2, 3) array, got {transform.shape}")
    return cv2.invertAffineTransform(transform)


def warp_mask_to_aligned(mask: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """A hole mask `(H, W)` of the original photo (1 = hole) in the aligned crop → `(size, size)` float32 {0, 1}.

    A crop pixel is a hole when any photo pixel its bicubic sample reads (4x4 around it) is a hole, so the model
    regenerates everything the hole touches and no known crop pixel holds anything of the hole. Outside the photo the
    mask is mirrored as `align_face` mirrors the image: a mirrored hole pixel is a hole too.
    """
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    # Bicubic reads pixels floor(p) - 1 .. floor(p) + 2, bilinear floor(p) .. floor(p) + 1: a bilinear read of the
    # mask grown by one pixel sees every hole pixel the bicubic read of the image sees.
    grown = cv2.dilate((mask > 0.5).astype(np.float32), np.ones((3, 3), np.uint8))
    warped = cv2.warpAffine(grown, np.asarray(transform, dtype=np.float64), (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    return (warped > 1e-3).astype(np.float32)


def unwarp_from_aligned(aligned: RGBImage, transform: np.ndarray, original_size: tuple[int, int]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """An aligned crop brought back into the original photo's pixel grid.

    `original_size`: `(width, height)` of the photo (PIL's order). Returns `(pixels, inside)`: float32
    `(H, W, 3)` in [0, 255] (bicubic) and bool `(H, W)`, True where the pixel lies inside the crop (only there do
    `pixels` come from it).
    """
    crop = to_rgb_array(aligned).astype(np.float32)
    size = crop.shape[0]
    width, height = original_size
    inverse = invert_transform(transform)
    pixels = cv2.warpAffine(crop, inverse, (width, height), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    # A photo pixel is inside when its position in the crop is, with half a pixel of slack at the crop's edge.
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    transform = np.asarray(transform, dtype=np.float64)
    crop_x = transform[0, 0] * grid_x + transform[0, 1] * grid_y + transform[0, 2]
    crop_y = transform[1, 0] * grid_x + transform[1, 1] * grid_y + transform[1, 2]
    inside = (crop_x >= -0.5) & (crop_x <= size - 0.5) & (crop_y >= -0.5) & (crop_y <= size - 0.5)
    return np.clip(pixels, 0, 255), inside


def paste_aligned(original: RGBImage, aligned_result: RGBImage, transform: np.ndarray,
                  mask_in_original: np.ndarray | None = None) -> Image.Image:
    """Put an edited aligned crop back into the original photo; returns an RGB PIL image of the photo's size.

    Pixels where `mask_in_original` `(H, W)` is above 0.5 (default: every pixel the crop covers) and that the crop
    covers are taken from `aligned_result` warped back (`unwarp_from_aligned`); every other pixel is the original's,
    bit-identical. Hole pixels outside the crop keep the original's: check `unwarp_from_aligned(...)[1]` to find them.
    """
    photo = to_rgb_array(original)
    height, width = photo.shape[:2]
    if mask_in_original is None:
        mask_in_original = np.ones((height, width), dtype=bool)
    mask = np.asarray(mask_in_original)
    if mask.shape != (height, width):
        raise ValueError(f"mask_in_original is {mask.shape[::-1]} (w, h) but the photo is {width}x{height}; "
                         "pass the mask of the original photo")
    result = photo.copy()
    paste_into(result, aligned_result, transform, mask > 0.5)
    return Image.fromarray(result)


def paste_into(photo: np.ndarray, aligned_result: RGBImage, transform: np.ndarray, hole: np.ndarray) -> None:
    """Write `aligned_result` warped back into `photo` `(H, W, 3)` uint8, in place, where `hole` `(H, W)` bool is
    True and the crop covers the pixel; the same pixels as `paste_aligned`.

    Only the window around the hole pixels the crop can reach is resampled, so the cost follows the hole and the
    crop, not the photo (a 49-megapixel photo costs what its face costs).
    """
    height, width = photo.shape[:2]
    crop = to_rgb_array(aligned_result)
    size = crop.shape[0]
    inverse = invert_transform(transform)
    corners = inverse @ np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [-0.5, size - 0.5, 1],
                                  [size - 0.5, size - 0.5, 1]]).T  # (2, 4): the crop's outline in the photo
    box = hole_box(hole)
    if box is None:
        return
    left = max(box[0], int(np.floor(corners[0].min())))
    top = max(box[1], int(np.floor(corners[1].min())))
    right = min(box[2], int(np.ceil(corners[0].max())) + 1)
    bottom = min(box[3], int(np.ceil(corners[1].max())) + 1)
    if left >= right or top >= bottom:
        return
    window = np.array(transform, dtype=np.float64)
    window[:, 2] += window[:, :2] @ np.array([left, top], dtype=np.float64)  # window pixel → crop pixel
    pixels, inside = unwarp_from_aligned(crop, window, (right - left, bottom - top))
    replace = inside & hole[top:bottom, left:right]
    region = photo[top:bottom, left:right]
    region[replace] = np.round(pixels[replace]).astype(np.uint8)


def hole_box(hole: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box of the True pixels of `hole` `(H, W)` → `(left, top, right, bottom)`, right and bottom
    exclusive; None when there are none."""
    rows, columns = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


# ---------------------------------------------------------------------------------------------------------------------
# Framing a photo for the models: only its known pixels decide where the crop lies and only they are resampled

DETECTION_SIDE = 800  # faces are looked for on a copy this size at most: the cost follows the face, not the photo
# An image is taken as a face crop when it is about square and a weak detection (the detector's threshold lowered
# by FACE_CROP_THRESHOLD) fills FACE_CROP_MIN_SHARE of its shorter side, near its centre: a face whose eyes or mouth a large hole
# hides scores low but still fills the frame. On 90 CelebA faces under 40-60 % NVIDIA holes, the landmarks from
# such weak boxes were within 15 px (at 256 px) of the intact face's in 51 of 75 detections.
FACE_CROP_MAX_ASPECT = 1.35
FACE_CROP_MIN_SHARE = 0.35
FACE_CROP_THRESHOLD = -1.0
# Score a detection on the filled photo needs when the hole overlaps it (a face the hole partly hides).
HIDDEN_FACE_THRESHOLD = -0.3
FACE_CROP_MAX_OFFSET = 0.15  # the box's centre lies within this share of the side from the image's centre line

FrameKind = Literal["aligned", "hole outside face", "no face"]
FoundOn = Literal["photo", "fill", "face crop"]


@dataclass(frozen=True)
class Frame:
    """Where the models look: `transform` `(2, 3)` maps photo pixels onto the square crop; `landmarks` `(68, 2)`
    are the face's in photo pixels, or None. `kind`: "aligned" (the face in the training framing), "hole outside
    face" (a face was found but the hole reaches outside its aligned crop: a square around the hole), "no face" (a
    square around the hole). `found_on`: where the face was found — "fill" (the photo with its hole filled by
    Telea), "photo" (the photo with its hole white), "face crop" (a weak detection in an image that is itself a face
    crop)."""

    transform: np.ndarray
    landmarks: np.ndarray | None
    kind: FrameKind
    found_on: FoundOn | None


def aligned_transform(landmarks: np.ndarray, size: int, framing: Framing = UTKFACE_FRAMING) -> np.ndarray:
    """The `(2, 3)` map of photo pixels onto the `size` crop in which the face of `landmarks` `(68, 2)` sits in
    `framing` (what `align_face` warps with)."""
    return _similarity(anchor_points(landmarks), framing.points(size))


def shrink_known(photo: np.ndarray, hole: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """A copy of `photo` `(H, W, 3)` uint8 at most `max_side` on its longer side (area averaging), in which every
    pixel the hole `(H, W)` bool touches is a hole and black → `(copy, its hole, scale)`. Nothing under the hole
    reaches the copy's known pixels."""
    height, width = hole.shape
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    else:
        small, small_hole = photo.copy(), hole.copy()
    small[small_hole] = 0
    return small, small_hole, scale


def fill_hole(photo: np.ndarray, hole: np.ndarray, method: Literal["telea", "biharmonic"] = "telea") -> np.ndarray:
    """A classical fill of `hole` `(H, W)` bool in `photo` `(H, W, 3)` uint8 → uint8, from the known pixels only (the
    hole is blanked first): Telea's, or the biharmonic one of `hoginpaint.prefill` (solved on the hole's box)."""
    if not hole.any():
        return photo.copy()
    if method == "telea":
        blank = np.where(hole[..., None], np.uint8(0), photo)
        return cv2.inpaint(blank, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    import torch

    from hoginpaint.prefill import prefill_around_hole

    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255  # (3, H, W)
    mask = torch.from_numpy(hole)[None].float()  # (1, H, W)
    filled = prefill_around_hole(image, mask, "biharmonic", iterations=150)
    return (filled.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def face_crop_boxes(image: RGBImage) -> list[FaceBox]:
    """Weak detections in an image that is itself a face crop (about square, the face filling it), best first;
    [] for other images. See `FACE_CROP_THRESHOLD`."""
    array = to_rgb_array(image)
    height, width = array.shape[:2]
    if max(height, width) > FACE_CROP_MAX_ASPECT * min(height, width):
        return []
    rectangles, scores, _ = _detector().run(array, 1, FACE_CROP_THRESHOLD)
    side = min(height, width)
    boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(score)) for r, score in zip(rectangles, scores)
             if r.width() >= FACE_CROP_MIN_SHARE * side  # filling the frame ...
             and abs(r.center().x - width / 2) <= FACE_CROP_MAX_OFFSET * side  # ... centred across it ...
             and 0.4 * height <= r.center().y <= 0.75 * height]  # ... and brows to chin below its middle
    return sorted(boxes, key=lambda box: box.score, reverse=True)


def find_landmarks(photo: np.ndarray, hole: np.ndarray, max_side: int = DETECTION_SIDE
                   ) -> tuple[np.ndarray | None, FoundOn | None]:
    """The 68 landmarks of the face the hole overlaps most, from the known pixels of `photo` `(H, W, 3)` uint8 only
    → (`(68, 2)` photo pixels or None, where the face was found).

    Looked for on a copy at most `max_side` on its longer side, source after source until one gives a face the hole
    overlaps (failing that, the first face found): on two classical fills of the hole, Telea's and the biharmonic
    one (a face whose eyes the hole covers is still a face there; a face the hole partly hides scores lower, so a
    weak detection counts where the hole overlaps it), then with the hole white (the damaged photo as its owner sees
    it), then, for an image that is a face crop, on the fill with a lowered threshold (`face_crop_boxes`). The
    landmarks are predicted on the fill the face was found on: what the hole hides never moves them.
    """
    small, small_hole, scale = shrink_known(photo, hole, max_side)
    telea = fill_hole(small, small_hole, "telea")

    def overlap(box: FaceBox) -> int:
        return np.count_nonzero(small_hole[max(box.top, 0):box.bottom + 1, max(box.left, 0):box.right + 1])

    def on_fill(fill: np.ndarray) -> list[FaceBox]:
        # Measured on the README example's stroke across the nose: the face scored -0.06 to -0.10 on the biharmonic
        # fill (none on Telea's), false faces elsewhere +0.17.
        return [box for box in detect_faces(fill, threshold=HIDDEN_FACE_THRESHOLD) if box.score >= 0 or overlap(box)]

    sources: list[tuple[FoundOn, Callable[[], np.ndarray], Callable[[np.ndarray], list[FaceBox]]]] = [
        ("fill", lambda: telea, on_fill),
        ("fill", lambda: fill_hole(small, small_hole, "biharmonic"), on_fill),
    ]
    if small_hole.any():
        sources.append(("photo", lambda: telea,
                        lambda _: detect_faces(np.where(small_hole[..., None], np.uint8(255), small))))
    sources.append(("face crop", lambda: telea, lambda fill: face_crop_boxes(fill)[:1]))  # the best weak box
    candidates: list[tuple[FaceBox, FoundOn, np.ndarray]] = []
    for found_on, make_fill, detect in sources:
        fill = make_fill()
        boxes = detect(fill)
        candidates += [(box, found_on, fill) for box in boxes]
        if any(overlap(box) for box in boxes) or (boxes and not small_hole.any()):
            break
    if not candidates:
        return None, None
    overlaps = [overlap(box) for box, _, _ in candidates]
    box, found_on, fill = candidates[int(np.argmax(overlaps))]  # the first of the largest overlaps
    return (landmarks68(fill, box) + 0.5) / scale - 0.5, found_on


def square_around(hole: np.ndarray, size: int) -> np.ndarray:
    """A square twice the hole's size (64 px at least), inside the photo where it fits → `(2, 3)` map onto the
    `size` x `size` crop (beyond the photo's edge, the crop mirrors it)."""
    left, top, right, bottom = hole_box(hole)
    side = max(2.0 * max(right - left, bottom - top), 64.0)
    corner = []
    for low, high, extent in ((left, right, hole.shape[1]), (top, bottom, hole.shape[0])):
        centred = (low + high - side) / 2
        corner.append(min(max(centred, 0.0), extent - side) if side <= extent else (extent - side) / 2)
    zoom = size / side
    return np.array([[zoom, 0.0, -corner[0] * zoom], [0.0, zoom, -corner[1] * zoom]])


def hole_inside_crop(hole: np.ndarray, transform: np.ndarray, size: int) -> bool:
    """Whether every hole pixel of `hole` `(H, W)` bool lands inside the `size` crop of `transform`. The crop is
    convex, so each row's first and last hole pixel decide."""
    rows = np.flatnonzero(hole.any(axis=1))
    row_holes = hole[rows]
    first = row_holes.argmax(axis=1)
    last = hole.shape[1] - 1 - row_holes[:, ::-1].argmax(axis=1)
    xs, ys = np.concatenate([first, last]), np.concatenate([rows, rows])
    crop_xy = np.asarray(transform, dtype=np.float64) @ np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
    return bool(((crop_xy >= -0.5) & (crop_xy <= size - 0.5)).all())


def frame(photo: np.ndarray, hole: np.ndarray, size: int, max_side: int = DETECTION_SIDE) -> Frame:
    """Where the models look at `photo` `(H, W, 3)` uint8 with `hole` `(H, W)` bool (not empty): the face the hole
    overlaps most, aligned to the training framing (`UTKFACE_FRAMING`) on a `size` crop; a square around the hole
    (`square_around`) when no face is found or the hole reaches outside the aligned crop. Decided on the known
    pixels only (`find_landmarks`)."""
    landmarks, found_on = find_landmarks(photo, hole, max_side)
    if landmarks is None:
        return Frame(square_around(hole, size), None, "no face", None)
    transform = aligned_transform(landmarks, size)
    if hole_inside_crop(hole, transform, size):
        return Frame(transform, landmarks, "aligned", found_on)
    return Frame(square_around(hole, size), landmarks, "hole outside face", found_on)


def crop_known(photo: np.ndarray, hole: np.ndarray, transform: np.ndarray, size: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The `size` crop of `photo` `(H, W, 3)` uint8 under `transform`, and its hole → (`(size, size, 3)` uint8,
    `(size, size)` float32 {0, 1}).

    The hole is blanked before any resampling and its mask goes through the same resampling, mirrored at the
    photo's edge as the image is, so no known crop pixel holds anything of what lies under the hole. Only the part
    of the photo the crop reads is resampled, and a crop smaller than that part is first area-averaged down to about
    the crop's scale (no aliasing, and a cost that follows the crop, not the photo).
    """
    height, width = hole.shape
    corners = invert_transform(transform) @ np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1],
                                                     [-0.5, size - 0.5, 1], [size - 0.5, size - 0.5, 1]]).T
    margin = 3  # bicubic reads two pixels beyond a sample; one more for rounding
    (x0, y0), (x1, y1) = np.floor(corners.min(axis=1)) - margin, np.ceil(corners.max(axis=1)) + margin
    # Mirrored reads beyond an edge come from as far inside it as they lie outside: keep those pixels too.
    left, right = int(max(0, min(x0, 2 * (width - 1) - x1))), int(min(width - 1, max(x1, -x0)))
    top, bottom = int(max(0, min(y0, 2 * (height - 1) - y1))), int(min(height - 1, max(y1, -y0)))
    region, region_hole = photo[top:bottom + 1, left:right + 1], hole[top:bottom + 1, left:right + 1]
    region_height, region_width = region_hole.shape
    zoom = float(np.sqrt(abs(np.linalg.det(np.asarray(transform, dtype=np.float64)[:, :2]))))
    if zoom < 1.0:
        shrunk = (max(1, round(region_width * zoom)), max(1, round(region_height * zoom)))
        fx, fy = shrunk[0] / region_width, shrunk[1] / region_height
        region = cv2.resize(region, shrunk, interpolation=cv2.INTER_AREA)
        region_hole = cv2.resize(region_hole.astype(np.float32), shrunk, interpolation=cv2.INTER_AREA) > 0
    else:
        fx = fy = 1.0
        region = region.copy()
    region[region_hole] = 0
    # photo pixel (x, y) → region pixel ((x - left + 0.5) fx - 0.5, (y - top + 0.5) fy - 0.5)
    to_region = np.array([[fx, 0.0, (0.5 - left) * fx - 0.5], [0.0, fy, (0.5 - top) * fy - 0.5]])
    region_to_crop = np.asarray(transform, dtype=np.float64) @ np.vstack([invert_transform(to_region), [0, 0, 1]])
    crop = cv2.warpAffine(np.ascontiguousarray(region), region_to_crop, (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)
    return crop, warp_mask_to_aligned(region_hole, region_to_crop, size)


def mask_from_aligned(mask: np.ndarray, transform: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """A hole `(S, S)` drawn on the aligned crop, in the photo → `(H, W)` bool (nearest neighbour; nothing outside
    the crop). `original_size`: `(width, height)` of the photo."""
    mask = (np.asarray(mask) > 0.5).astype(np.uint8)
    return cv2.warpAffine(mask, invert_transform(transform), tuple(original_size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0


# ---------------------------------------------------------------------------------------------------------------------
# Feature masks


def feature_mask(landmarks: np.ndarray, size: int | tuple[int, int], part: FacePart,
                 margin: float = 0.15) -> np.ndarray:
    """A hole over one facial part, from the 68 landmarks → `(H, W)` float32 in {0, 1}, 1 = hole.

    The hole is the convex hull of the part's landmarks — each eye (36-41, 42-47) on its own, the nose (27-35), the
    outer lips (48-59) — dilated by `margin` times the distance between the eye centres (an elliptic kernel), so it
    scales with the face. `size`: the image's side or `(H, W)`; `landmarks` are pixels of that image.
    """
    landmarks = _check_landmarks(landmarks)
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
