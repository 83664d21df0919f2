"""`python -m hoginpaint inpaint`: one image, a group photo, a folder of real faces (framed, or aligned in batches),
and errors without tracebacks."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint import __main__ as cli
from hoginpaint import faces
from hoginpaint.imageio import load_image, load_mask
from hoginpaint.pipeline import HOGInpaintPipeline

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pipeline = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=64, seed=0)
    return pipeline.save_pretrained(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data(val_face_images, nvidia_mask_dir, tmp_path_factory) -> Path:
    """faces/: three real faces (JPEG, PNG, JPEG) and one without a mask; masks/: their NVIDIA masks and one extra."""
    root = tmp_path_factory.mktemp("data")
    (root / "faces").mkdir()
    (root / "masks").mkdir()
    for index, (name, mask_index) in enumerate([("anna.jpg", 2010), ("ben.png", 4020), ("carl.jpg", 6030)]):
        val_face_images[index].save(root / "faces" / name)
        mask = Image.open(nvidia_mask_dir / f"{mask_index:05d}.png").convert("L").resize((256, 256), Image.NEAREST)
        mask.save(root / "masks" / f"{Path(name).stem}.png")
    val_face_images[3].save(root / "faces" / "dora.jpg")
    Image.new("L", (256, 256)).save(root / "masks" / "eve.png")
    return root


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "hoginpaint", "inpaint", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": python_path})


def _assert_inpainted(result_path: Path, image_path: Path, mask_path: Path) -> None:
    result, image, hole = load_image(result_path), load_image(image_path), load_mask(mask_path)[0] == 1
    assert result.shape == image.shape
    assert torch.equal(result[:, ~hole], image[:, ~hole])
    assert (result[:, hole] != image[:, hole]).any(dim=0).float().mean() > 0.9


def test_single_image(model_dir, data, tmp_path):
    output = tmp_path / "out" / "anna.png"
    done = _run_cli("--image", str(data / "faces" / "anna.jpg"), "--mask", str(data / "masks" / "anna.png"),
                    "--output", str(output), "--model", str(model_dir), "--device", "cpu", "--save-guidance")
    assert done.returncode == 0, done.stderr
    _assert_inpainted(output, data / "faces" / "anna.jpg", data / "masks" / "anna.png")
    assert Image.open(tmp_path / "out" / "anna_guidance.png").size == (64, 64)
    assert re.search(r"anna\.jpg: (Face found|No face detected|The hole reaches outside)", done.stderr)


def test_group_photo_frames_the_face_the_hole_is_on(model_dir, val_face_images, tmp_path):
    # Two real faces side by side, a hole over the right one's eyes: the CLI frames that face and says so, and the
    # output differs from the photo only inside the hole.
    group = np.concatenate([np.asarray(val_face_images[0]), np.asarray(val_face_images[1])], axis=1)  # (256, 512)
    right = max(faces.detect_faces(group), key=lambda box: box.left)
    hole = faces.feature_mask(faces.landmarks68(group, right), group.shape[:2], "eyes") > 0.5
    Image.fromarray(group).save(tmp_path / "group.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "group_mask.png")
    done = _run_cli("--image", str(tmp_path / "group.png"), "--mask", str(tmp_path / "group_mask.png"),
                    "--output", str(tmp_path / "out.png"), "--model", str(model_dir))
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(tmp_path / "out.png"))
    changed = (result != group).any(axis=-1)
    assert changed.any() and not (changed & ~hole).any()
    assert (result[hole] != group[hole]).any(axis=-1).mean() > 0.9
    framed = re.search(r"group\.png: Face found: aligned to the training framing\. The face framed: x (\d+)-(\d+), "
                       r"y (\d+)-(\d+) \(found on a classical fill of the hole\)\.", done.stderr)
    assert framed, done.stderr
    left, right_edge = int(framed[1]), int(framed[2])
    assert right.left - 20 < left < right_edge < right.right + 20 and (left + right_edge) / 2 > 256 + 64


def test_aligned_sends_the_whole_image_to_the_model(model_dir, data, tmp_path):
    # Aligned face crops, as the model was trained on: the pipeline's own call on the whole image, as before.
    face, mask = data / "faces" / "anna.jpg", data / "masks" / "anna.png"
    done = _run_cli("--image", str(face), "--mask", str(mask), "--output", str(tmp_path / "anna.png"),
                    "--model", str(model_dir), "--aligned", "--feather", "2")
    assert done.returncode == 0, done.stderr
    expected = HOGInpaintPipeline.from_pretrained(model_dir)(image=face, mask_image=mask, feather=2).images[0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "anna.png")), np.asarray(expected))
    assert "anna.jpg: Taken as an aligned face crop: the whole image went to the models" in done.stderr


@pytest.mark.parametrize("aligned", [False, True])
def test_folder_mode(model_dir, data, tmp_path, aligned):
    done = _run_cli("--image", str(data / "faces"), "--mask", str(data / "masks"), "--output", str(tmp_path / "out"),
                    "--model", str(model_dir), "--batch-size", "2", "--save-guidance", *(["--aligned"] * aligned))
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["anna.png", "ben.png", "carl.png"]
    assert sorted(path.name for path in (tmp_path / "out" / "guidance").iterdir()) == ["anna.png", "ben.png",
                                                                                        "carl.png"]
    for stem, suffix in [("anna", ".jpg"), ("ben", ".png"), ("carl", ".jpg")]:
        _assert_inpainted(tmp_path / "out" / f"{stem}.png", data / "faces" / f"{stem}{suffix}",
                          data / "masks" / f"{stem}.png")
    assert "1 image(s)" in done.stderr and "dora.jpg" in done.stderr
    assert "1 mask(s)" in done.stderr and "eve.png" in done.stderr
    assert "inpainted 3 of 3" in done.stderr
    framing_lines = [line for line in done.stderr.splitlines() if re.match(r"(anna|ben|carl)\.(jpg|png): ", line)]
    assert len(framing_lines) == (0 if aligned else 3)  # framed photos say how; aligned batches go as they are


def test_bad_path_exits_2_without_traceback(model_dir, tmp_path):
    done = _run_cli("--image", str(tmp_path / "missing.jpg"), "--mask", str(tmp_path / "missing.png"),
                    "--output", str(tmp_path / "out.png"), "--model", str(model_dir))
    assert done.returncode == 2
    assert "missing.jpg does not exist" in done.stderr and "Traceback" not in done.stderr


def test_usage_errors_exit_2(model_dir, data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "DEFAULT_MODEL", tmp_path / "no-checkpoint")
    face, mask = str(data / "faces" / "anna.jpg"), str(data / "masks" / "anna.png")
    cases = {
        "no checkpoint shipped": ["--image", face, "--mask", mask, "--output", str(tmp_path / "o.png")],
        "is a folder, so --mask must be a folder": ["--image", str(data / "faces"), "--mask", mask, "--output",
                                                    str(tmp_path / "o")],
        "has no image extension": ["--image", face, "--mask", mask, "--output", str(tmp_path / "o.txt"),
                                   "--model", str(model_dir)],
        "is the input image": ["--image", face, "--mask", mask, "--output", face, "--model", str(model_dir)],
        "no image in": ["--image", str(data / "faces"), "--mask", str(tmp_path), "--output", str(tmp_path / "o"),
                        "--model", str(model_dir)],
        "is neither an existing folder nor a valid Hub repository id": [
            "--image", face, "--mask", mask, "--output", str(tmp_path / "o.png"), "--model", "no/such/thing"],
        "is not a torch device": ["--image", face, "--mask", mask, "--output", str(tmp_path / "o.png"), "--model",
                                  str(model_dir), "--device", "gpu7"],
    }
    for message, argv in cases.items():
        assert cli.main(["inpaint", *argv]) == 2, message
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("aligned", [False, True])
def test_bad_file_in_a_folder_fails_alone(model_dir, data, tmp_path, capsys, aligned):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("anna.jpg", "ben.png"):
        (folder / name).write_bytes((data / "faces" / name).read_bytes())
    (folder / "carl.jpg").write_text("not a picture")
    status = cli.main(["inpaint", "--image", str(folder), "--mask", str(data / "masks"), "--output",
                       str(tmp_path / "out"), "--model", str(model_dir), "--batch-size", "3",
                       *(["--aligned"] * aligned)])
    assert status == 2
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["anna.png", "ben.png"]
    err = capsys.readouterr().err
    assert "carl.jpg" in err and "not an image" in err and "inpainted 2 of 3" in err
