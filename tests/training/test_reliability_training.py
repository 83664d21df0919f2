"""Training survives being killed: `python train_accelerate.py` is SIGKILLed after a checkpoint and again in the
middle of a save, then resumed with `--resume_from_checkpoint latest`; it continues from the last complete
checkpoint, finishes, and its output loads. Undecodable images are skipped and counted in the summary.

Real processes on the shared faces at 64 px (G_H with 4 channels and 1 block, batch 2, a checkpoint every step): each
launch pays ~7 s of start-up on 2 cores, then takes ~10 steps a second. NaN/Inf losses are covered by
test_training.py (no update) and test_train_accelerate.py (the stop, exit status, last good checkpoint); decoding
failures per worker by test_data.py.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from accelerate.state import AcceleratorState
from PIL import Image

import train_accelerate
from hoginpaint.training import checkpoints
from hoginpaint.pipeline import HOGInpaintPipeline
from hoginpaint.training.checkpoints import TEMP_PREFIX, TRAINING_STATE, list_checkpoints, resolve_checkpoint
from tests.conftest import load_validation_faces

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH = 2
START_UP_S = 120  # the longest a launch may take to write a checkpoint, on a busy machine


def _arguments(faces_dir: Path, output_dir: Path, max_steps: int, *extra: str) -> list[str]:
    return ["--train_data_dir", str(faces_dir), "--output_dir", str(output_dir), "--stage", "structure",
            "--resolution", "64", "--base_channels", "4", "--residual_blocks", "1", "--train_batch_size", str(BATCH),
            "--dataloader_num_workers", "0", "--shuffle_buffer_size", "8", "--shuffle_input_shards", "1",
            "--mask_kind", "rectangle", "--checkpointing_steps", "1", "--checkpoints_total_limit", "2",
            "--validation_steps", "-1", "--max_train_steps", str(max_steps), "--seed", "0", *extra]


def _launch(arguments: list[str], log: Path) -> subprocess.Popen:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, str(REPO_ROOT / "train_accelerate.py"), *arguments],
                                env=environment, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def _kill_when(process: subprocess.Popen, seen, log: Path) -> None:
    """Poll every millisecond or so until `seen()` is true, then SIGKILL the process (no clean-up can run)."""
    deadline = time.monotonic() + START_UP_S
    try:
        while not seen():
            if process.poll() is not None:
                pytest.fail(f"training exited with {process.returncode} before it was killed:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"nothing happened within {START_UP_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.001)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _temp_folders(output_dir: Path) -> list[Path]:
    """The temp folders of saves in progress, by step (not the old checkpoints being deleted)."""
    return sorted((path for path in output_dir.glob(f"{TEMP_PREFIX}*")
                   if path.is_dir() and path.name.removeprefix(TEMP_PREFIX).isdigit()), key=_step)


def _step(temp: Path) -> int:
    return int(temp.name.removeprefix(TEMP_PREFIX))


def _assert_usable(checkpoint: Path, step: int) -> None:
    """A complete checkpoint: its counters say `step`, every weights file is whole, the optimiser state loads."""
    state = json.loads((checkpoint / TRAINING_STATE).read_text())
    assert state["global_step"] == step and state["images_seen"] == step * BATCH
    for weights in sorted(checkpoint.glob("model*.safetensors")):
        assert safetensors.torch.load_file(str(weights))  # raises on a truncated file
    assert torch.load(checkpoint / "optimizer.bin", weights_only=True)["state"]


def test_sigkill_after_a_checkpoint_and_during_a_save_then_resume(faces_dir, tmp_path):
    out, log = tmp_path / "out", tmp_path / "train.log"

    # 1. Killed once checkpoint-2 exists (it is renamed into place complete), wherever it was by then.
    first = _launch(_arguments(faces_dir, out, 1000), log)
    _kill_when(first, lambda: (out / "checkpoint-2").is_dir(), log)
    complete = list_checkpoints(out)
    assert complete and complete[-1][0] >= 2
    for step, path in complete:
        _assert_usable(path, step)

    # 2. Resumed, and killed while it writes a checkpoint: the save's temp folder is still there afterwards.
    killed_mid_save = []
    for _ in range(3):  # the save takes a few ms of each ~100 ms step; a kill can land just after the rename
        before = list_checkpoints(out)[-1][0]
        resumed = _launch(_arguments(faces_dir, out, 1000, "--resume_from_checkpoint", "latest"), log)
        _kill_when(resumed, lambda: any(_step(path) > before + 1 for path in _temp_folders(out)), log)
        killed_mid_save = _temp_folders(out)
        if killed_mid_save:
            break
    assert killed_mid_save, "three kills in a row missed the save in progress"
    interrupted = _step(killed_mid_save[-1])
    last_step, last = list_checkpoints(out)[-1]
    assert last_step == interrupted - 1  # the previous checkpoint is the newest complete one, and it is usable
    _assert_usable(last, last_step)
    assert resolve_checkpoint(out, "latest") == last

    # 3. Resumed to the end: it continues at the last complete step, clears the interrupted save, finishes.
    final_step = last_step + 3
    done = subprocess.run([sys.executable, str(REPO_ROOT / "train_accelerate.py"),
                           *_arguments(faces_dir, out, final_step, "--resume_from_checkpoint", "latest")],
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT),
                               "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"removed {killed_mid_save[-1].name}, left by a save that was interrupted" in done.stderr
    assert f"resumed from {last} at step {last_step}" in done.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from"] == str(last)
    assert summary["global_step"] == final_step
    assert summary["images_seen"] == final_step * BATCH  # the killed runs' unsaved steps are not counted
    assert not _temp_folders(out)
    assert [step for step, _ in list_checkpoints(out)] == [final_step - 1, final_step]  # --checkpoints_total_limit 2
    _assert_usable(out / f"checkpoint-{final_step}", final_step)
    pipeline = HOGInpaintPipeline.from_pretrained(out)
    saved = safetensors.torch.load_file(str(out / f"checkpoint-{final_step}" / "model.safetensors"))
    state = pipeline.structure_generator.state_dict()
    assert state.keys() == saved.keys() and all(torch.equal(state[key], saved[key]) for key in state)


CORRUPT = b"\xff\xd8\xff\xe0 a JPEG that stops here"


@pytest.fixture()
def fresh_accelerate_state():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_undecodable_images_are_skipped_and_counted_in_the_summary(faces_dir, tmp_path, fresh_accelerate_state):
    folder = tmp_path / "faces"
    folder.mkdir()
    for index, face in enumerate(load_validation_faces(faces_dir, 4, size=64)):
        face.save(folder / f"face{index}.png")
    (folder / "broken.jpg").write_bytes(CORRUPT)
    (folder / "empty.png").write_bytes(b"")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    (folder / "cut.png").write_bytes(buffer.getvalue()[:60])
    # 3 steps of 2 images need 6 faces: all of the first epoch (4 faces, 3 broken files) and 2 faces of the second,
    # with 0 to 3 broken files before them depending on the seeded file order.
    arguments = _arguments(folder, tmp_path / "out", 3, "--shuffle_buffer_size", "1")
    summary = train_accelerate.main(train_accelerate.parse_args(arguments))
    assert summary["status"] == "completed" and summary["global_step"] == 3 and summary["images_seen"] == 6
    assert 3 <= summary["skipped_images"] <= 6


# ---------------------------------------------------------------------------------------------------------------------
# Killed while checkpoints are deleted or replaced (in process: the kill is raised where it must land)


class _Killed(BaseException):
    """What SIGKILL does to the saver, at a chosen point: it stops there, and nothing after runs."""


def _fake_save_state(folder: str) -> None:
    for name in ("model.safetensors", "optimizer.bin", "random_states_0.pkl"):
        (Path(folder) / name).write_bytes(name.encode())


_rmtree = shutil.rmtree


def _rmtree_killed_after_one_file(path, *args, **kwargs) -> None:
    """shutil.rmtree, killed after it deleted one file of a checkpoint (the weights), before `training_state.json`."""
    if not (Path(path) / TRAINING_STATE).is_file():
        return _rmtree(path, *args, **kwargs)
    (Path(path) / "model.safetensors").unlink()
    raise _Killed


@pytest.mark.parametrize("when", ["deleting a checkpoint beyond the limit", "replacing a checkpoint of the same step"])
def test_a_kill_while_checkpoints_are_removed_leaves_no_half_checkpoint(tmp_path, monkeypatch,
                                                                        fresh_accelerate_state, when):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    monkeypatch.setattr(accelerator, "save_state", _fake_save_state)
    for step in (1, 2):
        checkpoints.save_checkpoint(accelerator, tmp_path, step, {"global_step": step}, total_limit=2)
    monkeypatch.setattr(checkpoints.shutil, "rmtree", _rmtree_killed_after_one_file)
    with pytest.raises(_Killed):  # step 3 pushes checkpoint-1 out; step 2 again replaces checkpoint-2
        checkpoints.save_checkpoint(accelerator, tmp_path, 3 if when.startswith("deleting") else 2,
                                 {"global_step": 3}, total_limit=2)
    monkeypatch.undo()
    for step, path in checkpoints.list_checkpoints(tmp_path):  # every checkpoint still listed is whole
        assert (path / "model.safetensors").read_bytes() == b"model.safetensors", step
    latest = checkpoints.resolve_checkpoint(tmp_path, "latest")
    assert (latest / "model.safetensors").is_file()
    assert checkpoints.remove_incomplete_checkpoints(tmp_path)  # the next start clears what the kill left
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))
