"""Reliability of the pipeline, the CLI and model loading: any input gives a correct result or a worded ValueError.

Property-based (hypothesis) over image modes, sizes from 1x1 to 3000x17 and every kind of mask (empty, full,
non-binary, wrong size, wrong mode, wrong values): a call either returns each image at its own size, equal to the
input outside the hole, or raises a `ValueError` whose message names the problem — never another exception. The same
through `python -m hoginpaint inpaint` (exit 2, one line on stderr, no traceback). Then the decompression-bomb guard,
damaged model folders, pickles, and Hub failures (401, 403, 500, a timeout, a refused connection) against real HTTP
servers on 127.0.0.1.

The expected outcome of every drawn case is worked out here, independently of `hoginpaint.imageio`: the hole from
the mask's own pixels, the input's RGB from Pillow's conversions, and which check must fail first (images are read
first, then masks, then sizes are compared).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests import app_server
from tests.hub_server import Failure, HubServer
from hoginpaint import __main__ as cli
from hoginpaint import imageio
from hoginpaint.hub import HubError
from hoginpaint.imageio import load_image
from hoginpaint.pipeline import HOGInpaintPipeline

REPO_ROOT = Path(__file__).resolve().parent.parent
RESOLUTION = 32
MODES = ("L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK")
MASK_KINDS = ("empty", "full", "binary", "gray", "wrong size", "CMYK", "float 0..255", "int 0..255")
MASK_FORMS = ("pil", "uint8 array", "bool array", "float tensor")
# Deterministic examples (CI must not flake) and no example database written into the repository.
PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def pipeline() -> HOGInpaintPipeline:
    return HOGInpaintPipeline.from_config(base_channels=4, residual_blocks=1, resolution=RESOLUTION, seed=0)


@pytest.fixture(scope="module")
def model_dir(pipeline, tmp_path_factory) -> Path:
    return pipeline.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


# ---------------------------------------------------------------------------------------------------------------------
# Inputs and what each must give


def make_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    """A random image of `mode`; transparent modes get random alpha, P a 256-colour palette."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "CMYK":
        return Image.frombytes("CMYK", (width, height), rng.integers(0, 256, (height, width, 4), np.uint8).tobytes())
    image = Image.fromarray(rgb)
    if mode in ("L", "LA"):
        image = image.convert("L")
    elif mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE)
    if mode in ("LA", "RGBA"):
        image.putalpha(alpha)
    return image


def reference_rgb(image: Image.Image) -> np.ndarray:
    """What the pipeline must keep outside the hole, `(H, W, 3)` float32 in [0, 1], from Pillow's conversions only:
    16-bit data over 65535, transparency composited on white."""
    if image.mode == "I;16":
        gray = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("LA", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@dataclass
class MaskCase:
    mask: object  # what the caller passes
    hole: np.ndarray | None  # (H, W) bool when the mask is readable and of the image's size
    read_error: str | None  # a regex the message must match when the mask itself cannot be read
    size: tuple[int, int]  # (width, height) of the mask


def make_mask(kind: str, form: str, width: int, height: int, seed: int) -> MaskCase:
    rng = np.random.default_rng(seed + 1)
    if kind == "wrong size":
        width, height = (width + 1, height) if seed % 3 == 0 else (width, height - 1) if seed % 3 == 1 else \
            (height, width + (width == height))
    gray = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if kind == "CMYK":
        return MaskCase(Image.fromarray(gray).convert("CMYK"), None, r"cannot read a mask from a mode 'CMYK' image; "
                        r"convert it to 'L'", (width, height))
    if kind == "float 0..255":  # 8-bit values in a float image: ambiguous, refused
        return MaskCase(Image.fromarray(gray.astype(np.float32), mode="F") if form == "pil" else
                        gray.astype(np.float32), None, r"float masks must lie in \[0, 1\].*divide 0..255 data by 255",
                        (width, height))
    if kind == "int 0..255":
        return MaskCase(Image.fromarray(gray.astype(np.int32)) if form == "pil" else torch.from_numpy(
                        gray.astype(np.int64)), None, r"integer masks other than uint8 must hold only 0 and 1",
                        (width, height))
    if kind == "gray":  # non-binary 8-bit: a hole wherever the value is above half (128 and up)
        return MaskCase(Image.fromarray(gray) if form == "pil" else gray, gray >= 128, None, (width, height))
    hole = {"empty": np.zeros((height, width), bool), "full": np.ones((height, width), bool)}.get(
        kind, gray >= 160)  # binary (and wrong size): about 37% holes, scattered
    mask = {"pil": lambda: Image.fromarray(hole.astype(np.uint8) * 255), "uint8 array": lambda: hole.astype(np.uint8)
            * 255, "bool array": lambda: hole.copy(), "float tensor": lambda: torch.from_numpy(hole).float()}[form]()
    return MaskCase(mask, hole, None, (width, height))


def as_given(image: Image.Image, seed: int) -> Image.Image | np.ndarray | torch.Tensor:
    """The image as the caller hands it over: the PIL image, its ndarray (modes numpy holds as an image), or a
    float `(3, H, W)` tensor."""
    form = ("pil", "array", "tensor")[seed // 3 % 3]
    if form == "array" and image.mode in ("L", "RGB", "RGBA", "I;16"):
        return np.asarray(image)
    if form == "tensor":
        return torch.from_numpy(reference_rgb(image)).permute(2, 0, 1)
    return image


def small(width: int, height: int) -> bool:
    return min(width, height) < imageio.MIN_IMAGE_SIDE


def first_error(cases: list[tuple[int, int, MaskCase]]) -> str | None:
    """The regex of the error the pipeline must raise for a batch of (width, height, mask case), or None.

    Images are read first, then masks, then each mask's size is compared with its image's: the first failure of the
    earliest phase is the one reported.
    """
    for width, height, _ in cases:
        if small(width, height):
            return rf"image is {width}x{height}; the smallest accepted is 16x16 pixels"
    for _, _, mask in cases:
        if mask.read_error:
            return mask.read_error
        if small(*mask.size):
            return rf"mask is {mask.size[0]}x{mask.size[1]}; the smallest accepted is 16x16 pixels"
    for width, height, mask in cases:
        if mask.size != (width, height):
            return (rf"mask is {mask.size[0]}x{mask.size[1]} but image is {width}x{height}; pass a mask of the "
                    r"image's size")
    return None


@st.composite
def sizes(draw) -> tuple[int, int]:
    """(width, height): tiny (refused), small and odd, medium, or extreme aspect ratios such as 3000x17."""
    shape = draw(st.sampled_from(["small", "small", "medium", "extreme"]))
    if shape == "small":
        return draw(st.integers(1, 80)), draw(st.integers(1, 80))
    if shape == "medium":
        return draw(st.integers(100, 400)), draw(st.integers(100, 400))
    long_side, short_side = draw(st.sampled_from([1021, 2048, 3000])), draw(st.sampled_from([15, 16, 17, 23]))
    return (long_side, short_side) if draw(st.booleans()) else (short_side, long_side)


cases_strategy = st.tuples(st.sampled_from(MODES), sizes(), st.sampled_from(MASK_KINDS), st.sampled_from(MASK_FORMS),
                           st.integers(0, 2**16))


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline


def check_result(result: torch.Tensor, image: Image.Image, hole: np.ndarray) -> None:
    """Same size as the input, equal to it outside the hole, finite values in [0, 1] inside it."""
    width, height = image.size
    assert result.shape == (3, height, width)
    known = torch.from_numpy(~hole)
    expected = torch.from_numpy(reference_rgb(image)).permute(2, 0, 1)  # (3, H, W)
    torch.testing.assert_close(result[:, known], expected[:, known], rtol=0, atol=1e-6)
    assert torch.equal(result[:, known], load_image(image)[:, known])  # bit-identical to the input as read
    inside = result[:, torch.from_numpy(hole)]
    assert torch.isfinite(inside).all() and ((inside >= 0) & (inside <= 1)).all()
    if hole.sum() >= 64:  # the hole was generated, not copied (random weights: nearly every pixel differs)
        assert (inside != expected[:, torch.from_numpy(hole)]).any(dim=0).float().mean() > 0.5


@PROPERTY
@given(st.lists(cases_strategy, min_size=1, max_size=3))
@example([("CMYK", (3000, 17), "binary", "pil", 1)])
@example([("I;16", (17, 3000), "gray", "uint8 array", 2)])
@example([("RGBA", (1, 1), "full", "pil", 3)])
@example([("LA", (16, 16), "full", "float tensor", 4), ("P", (33, 17), "empty", "bool array", 5)])
@example([("L", (40, 24), "wrong size", "pil", 6), ("RGB", (8, 40), "binary", "pil", 7)])
def test_pipeline_gives_a_correct_result_or_a_worded_value_error(pipeline, batch):
    images = [make_image(mode, *size, seed) for mode, size, _, _, seed in batch]
    masks = [make_mask(kind, form, *size, seed) for _, size, kind, form, seed in batch]
    expected_error = first_error([(*image.size, mask) for image, mask in zip(images, masks)])
    given_images = [as_given(image, seed) for image, (*_, seed) in zip(images, batch)]
    try:
        out = pipeline(image=given_images, mask_image=[mask.mask for mask in masks], output_type="pt")
    except ValueError as error:
        assert expected_error is not None, f"refused a valid batch: {error}"
        assert re.search(expected_error, str(error)), f"{error!r} does not say {expected_error!r}"
        return
    assert expected_error is None, f"accepted a batch that must fail with {expected_error!r}"
    assert len(out.images) == len(images) and out.mask_tensor.shape == (len(images), 1, RESOLUTION, RESOLUTION)
    for result, image, mask in zip(out.images, images, masks):
        check_result(result, image, mask.hole)
        if not mask.hole.any():
            assert torch.equal(result, load_image(image))  # an empty mask returns the input unchanged


def test_a_large_photo_keeps_every_known_pixel(pipeline):
    image = make_image("RGB", 3000, 1500, seed=11)  # 4.5 megapixels, below the limit
    hole = np.zeros((1500, 3000), bool)
    hole[500:1100, 1100:1900] = True
    out = pipeline(image=image, mask_image=hole, output_type="pt")
    check_result(out.images[0], image, hole)


ODD_INPUTS = {
    # name: (image, mask, what the message must say)
    "empty image tensor": (torch.zeros(3, 0, 0), np.ones((20, 20), bool), r"image is 0x0; the smallest accepted"),
    "empty float image array": (np.zeros((0, 5, 3), np.float32), np.ones((20, 20), bool), r"image is 5x0; the "
                                r"smallest accepted"),
    "channels-first image": (np.zeros((3, 20, 24), np.uint8), np.ones((20, 24), bool), r"channels-first"),
    "channels-last tensor": (torch.rand(20, 24, 3), np.ones((20, 24), bool), r"channels-last"),
    "two-channel image": (np.zeros((20, 24, 2), np.uint8), np.ones((20, 24), bool), r"must be \(H, W\), \(H, W, 3\)"),
    "NaN image": (np.full((20, 24, 3), np.nan), np.ones((20, 24), bool), r"NaN or infinite"),
    "int64 image": (np.zeros((20, 24, 3), np.int64), np.ones((20, 24), bool), r"dtype int64; pass uint8"),
    "bytes image": (b"\x89PNG", np.ones((20, 24), bool), r"cannot read an image from bytes"),
    "two-channel mask": (np.zeros((20, 24, 3), np.uint8), np.zeros((20, 24, 2), np.uint8),
                         r"got a batch of 20 \(shape \(20, 24, 2\) is read as 20 masks of 2x24\); pass one \(H, W\)"),
    "channels-first mask": (np.zeros((20, 24, 3), np.uint8), np.zeros((3, 20, 24), np.uint8),
                            r"got a batch of 3 \(shape \(3, 20, 24\).*pass one \(H, W\) mask"),
    "complex mask tensor": (np.zeros((20, 24, 3), np.uint8), torch.zeros(20, 24, dtype=torch.complex64),
                            r"dtype torch.complex64; pass bool, uint8"),
    "NaN mask": (np.zeros((20, 24, 3), np.uint8), np.full((20, 24), np.nan), r"NaN or infinite"),
    "mask list of lists": (np.zeros((20, 24, 3), np.uint8), [[0, 1]], r"cannot read a mask from list"),
    "two masks for one image": (np.zeros((20, 24, 3), np.uint8), [np.ones((20, 24), bool)] * 2,
                                r"got 1 images and 2 masks"),
}


@pytest.mark.parametrize("case", list(ODD_INPUTS))
def test_odd_containers_are_refused_with_what_was_wrong(pipeline, case):
    image, mask, message = ODD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        pipeline(image=image, mask_image=mask)


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (8_000, 7_000)])  # above twice the limit / above it
def test_decompression_bomb_header_is_refused(pipeline, tmp_path, width, height):
    assert Image.MAX_IMAGE_PIXELS == imageio.MAX_IMAGE_PIXELS == 50_000_000  # the guard is on, at the documented value
    (tmp_path / "bomb.png").write_bytes(app_server.png_header(width, height))
    Image.new("L", (64, 64)).save(tmp_path / "mask.png")
    message = rf"bomb.png is larger than 50,000,000 pixels .*{width * height}.*; downscale it"
    with pytest.raises(ValueError, match=message):
        pipeline(image=tmp_path / "bomb.png", mask_image=tmp_path / "mask.png")
    with pytest.raises(ValueError, match=message):
        pipeline(image=make_image("RGB", 64, 64, 0), mask_image=tmp_path / "bomb.png")


def test_truncated_file_within_the_limit_is_refused(pipeline, tmp_path):
    whole = app_server.png_header(4000, 4000, rows=4000)  # 16 MP, within the limit; a download cut short:
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"could not read the image .*cut.png: .*is the file complete\?"):
        pipeline(image=tmp_path / "cut.png", mask_image=np.ones((4000, 4000), bool))


# ---------------------------------------------------------------------------------------------------------------------
# The CLI


def save_for_cli(image: Image.Image, mask: MaskCase, folder: Path) -> tuple[Path, Path]:
    """Image and mask as files: PNG where the format holds the mode, TIFF for CMYK, 32-bit int and float."""
    picture = mask.mask
    if not isinstance(picture, Image.Image):
        values = np.asarray(picture)
        picture = Image.fromarray(values.astype(np.int32) if values.dtype == np.int64 else values)
    paths = []
    for name, item in (("photo", image), ("mask", picture)):
        paths.append(folder / f"{name}.{'tif' if item.mode in ('CMYK', 'I', 'F') else 'png'}")
        item.save(paths[-1])
    return paths[0], paths[1]


def run_cli_in_process(*args: str) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = cli.main(["inpaint", *args])
    return status, stderr.getvalue()


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.tuples(st.sampled_from(MODES), sizes(), st.sampled_from(MASK_KINDS), st.sampled_from(("pil", "uint8 array")),
                 st.integers(0, 2**16)))
@example(("CMYK", (3000, 17), "gray", "pil", 1))
@example(("P", (1, 1), "binary", "pil", 2))
@example(("I;16", (40, 30), "wrong size", "pil", 3))
def test_cli_writes_a_correct_result_or_exits_2_with_one_line(model_dir, case):
    mode, (width, height), kind, form, seed = case
    image, mask = make_image(mode, width, height, seed), make_mask(kind, form, width, height, seed)
    expected_error = first_error([(width, height, mask)])
    with tempfile.TemporaryDirectory() as folder:
        image_path, mask_path = save_for_cli(image, mask, Path(folder))
        output = Path(folder) / "out.png"
        status, stderr = run_cli_in_process("--image", str(image_path), "--mask", str(mask_path), "--output",
                                            str(output), "--model", str(model_dir), "--device", "cpu")
        if expected_error is not None:
            assert status == 2, stderr
            assert re.fullmatch(rf"error: .*{expected_error}.*\n", stderr), stderr  # one line
            assert not output.exists()
            return
        # the photo workflow says how it framed the photo, in one line, then where it wrote the result
        lines = stderr.splitlines()
        assert status == 0 and len(lines) == 2 and lines[1] == f"wrote {output}", stderr
        assert lines[0].startswith(f"{image_path.name}: "), stderr
        result = np.asarray(Image.open(output))
        as_read = (load_image(image_path).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert result.shape == (height, width, 3)
    np.testing.assert_array_equal(result[~mask.hole], as_read[~mask.hole])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "hoginpaint", "inpaint", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": python_path, **(env or {})})


def test_cli_process_refuses_a_bomb_in_one_line(model_dir, tmp_path):
    (tmp_path / "bomb.png").write_bytes(app_server.png_header(100_000, 100_000))
    Image.new("L", (64, 64)).save(tmp_path / "mask.png")
    done = run_cli("--image", str(tmp_path / "bomb.png"), "--mask", str(tmp_path / "mask.png"), "--output",
                   str(tmp_path / "out.png"), "--model", str(model_dir), "--device", "cpu")
    assert done.returncode == 2
    assert re.fullmatch(r"error: .*bomb.png is larger than 50,000,000 pixels.*downscale it before inpainting\n",
                        done.stderr), done.stderr
    assert not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Model folders: safetensors only, every damage worded, in one line through the CLI


class _Exploit:
    """Unpickling this creates the file `marker`: the proof that a loader unpickled it."""

    marker = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _exploit_bytes(marker: Path) -> bytes:
    exploit = _Exploit()
    exploit.marker = str(marker)
    return pickle.dumps(exploit)


def test_pickles_beside_or_instead_of_safetensors_are_never_unpickled(pipeline, model_dir, tmp_path):
    marker = tmp_path / "unpickled"
    beside = Path(shutil.copytree(model_dir, tmp_path / "beside"))
    for name in ("structure_generator", "inpaint_generator"):
        (beside / name / "pytorch_model.bin").write_bytes(_exploit_bytes(marker))
    loaded = HOGInpaintPipeline.from_pretrained(beside)  # the safetensors weights, the pickle left alone
    for name in ("structure_generator", "inpaint_generator"):
        expected, got = getattr(pipeline, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(torch.equal(got[key], value) for key, value in expected.items())
    disguised = Path(shutil.copytree(model_dir, tmp_path / "disguised"))
    (disguised / "inpaint_generator" / "model.safetensors").write_bytes(_exploit_bytes(marker))
    with pytest.raises(HubError, match=r"model.safetensors of folder .*disguised.* is (truncated or )?not a "
                                       r"safetensors file"):
        HOGInpaintPipeline.from_pretrained(disguised)
    assert not marker.exists()
    pickle.loads(_exploit_bytes(marker))  # the payload works: had anything unpickled it, the marker would exist
    assert marker.exists()


def _damage(folder: Path, damage: str) -> None:
    weights = folder / "inpaint_generator" / "model.safetensors"
    if damage == "pickle only":
        weights.unlink()
        torch.save({"weight": torch.zeros(1)}, folder / "inpaint_generator" / "pytorch_model.bin")
    elif damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:-1000])
    elif damage == "config of another size":
        config = json.loads((folder / "inpaint_generator" / "config.json").read_text())
        (folder / "inpaint_generator" / "config.json").write_text(json.dumps({**config, "base_channels": 8}))
    elif damage == "missing subfolder":
        shutil.rmtree(folder / "inpaint_generator")
    elif damage == "index not JSON":
        (folder / "model_index.json").write_text("{not json")
    elif damage == "config not JSON":
        (folder / "structure_generator" / "config.json").write_text("[1, 2")


DAMAGES = {
    "pickle only": r"holds only pickled weights in inpaint_generator/ \(pytorch_model.bin\).*never unpickles",
    "truncated weights": r"model.safetensors of folder .* is truncated.*download or save it again",
    "config of another size": r"could not load InpaintGenerator from inpaint_generator/ of folder .*do not match",
    "missing subfolder": r"has no inpaint_generator/config.json.*check the repository and the subfolder name",
    "index not JSON": r"model_index.json of folder .* is not valid JSON .*re-save the pipeline",
    "config not JSON": r"structure_generator/config.json of folder .* is not valid JSON .*save the component again",
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_model_folder_is_one_worded_line_from_the_cli(model_dir, tmp_path, damage):
    folder = Path(shutil.copytree(model_dir, tmp_path / "model"))
    _damage(folder, damage)
    with pytest.raises(ValueError, match=DAMAGES[damage]):
        HOGInpaintPipeline.from_pretrained(folder)
    Image.new("RGB", (32, 32)).save(tmp_path / "face.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "mask.png")
    status, stderr = run_cli_in_process("--image", str(tmp_path / "face.png"), "--mask", str(tmp_path / "mask.png"),
                                        "--output", str(tmp_path / "out.png"), "--model", str(folder))
    assert status == 2
    assert re.fullmatch(rf"error: .*{DAMAGES[damage]}.*\n", stderr), stderr


# ---------------------------------------------------------------------------------------------------------------------
# The Hub failing: real HTTP servers on 127.0.0.1


# The Hub of tests/hub_server.py failing by repository; `org/stalls-once` and `org/down-once` serve the model after
# their first request: a stall silent past the client's HF_HUB_ETAG_TIMEOUT of 1 s, then an empty 200 (a client that
# waited for it could not use it), and a 503.
HUB_BEHAVIOURS = {
    "org/private": Failure(401),  # not logged in, or a private repository
    "org/bad-token": Failure(401, message="Invalid credentials in Authorization header"),
    "org/forbidden": Failure(403, message="Your token has no read access"),
    "org/stalls-once": Failure(200, delay_s=3, times=1),
    "org/down-once": Failure(503, times=1),
}


_LOAD_EACH = """
import json, sys, time
from hoginpaint.hub import HubError
from hoginpaint.pipeline import HOGInpaintPipeline
messages = {}
for repo_id in sys.argv[1:]:
    started = time.monotonic()
    try:
        HOGInpaintPipeline.from_pretrained(repo_id, token=repo_id == "org/bad-token" and "hf_wrong")
        messages[repo_id] = ("loaded", time.monotonic() - started)
    except HubError as error:
        messages[repo_id] = (str(error), time.monotonic() - started)
print(json.dumps(messages))
"""

HUB_FAILURES = {
    "org/private": r"^Hub repository 'org/private': access denied \(HTTP 401\); log in \(`hf auth login`\) or pass a "
                   r"token with read access$",
    "org/bad-token": r"^Hub repository 'org/bad-token': access denied \(HTTP 401\); log in",
    "org/forbidden": r"^Hub repository 'org/forbidden': access denied \(HTTP 403\); log in",
    "org/stalls-once": r"^loaded$",  # the first request timed out after 1 s; huggingface_hub's retry got the file
    "org/down-once": r"^loaded$",  # a 503, then the retry got it
}


def test_hub_failures_name_the_repository_and_what_to_try(model_dir, tmp_path):
    """huggingface_hub reads HF_ENDPOINT and HF_HUB_ETAG_TIMEOUT when imported (whole seconds; "0" means the
    default of 10 s), so the client runs in a subprocess with them set.

    A Hub that stays silent is not tried here: huggingface_hub 2.4 retries a timed-out or 5xx metadata request with
    its own fixed 60 s limit and five backoffs, whatever HF_HUB_ETAG_TIMEOUT says, so it takes minutes to give up
    (the wording of that timeout is tested in test_hub.py with a failing download function).
    """
    with HubServer(failures=HUB_BEHAVIOURS) as server:
        for repo_id in ("org/stalls-once", "org/down-once"):
            server.add_repo(repo_id, model_dir)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
        env.update(PYTHONPATH=str(REPO_ROOT), HF_ENDPOINT=server.endpoint, HF_HOME=str(tmp_path / "hf"),
                   HF_HUB_ETAG_TIMEOUT="1", HF_HUB_DOWNLOAD_TIMEOUT="1", HF_HUB_DISABLE_TELEMETRY="1")
        done = subprocess.run([sys.executable, "-c", _LOAD_EACH, *HUB_FAILURES], env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    for repo_id, pattern in HUB_FAILURES.items():
        message, seconds = messages[repo_id]
        assert re.search(pattern, message), f"{repo_id}: {message}"
        assert seconds < 10, f"{repo_id} took {seconds:.1f} s"  # the 1 s timeout cut the stall short


def test_cli_offline_without_a_cached_model_exits_2_in_one_line(tmp_path):
    """(An unreachable Hub, online, is retried by huggingface_hub for ~25 s with a warning per retry before the same
    kind of message; test_hub.py words it with a failing download function.)"""
    Image.new("RGB", (32, 32)).save(tmp_path / "face.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "mask.png")
    done = run_cli("--image", str(tmp_path / "face.png"), "--mask", str(tmp_path / "mask.png"), "--output",
                   str(tmp_path / "out.png"), "--model", "org/hoginpaint", "--device", "cpu",
                   env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert re.fullmatch(r"error: Hub repository 'org/hoginpaint': model_index.json is not in the local Hugging Face "
                        r"cache and the Hub is offline \(HF_HUB_OFFLINE=1\); download it once where the Hub is "
                        r"reachable \(`hf download org/hoginpaint`\), or pass a local folder\n", done.stderr), \
        done.stderr
