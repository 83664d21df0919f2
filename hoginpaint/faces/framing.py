"""Framing a damaged photo for the models: where the crop lies is decided, and the crop resampled, from the known
pixels only, so nothing under the hole reaches the models.

`frame(photo, hole, size)` finds the face the hole overlaps most (`find_landmarks`, on classical fills of the hole)
and returns the map onto the `size` crop in the training framing (`hoginpaint.faces.alignment`); when the hole reaches
outside that crop, the whole image if it is a face crop (`whole_image_square`, CelebA's loose framing), else a square
around the hole (`square_around`), as when there is no face. `crop_known` cuts that crop with the hole blanked before
any resampling; `hoginpaint.faces.alignment.paste_into` puts the result back.
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

from hoginpaint.faces.alignment import aligned_transform, hole_box, invert_transform, warp_mask_to_aligned
from hoginpaint.faces.landmarks import (
    FACE_CROP_MAX_ASPECT,
    FACE_CROP_THRESHOLD,
    FaceBox,
    detect_faces,
    fills_face_crop,
    landmarks68,
)
from hoginpaint.prefill import prefill_around_hole

DETECTION_SIDE = 800  # faces are looked for on a copy this size at most: the cost follows the face, not the photo
# Score a detection on the filled photo needs when the hole overlaps it (a face the hole partly hides).
HIDDEN_FACE_THRESHOLD = -0.3

FrameKind = Literal["aligned", "face crop", "hole outside face", "no face"]
FoundOn = Literal["photo", "fill", "face crop"]


@dataclass(frozen=True)
class Frame:
    """Where the models look: `transform` `(2, 3)` maps photo pixels onto the square crop; `landmarks` `(68, 2)`
    are the face's in photo pixels, or None. `kind`: "aligned" (the face in the training framing), "face crop" (the
    photo is a face crop and the hole reaches outside the aligned crop: the whole photo, `whole_image_square`), "hole
    outside face" (a face was found but the hole reaches outside its aligned crop: a square around the hole), "no
    face" (a square around the hole). `found_on`: where the face was found — "fill" (the photo with its hole filled by
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


Fill = Literal["telea", "biharmonic"]


@dataclass(frozen=True)
class _KnownPixels:
    """The photo shrunk for detection with its hole blanked (`shrink_known`), and Telea's fill of the hole; the
    biharmonic fill and the faces on each fill are computed when first asked for.

    The detector runs once per fill, at the lowest threshold any source asks of it (`_all_boxes`); each source then
    keeps the boxes that reach its own threshold. dlib keeps a detection unless a better-scoring one overlaps it, so
    the boxes of one run that reach a threshold are exactly those of a run at that threshold (checked on Telea's fills
    of 240 holes in real faces at four thresholds: the same boxes, scores and order). Three runs at most (the two
    fills and the white hole) instead of one per source and threshold (five).
    """

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

    @functools.cached_property
    def about_square(self) -> bool:
        """Whether the photo may be a face crop (`face_crop_boxes`'s test): only then are weaker boxes asked for."""
        height, width = self.hole.shape
        return max(height, width) <= FACE_CROP_MAX_ASPECT * min(height, width)

    @functools.cached_property
    def _lowest_threshold(self) -> float:
        return min(2 * HIDDEN_FACE_THRESHOLD, 2 * FACE_CROP_THRESHOLD if self.about_square else 0.0)

    @functools.cached_property
    def _telea_boxes(self) -> list[FaceBox]:
        return detect_faces(self.telea, threshold=self._lowest_threshold)

    @functools.cached_property
    def _biharmonic_boxes(self) -> list[FaceBox]:
        return detect_faces(self.biharmonic, threshold=self._lowest_threshold)

    def _all_boxes(self, fill: Fill) -> list[FaceBox]:
        """Every face dlib finds on `fill` down to the lowest threshold a source asks for, largest first."""
        return self._telea_boxes if fill == "telea" else self._biharmonic_boxes

    def faces(self, fill: Fill) -> list[FaceBox]:
        """`detect_faces(fill, threshold=2 * HIDDEN_FACE_THRESHOLD)`, largest first: down to the lowest score of
        the other fill that can still agree (`_agreed`)."""
        return [box for box in self._all_boxes(fill) if box.score >= 2 * HIDDEN_FACE_THRESHOLD]

    def face_crop_boxes(self, fill: Fill) -> list[FaceBox]:
        """`face_crop_boxes(fill, threshold=2 * FACE_CROP_THRESHOLD)`: the weak boxes that fill the photo as the
        face of a face crop fills it, best first; [] when the photo is not about square."""
        if not self.about_square:
            return []
        height, width = self.hole.shape
        boxes = [box for box in self._all_boxes(fill)
                 if box.score >= 2 * FACE_CROP_THRESHOLD and fills_face_crop(box, height, width)]
        return sorted(boxes, key=lambda box: box.score, reverse=True)


def _same_place(box: FaceBox, other: FaceBox) -> bool:
    """Whether two boxes mark the same face: intersection over union at least 1/2."""
    width = min(box.right, other.right) - max(box.left, other.left) + 1
    height = min(box.bottom, other.bottom) - max(box.top, other.top) + 1
    shared = max(width, 0) * max(height, 0)
    return 2 * shared >= box.area + other.area - shared


def _best_at_same_place(box: FaceBox, other_fill_faces: list[FaceBox]) -> FaceBox | None:
    """The best-scoring face of the other fill at the same place as `box` (`_same_place`), or None."""
    there = [other for other in other_fill_faces if _same_place(box, other)]
    return max(there, key=lambda other: other.score) if there else None


def _agreed(box: FaceBox, other_fill_faces: list[FaceBox]) -> bool:
    """Whether the two fills together score a weak face at the hidden-face threshold: the mean of `box`'s score and
    the best score of a face at the same place on the other fill reaches HIDDEN_FACE_THRESHOLD."""
    other = _best_at_same_place(box, other_fill_faces)
    return other is not None and (box.score + other.score) / 2 >= HIDDEN_FACE_THRESHOLD


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
    telea_faces = known.faces("telea")
    needs_agreement = any(HIDDEN_FACE_THRESHOLD <= box.score < 0 and known.mostly_hidden(box) for box in telea_faces)
    return known.telea, _faces_on_fill(known, telea_faces, known.faces("biharmonic") if needs_agreement else [])


def _on_biharmonic_fill(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    return known.biharmonic, _faces_on_fill(known, known.faces("biharmonic"), known.faces("telea"))


def _on_white_hole(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    """The damaged photo as its owner sees it, the hole white (nothing new without a hole); landmarks on Telea's.
    A box mostly white is a face the hole's outline makes (in noise, +0.26), not one the photo shows."""
    if not known.hole.any():
        return known.telea, []
    white = np.where(known.hole[..., None], np.uint8(255), known.photo)
    return known.telea, [box for box in detect_faces(white) if not known.mostly_hidden(box)]


def _as_face_crop(known: _KnownPixels) -> tuple[np.ndarray, list[FaceBox]]:
    """The weak box of a face crop (`face_crop_boxes`) that the two fills together score at FACE_CROP_THRESHOLD: the
    mean of its score on one fill and the best score at the same place on the other reaches it, as `_agreed` asks of
    a hidden face. Of the best such pair, the box of the higher score, on its fill (where the detector sees the face
    best). One fill alone took a round fundus photograph and noise for faces; asking each fill to reach the threshold
    refused a face whose eye and mouth the hole covers (-0.64 on the biharmonic fill, -1.06 on Telea's).

    Measured with `scripts/framing_study.py` (30 CelebA and 30 UTKFace validation faces under an NVIDIA hole of each
    of the 40-50 % and 50-60 % buckets, burned in white; 18 face-less images under 12 holes of 10-60 %), before (each
    fill at -1.0 or more, landmarks on Telea's fill) → after: faces framed 29 → 29, 13 → 14, 30 → 30, 22 → 22 of 30
    (CelebA 40-50 %, 50-60 %, UTKFace 40-50 %, 50-60 %); anchor errors over 8 % of the side 0, 2, 0, 5 → 0, 2, 0, 4;
    faces invented under 21 → 21 of 216 holes (the same holes). The five EdgeConnect-like examples of
    `tests/faces/test_faces.py`: 4 → 5 found.
    """
    telea_boxes = known.face_crop_boxes("telea")
    if not telea_boxes:  # not square, or no weak box filling it: no pair, the second fill is not needed
        return known.telea, []
    biharmonic_boxes = known.face_crop_boxes("biharmonic")
    pairs = []  # (mean score, Telea's box, the biharmonic fill's best box at the same place)
    for box in telea_boxes:
        if (other := _best_at_same_place(box, biharmonic_boxes)) is not None:
            pairs.append(((box.score + other.score) / 2, box, other))
    if not pairs:
        return known.telea, []
    mean, telea_box, biharmonic_box = max(pairs, key=lambda pair: pair[0])
    if mean < FACE_CROP_THRESHOLD:
        return known.telea, []
    if telea_box.score >= biharmonic_box.score:
        return known.telea, [telea_box]
    return known.biharmonic, [biharmonic_box]


_DETECTION_SOURCES: tuple[tuple[FoundOn, Callable[[_KnownPixels], tuple[np.ndarray, list[FaceBox]]]], ...] = (
    ("fill", _on_telea_fill),
    ("fill", _on_biharmonic_fill),
    ("photo", _on_white_hole),
    ("face crop", _as_face_crop),
)


@dataclass(frozen=True)
class _Face:
    landmarks: np.ndarray  # (68, 2) photo pixels
    found_on: FoundOn
    fills_image: bool  # its box is the face of a face crop (`fills_face_crop`)


def _find_face(photo: np.ndarray, hole: np.ndarray, max_side: int) -> _Face | None:
    """`find_landmarks`, with whether the face's box makes the photo a face crop."""
    small, small_hole, scale = shrink_known(photo, hole, max_side)
    known = _KnownPixels(small, small_hole, fill_hole(small, small_hole, "telea"))
    candidates: list[tuple[FaceBox, FoundOn, np.ndarray]] = []
    for found_on, source in _DETECTION_SOURCES:
        fill, boxes = source(known)
        candidates += [(box, found_on, fill) for box in boxes]
        if any(known.overlap(box) for box in boxes) or (boxes and not small_hole.any()):
            break
    if not candidates:
        return None
    overlaps = [known.overlap(box) for box, _, _ in candidates]
    box, found_on, fill = candidates[int(np.argmax(overlaps))]  # the first of the largest overlaps
    return _Face((landmarks68(fill, box) + 0.5) / scale - 0.5, found_on, fills_face_crop(box, *small_hole.shape))


def find_landmarks(photo: np.ndarray, hole: np.ndarray, max_side: int = DETECTION_SIDE
                   ) -> tuple[np.ndarray | None, FoundOn | None]:
    """The 68 landmarks of the face the hole overlaps most, from the known pixels of `photo` `(H, W, 3)` uint8 only
    → (`(68, 2)` photo pixels or None, where the face was found).

    Looked for on a copy at most `max_side` on its longer side, source after source (`_DETECTION_SOURCES`) until one
    gives a face the hole overlaps (failing that, the first face found): on two classical fills of the hole, Telea's
    and the biharmonic one (a face whose eyes the hole covers is still a face there; a weak one mostly inside the
    hole only where both fills show it), then with the hole white (the damaged photo as its owner sees it; not a box
    mostly white), then, for an image that is a face crop, on the fills with a lowered threshold (`face_crop_boxes`,
    a box the two fills together score at `FACE_CROP_THRESHOLD`). The landmarks are predicted on the fill the face
    was found on: what the hole hides never moves them.
    """
    face = _find_face(photo, hole, max_side)
    return (None, None) if face is None else (face.landmarks, face.found_on)


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


def whole_image_square(hole: np.ndarray, size: int) -> np.ndarray | None:
    """The image's centred square (all of a square image), moved along the longer side as far as the hole `(H, W)`
    bool needs → `(2, 3)` map onto the `size` x `size` crop, pixel edges onto pixel edges (a square image is resized
    as a whole); None when the hole spans more of the longer side than the square holds."""
    height, width = hole.shape
    side = min(height, width)
    left, top, right, bottom = hole_box(hole)
    corner = []
    for low, high, extent in ((left, right, width), (top, bottom, height)):
        if high - low > side:
            return None
        corner.append(min(max((extent - side) // 2, high - side), low))
    zoom = size / side
    # photo pixel x → crop pixel (x + 0.5 - corner) zoom - 0.5
    return np.array([[zoom, 0.0, (0.5 - corner[0]) * zoom - 0.5], [0.0, zoom, (0.5 - corner[1]) * zoom - 0.5]])


def frame(photo: np.ndarray, hole: np.ndarray, size: int, max_side: int = DETECTION_SIDE) -> Frame:
    """Where the models look at `photo` `(H, W, 3)` uint8 with `hole` `(H, W)` bool (not empty), decided on the known
    pixels only (`find_landmarks`): the face the hole overlaps most, aligned to the training framing
    (`UTKFACE_FRAMING`) on a `size` crop, the tightest framing the models learnt, which gives the face the most
    pixels. When the hole reaches outside that crop: the whole photo (`whole_image_square`) if the photo is a face
    crop (`fills_face_crop`: about square, the face's box filling it), the looser framing they learnt from CelebA's
    `img_align_celeba` crops and are evaluated on; else, or when no face is found, a square around the hole
    (`square_around`).

    In the whole-photo framing the landmarks only serve the identity descriptors and the eyes, nose and mouth holes:
    the crop does not depend on them, and under a hole that covers an eye and the mouth they can be far off (the
    second EdgeConnect-like example of `tests/faces/test_faces.py`: the mouth 32 px, 12 % of the side, from the intact
    face's).

    Measured with `scripts/framing_study.py` (see `_as_face_crop`), frame kinds before → after: CelebA under 40-50 %
    holes 29 "hole outside face" → 29 "face crop" (1 "no face" both); under 50-60 %, 13 "hole outside face" → 13
    "face crop" and 1 "hole outside face" (a small false face a fill makes near a corner, 56 % off, found before
    too; not a face-crop box), 17 → 16 "no face"; UTKFace under 40-50 %, 17 "aligned" and 13 "hole outside face" →
    17 "aligned" and 13 "face crop"; under 50-60 %, 9 "aligned", 13 "hole outside face", 8 "no face" → 9, 13 "face
    crop", 8. Of the 21 faces invented on 216 face-less holes (unchanged), one (the fundus photograph, a square
    bright disc) is now framed whole instead of a square around the hole."""
    face = _find_face(photo, hole, max_side)
    if face is None:
        return Frame(square_around(hole, size), None, "no face", None)
    transform = aligned_transform(face.landmarks, size)
    if hole_inside_crop(hole, transform, size):
        return Frame(transform, face.landmarks, "aligned", face.found_on)
    if face.fills_image and (whole := whole_image_square(hole, size)) is not None:
        return Frame(whole, face.landmarks, "face crop", face.found_on)
    return Frame(square_around(hole, size), face.landmarks, "hole outside face", face.found_on)


def crop_known(photo: np.ndarray, hole: np.ndarray, transform: np.ndarray, size: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The `size` crop of `photo` `(H, W, 3)` uint8 under `transform`, and its hole → (`(size, size, 3)` uint8,
    `(size, size)` float32 {0, 1}).

    The hole is blanked before any resampling and its mask goes through the same resampling, mirrored at the
    photo's edge as the image is, so no known crop pixel holds anything of what lies under the hole. Only the part
    of the photo the crop reads is resampled, and a crop smaller than that part is first area-averaged down to about
    the crop's scale (no aliasing, and a cost that follows the crop, not the photo).
    """
    rows, columns = _read_window(hole.shape, transform, size)
    crop, region_hole, region_to_crop = _resample(photo[rows, columns], hole[rows, columns],
                                                  (columns.start, rows.start), transform, size)
    return crop, warp_mask_to_aligned(region_hole, region_to_crop, size)


Patch = tuple[tuple[slice, slice], np.ndarray]


def crop_view(photo: np.ndarray, transform: np.ndarray, size: int, patch: Patch | None = None) -> np.ndarray:
    """The `size` crop of `photo` `(H, W, 3)` uint8 under `transform` as the photo shows it, hole and all: a result
    seen in the framing the models saw (`crop_known` is what they get) → `(size, size, 3)` uint8. `patch`:
    `((rows, columns), pixels)`, pixels `(h, w, 3)` uint8 that stand in for the photo's window `photo[rows,
    columns]` (a result held as the window it changed). Resampled as `crop_known` resamples."""
    rows, columns = _read_window(photo.shape[:2], transform, size)
    region = photo[rows, columns]
    if patch is not None:
        (patch_rows, patch_columns), pixels = patch
        top, bottom = max(patch_rows.start, rows.start), min(patch_rows.stop, rows.stop)
        left, right = max(patch_columns.start, columns.start), min(patch_columns.stop, columns.stop)
        if top < bottom and left < right:
            region = region.copy()
            source = pixels[top - patch_rows.start:bottom - patch_rows.start,
                            left - patch_columns.start:right - patch_columns.start]
            region[top - rows.start:bottom - rows.start, left - columns.start:right - columns.start] = source
    return _resample(region, None, (columns.start, rows.start), transform, size)[0]


def _read_window(shape: tuple[int, int], transform: np.ndarray, size: int) -> tuple[slice, slice]:
    """The rows and columns of a photo of `shape` `(H, W)` that the `size` crop under `transform` reads: its
    outline, the bicubic kernel's reach, and the pixels its mirrored reads beyond an edge come from."""
    height, width = shape
    corners = invert_transform(transform) @ np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1],
                                                     [-0.5, size - 0.5, 1], [size - 0.5, size - 0.5, 1]]).T
    margin = 3  # bicubic reads two pixels beyond a sample; one more for rounding
    (x0, y0), (x1, y1) = np.floor(corners.min(axis=1)) - margin, np.ceil(corners.max(axis=1)) + margin
    # Mirrored reads beyond an edge come from as far inside it as they lie outside: keep those pixels too.
    left, right = int(max(0, min(x0, 2 * (width - 1) - x1))), int(min(width - 1, max(x1, -x0)))
    top, bottom = int(max(0, min(y0, 2 * (height - 1) - y1))), int(min(height - 1, max(y1, -y0)))
    return slice(top, bottom + 1), slice(left, right + 1)


def _resample(region: np.ndarray, region_hole: np.ndarray | None, origin: tuple[int, int], transform: np.ndarray,
              size: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The `size` crop under `transform` of `region` `(h, w, 3)` uint8, the photo's pixels from `origin` `(x, y)`
    on; with `region_hole` `(h, w)` bool, the hole blanked first → (crop, the hole as resampled, region → crop
    map)."""
    left, top = origin
    region_height, region_width = region.shape[:2]
    zoom = float(np.sqrt(abs(np.linalg.det(np.asarray(transform, dtype=np.float64)[:, :2]))))
    if zoom < 1.0:
        shrunk = (max(1, round(region_width * zoom)), max(1, round(region_height * zoom)))
        fx, fy = shrunk[0] / region_width, shrunk[1] / region_height
        region = cv2.resize(region, shrunk, interpolation=cv2.INTER_AREA)
        if region_hole is not None:
            region_hole = cv2.resize(region_hole.astype(np.float32), shrunk, interpolation=cv2.INTER_AREA) > 0
    else:
        fx = fy = 1.0
        if region_hole is not None:
            region = region.copy()
    if region_hole is not None:
        region[region_hole] = 0
    # photo pixel (x, y) → region pixel ((x - left + 0.5) fx - 0.5, (y - top + 0.5) fy - 0.5)
    to_region = np.array([[fx, 0.0, (0.5 - left) * fx - 0.5], [0.0, fy, (0.5 - top) * fy - 0.5]])
    region_to_crop = np.asarray(transform, dtype=np.float64) @ np.vstack([invert_transform(to_region), [0, 0, 1]])
    crop = cv2.warpAffine(np.ascontiguousarray(region), region_to_crop, (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)
    return crop, region_hole, region_to_crop
