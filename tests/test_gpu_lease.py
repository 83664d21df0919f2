"""The GPU lease path on the CPU: pack → gpu_lease.sh --dry_run → fp16 parts → join → verify → load → run.

The lease itself needs a GPU (README, "Using a GPU lease"); this rehearses every step of it at toy size so that the
one prepared call does not rot between leases.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import gpu_lease  # noqa: E402
import lease_bundle  # noqa: E402
from hoginpaint import HOGInpaintPipeline  # noqa: E402
from hoginpaint.masks import FolderMasks  # noqa: E402

MIB = 2**20


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{component}.{key}": tensor for component in lease_bundle.COMPONENTS
            for key, tensor in safetensors.torch.load_file(folder / component / "model.safetensors").items()}


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> Path:
    return HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=64).save_pretrained(
        tmp_path / "pipeline")


def test_split_join_round_trip_is_the_fp16_weights(tiny_pipeline: Path, tmp_path: Path) -> None:
    manifest = lease_bundle.split_pipeline(tiny_pipeline, tmp_path / "bundle", part_bytes=50_000)
    assert len(manifest["parts"]) > 1 and all(part["bytes"] <= 50_000 for part in manifest["parts"])
    joined = lease_bundle.join_bundle(tmp_path / "bundle", tmp_path / "joined")
    original, restored = weights(tiny_pipeline), weights(joined)
    assert original.keys() == restored.keys()
    for key, tensor in original.items():
        assert restored[key].dtype == torch.float32
        assert torch.equal(restored[key], tensor.half().float()), key
    assert json.loads((joined / "model_index.json").read_text()) == json.loads(
        (tiny_pipeline / "model_index.json").read_text())
    assert HOGInpaintPipeline.from_pretrained(joined).resolution == 64


def test_join_refuses_a_corrupt_or_missing_part(tiny_pipeline: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    manifest = lease_bundle.split_pipeline(tiny_pipeline, bundle, part_bytes=50_000)
    second = bundle / manifest["parts"][1]["name"]
    data = bytearray(second.read_bytes())
    data[100] ^= 1
    second.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{second.name} is corrupt"):
        lease_bundle.join_bundle(bundle, tmp_path / "joined")
    second.unlink()
    with pytest.raises(ValueError, match=f"{second.name} is missing"):
        lease_bundle.join_bundle(bundle, tmp_path / "joined")


def test_split_refuses_weights_beyond_fp16(tiny_pipeline: Path, tmp_path: Path) -> None:
    path = tiny_pipeline / "inpaint_generator" / "model.safetensors"
    tensors = safetensors.torch.load_file(path)
    key = next(key for key, tensor in tensors.items() if tensor.is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = 1e6
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"inpaint_generator.{key} has values float16 cannot hold"):
        lease_bundle.split_pipeline(tiny_pipeline, tmp_path / "bundle")


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("name,command", [(name, command) for name, command, _ in gpu_lease.benchmarks(False)])
def test_gpu_benchmark_command_lines_parse(name: str, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU run's benchmark options exist (they are not run here: they need CUDA)."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", command)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / command[0])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    with pytest.raises(_Parsed) as parsed:
        module.main()
    assert parsed.value.args[0].device == "cuda"


@pytest.mark.slow
def test_dry_run_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    lease_dir, out, work = tmp_path / "lease", tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "OUT": str(out),
           "HOGINPAINT_LEASE_DIR": str(lease_dir)}
    subprocess.run([sys.executable, "scripts/pack_lease.py", "--output", str(lease_dir), "--shared_data",
                    str(shared_data), "--celeba", "12", "--faces", "12", "--validation", "2", "--shards", "2",
                    "--train_masks", "20", "--eval_masks", "3", "--mask_side", "64", "--no-wheels"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    pack = json.loads((lease_dir / "pack.json").read_text())
    assert pack["celeba"]["train_images"] == pack["faces"]["train_images"] == 12
    # The packed masks keep their NVIDIA names, so FolderMasks' index split still holds.
    assert len(FolderMasks(lease_dir / "masks", split="train")) == 20
    eval_masks = FolderMasks(lease_dir / "masks", split="eval", augment=False)
    assert len(eval_masks) == 3 and all(index % 10 == 0 for index in eval_masks.indices)

    result = subprocess.run(["bash", "scripts/gpu_lease.sh", "--dry_run", "--work_dir", str(work),
                             "--budget_minutes", "3"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    returned = sorted(path for path in out.iterdir() if path.is_file())
    assert len(returned) <= gpu_lease.MAX_RETURNED_FILES and all(path.stat().st_size < 16 * MIB for path in returned)
    record = json.loads((out / "lease.json").read_text())
    jobs = {job["name"]: job for job in record["jobs"]}
    assert {name: job["status"] for name, job in jobs.items()} == {
        "bench_hog": "ok", "bench_training": "ok", "train_structure": "ok", "train_inpaint": "ok", "train_joint": "ok"}
    assert all(jobs[f"train_{stage}"]["details"]["global_step"] == 3 for stage in ("structure", "inpaint", "joint"))
    assert record["bundle"]["untrained"] == [] and record["bundle"]["inpaint_generator_from"] == "joint"

    joined = lease_bundle.join_bundle(out, tmp_path / "joined")
    trained = weights(work / "pipeline")
    assert all(torch.equal(weights(joined)[key], tensor.half().float()) for key, tensor in trained.items())
    pipeline = HOGInpaintPipeline.from_pretrained(joined)
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:40, 20:44] = 1
    output = pipeline(image=image, mask_image=mask, output_type="pt").images[0]
    assert output.shape == (3, 64, 64) and bool(torch.isfinite(output).all())
    outside = mask.expand(3, -1, -1) == 0
    np.testing.assert_allclose(output[outside].numpy(), image[outside].numpy(), atol=1 / 255)
