"""Hugging Face Space: HOG-guided face inpainting (Salem, Mahdi & Abbas) beside DeepFill v2 and Telea.

Upload any photo, paint the hole (or upload a mask, white = hole) and compare the methods. The face is found with
dlib and aligned to the training framing; only the hole is pasted back, at the photo's own resolution.

Models: `HOGINPAINT_MODEL` and `DEEPFILL_MODEL` (a Hub id with an optional `@revision`, or a local folder); by default
the checkpoints shipped in `checkpoints/`. A model that cannot be loaded is reported on the page; the others still run.

    python app.py        # GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are respected
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import spaces
import torch
from PIL import Image

from hoginpaint import baselines, faces
from hoginpaint.imageio import check_mask_matches, load_image, load_mask, to_pil

ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS = {"hoginpaint": ROOT / "checkpoints" / "hoginpaint", "deepfill": ROOT / "checkpoints" / "deepfill"}
MODEL_ENV = {"hoginpaint": "HOGINPAINT_MODEL", "deepfill": "DEEPFILL_MODEL"}
TITLES = {"hoginpaint": "HOG-guided", "deepfill": "DeepFill v2", "telea": "Telea"}
EXAMPLES = [[str(ROOT / "assets" / "astronaut.jpg"), None],
            [str(ROOT / "assets" / "astronaut.jpg"), str(ROOT / "assets" / "astronaut_mask.png")]]
GUIDANCE_SIDE = 256  # the HOG guidance is returned at least this tall
DETECTION_SIDE = 800  # dlib looks for faces on a copy this size at most (it is slow on large photos)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


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
        method = baselines.load(name, repo, revision=revision).to(DEVICE)
    except Exception as error:  # noqa: BLE001 — any failure to load leaves the app up with the other methods
        return None, f"**{TITLES[name]}**: could not load `{spec}`: {error}"
    return method, f"**{TITLES[name]}**: `{spec}` ({method.resolution}x{method.resolution})."


METHODS = {name: load_method(name) for name in ("hoginpaint", "deepfill")}
METHODS["telea"] = (baselines.load("telea"), "**Telea**: OpenCV, no model.")
MODEL_STATUS = "  \n".join(status for _, status in METHODS.values())
CROP_SIZE = getattr(METHODS["hoginpaint"][0], "resolution", 256)


def unopened(image: gr.Image) -> gr.Image:
    """Make `image` hand the handler the uploaded file's path without opening it.

    gr.Image opens every upload before the handler runs and fails on a non-image or a decompression bomb with a bare
    "Error"; `load_image`, in the handler, refuses them with a message that says what to do. (An instance override,
    not a subclass: gradio writes a `.pyi` stub beside the module of every Component subclass.)
    """
    opened = image.preprocess
    image.preprocess = lambda payload: payload.path if payload is not None and payload.path else opened(payload)
    return image


def refusal(what: str, error: ValueError, path: str | None) -> str:
    """A loader's message for the page: which input, and "the file" for the server's copy of the upload."""
    return f"{what}: {str(error).replace(path, 'the file') if path else error}"


def read_hole(photo: torch.Tensor, mask_file: str | None, brush: dict | None) -> tuple[np.ndarray, bool]:
    """The hole: the uploaded mask's white and the painted strokes → (`(H, W)` bool, painted on the photo only)."""
    height, width = photo.shape[-2:]
    hole = np.zeros((height, width), dtype=bool)
    if mask_file is not None:
        mask = load_mask(mask_file)  # (1, H, W)
        check_mask_matches(photo, mask)
        hole |= mask[0].numpy() >= 0.5
    for layer in (brush or {}).get("layers") or []:
        stroke = load_mask(layer, from_alpha=True)[0].numpy()
        if stroke.shape != hole.shape:  # the canvas may hold a scaled copy of the photo
            stroke = cv2.resize(stroke, (width, height), interpolation=cv2.INTER_NEAREST)
        hole |= stroke >= 0.5
    if not hole.any():
        raise ValueError("the mask is empty: paint over the part of the face to fill in, or upload a mask "
                         "(white = hole)")
    if hole.all():
        raise ValueError("the mask covers the whole photo: leave the rest of the face visible, it is what the hole "
                         "is filled from")
    return hole, mask_file is None


def frame(photo: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Where the models look → (`(2, 3)` map of photo pixels onto the CROP_SIZE square, the face's 68 landmarks or
    None, a status note). The face that overlaps the hole most is aligned to the training framing; when no face is
    found, or the hole reaches outside the aligned crop, a padded square around the hole is taken instead."""
    ys, xs = np.nonzero(hole)
    scale = min(1.0, DETECTION_SIDE / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else photo
    boxes = faces.detect_faces(small, upsample=1)  # largest first
    if not boxes:
        return square_around(hole), None, "No face detected: cropped a padded square around the hole instead."
    overlap = [np.count_nonzero((xs * scale >= box.left) & (xs * scale <= box.right) & (ys * scale >= box.top)
                                & (ys * scale <= box.bottom)) for box in boxes]
    box = boxes[int(np.argmax(overlap))]
    landmarks = faces.landmarks68(photo, faces.FaceBox(*(round(v / scale) for v in (box.left, box.top, box.right,
                                                                                    box.bottom))))
    transform = faces.align_face(photo, landmarks, size=CROP_SIZE).transform
    crop_xy = transform @ np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)  # (2, hole pixels)
    if ((crop_xy >= -0.5) & (crop_xy <= CROP_SIZE - 0.5)).all():
        return transform, landmarks, "Face found: aligned to the training framing."
    return square_around(hole), landmarks, ("The hole reaches outside the face: cropped a padded square around the "
                                            "hole instead.")


def square_around(hole: np.ndarray) -> np.ndarray:
    """A square twice the hole's size (64 px at least), inside the photo where it fits → `(2, 3)` map onto the
    CROP_SIZE square (beyond the photo's edge, the crop mirrors it)."""
    ys, xs = np.nonzero(hole)
    side = max(2.0 * (max(xs.max() - xs.min(), ys.max() - ys.min()) + 1), 64.0)
    corner = []
    for low, high, extent in ((xs.min(), xs.max(), hole.shape[1]), (ys.min(), ys.max(), hole.shape[0])):
        centred = (low + high + 1 - side) / 2
        corner.append(min(max(centred, 0.0), extent - side) if side <= extent else (extent - side) / 2)
    zoom = CROP_SIZE / side
    return np.array([[zoom, 0.0, -corner[0] * zoom], [0.0, zoom, -corner[1] * zoom]])


@spaces.GPU(duration=60)
def run_methods(crop: Image.Image, crop_hole: Image.Image) -> dict[str, tuple[Image.Image | None, Image.Image | None]]:
    """Each loaded method on the aligned crop → {name: (result crop, HOG guidance or None)}; GPU time only here."""
    results = {}
    for name, (method, _) in METHODS.items():
        if method is not None:
            out = method(image=crop, mask_image=crop_hole)
            results[name] = (out.images[0], getattr(out, "guidance", [None])[0])
    return results


def inpaint(photo: str | None, mask: str | None = None, brush: dict | None = None, intact: bool = True):
    """Fill the hole of `photo` (white in `mask`, else the painted strokes) with every loaded method.

    Returns the masked photo, the HOG guidance, the HOG-guided, DeepFill v2 and Telea results (PNG, the photo's
    size, equal to it outside the hole), a before/after pair, the identity table and a status line.
    """
    if photo is None:
        raise gr.Error("No photo: upload one, or pick an example, first.")
    try:
        image = load_image(photo)  # (3, H, W) in [0, 1]
    except ValueError as error:
        raise gr.Error(refusal("Photo", error, photo)) from None
    try:
        hole, painted = read_hole(image, mask, brush)
    except ValueError as error:
        raise gr.Error(refusal("Mask", error, mask)) from None
    pixels = faces.to_rgb_array(image)  # (H, W, 3) uint8
    transform, landmarks, note = frame(pixels, hole)
    crop = cv2.warpAffine(pixels, transform, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)
    crop_hole = faces.warp_mask_to_aligned(hole, transform, CROP_SIZE)
    results = run_methods(Image.fromarray(crop), Image.fromarray((crop_hole * 255).astype(np.uint8)))

    masked = to_pil(torch.where(torch.from_numpy(hole)[None], 1.0, image))
    filled = {name: faces.paste_aligned(pixels, result, transform, hole) for name, (result, _) in results.items()}
    guidance = results.get("hoginpaint", (None, None))[1]
    if guidance is not None:  # enlarged by a whole factor, nearest neighbour: HOG cells stay crisp on the page
        factor = -(-GUIDANCE_SIDE // guidance.height)
        guidance = guidance.resize((guidance.width * factor, guidance.height * factor), Image.NEAREST)
    notes = [note] + [status for method, status in METHODS.values() if method is None]
    table = identity_table(pixels, masked, filled, landmarks) if (intact or painted) and landmarks is not None \
        else None
    if table is None:
        notes.append("No identity distances: " + ("no face was found." if landmarks is None else
                                                  "the photo is not intact under the hole."))
    after = filled["hoginpaint"] if "hoginpaint" in filled else filled["telea"]
    return (masked, guidance, filled.get("hoginpaint"), filled.get("deepfill"), filled["telea"], (masked, after),
            table, "  \n".join(notes))


def identity_table(original: np.ndarray, masked: Image.Image, filled: dict[str, Image.Image],
                   landmarks: np.ndarray) -> list[list]:
    """dlib identity distance of each image to the original photo, at the original face's landmarks."""
    reference = faces.face_descriptor(original, landmarks=landmarks)
    rows = []
    for title, candidate in [("masked input", masked)] + [(TITLES[name], image) for name, image in filled.items()]:
        distance = faces.identity_distance(reference, faces.face_descriptor(candidate, landmarks=landmarks))
        rows.append([title, round(distance, 3), "yes" if distance < faces.SAME_PERSON_THRESHOLD else "no"])
    return rows


def show_in_editor(photo: str | None) -> dict | None:
    """Put the uploaded photo on the painting canvas, strokes cleared; refuse what `inpaint` would refuse."""
    if photo is None:
        return None
    try:
        load_image(photo)
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
                                      sources=["upload", "webcam", "clipboard"]))
            mask = unopened(gr.Image(label="Mask, instead of or with painting (white = hole)", type="filepath",
                                     format="png", image_mode=None, height=200, sources=["upload"]))
            intact = gr.Checkbox(value=True, label="The photo is intact under the hole (compare identities with it)",
                                 info="Untick when the photo is already damaged where the mask is white.")
            gr.Examples(EXAMPLES, inputs=[photo, mask])
        with gr.Column(scale=2):
            brush = gr.ImageEditor(label="2. Paint the hole (brush, eraser, undo above the canvas)", type="pil",
                                   image_mode="RGBA", format="png", sources=(), transforms=(), layers=False,
                                   height=560, elem_id="brush", brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"))
            run = gr.Button("Inpaint", variant="primary", elem_id="run")
            status = gr.Markdown(label="Status", elem_id="status")
    with gr.Row(equal_height=True):
        outputs = [gr.Image(label=label, format="png", type="pil", height=256, buttons=["download"],
                            interactive=False, elem_id=f"out-{key}")
                   for key, label in [("masked", "Masked input"), ("guidance", "HOG guidance (aligned crop)"),
                                      ("hoginpaint", "HOG-guided"), ("deepfill", "DeepFill v2"), ("telea", "Telea")]]
    with gr.Row():
        slider = gr.ImageSlider(label="Before / after (HOG-guided)", format="png", type="pil", max_height=420)
        table = gr.Dataframe(headers=["image", "identity distance to the original", "same person (< 0.6)"],
                             label="Identity (dlib descriptors; lower is closer)", interactive=False)
    photo.change(show_in_editor, photo, brush, api_visibility="private")
    run.click(inpaint, [photo, mask, brush, intact], [*outputs, slider, table, status], api_name="inpaint")

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=16).launch()
