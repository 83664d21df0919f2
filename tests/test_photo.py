"""`hoginpaint.photo`: any photo → the face found and framed, the methods run on the crop, the hole pasted back."""
from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from hoginpaint import faces, masks, methods, photo
from hoginpaint.faces.framing import crop_view
from hoginpaint.photo import ALIGNED_NOTE, FRAME_NOTES, OUTSIDE_NOTE, WHOLE_PHOTO_NOTE, inpaint_photo
from tests.test_app import ASTRONAUT, ASTRONAUT_MASK

SIZE = 64  # the tiny random model's resolution: the crop's side


@pytest.fixture(scope="module")
def methods_to_run() -> dict:
    """A tiny random HOG-guided model and Telea, in that order."""
    hog = methods.load("hoginpaint", random_init=True, base_channels=8, residual_blocks=1, resolution=SIZE, seed=0)
    return {"hoginpaint": hog, "telea": methods.load("telea")}


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """The example photo `(512, 512, 3)` uint8 and its hole `(512, 512)` bool (over the face)."""
    return np.asarray(Image.open(ASTRONAUT).convert("RGB")), np.asarray(Image.open(ASTRONAUT_MASK).convert("L")) > 127


@pytest.fixture(scope="module")
def astronaut_result(methods_to_run, astronaut) -> photo.PhotoResult:
    return inpaint_photo(methods_to_run, ASTRONAUT, ASTRONAUT_MASK)


def test_only_the_hole_changes(astronaut_result, astronaut):
    pixels, hole = astronaut
    np.testing.assert_array_equal(astronaut_result.photo, pixels)
    np.testing.assert_array_equal(astronaut_result.hole, hole)
    ys, xs = np.nonzero(hole)
    assert astronaut_result.window == (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    for name in ("hoginpaint", "telea"):
        image = astronaut_result.image(name)
        assert image.shape == pixels.shape and image.dtype == np.uint8
        np.testing.assert_array_equal(image[~hole], pixels[~hole])
        assert (image[hole] != pixels[hole]).any(axis=-1).mean() > 0.5  # filled, not copied
    masked = astronaut_result.image()
    np.testing.assert_array_equal(masked[hole], 255)
    np.testing.assert_array_equal(masked[~hole], pixels[~hole])


def test_matches_pasting_into_the_whole_photo(methods_to_run, astronaut_result, astronaut):
    # The reference: frame, crop, run, and paste into a full-size copy of the photo, measuring identities on copies.
    pixels, hole = astronaut
    framed = faces.frame(pixels, hole, SIZE)
    np.testing.assert_array_equal(astronaut_result.frame.transform, framed.transform)
    np.testing.assert_array_equal(astronaut_result.frame.landmarks, framed.landmarks)
    crop, crop_hole = faces.crop_known(pixels, hole, framed.transform, SIZE)
    region = (slice(0, 512), slice(0, 512))
    low, high = framed.landmarks.min(axis=0), framed.landmarks.max(axis=0)
    left, top = np.maximum(np.floor(low - (high - low)), 0).astype(int)
    right, bottom = np.minimum(np.ceil(high + (high - low)) + 1, 512).astype(int)
    region, shifted = (slice(top, bottom), slice(left, right)), framed.landmarks - (left, top)
    reference = faces.face_descriptor(pixels[region], landmarks=shifted)
    masked = pixels.copy()
    masked[hole] = 255
    expected = {"masked input": faces.identity_distance(
        reference, faces.face_descriptor(masked[region], landmarks=shifted))}
    for name, method in methods_to_run.items():
        output = method(image=Image.fromarray(crop), mask_image=Image.fromarray((crop_hole * 255).astype(np.uint8)))
        filled = pixels.copy()
        faces.paste_into(filled, output.images[0], framed.transform, hole)
        np.testing.assert_array_equal(astronaut_result.image(name), filled)
        expected[name] = faces.identity_distance(reference, faces.face_descriptor(filled[region], landmarks=shifted))
    assert astronaut_result.identity == expected
    assert list(astronaut_result.identity) == ["masked input", "hoginpaint", "telea"]
    assert all(0 < distance < 1.5 for distance in expected.values())


def test_framing_and_its_reason_are_reported(astronaut_result):
    assert (astronaut_result.frame.kind, astronaut_result.frame.found_on) == ("aligned", "fill")
    assert astronaut_result.note == FRAME_NOTES[("aligned", "fill")] == "Face found: aligned to the training framing."
    left, top, right, bottom = astronaut_result.face_box  # her face (179-272, 87-178 on the intact photo)
    assert abs(left - 179) < 8 and abs(right - 272) < 8 and abs(top - 87) < 8 and abs(bottom - 178) < 8
    assert astronaut_result.describe() == (f"{astronaut_result.note} The face framed: x {left}-{right}, y {top}-"
                                           f"{bottom} (found on a classical fill of the hole).")
    assert astronaut_result.identity_note is None
    assert astronaut_result.results["hoginpaint"].guidance.size == (SIZE, SIZE)
    assert astronaut_result.results["telea"].guidance is None


def test_face_view_is_the_framed_crop_of_each_result(astronaut_result):
    side = astronaut_result.view_side
    assert side == 105  # the crop spans 105 px of the photo: shown at that size, not the models' 64 px
    scale = side / SIZE
    transform = astronaut_result.frame.transform * scale
    transform[:, 2] += 0.5 * scale - 0.5
    for name in (None, "hoginpaint", "telea"):
        view = astronaut_result.face_view(name)
        assert view.shape == (side, side, 3) and view.dtype == np.uint8
        np.testing.assert_array_equal(view, crop_view(astronaut_result.image(name), transform, side))
    white = (astronaut_result.face_view() == 255).all(axis=-1)
    assert 0.1 < white.mean() < 0.6  # the hole, in the middle of the face
    assert (astronaut_result.face_view("telea")[white] == 255).all(axis=-1).mean() < 0.05


@pytest.mark.parametrize("hole_rows", [(100, 200), (0, 40), (470, 512), (0, 512)])
def test_png_files_are_the_results(astronaut_result, methods_to_run, astronaut, tmp_path, monkeypatch, hole_rows):
    # Rows above and below the hole are deflated once and shared by every file; runs of a few rows each, so that
    # the threaded, multi-run path is exercised on a small photo. Holes in the middle, at the top, at the bottom,
    # and spanning every row (nothing shared).
    monkeypatch.setattr(photo, "_RUN_BYTES", 20_000)
    pixels, _ = astronaut
    hole = np.zeros(pixels.shape[:2], dtype=bool)
    hole[hole_rows[0]:hole_rows[1], 200:260] = True
    result = inpaint_photo({"telea": methods_to_run["telea"]}, pixels, hole)
    for name in (None, "telea"):
        path = result.write_png(tmp_path / f"{name}.png", name)
        with Image.open(path) as written:
            written.load()  # checks every chunk's CRC and the zlib stream's adler-32
            assert written.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(written), result.image(name))
    photo.write_png(tmp_path / "plain.png", pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "plain.png")), pixels)


def test_adler32_of_pieces_combines_as_of_the_whole():
    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 256, length, dtype=np.uint8).tobytes() for length in (0, 1, 70_000, 65_521, 3)]
    combined = 1
    for piece in pieces:
        combined = photo._adler32_combine(combined, zlib.adler32(piece), len(piece))
    assert combined == zlib.adler32(b"".join(pieces))


def test_identity_only_when_the_hole_is_on_the_face_found(methods_to_run, astronaut):
    pixels, hole = astronaut
    not_intact = inpaint_photo(methods_to_run, pixels, hole, intact=False)
    assert not_intact.identity is None
    assert not_intact.identity_note == "No identity distances: the photo is not intact under the hole."

    helmet = np.zeros(pixels.shape[:2], dtype=bool)
    helmet[400:460, 330:420] = True  # far below her face
    away = inpaint_photo(methods_to_run, pixels, helmet)
    assert (away.frame.kind, away.note) == ("hole outside face", OUTSIDE_NOTE)
    assert away.frame.landmarks is not None and away.identity is None
    assert away.identity_note == "No identity distances: the hole is not on the face found."
    np.testing.assert_array_equal(away.image("hoginpaint")[~helmet], pixels[~helmet])


def test_a_photo_without_a_face_is_framed_around_the_hole(methods_to_run):
    ramp = np.linspace(0, 255, 160, dtype=np.uint8)
    wall = np.stack([np.tile(ramp, (96, 1)), np.tile(ramp[::-1], (96, 1)), np.full((96, 160), 128, np.uint8)], -1)
    hole = np.zeros((96, 160), dtype=bool)
    hole[30:60, 100:150] = True
    result = inpaint_photo(methods_to_run, wall, hole)
    assert (result.frame.kind, result.frame.found_on, result.face_box) == ("no face", None, None)
    assert result.note == result.describe() == "No face detected: cropped a padded square around the hole instead."
    assert result.identity is None and result.identity_note == "No identity distances: no face was found."
    np.testing.assert_array_equal(result.image("telea")[~hole], wall[~hole])


def test_a_face_crop_is_inpainted_whole(methods_to_run, val_face_images):
    face = np.asarray(val_face_images[0])
    hole = np.zeros((256, 256), dtype=bool)
    hole[170:, 40:216] = True  # from the mouth down past the aligned crop's bottom edge
    result = inpaint_photo(methods_to_run, face, hole)
    assert (result.frame.kind, result.note) == ("face crop", WHOLE_PHOTO_NOTE)
    assert result.view_side == 256  # the whole photo, at its own size
    np.testing.assert_array_equal(result.face_view("telea"), result.image("telea"))
    assert list(result.identity) == ["masked input", "hoginpaint", "telea"]


def test_the_face_the_hole_is_on_is_framed_in_a_group(methods_to_run, val_face_images):
    # Two real faces side by side; a hole over the right one's eyes: that face is framed, only the hole changes.
    group = np.concatenate([np.asarray(val_face_images[0]), np.asarray(val_face_images[1])], axis=1)  # (256, 512)
    right = max(faces.detect_faces(group), key=lambda box: box.left)
    hole = faces.feature_mask(faces.landmarks68(group, right), group.shape[:2], "eyes") > 0.5
    assert hole[:, :256].sum() == 0
    result = inpaint_photo(methods_to_run, group, hole)
    assert result.frame.kind == "aligned"
    left, top, right_edge, bottom = result.face_box  # the right face's landmarks, not the left one's
    assert right.left - 20 < left < right_edge < right.right + 20 and (left + right_edge) / 2 > 256 + 64
    for name in ("hoginpaint", "telea"):
        np.testing.assert_array_equal(result.image(name)[~hole], group[~hole])
    assert list(result.identity) == ["masked input", "hoginpaint", "telea"]


def test_aligned_sends_the_whole_photo_to_each_method(methods_to_run, val_face_images, nvidia_mask_dir):
    # The image is taken as an aligned face crop: each method's own call on the whole image, nothing looked for.
    face = val_face_images[2]
    mask = Image.open(nvidia_mask_dir / "04020.png").convert("L").resize((256, 256), Image.NEAREST)
    hole = np.asarray(mask) > 127
    result = inpaint_photo(methods_to_run, face, mask, aligned=True)
    assert (result.frame.kind, result.frame.found_on, result.frame.landmarks) == ("face crop", None, None)
    assert result.note == ALIGNED_NOTE and result.describe() == ALIGNED_NOTE
    assert result.identity is None
    assert result.identity_note == ("No identity distances: the image was taken as an aligned face crop, no face was "
                                    "looked for.")
    for name, method in methods_to_run.items():
        expected = np.asarray(method(image=face, mask_image=mask).images[0])
        np.testing.assert_array_equal(result.image(name), expected)
    assert (result.image("hoginpaint")[hole] != np.asarray(face)[hole]).any()
    np.testing.assert_array_equal(result.face_view("telea"), result.image("telea")[:, :, :])  # 256 px: as it is


def test_progress_is_reported_in_order(methods_to_run, astronaut):
    seen = []
    inpaint_photo(methods_to_run, *astronaut, progress=lambda fraction, what: seen.append((fraction, what)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [what for _, what in seen if what.startswith("Running")] == ["Running hoginpaint", "Running telea"]


def test_masks_as_users_hand_them(astronaut):
    pixels, hole = astronaut
    for mask in (ASTRONAUT_MASK, str(ASTRONAUT_MASK), Image.open(ASTRONAUT_MASK), hole.astype(np.uint8) * 255,
                 hole.astype(np.float32), Image.open(ASTRONAUT_MASK).convert("RGB")):
        np.testing.assert_array_equal(photo.read_hole(mask, pixels.shape[:2]), hole)
    gray = Image.fromarray(np.arange(256, dtype=np.uint8).repeat(2)[None].repeat(16, axis=0))  # every level
    np.testing.assert_array_equal(photo.read_hole(gray, (16, 512)), masks.editor_hole((16, 512), gray))


BAD_INPUTS = {
    # name: (photo, hole, what the message must say)
    "mask of another size": (ASTRONAUT, Image.new("L", (300, 200), 255), "mask is 300x200 but image is 512x512"),
    "hole of another shape": (ASTRONAUT, np.ones((200, 300), dtype=bool), "the hole is an array of shape (200, 300) "
                                                                          "but the photo is 512x512; pass a bool "
                                                                          "array of shape (512, 512) (H, W)"),
    "empty hole": (ASTRONAUT, np.zeros((512, 512), dtype=bool), "the mask is empty"),
    "full hole": (ASTRONAUT, np.ones((512, 512), dtype=bool), "the mask covers the whole photo"),
    "hole of numbers out of range": (ASTRONAUT, np.full((512, 512), 3.0), "the hole"),
    "hole as a list": (ASTRONAUT, [[True]], "cannot read a hole from list"),
    "no photo file": ("missing.jpg", ASTRONAUT_MASK, "missing.jpg is not a file"),
    "photo too small": (np.zeros((8, 8, 3), dtype=np.uint8), np.ones((8, 8), dtype=bool), "smallest accepted"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_what_to_do(methods_to_run, case):
    image, hole, message = BAD_INPUTS[case]
    with pytest.raises(ValueError) as raised:
        inpaint_photo(methods_to_run, image, hole)
    assert message in str(raised.value)


def test_other_misuse_is_refused(methods_to_run, astronaut_result, astronaut):
    with pytest.raises(ValueError, match="no method to run"):
        inpaint_photo({}, *astronaut)
    with pytest.raises(ValueError, match="no result of 'deepfill'; the results are hoginpaint, telea"):
        astronaut_result.image("deepfill")
    with pytest.raises(ValueError, match="unknown hole 'ears'; expected one of none, eyes, nose, mouth, irregular"):
        photo.preset_hole(*astronaut, "ears", np.random.default_rng(0), masks.make_mask_source("free_form"), SIZE)
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    with pytest.raises(ValueError, match="no face found to put the eyes hole on"):
        photo.preset_hole(flat, np.zeros((64, 64), dtype=bool), "eyes", np.random.default_rng(0),
                          masks.make_mask_source("free_form"), SIZE)


def test_photos_as_users_hand_them(astronaut):
    pixels, _ = astronaut
    with open(ASTRONAUT, "rb") as file:
        data = file.read()
    for given in (ASTRONAUT, str(ASTRONAUT), Image.open(io.BytesIO(data)), pixels, pixels.astype(np.float32) / 255):
        np.testing.assert_array_equal(photo.read_photo(given), pixels)
    gray = Image.open(ASTRONAUT).convert("L")
    np.testing.assert_array_equal(photo.read_photo(gray), np.asarray(gray.convert("RGB")))
