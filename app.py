"""Hugging Face Space: HOG-guided face inpainting (Salem, Mahdi & Abbas) beside DeepFill v2 and Telea.

Upload any photo, paint the hole (or upload a mask, white = hole, or press a button for a hole over the eyes, the
nose, the mouth or a random irregular hole) and compare the methods. The face is found with dlib on the photo's known
pixels and aligned to the training framing; only the hole is pasted back, at the photo's own resolution. Nothing
under the hole reaches a method or a decision: it is blanked before any resampling, and the face is found on the
photo with its hole white or filled by Telea.

Models: `HOGINPAINT_MODEL` and `DEEPFILL_MODEL` (a Hub id with an optional `@revision`, or a local folder); by default
the checkpoints shipped in `checkpoints/`. A model that cannot be loaded is reported on the page; the others still run.
`HOGINPAINT_MASK_DIR`: the NVIDIA irregular masks the "irregular" hole is drawn from (default
`../shared/data/masks/nvidia-irregular-test`; without it, free-form strokes).

    python app.py        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are respected
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import spaces
import torch
from PIL import Image

from hoginpaint import faces, masks, methods
from hoginpaint.imageio import MIN_IMAGE_SIDE, load_image, open_image_file

ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS = {"hoginpaint": ROOT / "checkpoints" / "hoginpaint", "deepfill": ROOT / "checkpoints" / "deepfill"}
MODEL_ENV = {"hoginpaint": "HOGINPAINT_MODEL", "deepfill": "DEEPFILL_MODEL"}
TITLES = {"hoginpaint": "HOG-guided", "deepfill": "DeepFill v2", "telea": "Telea"}
EXAMPLES = [[str(ROOT / "assets" / "astronaut.jpg"), None],
            [str(ROOT / "assets" / "astronaut.jpg"), str(ROOT / "assets" / "astronaut_mask.png")]]
HOLES = ("none", "eyes", "nose", "mouth", "irregular")  # the `hole` parameter: a hole added to the painted one
MASK_DIR = Path(os.environ.get("HOGINPAINT_MASK_DIR", ROOT.parent / "shared" / "data" / "masks"
                               / "nvidia-irregular-test"))
GUIDANCE_SIDE = 256  # the HOG guidance is returned at least this tall
MAX_UPLOAD = "50mb"  # a 49 MP JPEG is ~15 MB; the editor uploads the photo again as PNG, ~25 MB for 12 MP
# The editor's canvas before a photo arrives: no larger than any photo. Gradio 6's editor gives its brush a hidden
# sprite the size of everything on the canvas, that sprite included (js/imageeditor/shared/brush/brush-textures.ts,
# `initialize_textures`), so it never shrinks below the first canvas; and it sizes a layer loaded from a file by the
# same bounds, centring the file in it (core/layers.ts, `add_layer_from_url`). With the default 800x800 canvas, a
# button's hole on a 512x512 photo was drawn 144 px right of and below where it is filled, and strokes added to it
# were sent from there. Emptying the editor before each new photo drops the sprite of a larger earlier photo.
EDITOR_CANVAS = (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE)
OUTPUT_AGE = 600  # seconds a request's result files are kept for gradio to copy them into its cache
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
WHOLE_PHOTO_NOTE = ("Face found; the photo is a face crop and the hole reaches outside the aligned face: the whole "
                    "photo was inpainted, in the framing of the CelebA crops the models also learnt.")
FRAME_NOTES = {
    ("aligned", "fill"): "Face found: aligned to the training framing.",
    ("aligned", "photo"): "Face found: aligned to the training framing.",
    ("aligned", "face crop"): "Face found: aligned to the training framing (the photo was taken as a face crop: the "
                              "face was found only with a lowered detection threshold).",
    ("face crop", "fill"): WHOLE_PHOTO_NOTE,
    ("face crop", "photo"): WHOLE_PHOTO_NOTE,
    ("face crop", "face crop"): WHOLE_PHOTO_NOTE + " The face was found only with a lowered detection threshold: "
                                "where the hole hides an eye or the mouth, its landmarks (the identity table's) may "
                                "be off.",
    ("no face", None): "No face detected: cropped a padded square around the hole instead.",
}
OUTSIDE_NOTE = "The hole reaches outside the face: cropped a padded square around the hole instead."


def save_pil_to_cache_atomically(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio's `processing_utils.save_pil_to_cache`, with the file written under a temp name and renamed into place.

    gradio names a cached output after its content's hash and rewrites it on every request with the same output
    (here: the same photo and mask twice). Under load, a caller still downloading the first copy then read the file
    while the next request truncated it, and got an empty image. `os.replace` swaps it atomically instead.
    """
    data = gr.processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / gr.processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    descriptor, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    path = (folder / f"{name}.{format}").resolve()
    os.replace(staging, path)
    return str(path)


gr.processing_utils.save_pil_to_cache = save_pil_to_cache_atomically


def load_method(name: str) -> tuple[object | None, str]:
    """Load one learned method from its env var or the shipped checkpoint → (method or None, status line)."""
    spec = os.environ.get(MODEL_ENV[name]) or (str(DEFAULT_MODELS[name]) if DEFAULT_MODELS[name].is_dir() else "")
    if not spec:
        return None, f"**{TITLES[name]}**: no model; set `{MODEL_ENV[name]}` to a Hub id or a folder."
    repo, revision = (spec, None) if Path(spec).is_dir() or "@" not in spec else spec.rsplit("@", 1)
    try:
        method = methods.load(name, repo, revision=revision).to(DEVICE)
    except Exception as error:  # noqa: BLE001 — any failure to load leaves the app up with the other methods
        return None, f"**{TITLES[name]}**: could not load `{spec}`: {error}"
    return method, f"**{TITLES[name]}**: `{shown_source(spec)}` ({method.resolution}x{method.resolution})."


def shown_source(spec: str) -> str:
    """A model's source as the page names it: a folder inside the Space relative to it (`checkpoints/hoginpaint`, not
    the server's absolute path), anything else (a Hub id, a folder elsewhere) as given."""
    try:
        return Path(spec).resolve().relative_to(ROOT).as_posix() if Path(spec).is_dir() else spec
    except ValueError:
        return spec


METHODS = {name: load_method(name) for name in ("hoginpaint", "deepfill")}
METHODS["telea"] = (methods.load("telea"), "**Telea**: OpenCV, no model.")
MODEL_STATUS = "  \n".join(status for _, status in METHODS.values())
CROP_SIZE = getattr(METHODS["hoginpaint"][0], "resolution", 256)


def irregular_source() -> masks.MaskSource:
    """The NVIDIA irregular masks (evaluation split, 10-40 % holes, as they are), or free-form strokes when they
    are absent."""
    if MASK_DIR.is_dir():
        return masks.FolderMasks(MASK_DIR, buckets=(1, 2, 3), split="eval", augment=False)  # 10-40 % holes
    return masks.make_mask_source("free_form")


IRREGULAR = irregular_source()


def unopened(image: gr.Image) -> gr.Image:
    """Make `image` hand the handler the uploaded file's path without opening it.

    gr.Image opens every upload before the handler runs and fails on a non-image or a decompression bomb with a bare
    "Error"; `load_image`, in the handler, refuses them with a message that says what to do. (An instance override,
    not a subclass: gradio writes a `.pyi` stub beside the module of every Component subclass.)
    """
    opened = image.preprocess
    image.preprocess = lambda payload: payload.path if payload is not None and payload.path else opened(payload)
    return image


def unopened_layers(editor: gr.ImageEditor) -> gr.ImageEditor:
    """The same for an ImageEditor: background, layers and composite reach the handler as paths (or bytes), so a
    bad brush layer gets the worded refusal the photo and the mask get."""
    editor.convert_and_format_image = lambda file, flatten_on_white=False: (
        None if file is None else bytes(file) if isinstance(file, (bytes, bytearray, memoryview)) else file.path)
    return editor


BOMB_DETAIL = re.compile(r" \(Image size \(\d+ pixels\) exceeds limit of \d+ pixels[^()]*\)")


def refusal(what: str, error: ValueError, path: str | None) -> str:
    """A loader's message for the page: which input, "the file" for the server's copy of the upload, and none of
    Pillow's internals."""
    message = BOMB_DETAIL.sub("", str(error))
    if path:
        message = message.replace(f"the image {path}", "the file").replace(path, "the file")
    return f"{what}: {message}"


def open_upload(upload: str | bytes) -> Image.Image:
    """An uploaded file (a path, or the bytes gradio kept in memory) opened with `open_image_file`'s checks."""
    if isinstance(upload, str):
        return open_image_file(upload)
    with tempfile.NamedTemporaryFile(suffix=".png") as file:
        file.write(upload)
        file.flush()
        try:
            return open_image_file(file.name)
        except ValueError as error:  # worded as for an uploaded path (see `refusal`)
            raise ValueError(refusal("", error, file.name)[2:]) from None


def read_photo(path: str) -> np.ndarray:
    """The photo as uint8 `(H, W, 3)`: 8-bit RGB and gray photos without a float copy (a 49 MP photo is 147 MB,
    not 590 MB); other modes (transparency, 16 bits) through `load_image`'s conversions."""
    image = open_image_file(path)
    if image.mode in ("RGB", "L") and min(image.size) >= MIN_IMAGE_SIDE:
        return np.asarray(image.convert("RGB"))
    return faces.to_rgb_array(load_image(image))


def read_hole(size: tuple[int, int], mask_file: str | None, brush: dict | None
              ) -> tuple[np.ndarray, Image.Image | None]:
    """The uploaded mask's white and the painted strokes → (`(H, W)` bool, the mask image or None)."""
    layers = []
    for layer in (brush or {}).get("layers") or []:
        try:
            layers.append(open_upload(layer))
        except ValueError as error:
            raise gr.Error(refusal("Brush layer", error, layer if isinstance(layer, str) else None)) from None
    try:
        mask = open_upload(mask_file) if mask_file is not None else None
        return masks.editor_hole(size, mask, layers), mask
    except ValueError as error:
        raise gr.Error(refusal("Mask", error, mask_file)) from None


def preset_hole(pixels: np.ndarray, hole: np.ndarray, choice: str, rng: np.random.Generator) -> np.ndarray:
    """The hole of a button: over the eyes, the nose or the mouth of the face (its landmarks found on the known
    pixels), or a random irregular mask on the face's aligned crop (the whole photo without a face) → `(H, W)` bool."""
    if choice not in HOLES:
        raise ValueError(f"unknown hole {choice!r}; expected one of {', '.join(HOLES)}")
    height, width = hole.shape
    if choice == "none":
        return np.zeros_like(hole)
    landmarks, _ = faces.find_landmarks(pixels, hole)
    if choice == "irregular":
        if landmarks is None:
            return IRREGULAR.sample(rng, (height, width)) > 0.5
        drawn = IRREGULAR.sample(rng, CROP_SIZE)
        border = CROP_SIZE // 8  # keep the hole on the face, clear of the crop's edge
        drawn[:border], drawn[-border:], drawn[:, :border], drawn[:, -border:] = 0, 0, 0, 0
        return faces.mask_from_aligned(drawn, faces.aligned_transform(landmarks, CROP_SIZE), (width, height))
    if landmarks is None:
        raise ValueError(f"no face found to put the {choice} hole on: paint the hole instead, or upload a mask")
    return faces.feature_mask(landmarks, (height, width), choice) > 0.5


def paint_preset(photo: str | None, brush: dict | None, choice: str) -> dict | None:
    """A button's hole added to the strokes on the canvas, as one editable layer."""
    if photo is None:
        gr.Warning("No photo: upload one, or pick an example, first.")
        return brush
    try:
        pixels = read_photo(photo)
    except ValueError as error:
        gr.Warning(refusal("Photo", error, photo))
        return brush
    hole, _ = read_hole(pixels.shape[:2], None, brush)
    try:
        hole |= preset_hole(pixels, hole, choice, np.random.default_rng())
    except ValueError as error:
        gr.Warning(f"Hole: {error}")
        return brush
    layer = Path(output_folder()) / "layer.png"
    masks.layer_image(hole).save(layer)
    return {"background": photo, "layers": [str(layer)], "composite": photo}


def output_folder() -> str:
    """A fresh folder for one request's files, in gradio's upload folder; folders of earlier requests older than
    OUTPUT_AGE are removed (gradio has copied their files into its cache by then)."""
    parent = Path(gr.utils.get_upload_folder()) / "hoginpaint-outputs"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        try:
            if time.time() - old.stat().st_mtime > OUTPUT_AGE:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass
    return tempfile.mkdtemp(dir=parent)


def write_png(pixels: np.ndarray, folder: str, name: str) -> str:
    """`(H, W, 3)` uint8 RGB → a PNG file (zlib level 1: a 49 MP result encodes ~3x faster than at gradio's level 6,
    for ~30 % more bytes) → its path."""
    path = str(Path(folder) / f"{name}.png")
    if not cv2.imwrite(path, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")
    return path


@spaces.GPU(duration=60)
def run_methods(crop: Image.Image, crop_hole: Image.Image) -> dict[str, tuple[Image.Image | None, Image.Image | None]]:
    """Each loaded method on the aligned crop → {name: (result crop, HOG guidance or None)}; GPU time only here."""
    results = {}
    for name, (method, _) in METHODS.items():
        if method is not None:
            out = method(image=crop, mask_image=crop_hole)
            results[name] = (out.images[0], getattr(out, "guidance", [None])[0])
    return results


def inpaint(photo: str | None, mask: str | None = None, brush: dict | None = None, intact: bool = True,
            hole: str = "none"):
    """Fill the hole of `photo` (white in `mask`, the painted strokes, and the `hole` of a button: "eyes", "nose",
    "mouth", "irregular" or "none") with every loaded method.

    Returns the masked photo, the HOG guidance, the HOG-guided, DeepFill v2 and Telea results (PNG files, the photo's
    size, equal to it outside the hole), a before/after pair, the identity table and a status line.
    """
    if photo is None:
        raise gr.Error("No photo: upload one, or pick an example, first.")
    try:
        pixels = read_photo(photo)  # (H, W, 3) uint8
    except ValueError as error:
        raise gr.Error(refusal("Photo", error, photo)) from None
    painted, mask_image = read_hole(pixels.shape[:2], mask, brush)
    try:
        painted |= preset_hole(pixels, painted, hole, np.random.default_rng())
    except ValueError as error:
        raise gr.Error(f"Hole: {error}") from None
    try:
        masks.check_hole(painted, mask_image)
    except ValueError as error:
        raise gr.Error(refusal("Mask", error, mask)) from None

    framed = faces.frame(pixels, painted, CROP_SIZE)
    crop, crop_hole = faces.crop_known(pixels, painted, framed.transform, CROP_SIZE)
    results = run_methods(Image.fromarray(crop), Image.fromarray((crop_hole * 255).astype(np.uint8)))

    # One full-size image at a time: written to a PNG file and dropped (a 49 MP photo's copies are 147 MB each).
    folder = output_folder()
    region, shifted = face_region(framed.landmarks, painted.shape)
    # identities only where the hole reaches the window the descriptors read: elsewhere every distance is 0 (the
    # face found is untouched, or a false face that a fill made away from the hole)
    on_face = shifted is not None and bool(painted[region].any())
    reference = faces.face_descriptor(pixels[region], landmarks=shifted) if on_face else None
    masked = pixels.copy()
    masked[painted] = 255
    files, descriptors = {"masked": write_png(masked, folder, "masked")}, {}
    if reference is not None:
        descriptors["masked input"] = faces.face_descriptor(masked[region], landmarks=shifted)
    del masked
    for name, (result, _) in results.items():
        filled = pixels.copy()
        faces.paste_into(filled, result, framed.transform, painted)
        files[name] = write_png(filled, folder, name)
        if reference is not None:
            descriptors[TITLES[name]] = faces.face_descriptor(filled[region], landmarks=shifted)
        del filled

    guidance = results.get("hoginpaint", (None, None))[1]
    if guidance is not None:  # enlarged by a whole factor, nearest neighbour: HOG cells stay crisp on the page
        factor = -(-GUIDANCE_SIDE // guidance.height)
        guidance = guidance.resize((guidance.width * factor, guidance.height * factor), Image.NEAREST)
    notes = [FRAME_NOTES.get((framed.kind, framed.found_on), OUTSIDE_NOTE)]
    notes += [status for method, status in METHODS.values() if method is None]
    table = None
    if reference is not None and (intact or mask is None):
        table = [[title, round(distance, 3), "yes" if distance < faces.SAME_PERSON_THRESHOLD else "no"]
                 for title, distance in ((title, faces.identity_distance(reference, descriptor))
                                         for title, descriptor in descriptors.items())]
    else:
        notes.append("No identity distances: " + ("no face was found." if shifted is None else
                                                  "the hole is not on the face found." if not on_face else
                                                  "the photo is not intact under the hole."))
    after = files.get("hoginpaint", files["telea"])
    return (files["masked"], guidance, files.get("hoginpaint"), files.get("deepfill"), files["telea"],
            (files["masked"], after), table, "  \n".join(notes))


def face_region(landmarks: np.ndarray | None, shape: tuple[int, int]
                ) -> tuple[tuple[slice, slice], np.ndarray | None]:
    """The window around a face that its identity descriptor reads (the landmarks' box and as much again on every
    side), and the landmarks in it: descriptors then cost what the face costs, not the photo."""
    if landmarks is None:
        return (slice(None), slice(None)), None
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    reach = high - low
    left, top = np.maximum(np.floor(low - reach), 0).astype(int)
    right, bottom = np.minimum(np.ceil(high + reach) + 1, (shape[1], shape[0])).astype(int)
    return (slice(top, bottom), slice(left, right)), landmarks - (left, top)


def show_in_editor(photo: str | None) -> dict | None:
    """Put the uploaded photo on the painting canvas, strokes cleared; refuse what `inpaint` would refuse."""
    if photo is None:
        return None
    try:
        read_photo(photo)
    except ValueError as error:
        gr.Warning(refusal("Photo", error, photo))
        return None
    return {"background": photo, "layers": [], "composite": photo}


with gr.Blocks(title="HOG-guided face inpainting", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# HOG-guided face inpainting\nSalem, Mahdi & Abbas, *A Novel Face Inpainting Approach Based on "
                "Guided Deep Learning*: a first network predicts the face's HOG structure inside the hole, a second "
                "fills the hole guided by it. Upload a photo, paint over what to replace, press **Inpaint**.")
    gr.Markdown(MODEL_STATUS)
    with gr.Row():
        with gr.Column(scale=1):
            photo = unopened(gr.Image(label="1. Photo", type="filepath", format="png", image_mode=None, height=320,
                                      sources=["upload", "webcam", "clipboard"], elem_id="photo"))
            mask = unopened(gr.Image(label="Mask, instead of or with painting (white = hole)", type="filepath",
                                     format="png", image_mode=None, height=200, sources=["upload"]))
            intact = gr.Checkbox(value=True, label="The photo is intact under the hole (compare identities with it)",
                                 info="Untick when the photo is already damaged where the mask is white.")
            gr.Examples(EXAMPLES, inputs=[photo, mask])
        with gr.Column(scale=2):
            with gr.Row():
                buttons = {choice: gr.Button(f"Hole over the {choice}" if choice != "irregular" else
                                             "Random irregular hole", size="sm", elem_id=f"hole-{choice}")
                           for choice in HOLES[1:]}
            brush = unopened_layers(gr.ImageEditor(
                label="2. Paint the hole (brush, eraser, undo above the canvas)", type="filepath", image_mode="RGBA",
                format="png", sources=(), transforms=(), layers=False, height=560, elem_id="brush",
                canvas_size=EDITOR_CANVAS,
                brush=gr.Brush(colors=["#ffffff"], color_mode="fixed")))
            run = gr.Button("Inpaint", variant="primary", elem_id="run")
            hole = gr.Dropdown(list(HOLES), value="none", visible=False,
                               label="Hole added to the painted one (API: eyes, nose, mouth, irregular)")
            status = gr.Markdown(label="Status", elem_id="status")
    with gr.Row(equal_height=True):
        outputs = [gr.Image(label=label, format="png", type="pil", height=256, buttons=["download"],
                            interactive=False, elem_id=f"out-{key}")
                   for key, label in [("masked", "Masked input"), ("guidance", "HOG guidance (aligned crop)"),
                                      ("hoginpaint", "HOG-guided"), ("deepfill", "DeepFill v2"), ("telea", "Telea")]]
    with gr.Row():
        slider = gr.ImageSlider(label="Before / after (HOG-guided)", format="png", type="pil", max_height=420)
        table = gr.Dataframe(headers=["image", "identity distance to the original", "same person (< 0.6)"],
                             label="Identity (dlib descriptors; lower is closer)", interactive=False,
                             elem_id="identity")
    # Emptied first: the editor then drops its brush sprite sized to the previous photo (see EDITOR_CANVAS).
    photo.change(lambda: None, None, brush, api_visibility="private").then(
        show_in_editor, photo, brush, api_visibility="private")
    for choice, button in buttons.items():
        button.click(lambda photo, brush, choice=choice: paint_preset(photo, brush, choice), [photo, brush], brush,
                     api_visibility="private")
    run.click(inpaint, [photo, mask, brush, intact, hole], [*outputs, slider, table, status], api_name="inpaint")

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=16).launch(max_file_size=MAX_UPLOAD)
