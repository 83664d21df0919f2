"""Training checkpoints: written atomically, pruned to a limit, resolved for `--resume_from_checkpoint`.

A checkpoint is a folder ``checkpoint-{step}`` holding `accelerator.save_state`'s files and ``training_state.json``
(the run's counters). It is written into a temp folder, flushed to disk and renamed into place, so a run killed at
any moment leaves either the previous complete checkpoints or the new one, never a half-written folder that
`list_checkpoints` would take for complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")
TEMP_PREFIX = ".tmp-checkpoint-"
TRAINING_STATE = "training_state.json"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `output_dir`, oldest first. Temp folders of interrupted saves never match."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_dir() and (path / TRAINING_STATE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def resolve_checkpoint(output_dir: str | Path, spec: str | None) -> Path | None:
    """The checkpoint `--resume_from_checkpoint` names: None, ``latest`` (None if there is none yet) or a folder."""
    if spec is None:
        return None
    if spec == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1][1] if checkpoints else None
    path = Path(spec)
    if not (path / TRAINING_STATE).is_file():
        raise ValueError(f"--resume_from_checkpoint {spec}: not a complete checkpoint (no {TRAINING_STATE}); pass "
                         f"'latest' or a checkpoint-N folder of a previous run")
    return path


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` (and `root` itself) to disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Delete the temp folders that interrupted saves left in `output_dir`; returns them."""
    output_dir = Path(output_dir)
    stale = [path for path in output_dir.glob(f"{TEMP_PREFIX}*") if path.is_dir()] if output_dir.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    return stale


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, state: dict[str, Any],
                    total_limit: int | None, extra: Any = None) -> Path:
    """`accelerator.save_state` into ``output_dir/checkpoint-{step}``, atomically; every rank must call it.

    The state goes into a temp folder first (all ranks write their RNG states there), is flushed to disk, and only
    then renamed: a run killed mid-save leaves the previous checkpoints intact and a temp folder that
    `list_checkpoints` ignores. `state` (JSON) is stored as ``training_state.json``; `extra(folder)` may add files
    (main process). Older checkpoints beyond `total_limit` are deleted after the new one is in place. A checkpoint is
    renamed to a temp folder before it is deleted (or replaced), so a run killed meanwhile never leaves a half-deleted
    folder that `list_checkpoints` would take for a complete checkpoint.
    """
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    temp = output_dir / f"{TEMP_PREFIX}{step}"
    if accelerator.is_main_process:
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temp / TRAINING_STATE).write_text(json.dumps(state, indent=2) + "\n")
        if extra is not None:
            extra(temp)
        _fsync_tree(temp)
        replaced = _unlist(final) if final.exists() else None  # the same step saved before: replace it
        os.rename(temp, final)
        _fsync_dir(output_dir)
        if replaced is not None:
            shutil.rmtree(replaced)
        checkpoints = list_checkpoints(output_dir)
        if total_limit is not None:
            for _, old in checkpoints[: max(0, len(checkpoints) - total_limit)]:
                shutil.rmtree(_unlist(old))
    accelerator.wait_for_everyone()
    return final


def _unlist(checkpoint: Path) -> Path:
    """Rename a checkpoint to a temp folder (which `remove_incomplete_checkpoints` clears); returns the new path."""
    doomed = checkpoint.with_name(f"{TEMP_PREFIX}{checkpoint.name.removeprefix('checkpoint-')}-old")
    shutil.rmtree(doomed, ignore_errors=True)
    os.rename(checkpoint, doomed)
    return doomed


def state_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes): equal hashes ⇔ identical weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
