"""Hugging Face Space: HOG-guided face inpainting (Salem, Mahdi & Abbas) beside DeepFill v2 and Telea.

Upload any photo, paint the hole (or upload a mask, white = hole, or press a button for a hole over the eyes, nose,
mouth or a random irregular one) and compare the methods on the framed face, shown large, and on the whole photo.
`hoginpaint.photo.inpaint_photo` does the work; this file is the page, the models, and gradio's workarounds. Models:
`HOGINPAINT_MODEL`, `DEEPFILL_MODEL` (a Hub id with an optional `@revision`, or a folder; default: `checkpoints/`);
`HOGINPAINT_MASK_DIR`: the irregular hole's NVIDIA masks. `python app.py` respects GRADIO_SERVER_NAME / _PORT."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import spaces
import torch
from PIL import Image

from hoginpaint import faces, masks, methods
from hoginpaint.imageio import MIN_IMAGE_SIDE, open_image_file
from hoginpaint.photo import PRESET_HOLES, inpaint_photo, preset_hole, read_hole, read_photo, write_png

ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS = {"hoginpaint": ROOT / "checkpoints" / "hoginpaint", "deepfill": ROOT / "checkpoints" / "deepfill"}
TITLES = {"hoginpaint": "HOG-guided", "deepfill": "DeepFill v2", "telea": "Telea", None: "Masked input"}
EXAMPLES = [[str(ROOT / "assets/astronaut.jpg"), mask] for mask in (None, str(ROOT / "assets/astronaut_mask.png"))]
MASK_DIR = Path(os.environ.get("HOGINPAINT_MASK_DIR", ROOT.parent / "shared/data/masks/nvidia-irregular-test"))
GUIDANCE_SIDE = 256  # the HOG guidance is returned at least this tall
MAX_UPLOAD = "50mb"  # a 49 MP JPEG is ~15 MB; the editor uploads the photo again as PNG, ~25 MB for 12 MP
# The editor's canvas before a photo arrives: no larger than any photo. Gradio 6's editor sizes its brush's hidden
# sprite, and a layer loaded from a file, by everything on the canvas, that sprite included (brush-textures.ts,
# layers.ts): on the default 800x800 canvas a button's hole on a 512x512 photo was drawn 144 px off. Emptying the
# editor before each new photo drops the sprite of a larger earlier photo.
EDITOR_CANVAS = (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE)
OUTPUT_AGE = 600  # seconds a request's files are kept (each written once, in its request's folder, served from there)
if not torch.cuda.is_available() and "OMP_NUM_THREADS" not in os.environ:
    # One intra-op thread: on 2 cores shared with another process, DeepFill's 128 px call took 2.8 s with two (each
    # waiting for the other at every barrier), 0.05 s with one.
    torch.set_num_threads(1)


def load_method(name: str) -> tuple[object | None, str]:
    """Load one learned method from its env var or the shipped checkpoint → (method or None, status line)."""
    variable = f"{name.upper()}_MODEL"  # HOGINPAINT_MODEL, DEEPFILL_MODEL
    spec = os.environ.get(variable) or (str(DEFAULT_MODELS[name]) if DEFAULT_MODELS[name].is_dir() else "")
    if not spec:
        return None, f"**{TITLES[name]}**: no model; set `{variable}` to a Hub id or a folder."
    repo, revision = (spec, None) if Path(spec).is_dir() or "@" not in spec else spec.rsplit("@", 1)
    try:
        method = methods.load(name, repo, revision=revision).to("cuda" if torch.cuda.is_available() else "cpu")
    except Exception as error:  # noqa: BLE001 — any failure to load leaves the app up with the other methods
        return None, f"**{TITLES[name]}**: could not load `{spec}`: {error}"
    return method, f"**{TITLES[name]}**: `{shown_source(spec)}` ({method.resolution}x{method.resolution})."


def shown_source(spec: str) -> str:
    """A model's source as the page names it: a folder inside the Space relative to it, anything else as given."""
    folder = Path(spec).resolve()
    return folder.relative_to(ROOT).as_posix() if Path(spec).is_dir() and folder.is_relative_to(ROOT) else spec


METHODS = {name: load_method(name) for name in ("hoginpaint", "deepfill")}
METHODS["telea"] = (methods.load("telea"), "**Telea**: OpenCV, no model.")
MODEL_STATUS = "  \n".join(status for _, status in METHODS.values())
CROP_SIZE = getattr(METHODS["hoginpaint"][0], "resolution", 256)
# The NVIDIA irregular masks (evaluation split, 10-40 % holes, as they are), or free-form strokes when absent.
IRREGULAR = (masks.FolderMasks(MASK_DIR, buckets=(1, 2, 3), split="eval", augment=False) if MASK_DIR.is_dir()
             else masks.make_mask_source("free_form"))


def unopened(upload: gr.Image | gr.ImageEditor) -> gr.Image | gr.ImageEditor:
    """Make an Image's upload, or an ImageEditor's background, layers and composite, reach the handler unopened, as
    paths (or bytes): gradio fails on a non-image or a decompression bomb with a bare "Error", the handler says what
    to do. (Not a subclass: gradio writes a `.pyi` stub beside the module of every Component subclass.)"""
    if isinstance(upload, gr.ImageEditor):
        upload.convert_and_format_image = lambda file, flatten_on_white=False: (
            None if file is None else bytes(file) if isinstance(file, (bytes, bytearray, memoryview)) else file.path)
    else:
        opened = upload.preprocess
        upload.preprocess = lambda payload: payload.path if payload is not None and payload.path else opened(payload)
    return upload


def refusal(what: str, error: ValueError, path: str | None) -> str:
    """A loader's message for the page: which input, "the file" for the server's copy, none of Pillow's internals."""
    message = re.sub(r" \(Image size \(\d+ pixels\) exceeds limit of \d+ pixels[^()]*\)", "", str(error))
    return f"{what}: {message.replace(f'the image {path}', 'the file').replace(path, 'the file') if path else message}"


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


def read_inputs(photo: str | None, mask_file: str | None, brush: dict | None, choice: str, check: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """The photo, and the hole of the mask's white, the painted strokes and a button's `choice` → (uint8 `(H, W, 3)`,
    bool `(H, W)`, refused when empty or everything if `check`); gr.Error in words for bad input."""
    if photo is None:
        raise gr.Error("No photo: upload one, or pick an example, first.")
    try:
        pixels = read_photo(photo)
    except ValueError as error:
        raise gr.Error(refusal("Photo", error, photo)) from None
    layers = []
    for layer in (brush or {}).get("layers") or []:
        try:
            layers.append(open_upload(layer))
        except ValueError as error:
            raise gr.Error(refusal("Brush layer", error, layer if isinstance(layer, str) else None)) from None
    try:
        mask = open_upload(mask_file) if mask_file is not None else None
        hole = masks.editor_hole(pixels.shape[:2], None, layers)
        if mask is not None:
            hole |= read_hole(mask, pixels.shape[:2])
    except ValueError as error:
        raise gr.Error(refusal("Mask", error, mask_file)) from None
    try:
        if choice != "none":
            hole |= preset_hole(pixels, hole, choice, np.random.default_rng(), IRREGULAR, CROP_SIZE)
    except ValueError as error:
        raise gr.Error(f"Hole: {error}") from None
    if check:
        try:
            masks.check_hole(hole, mask)
        except ValueError as error:
            raise gr.Error(refusal("Mask", error, mask_file)) from None
    return pixels, hole


def to_canvas(photo: str | None, brush: dict | None = None, choice: str = "none") -> tuple[dict | None, str]:
    """The photo on the painting canvas: its strokes cleared (`choice` "none"), or a button's hole added to them as
    one editable layer → (the canvas, the status). What `inpaint` would refuse leaves the canvas as it was and says
    why in the status (these events are not queued, and gradio shows no message for those)."""
    try:
        _, hole = read_inputs(photo, None, brush, choice)
    except gr.Error as error:
        return brush, error.message if photo is not None or choice != "none" else ""
    if choice != "none":
        masks.layer_image(hole).save(layer := output_folder() / "layer.png")
    return {"background": photo, "layers": [] if choice == "none" else [str(layer)], "composite": photo}, ""


def output_folder() -> Path:
    """A fresh folder for one request's files in gradio's upload folder; older requests' folders are removed."""
    parent = Path(gr.utils.get_upload_folder()) / "hoginpaint-outputs"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if time.time() - old.stat().st_mtime > OUTPUT_AGE:
                shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=parent))


@spaces.GPU(duration=60)
def run_on_gpu(name: str, image: Image.Image, mask_image: Image.Image):
    """One loaded method on the framed crop; on ZeroGPU, GPU time only here."""
    return METHODS[name][0](image=image, mask_image=mask_image)


def inpaint(photo: str | None, mask: str | None = None, brush: dict | None = None, intact: bool = True,
            hole: str = "none", progress: gr.Progress = gr.Progress()):  # noqa: B008 — gradio's way to get progress
    """Fill the hole of `photo` (white in `mask`, the painted strokes, and a button's `hole`: "eyes", "nose", "mouth",
    "irregular" or "none") with every loaded method → the HOG-guided, DeepFill v2 and Telea results (PNGs of the
    photo's size, equal to it outside the hole), the identity table, a status, and the views only the page shows (each
    file the API returns costs its client a download): the masked photo, the HOG guidance, the framed faces, large."""
    pixels, painted = read_inputs(photo, mask, brush, hole, check=True)
    loaded = {name: functools.partial(run_on_gpu, name) for name, (method, _) in METHODS.items() if method is not None}
    result = inpaint_photo(loaded, pixels, painted, intact=intact or mask is None, crop_size=CROP_SIZE,
                           progress=progress, png=True)
    folder, names = output_folder(), [None, *result.results]  # None: the masked input
    files = {n: str(p) for n, p in result.write_pngs({n: folder / f"{n or 'masked'}.png" for n in names}).items()}
    views = {name: str(write_png(folder / f"face-{name or 'masked'}.png", result.face_view(name))) for name in names}
    guidance = result.results["hoginpaint"].guidance if "hoginpaint" in result.results else None
    if guidance is not None:  # enlarged by a whole factor, nearest neighbour: HOG cells stay crisp on the page
        factor = -(-GUIDANCE_SIDE // guidance.height)
        guidance.resize((guidance.width * factor, guidance.height * factor), Image.NEAREST).save(folder / "guide.png")
        guidance = str(folder / "guide.png")
    notes = [result.note, *(status for method, status in METHODS.values() if method is None), result.identity_note]
    table = None if result.identity is None else [
        [TITLES.get(name, name), round(distance, 3), "yes" if distance < faces.SAME_PERSON_THRESHOLD else "no"]
        for name, distance in result.identity.items()]
    page_views = (files[None], guidance, [(views[name], TITLES[name]) for name in names])
    return (files.get("hoginpaint"), files.get("deepfill"), files["telea"], table,
            "  \n".join(note for note in notes if note), page_views)


with gr.Blocks(title="HOG-guided face inpainting", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# HOG-guided face inpainting\nSalem, Mahdi & Abbas, *A Novel Face Inpainting Approach Based on "
                "Guided Deep Learning*: a first network predicts the face's HOG structure inside the hole, a second "
                "fills the hole guided by it. Upload a photo, paint over what to replace, press **Inpaint**.\n\n"
                + MODEL_STATUS)
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
                           for choice in PRESET_HOLES[1:]}
            brush = unopened(gr.ImageEditor(
                label="2. Paint the hole (brush, eraser, undo above the canvas)", type="filepath", image_mode="RGBA",
                format="png", sources=(), transforms=(), layers=False, height=560, elem_id="brush",
                canvas_size=EDITOR_CANVAS, brush=gr.Brush(colors=["#ffffff"], color_mode="fixed")))
            run = gr.Button("Inpaint", variant="primary", elem_id="run")
            hole = gr.Dropdown(list(PRESET_HOLES), value="none", visible=False,
                               label="Hole added to the painted one (API: eyes, nose, mouth, irregular)")
            status = gr.Markdown(label="Status", elem_id="status")
    gallery = gr.Gallery(label="The framed face, as the models saw it: the masked input and each method's result",
                         columns=4, height=440, object_fit="contain", elem_id="faces")
    with gr.Row(equal_height=True):
        outputs = [gr.Image(label=label, format="png", type="pil", height=256, buttons=["download"],
                            interactive=False, elem_id=f"out-{key}")
                   for key, label in [("masked", "Masked input"), ("guidance", "HOG guidance (framed crop)"),
                                      ("hoginpaint", "HOG-guided"), ("deepfill", "DeepFill v2"), ("telea", "Telea")]]
    table = gr.Dataframe(headers=["image", "identity distance to the original", "same person (< 0.6)"],
                         label="Identity (dlib descriptors; lower is closer)", interactive=False, elem_id="identity")
    # Emptied first, in the browser (the editor then drops its brush sprite: EDITOR_CANVAS). Only Inpaint is queued:
    # a queued event that joins within seconds of the last one's end can lose its result in gradio 6 (spins forever).
    photo.change(None, None, brush, js="() => null", api_visibility="private").then(
        to_canvas, photo, [brush, status], queue=False, api_visibility="private")
    for choice, button in buttons.items():
        button.click(functools.partial(to_canvas, choice=choice), [photo, brush], [brush, status], queue=False,
                     api_visibility="private")
    views = gr.State()  # (masked photo, guidance, framed faces): shown by a second event, not returned by the API
    run.click(inpaint, [photo, mask, brush, intact, hole], [*outputs[2:], table, status, views], api_name="inpaint"
              ).success(lambda views: views, views, [*outputs[:2], gallery], queue=False, api_visibility="private")

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=16).launch(max_file_size=MAX_UPLOAD)
