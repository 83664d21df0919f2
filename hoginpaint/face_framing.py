"""Framing a damaged photo for the models: where the crop lies is decided, and the crop resampled, from the known
pixels only, so nothing under the hole reaches the models.

`frame(photo, hole, size)` finds the face the hole overlaps most (`find_landmarks`, on classical fills of the hole)
and returns the map onto the `size` crop in the training framing (`hoginpaint.face_alignment`), or a square around
the hole (`square_around`) when there is no face or the hole reaches outside the aligned crop. `crop_known` cuts that
crop with the hole blanked before any resampling; `hoginpaint.face_alignment.paste_into` puts the result back.
Photos are uint8 `(H, W, 3)` arrays and holes bool `(H, W)` arrays (True = hole), in photo pixels.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from hoginpaint.face_alignment import aligned_transform, hole_box, invert_transform, warp_mask_to_aligned
from hoginpaint.face_landmarks import FaceBox, detect_faces, face_crop_boxes, landmarks68
from hoginpaint.prefill import prefill_around_hole

DETECTION_SIDE = 800  # faces are looked for on a copy this size at most: the cost follows the face, not the photo
# Score a detection on the filled photo needs when the hole overlaps it (a face the hole partly hides).
HIDDEN_FACE_THRESHOLD = -0.3

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
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255  # (3, H, W)
    mask = torch.from_numpy(hole)[None].float()  # (1, H, W)
    filled = prefill_around_hole(image, mask, "biharmonic", iterations=150)
    return (filled.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


# Where find_landmarks looks, in order. Each takes the shrunk photo and returns the image the landmarks are predicted
# on and the faces found; a face the hole partly hides scores lower, so on the fills a weak detection counts where the
# hole overlaps it.


@dataclass(frozen=True)
class _KnownPixels:
    """The photo shrunk for detection with its hole blanked (`shrink_known`), and Telea's fill of the hole; the
    biharmonic fill and the weak faces on each fill are computed when first asked for."""

    photo: np.ndarray  # (h, w, 3) uint8, black in the hole
    hole: np.ndarray  # (h, w) bool
    telea: np.ndarray  # (h, w, 3) uint8

    def _hole_in(self, box: FaceBox) -> np.ndarray:
        return self.hole[max(box.top, 0):box.bottom + 1, max(box.left, 0):box.right + 1]

    def overlap(self, box: FaceBox) -> int:
        """How many hole pixels lie in `box`."""
        return np.count_nonzero(self._hole_in(box))

    def mostly_hidden(self, box: FaceBox) -> bool:
        """Whether the hole covers at least half of the part of `box` inside the photo."""
        hole = self._hole_in(box)
        return 2 * np.count_nonzero(hole) >= hole.size

    @functools.cached_property
    def biharmonic(self) -> np.ndarray:
        return fill_hole(self.photo, self.hole, "biharmonic")

    # Down to twice the hidden-face threshold: the lowest score of the other fill that can still agree (`_agreed`).
    @functools.cached_property
    def telea_faces(self) -> list[FaceBox]:
        return detect_faces(self.telea, threshold=2 * HIDDEN_FACE_THRESHOLD)

    @functools.cached_property
    def biharmonic_faces(self) -> list[FaceBox]:
        return detect_faces(self.biharmonic, threshold=2 * HIDDEN_FACE_THRESHOLD)


def _same_place(box: FaceBox, other: FaceBox) -> bool:
    """Whether two boxes mark the same face: intersection over union at least 1/2."""
    width = min(box.right, other.right) - max(box.left, other.left) + 1
    height = min(box.bottom, other.bottom) - max(box.top, other.top) + 1
    shared = max(width, 0) * max(height, 0)
    return 2 * shared >= box.area + other.area - shared


def _agreed(box: FaceBox, other_fill_faces: list[FaceBox]) -> bool:
    """Whether the two fills together score a weak face at the hidden-face threshold: the mean of `box`'s score and
    the best score of a face at the same place on the other fill reaches HIDDEN_FACE_THRESHOLD."""
    there = [other.score for other in other_fill_faces if _same_place(box, other)]
    return bool(there) and (box.score + max(there)) / 2 >= HIDDEN_FACE_THRESHOLD


def _faces_on_fill(known: _KnownPixels, fill_faces: list[FaceBox], other_fill_faces: list[FaceBox]
                   ) -> list[FaceBox]:
    """The faces of one fill that count: those scoring 0 or more (dlib's own threshold), and weaker ones down to
    HIDDEN_FACE_THRESHOLD that the hole overlaps (a face it partly hides) — when the hole covers less than half of
    the box, or else when the other fill agrees (`_agreed`): a box mostly of fill is a face of the fill's making
    unless both fills, which invent differently, show it.

    Measured with NVIDIA holes of 10-60 % (`find_landmarks`, all sources): on 18 images without a face (scikit-image's
    photographs and textures, flat, noise; 12 holes each) a face was invented under 40 of 216 holes before this rule
    and the two below (white hole, face crop), 27 after; on 57 CelebA faces every face found before under 171
    irregular holes (159) and 171 eye, nose and mouth holes (all) is found after. The README example's stroke across
    the nose: the face scores -0.10 on the biharmonic fill with 39 % of its box hidden (Telea's: none), false faces
    elsewhere +0.17.
    """
    return [box for box in fill_faces if box.score >= HIDDEN_FACE_THRESHOLD and (
        box.score >= 0 or (known.overlap(box) and (not known.mostly_hidden(box) or _agreed(box, other_fill_faces))))]


def _on_telea_fill(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    # The biharmonic fill only when a weak face needs its agreement.
    needs_agreement = any(HIDDEN_FACE_THRESHOLD <= box.score < 0 and known.mostly_hidden(box)
                          for box in known.telea_faces)
    return known.telea, _faces_on_fill(known, known.telea_faces, known.biharmonic_faces if needs_agreement else [])


def _on_biharmonic_fill(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    return known.biharmonic, _faces_on_fill(known, known.biharmonic_faces, known.telea_faces)


def _on_white_hole(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    """The damaged photo as its owner sees it, the hole white (nothing new without a hole); landmarks on Telea's.
    A box mostly white is a face the hole's outline makes (in noise, +0.26), not one the photo shows."""
    if not known.hole.any():
        return known.telea, []
    white = np.where(known.hole[..., None], np.uint8(255), known.photo)
    return known.telea, [box for box in detect_faces(white) if not known.mostly_hidden(box)]


def _as_face_crop(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    """The best weak box of a face crop on Telea's fill that the biharmonic fill shows too (a face-crop box at the
    same place): alone, it took a round fundus photograph and noise for faces."""
    boxes = face_crop_boxes(known.telea)
    if not boxes:  # not square, or no weak box filling it: the second fill is not needed
        return known.telea, []
    confirming = face_crop_boxes(known.biharmonic)
    return known.telea, [box for box in boxes if any(_same_place(box, other) for other in confirming)][:1]


_DETECTION_SOURCES: tuple[tuple[FoundOn, Callable[[_KnownPixels], tuple[np.ndarray, list[FaceBox]]]], ...] = (
    ("fill", _on_telea_fill),
    ("fill", _on_biharmonic_fill),
    ("photo", _on_white_hole),
    ("face crop", _as_face_crop),
)


def find_landmarks(photo: np.ndarray, hole: np.ndarray, max_side: int = DETECTION_SIDE
                   ) -> tuple[np.ndarray | None, FoundOn | None]:
    """The 68 landmarks of the face the hole overlaps most, from the known pixels of `photo` `(H, W, 3)` uint8 only
    → (`(68, 2)` photo pixels or None, where the face was found).

    Looked for on a copy at most `max_side` on its longer side, source after source (`_DETECTION_SOURCES`) until one
    gives a face the hole overlaps (failing that, the first face found): on two classical fills of the hole, Telea's
    and the biharmonic one (a face whose eyes the hole covers is still a face there; a weak one mostly inside the
    hole only where both fills show it), then with the hole white (the damaged photo as its owner sees it; not a box
    mostly white), then, for an image that is a face crop, on the fill with a lowered threshold (`face_crop_boxes`,
    a box both fills give). The landmarks are predicted on the fill the face was found on: what the hole hides never
    moves them.
    """
    small, small_hole, scale = shrink_known(photo, hole, max_side)
    known = _KnownPixels(small, small_hole, fill_hole(small, small_hole, "telea"))
    candidates: list[tuple[FaceBox, FoundOn, np.ndarray]] = []
    for found_on, source in _DETECTION_SOURCES:
        fill, boxes = source(known)
        candidates += [(box, found_on, fill) for box in boxes]
        if any(known.overlap(box) for box in boxes) or (boxes and not small_hole.any()):
            break
    if not candidates:
        return None, None
    overlaps = [known.overlap(box) for box, _, _ in candidates]
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
