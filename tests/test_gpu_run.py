"""The time-boxed GPU run on the CPU: pack → gpu_run.sh --dry_run → fp16 parts → join → verify → load → run.

The run itself needs a GPU (docs/training.md, "Training on a GPU in a time box"); this rehearses every step of it at
toy size, so that the one command works whenever a GPU is at hand.
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
import pyarrow.parquet as pq
import pytest
import safetensors.torch
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import gpu_bundle  # noqa: E402
import gpu_run  # noqa: E402
from hoginpaint import HOGInpaintPipeline  # noqa: E402
from hoginpaint.masks import FolderMasks  # noqa: E402
from hoginpaint.training.landmarks import LandmarkCache  # noqa: E402
from hoginpaint.training.options import config_from_args  # noqa: E402

MIB = 2**20


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{component}.{key}": tensor for component in gpu_bundle.COMPONENTS
            for key, tensor in safetensors.torch.load_file(folder / component / "model.safetensors").items()}


@pytest.fixture
def tiny_pipeline(tmp_path: Path) -> Path:
    return HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=64).save_pretrained(
        tmp_path / "pipeline")


def test_split_join_round_trip_is_the_fp16_weights(tiny_pipeline: Path, tmp_path: Path) -> None:
    manifest = gpu_bundle.split_pipeline(tiny_pipeline, tmp_path / "bundle", part_bytes=50_000)
    assert len(manifest["parts"]) > 1 and all(part["bytes"] <= 50_000 for part in manifest["parts"])
    joined = gpu_bundle.join_bundle(tmp_path / "bundle", tmp_path / "joined")
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
    manifest = gpu_bundle.split_pipeline(tiny_pipeline, bundle, part_bytes=50_000)
    second = bundle / manifest["parts"][1]["name"]
    data = bytearray(second.read_bytes())
    data[100] ^= 1
    second.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{second.name} is corrupt"):
        gpu_bundle.join_bundle(bundle, tmp_path / "joined")
    second.unlink()
    with pytest.raises(ValueError, match=f"{second.name} is missing"):
        gpu_bundle.join_bundle(bundle, tmp_path / "joined")


def test_split_refuses_weights_beyond_fp16(tiny_pipeline: Path, tmp_path: Path) -> None:
    path = tiny_pipeline / "inpaint_generator" / "model.safetensors"
    tensors = safetensors.torch.load_file(path)
    key = next(key for key, tensor in tensors.items() if tensor.is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = 1e6
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"inpaint_generator.{key} has values float16 cannot hold"):
        gpu_bundle.split_pipeline(tiny_pipeline, tmp_path / "bundle")


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("name,command", [(name, command) for name, command, _ in gpu_run.benchmarks(False)])
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


@pytest.mark.parametrize("stage", ["structure", "inpaint", "joint"])
def test_gpu_training_command_lines_are_training_options(stage: str, tmp_path: Path) -> None:
    """Each stage's command line of the GPU run (the paper's size, packed landmarks) parses into its `TrainConfig`."""
    pack = tmp_path / "gpu-run"
    (pack / "landmarks").mkdir(parents=True)
    caches = [pack / "landmarks" / f"{name}.npz" for name in ("celeba", "faces")]
    for cache in caches:
        cache.touch()
    args = gpu_run.parse_args(["--out", str(tmp_path / "out"), "--pack_dir", str(pack), "--work_dir",
                               str(tmp_path / "work")])
    run = gpu_run.GpuRun(args)
    structure_run = gpu_run.run_dir(run, "structure")
    structure_run.mkdir()
    (structure_run / "model_index.json").write_text("{}")  # a finished structure stage
    command = gpu_run.train_command(run, stage, minutes=2.5)
    assert command[:2] == [sys.executable, "train_accelerate.py"]
    config = config_from_args(command[2:])
    assert (config.stage, config.resolution, config.base_channels, config.residual_blocks, config.pixels_per_cell) == (
        stage, 256, 64, 8, 8)
    assert (config.prefill, config.correction_ramp, config.l1_hole_weight, config.grid_weight, config.ema_decay) == (
        "biharmonic", 8, 6, 1000, 0.999)
    assert (config.perceptual_weight, config.style_weight, config.mixed_precision) == (0, 0, "bf16")
    assert config.max_train_minutes == 2.5 and config.validation_steps == -1 and config.checkpointing_steps == 0
    assert config.data_sources == [str(pack / "data" / "celeba"), str(pack / "data" / "faces")]
    assert config.landmark_paths == [str(cache) for cache in caches] and config.face_part_share == 0.5
    assert config.structure_model == (None if stage == "structure" else str(structure_run))
    assert config.inpaint_model == (str(gpu_run.run_dir(run, "inpaint")) if stage == "joint" else None)


@pytest.mark.slow
def test_dry_run_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    pack_dir, out, work = tmp_path / "gpu-run", tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "OUT": str(out),
           "HOGINPAINT_GPU_PACK": str(pack_dir)}
    subprocess.run([sys.executable, "scripts/pack_gpu_data.py", "--output", str(pack_dir), "--shared_data",
                    str(shared_data), "--celeba", "12", "--faces", "12", "--validation", "2", "--shards", "2",
                    "--train_masks", "20", "--eval_masks", "3", "--mask_side", "64", "--no-wheels"],
                   cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    pack = json.loads((pack_dir / "pack.json").read_text())
    assert pack["celeba"]["train_images"] == pack["faces"]["train_images"] == 12
    # The packed masks keep their NVIDIA names, so FolderMasks' index split still holds.
    assert len(FolderMasks(pack_dir / "masks", split="train")) == 20
    eval_masks = FolderMasks(pack_dir / "masks", split="eval", augment=False)
    assert len(eval_masks) == 3 and all(index % 10 == 0 for index in eval_masks.indices)
    # The landmark caches hold the packed images, looked up by their bytes as training looks them up.
    for name in ("celeba", "faces"):
        cache = LandmarkCache([pack_dir / "landmarks" / f"{name}.npz"])
        assert pack["landmarks"][name]["images"] == 12 and pack["landmarks"][name]["faces"] == len(cache) >= 6
        values = [value for path in sorted((pack_dir / "data" / name).glob("train-*.parquet"))
                  for value in pq.read_table(path, columns=["image"]).column("image").to_pylist()]
        assert sum(cache.lookup(value) is not None for value in values) == len(cache)

    result = subprocess.run(["bash", "scripts/gpu_run.sh", "--dry_run", "--work_dir", str(work),
                             "--budget_minutes", "3"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    returned = sorted(path for path in out.iterdir() if path.is_file())
    assert len(returned) <= gpu_run.MAX_RETURNED_FILES and all(path.stat().st_size < 16 * MIB for path in returned)
    assert {path.name for path in returned} >= {gpu_run.RECORD, "logs.tar.gz", gpu_bundle.MANIFEST}
    record = json.loads((out / gpu_run.RECORD).read_text())
    jobs = {job["name"]: job for job in record["jobs"]}
    assert {name: job["status"] for name, job in jobs.items()} == {
        "bench_hog": "ok", "bench_training": "ok", "train_structure": "ok", "train_inpaint": "ok", "train_joint": "ok"}
    assert all(jobs[f"train_{stage}"]["details"]["global_step"] == 3 for stage in ("structure", "inpaint", "joint"))
    assert record["bundle"]["untrained"] == [] and record["bundle"]["inpaint_generator_from"] == "joint"
    # Every stage trained with facial-part holes from the packed caches.
    landmarks = ",".join(str(pack_dir / "landmarks" / f"{name}.npz") for name in ("celeba", "faces"))
    for stage in ("structure", "inpaint", "joint"):
        command = jobs[f"train_{stage}"]["command"]
        assert command[command.index("--landmarks") + 1] == landmarks
        assert command[command.index("--face_part_share") + 1] == "0.5"

    joined = gpu_bundle.join_bundle(out, tmp_path / "joined")
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
