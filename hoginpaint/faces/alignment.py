"""Alignment: a face warped into the training data's framing, and everything warped back into the photo.

`align_face` maps a face onto the framing of the training data: UTKFace's "aligned & cropped" faces, tight 200x200
crops. The framing constants (`UTKFACE_FRAMING`) were measured with the 68-point model on the first 50 training faces
in which dlib finds a face (`train-00000-of-00008.parquet`, detector upsampled once), as fractions of the side (x
right, y down), mean ± standard deviation:

- centre of the left eye in the image (points 36-41): (0.297 ± 0.016, 0.298 ± 0.013)
- centre of the right eye in the image (points 42-47): (0.683 ± 0.015, 0.297 ± 0.012)
- centre of the mouth (points 48-67): (0.490 ± 0.008, 0.710 ± 0.010)
- so: eye distance 0.386 ± 0.022 of the side, eye line tilted -0.1 ± 2.6 degrees, chin (point 8) at y = 0.985.

A transform is a `(2, 3)` float64 affine map of photo pixels onto crop pixels (OpenCV's `warpAffine` convention).
Back into the photo: `unwarp_from_aligned`, `paste_aligned` / `paste_into` (only the hole's pixels change), and
`mask_from_aligned` / `warp_mask_to_aligned` for holes. Images as in `hoginpaint.faces.landmarks`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from hoginpaint.faces.landmarks import FaceBox, RGBImage, anchor_points, check_landmarks, landmarks68, to_rgb_array


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


def aligned_transform(landmarks: np.ndarray, size: int, framing: Framing = UTKFACE_FRAMING) -> np.ndarray:
    """The `(2, 3)` map of photo pixels onto the `size` crop in which the face of `landmarks` `(68, 2)` sits in
    `framing` (what `align_face` warps with)."""
    return _similarity(anchor_points(landmarks), framing.points(size))


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
        landmarks = check_landmarks(box_or_landmarks)
    transform = aligned_transform(landmarks, size, framing)
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


def mask_from_aligned(mask: np.ndarray, transform: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """A hole `(S, S)` drawn on the aligned crop, in the photo → `(H, W)` bool (nearest neighbour; nothing outside
    the crop). `original_size`: `(width, height)` of the photo."""
    mask = (np.asarray(mask) > 0.5).astype(np.uint8)
    return cv2.warpAffine(mask, invert_transform(transform), tuple(original_size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
