"""The Space (`app.py`) through its API: `python app.py` in a subprocess with tiny random models, called with
`gradio_client` the way docs/space.md shows; and its model loading, inputs and outputs, in process. The photo
workflow itself (framing, paste-back, identities) is tested in tests/test_photo.py."""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hoginpaint.photo import WHOLE_PHOTO_NOTE
from tests import app_server

REPO_ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = REPO_ROOT / "assets" / "astronaut.jpg"
ASTRONAUT_MASK = REPO_ROOT / "assets" / "astronaut_mask.png"
TIMEOUT = 180  # seconds for any one request (generous: CI shares 2 cores); start-up gets two of them
# The API's return value; the handler returns these and the page's views (masked photo, guidance, framed faces).
OUTPUTS = ("hoginpaint", "deepfill", "telea", "table", "status")
VIEWS = ("masked", "guidance", "faces")
FACE_CAPTIONS = ["Masked input", "HOG-guided", "DeepFill v2", "Telea"]


@contextlib.contextmanager
def serve_app(folder: Path) -> Iterator[str]:
    """The app on 127.0.0.1 with tiny models (`tests.app_server`); yields its URL.

    With HOGINPAINT_APP_SHIPPED_MODELS=1 in the environment the app loads its defaults, the checkpoints shipped in
    `checkpoints/` (for the README's screenshot).
    """
    shipped = os.environ.get("HOGINPAINT_APP_SHIPPED_MODELS") == "1"
    try:
        with app_server.serve_app(folder, 2 * TIMEOUT, models={} if shipped else None) as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    folder = tmp_path_factory.mktemp("app")
    with serve_app(folder) as url:
        yield Client(url, verbose=False, download_files=str(folder / "downloads"), httpx_kwargs={"timeout": TIMEOUT})


def named(outputs: tuple) -> dict:
    """The API's return value, or the handler's with its page views, by output name."""
    if len(outputs) == len(OUTPUTS) + 1:  # the handler's
        return {**dict(zip(OUTPUTS, outputs)), **dict(zip(VIEWS, outputs[-1], strict=True))}
    assert len(outputs) == len(OUTPUTS)
    return dict(zip(OUTPUTS, outputs))


def call(client, photo: Path, mask: Path | None, intact: bool = True, **inputs) -> dict:
    from gradio_client import handle_file

    job = client.submit(photo=handle_file(str(photo)), mask=handle_file(str(mask)) if mask else None,
                        intact=intact, api_name="/inpaint", **inputs)
    return named(job.result(timeout=TIMEOUT))


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def face_views(faces: list) -> dict[str, np.ndarray]:
    """The gallery of framed faces, from the API ({"image": downloaded path, "caption"}) or the handler ((path,
    caption) pairs) → {caption: pixels}."""
    pairs = [(item["image"], item["caption"]) if isinstance(item, dict) else item for item in faces]
    return {caption: pixels(path) for path, caption in pairs}


def save_mask(hole: np.ndarray, path: Path) -> Path:
    Image.fromarray(hole.astype(np.uint8) * 255).save(path)
    return path


@pytest.mark.slow
def test_results_equal_the_photo_outside_the_hole(client, val_face_images, tmp_path):
    photo = tmp_path / "face.png"
    val_face_images[0].save(photo)
    hole = np.zeros((256, 256), dtype=bool)
    hole[96:160, 72:184] = True  # eyes and nose
    out = call(client, photo, save_mask(hole, tmp_path / "mask.png"))
    original = np.asarray(val_face_images[0]).astype(np.int16)
    for name in ("hoginpaint", "deepfill", "telea"):
        result = pixels(out[name])
        assert result.shape == original.shape
        np.testing.assert_array_equal(result[~hole], original[~hole])
        assert np.abs(result[hole] - original[hole]).mean() > 5  # the hole was filled, not copied
    assert out["status"].startswith("Face found: aligned to the training framing.")


def test_page_views_show_the_masked_photo_guidance_and_framed_faces(app_module, val_face_images, tmp_path):
    photo = tmp_path / "face.png"
    val_face_images[0].save(photo)
    hole = np.zeros((256, 256), dtype=bool)
    hole[96:160, 72:184] = True  # eyes and nose
    out = named(app_module.inpaint(str(photo), str(save_mask(hole, tmp_path / "mask.png"))))
    original = np.asarray(val_face_images[0]).astype(np.int16)
    np.testing.assert_array_equal(pixels(out["masked"])[hole], 255)
    np.testing.assert_array_equal(pixels(out["masked"])[~hole], original[~hole])
    guidance = np.asarray(Image.open(out["guidance"]))  # the 64 px HOG model's guidance, each pixel shown 4x4
    assert guidance.shape == (256, 256) and guidance.max() > 0
    np.testing.assert_array_equal(guidance, np.repeat(np.repeat(guidance[::4, ::4], 4, axis=0), 4, axis=1))
    assert out["status"].startswith("Face found: aligned to the training framing.")
    # The framed face, as large as it is in the photo (more than the 64 px models' crop): white where the hole is
    # in the masked input, filled in every result.
    views = face_views(out["faces"])
    assert list(views) == FACE_CAPTIONS
    side = views["Masked input"].shape[0]
    assert all(view.shape == (side, side, 3) for view in views.values()) and 64 < side <= 512
    white = (views["Masked input"] >= 250).all(axis=-1)
    assert white.mean() > 0.05
    for caption in FACE_CAPTIONS[1:]:
        assert (views[caption][white] >= 250).all(axis=-1).mean() < 0.2


@pytest.mark.slow
def test_photo_with_a_face_is_aligned_and_identities_compared(client, tmp_path):
    out = call(client, ASTRONAUT, ASTRONAUT_MASK)
    assert out["status"].startswith("Face found: aligned to the training framing.")
    hole = pixels(str(ASTRONAUT_MASK))[..., 0] > 127
    original = pixels(str(ASTRONAUT))
    np.testing.assert_array_equal(pixels(out["hoginpaint"])[~hole], original[~hole])
    rows = {row[0]: row[1] for row in out["table"]["data"]}
    assert list(rows) == ["masked input", "HOG-guided", "DeepFill v2", "Telea"]
    assert all(0 < distance < 1.5 for distance in rows.values())
    assert rows["Telea"] < rows["masked input"]  # filling the hole smoothly is closer to her than a white blank

    out = call(client, ASTRONAUT, ASTRONAUT_MASK, intact=False)
    assert out["table"]["data"] == []
    assert "No identity distances: the photo is not intact under the hole." in out["status"]


@pytest.mark.slow
def test_without_a_face_the_crop_is_taken_around_the_hole(client, tmp_path):
    # A hole on the helmet, far from the face, and a photo without a face (a smooth non-square gradient).
    hole = np.zeros((512, 512), dtype=bool)
    hole[400:460, 330:420] = True
    out = call(client, ASTRONAUT, save_mask(hole, tmp_path / "helmet.png"))
    assert out["status"].startswith("The hole reaches outside the face: cropped a padded square around the hole "
                                    "instead.")
    np.testing.assert_array_equal(pixels(out["hoginpaint"])[~hole], pixels(str(ASTRONAUT))[~hole])
    assert out["table"]["data"] == []  # the face is untouched: every distance would be 0
    assert "No identity distances: the hole is not on the face found." in out["status"]

    ramp = np.linspace(0, 255, 160, dtype=np.uint8)
    wall = np.stack([np.tile(ramp, (96, 1)), np.tile(ramp[::-1], (96, 1)), np.full((96, 160), 128, np.uint8)], -1)
    Image.fromarray(wall).save(tmp_path / "wall.png")
    hole = np.zeros((96, 160), dtype=bool)
    hole[30:60, 100:150] = True
    out = call(client, tmp_path / "wall.png", save_mask(hole, tmp_path / "wall_mask.png"))
    assert out["status"].startswith("No face detected: cropped a padded square around the hole instead.")
    assert "No identity distances: no face was found." in out["status"]
    result = pixels(out["hoginpaint"])
    assert result.shape == (96, 160, 3)
    np.testing.assert_array_equal(result[~hole], wall[~hole])


BAD_INPUTS = {
    # name: (photo, mask, what the message must say)
    "not an image": ("notes.png", "astronaut_mask", "Photo: the file is not an image Pillow can read"),
    "decompression bomb": ("bomb.png", "astronaut_mask", "Photo: the file is larger than 50,000,000 pixels; "
                                                          "downscale it before inpainting"),
    "truncated": ("truncated.png", "astronaut_mask", "Photo: could not read the file: "),
    "one pixel": ("dot.png", "astronaut_mask", "Photo: image is 1x1; the smallest accepted is 16x16 pixels"),
    "mask not an image": ("astronaut", "notes.png", "Mask: the file is not an image Pillow can read"),
    "empty mask": ("astronaut", "empty.png", "Mask: the mask is empty"),
    "no mask, no strokes": ("astronaut", None, "Mask: the mask is empty"),
    "full mask": ("astronaut", "full.png", "Mask: the mask covers the whole photo"),
    "mask of another size": ("astronaut", "small.png", "Mask: mask is 300x200 but image is 512x512"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.png").write_text("not a picture")
    (folder / "bomb.png").write_bytes(app_server.png_header(12_000, 12_000))
    Image.new("RGB", (1, 1), "white").save(folder / "dot.png")
    Image.new("L", (512, 512), 0).save(folder / "empty.png")
    Image.new("L", (512, 512), 255).save(folder / "full.png")
    Image.new("L", (300, 200), 255).save(folder / "small.png")
    (folder / "truncated.png").write_bytes(ASTRONAUT_MASK.read_bytes()[:400])
    files = {name: folder / name for name in ("notes.png", "bomb.png", "dot.png", "empty.png", "full.png", "small.png",
                                              "truncated.png")}
    return {**files, "astronaut": ASTRONAUT, "astronaut_mask": ASTRONAUT_MASK, None: None}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_message(client, bad_files, case):
    from gradio_client.exceptions import AppError

    photo, mask, message = BAD_INPUTS[case]
    with pytest.raises(AppError) as raised:
        call(client, bad_files[photo], bad_files[mask])
    assert str(raised.value).startswith(message)
    assert "/tmp" not in str(raised.value) and "Traceback" not in str(raised.value)
    assert "exceeds limit" not in str(raised.value) and "the image the file" not in str(raised.value)


@pytest.mark.slow
@pytest.mark.parametrize("layer, message", [("notes.png", "Brush layer: the file is not an image Pillow can read"),
                                            ("truncated.png", "Brush layer: could not read the file: "),
                                            ("bomb.png", "Brush layer: the file is larger than 50,000,000 pixels; "
                                                         "downscale it before inpainting")])
def test_bad_brush_layer_gets_a_message(client, bad_files, layer, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    brush = {"background": None, "layers": [handle_file(str(bad_files[layer]))], "composite": None}
    with pytest.raises(AppError) as raised:
        client.submit(photo=handle_file(str(ASTRONAUT)), mask=None, brush=brush, intact=True,
                      api_name="/inpaint").result(timeout=TIMEOUT)
    assert str(raised.value).startswith(message)
    assert "/tmp" not in str(raised.value) and "exceeds limit" not in str(raised.value)


@pytest.mark.slow
def test_api_takes_a_feature_hole(client):
    from gradio_client import handle_file

    out = named(client.submit(photo=handle_file(str(ASTRONAUT)), mask=None, intact=True, hole="mouth",
                              api_name="/inpaint").result(timeout=TIMEOUT))
    assert out["status"].startswith("Face found: aligned to the training framing.")
    assert [row[0] for row in out["table"]["data"]] == ["masked input", "HOG-guided", "DeepFill v2", "Telea"]
    assert 500 < (pixels(out["telea"]) != pixels(str(ASTRONAUT))).any(axis=-1).sum() < 5000


@pytest.mark.slow
def test_app_still_answers_after_bad_inputs(client):
    assert call(client, ASTRONAUT, ASTRONAUT_MASK)["status"].startswith("Face found")


# ---------------------------------------------------------------------------------------------------------------------
# In process: model loading and a model that failed to load


@pytest.fixture(scope="module")
def app_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in app_server.save_tiny_models(folder).items():
            patch.setenv(name, value)
        app = importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")
    return app


def test_model_status_says_which_model_and_why(app_module, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DEEPFILL_MODEL", str(tmp_path / "empty"))
    method, status = app_module.load_method("deepfill")
    assert method is None
    assert status.startswith(f"**DeepFill v2**: could not load `{tmp_path / 'empty'}`: ")
    assert "has no model_index.json" in status

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    monkeypatch.setenv("HOGINPAINT_MODEL", "someone/hoginpaint@v1")
    method, status = app_module.load_method("hoginpaint")
    assert method is None
    assert "Hub repository 'someone/hoginpaint' (revision v1)" in status and "Hub is offline" in status

    # A folder inside the Space is named relative to it, never by the server's absolute path; others as given.
    assert app_module.shown_source(str(app_module.ROOT / "checkpoints" / "hoginpaint")) == "checkpoints/hoginpaint"
    assert app_module.shown_source(str(tmp_path / "empty")) == str(tmp_path / "empty")
    assert app_module.shown_source("someone/hoginpaint@v1") == "someone/hoginpaint@v1"

    monkeypatch.delenv("DEEPFILL_MODEL")
    monkeypatch.setitem(app_module.DEFAULT_MODELS, "deepfill", tmp_path / "missing")
    assert app_module.load_method("deepfill") == (None, "**DeepFill v2**: no model; set `DEEPFILL_MODEL` to a Hub id "
                                                        "or a folder.")


def test_photo_goes_on_the_canvas_only_when_it_can_be_read(app_module, tmp_path):
    assert app_module.to_canvas(str(ASTRONAUT)) == ({"background": str(ASTRONAUT), "layers": [],
                                                     "composite": str(ASTRONAUT)}, "")
    (tmp_path / "bomb.png").write_bytes(app_server.png_header(12_000, 12_000))
    canvas, status = app_module.to_canvas(str(tmp_path / "bomb.png"))  # after the page emptied the canvas
    assert canvas is None and status.startswith("Photo: the file is larger than 50,000,000 pixels")
    assert app_module.to_canvas(None) == (None, "")  # the photo was removed: the canvas is emptied, silently


def test_other_methods_run_when_one_failed_to_load(app_module, monkeypatch):
    monkeypatch.setitem(app_module.METHODS, "deepfill", (None, "**DeepFill v2**: could not load `x`: broken"))
    out = named(app_module.inpaint(str(ASTRONAUT), str(ASTRONAUT_MASK)))
    assert out["deepfill"] is None
    hole = np.asarray(Image.open(ASTRONAUT_MASK)) > 127
    original = pixels(str(ASTRONAUT))
    for name in ("hoginpaint", "telea"):
        np.testing.assert_array_equal(pixels(out[name])[~hole], original[~hole])
    assert [row[0] for row in out["table"]] == ["masked input", "HOG-guided", "Telea"]
    assert list(face_views(out["faces"])) == ["Masked input", "HOG-guided", "Telea"]
    assert "**DeepFill v2**: could not load `x`: broken" in out["status"]


def outputs_as_arrays(outputs: tuple) -> list:
    """Every image the handler returns as pixels (the framed faces included), and the table and status as they
    are."""
    out = named(outputs)
    return [*(pixels(out[name]) for name in ("masked", "guidance", "hoginpaint", "deepfill", "telea")),
            *face_views(out["faces"]).values(), out["table"], out["status"]]


@pytest.mark.parametrize("where", ["interior", "edge"])
def test_what_is_under_the_hole_never_reaches_an_output(app_module, val_face_images, tmp_path, where):
    photo = np.asarray(val_face_images[1])
    hole = np.zeros((256, 256), dtype=bool)
    if where == "interior":
        hole[100:150, 80:180] = True  # eyes and nose
    else:
        hole[196:, 70:190] = True  # the chin, down to the edge: the aligned crop reaches past the photo
    mask = save_mask(hole, tmp_path / "mask.png")
    runs = []
    for seed in (None, 0):
        damaged = photo.copy()
        damaged[hole] = 255 if seed is None else np.random.default_rng(seed).integers(0, 256, (hole.sum(), 3))
        Image.fromarray(damaged).save(tmp_path / f"photo-{seed}.png")
        runs.append(outputs_as_arrays(app_module.inpaint(str(tmp_path / f"photo-{seed}.png"), str(mask), None, False)))
    assert len(runs[0]) == 11
    for white, noisy in zip(*runs):
        if isinstance(white, np.ndarray):
            np.testing.assert_array_equal(white, noisy)
        else:
            assert white == noisy
    assert runs[0][-1].startswith("Face found")


def test_a_face_crop_is_inpainted_whole_when_the_hole_reaches_outside_the_aligned_face(app_module, val_face_images,
                                                                                         tmp_path):
    photo = np.asarray(val_face_images[0])  # a UTKFace crop
    hole = np.zeros((256, 256), dtype=bool)
    hole[170:, 40:216] = True  # from the mouth down past the aligned crop's bottom edge
    Image.fromarray(photo).save(tmp_path / "face.png")
    out = named(app_module.inpaint(str(tmp_path / "face.png"), str(save_mask(hole, tmp_path / "mask.png"))))
    assert out["status"].startswith(WHOLE_PHOTO_NOTE)
    for name in ("hoginpaint", "deepfill", "telea"):
        np.testing.assert_array_equal(pixels(out[name])[~hole], photo[~hole])
        assert (pixels(out[name])[hole] != 255).any(axis=-1).mean() > 0.9  # the whole hole is filled
    assert [row[0] for row in out["table"]] == ["masked input", "HOG-guided", "DeepFill v2", "Telea"]
    # the framed face is the whole photo here, at its own size: the views are the results themselves
    views = face_views(out["faces"])
    np.testing.assert_array_equal(views["Telea"], pixels(out["telea"]))
    np.testing.assert_array_equal(views["Masked input"], pixels(out["masked"]))


@pytest.mark.parametrize("part", ["eyes", "nose", "mouth"])
def test_feature_hole_covers_its_part_and_gets_an_identity_table(app_module, part):
    from hoginpaint import faces

    out = named(app_module.inpaint(str(ASTRONAUT), None, None, True, part))
    photo = pixels(str(ASTRONAUT))
    landmarks = faces.landmarks68(photo.astype(np.uint8), faces.detect_faces(photo.astype(np.uint8))[0])
    expected = faces.feature_mask(landmarks, photo.shape[:2], part) > 0.5
    hole = (pixels(out["masked"]) == 255).all(axis=-1) & (photo != 255).any(axis=-1)
    assert (hole & expected).sum() > 0.9 * (hole | expected).sum()  # the part, as found on the intact photo
    assert out["status"].startswith("Face found: aligned to the training framing.")
    assert [row[0] for row in out["table"]] == ["masked input", "HOG-guided", "DeepFill v2", "Telea"]


def test_a_false_face_away_from_the_hole_gets_no_identity_table(app_module):
    # Eyes, nose and mouth hidden together: the fills show no face there, and the round patch on her suit scores as
    # one. Its landmarks are far from the hole, so distances measured there would all be 0: none are shown.
    photo = pixels(str(ASTRONAUT)).astype(np.uint8)
    from hoginpaint import faces
    from hoginpaint.photo import preset_hole

    hole = np.zeros(photo.shape[:2], dtype=bool)
    for part in ("eyes", "nose", "mouth"):
        hole |= preset_hole(photo, hole, part, np.random.default_rng(0), app_module.IRREGULAR, app_module.CROP_SIZE)
    framed = faces.frame(photo, hole, app_module.CROP_SIZE)
    assert framed.landmarks is not None and framed.landmarks[:, 1].min() > hole.nonzero()[0].max()  # below the hole
    assert len(named(app_module.inpaint(str(ASTRONAUT), None, None, True, "eyes"))["table"]) == 4  # her face, measured
    layer = {"background": str(ASTRONAUT), "layers": [], "composite": str(ASTRONAUT)}
    for part in ("eyes", "nose"):
        layer, _ = app_module.to_canvas(str(ASTRONAUT), layer, part)
    out = named(app_module.inpaint(str(ASTRONAUT), None, layer, True, "mouth"))
    assert out["table"] is None
    assert "No identity distances: the hole is not on the face found." in out["status"]


def test_irregular_hole_and_unknown_choice(app_module, monkeypatch):
    import gradio as gr

    # The button draws a new random mask each time; seeded here, so the test sees one known mask (unseeded, the test
    # failed the bound once in four runs).
    seeded = np.random.default_rng
    monkeypatch.setattr(app_module.np.random, "default_rng", lambda *args: seeded(0))
    masked = named(app_module.inpaint(str(ASTRONAUT), None, None, True, "irregular"))["masked"]
    assert (pixels(masked) != pixels(str(ASTRONAUT))).any(axis=-1).mean() > 0.005
    with pytest.raises(gr.Error, match="unknown hole 'ears'"):
        app_module.inpaint(str(ASTRONAUT), None, None, True, "ears")


def test_preset_button_puts_an_editable_layer_on_the_canvas(app_module):
    value, status = app_module.to_canvas(str(ASTRONAUT), None, "nose")
    assert status == ""
    assert value["background"] == str(ASTRONAUT) and len(value["layers"]) == 1
    with Image.open(value["layers"][0]) as layer:
        assert layer.mode == "RGBA" and layer.size == (512, 512)
        alpha = np.asarray(layer.getchannel("A")) > 127
    assert 200 < alpha.sum() < 10000
    status = named(app_module.inpaint(str(ASTRONAUT), None, value))["status"]  # the layer is the hole, as strokes are
    assert status.startswith("Face found")
    canvas, status = app_module.to_canvas(None, value, "eyes")  # nothing to put a hole on: the canvas stays
    assert canvas == value and status.startswith("No photo: upload one")


def test_bad_brush_layer_is_refused_in_words(app_module, tmp_path):
    import gradio as gr

    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "bomb.png").write_bytes(app_server.png_header(12_000, 12_000))
    with pytest.raises(gr.Error) as raised:
        app_module.inpaint(str(ASTRONAUT), None, {"layers": [str(tmp_path / "notes.png")]})
    assert raised.value.message.startswith("Brush layer: the file is not an image Pillow can read")
    with pytest.raises(gr.Error) as raised:
        app_module.inpaint(str(ASTRONAUT), None, {"layers": [(tmp_path / "bomb.png").read_bytes()]})
    assert raised.value.message == ("Brush layer: the file is larger than 50,000,000 pixels; downscale it before "
                                 "inpainting")
