"""train_accelerate.py for real: two CPU processes under torchrun on the shared faces and NVIDIA masks at 64 pixels.

Three launches (each pays ~10 s of start-up on 2 cores): structure, inpaint, then joint guided by the first and
starting from the second, which also pushes to an emulated Hub on 127.0.0.1 (`tests/hub_server.py`). Resuming, the
NaN stop and a refused push run in process, on one process.

The in-process Hub pull patches `huggingface_hub.constants` (the client reads HF_ENDPOINT when it is imported).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from accelerate.state import AcceleratorState
from huggingface_hub import ModelCard, constants
from PIL import Image

import train_accelerate
from hoginpaint.losses import VGG16Features
from hoginpaint.pipeline import HOGInpaintPipeline
from hoginpaint.training.checkpoints import state_hash
from tests.conftest import load_validation_faces
from tests.hub_server import HubServer

pytestmark = pytest.mark.slow  # starts servers or processes: minutes on 2 cores; `-m "not slow"` skips it

REPO_ROOT = Path(__file__).resolve().parent.parent
PUSHED_REPO = "me/hoginpaint-joint"


def _common(faces_dir: Path, mask_dir: Path) -> list[str]:
    return ["--train_data_dir", str(faces_dir), "--mask_dir", str(mask_dir), "--resolution", "64",
            "--base_channels", "8", "--residual_blocks", "1", "--train_batch_size", "2",
            "--dataloader_num_workers", "1", "--shuffle_buffer_size", "8", "--shuffle_input_shards", "1",
            "--num_validation_images", "2", "--seed", "0"]


def _torchrun(arguments: list[str], env: dict[str, str]) -> dict:
    """`ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 train_accelerate.py ...`; returns training_summary.json."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO_ROOT / "train_accelerate.py"), *arguments]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT),
                   **env}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    output_dir = Path(arguments[arguments.index("--output_dir") + 1])
    return json.loads((output_dir / "training_summary.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory, faces_dir, nvidia_mask_dir):
    """The three stages, trained in turn; the Hub server stays up for the module."""
    root = tmp_path_factory.mktemp("train")
    vgg = root / "vgg16.safetensors"
    torch.manual_seed(0)
    safetensors.torch.save_model(VGG16Features(), str(vgg))  # random weights: the loss runs, its value is moot
    common = _common(faces_dir, nvidia_mask_dir)
    env = {"HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1"}
    out = {name: root / name for name in ("structure", "inpaint", "joint")}
    with HubServer(fail_commits=1) as hub:
        summaries = {
            "structure": _torchrun([*common, "--stage", "structure", "--output_dir", str(out["structure"]),
                                    "--max_train_steps", "3", "--checkpointing_steps", "2", "--validation_steps",
                                    "2"], env),
            "inpaint": _torchrun([*common, "--stage", "inpaint", "--output_dir", str(out["inpaint"]),
                                  "--vgg_weights", str(vgg), "--max_train_steps", "2", "--checkpointing_steps", "1",
                                  "--validation_steps", "-1"], env),
        }
        summaries["joint"] = _torchrun(
            [*common, "--stage", "joint", "--output_dir", str(out["joint"]), "--structure_model",
             str(out["structure"]), "--inpaint_model", str(out["inpaint"]), "--perceptual_weight", "0",
             "--style_weight", "0", "--max_train_steps", "2", "--validation_steps", "0", "--push_to_hub",
             "--hub_model_id", PUSHED_REPO],
            {**env, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.endpoint})
        yield {"out": out, "summary": summaries, "hub": hub, "vgg": vgg, "common": common}


def _checkpoint_weights(checkpoint: Path, index: int = 0) -> dict[str, torch.Tensor]:
    """Model `index` of an accelerate checkpoint, without DDP's `module.` prefix."""
    name = "model.safetensors" if index == 0 else f"model_{index}.safetensors"
    weights = safetensors.torch.load_file(str(checkpoint / name))
    return {key.removeprefix("module."): value for key, value in weights.items()}


def _same_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> bool:
    state = module.state_dict()
    return state.keys() == weights.keys() and all(torch.equal(state[key], weights[key]) for key in state)


@pytest.fixture()
def fresh_accelerate_state():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


# ---------------------------------------------------------------------------------------------------------------------
# The torchrun launches


def test_structure_stage_trains_on_two_ranks_that_stay_identical(runs):
    out, summary = runs["out"]["structure"], runs["summary"]["structure"]
    assert summary["status"] == "completed" and summary["num_processes"] == 2
    assert summary["global_step"] == 3 and summary["images_seen"] == 3 * 2 * 2 and summary["skipped_images"] == 0
    for name, hashes in summary["rank_weight_hashes"].items():
        assert len(hashes) == 2 and hashes[0] == hashes[1], name
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert not list(out.glob(".tmp-*"))
    checkpoint = out / "checkpoint-3"
    assert {"random_states_0.pkl", "random_states_1.pkl", "optimizer.bin", "optimizer_1.bin"} <= {
        p.name for p in checkpoint.iterdir()}
    assert json.loads((checkpoint / "training_state.json").read_text())["global_step"] == 3
    pipeline = HOGInpaintPipeline.from_pretrained(out)
    assert _same_weights(pipeline.structure_generator, _checkpoint_weights(checkpoint))
    assert summary["untrained_components"] == ["inpaint_generator"]
    # Validated at the start (step 0: the learning curve's first point), every 2 steps and at the end, on the run's
    # holes and on the same faces with facial-part holes.
    assert sorted(p.name for p in (out / "validation").iterdir()) == sorted(["metrics.jsonl"] + [
        f"step-000000{step}{suffix}.png" for step in (0, 2, 3) for suffix in ("", "-parts")])
    curve = [json.loads(line) for line in (out / "validation" / "metrics.jsonl").read_text().splitlines()]
    assert [point["step"] for point in curve] == [0, 2, 3]
    assert all(point["parts_hog_hole_l1"] > 0 and point["parts_psnr"] != point["psnr"] for point in curve)
    assert [point["images_seen"] for point in curve] == [0, 8, 12]  # 2 ranks x batch 2 per step
    assert Image.open(out / "validation" / "step-0000003.png").size == (4 * 64, 2 * 64)
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    assert 0 < summary["final_validation"]["ssim"] <= 1
    assert "**Not a finished model.**" in (out / "README.md").read_text()


def test_inpaint_stage_checkpoints_every_step(runs):
    out, summary = runs["out"]["inpaint"], runs["summary"]["inpaint"]
    assert summary["global_step"] == 2 and summary["final_validation"] is None
    assert summary["rank_weight_hashes"]["generator"][0] == summary["rank_weight_hashes"]["generator"][1]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    pipeline = HOGInpaintPipeline.from_pretrained(out)
    assert _same_weights(pipeline.inpaint_generator, _checkpoint_weights(out / "checkpoint-2"))
    assert summary["untrained_components"] == ["structure_generator"]


def test_joint_stage_output_loads_and_inpaints_real_faces(runs, faces_dir, nvidia_mask_dir):
    out, summary = runs["out"]["joint"], runs["summary"]["joint"]
    assert summary["untrained_components"] == [] and summary["global_step"] == 2
    pipeline = HOGInpaintPipeline.from_pretrained(out)
    guide = HOGInpaintPipeline.from_pretrained(runs["out"]["structure"]).structure_generator
    assert state_hash(pipeline.structure_generator) == state_hash(guide)  # G_H frozen and carried over
    started_from = HOGInpaintPipeline.from_pretrained(runs["out"]["inpaint"]).inpaint_generator
    assert state_hash(pipeline.inpaint_generator) != state_hash(started_from)  # G trained on from there
    faces = load_validation_faces(faces_dir, 2, size=0)
    masks = [Image.open(nvidia_mask_dir / "02000.png").convert("L").resize(face.size) for face in faces]
    result = pipeline(image=faces, mask_image=masks)
    for face, mask, restored in zip(faces, masks, result.images):
        known = np.asarray(mask) < 128
        assert restored.size == face.size
        assert np.array_equal(np.asarray(restored)[known], np.asarray(face)[known])
        assert not np.array_equal(np.asarray(restored)[~known], np.asarray(face)[~known])


def test_push_to_hub_round_trip_through_the_real_client(runs, tmp_path, monkeypatch):
    hub, out = runs["hub"], runs["out"]["joint"]
    summary = runs["summary"]["joint"]
    assert summary["push"]["status"] == "pushed" and summary["push"]["repo_id"] == PUSHED_REPO
    commits = [path for method, path in hub.requests if method == "POST" and "/commit/" in path]
    assert len(commits) == 2  # the emulated Hub refused the first commit; the client retried
    files = hub.repos[PUSHED_REPO].files()
    assert {"model_index.json", "README.md", "training_summary.json", "structure_generator/model.safetensors",
            "inpaint_generator/config.json"} <= set(files)
    assert not any(name.startswith(("checkpoint-", "logs/")) for name in files)
    assert ModelCard(files["README.md"].decode()).data.library_name == "hoginpaint"
    assert f'from_pretrained("{PUSHED_REPO}")' in files["README.md"].decode()

    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    pulled = HOGInpaintPipeline.from_pretrained(PUSHED_REPO, cache_dir=tmp_path / "cache")
    local = HOGInpaintPipeline.from_pretrained(out)
    for name in ("structure_generator", "inpaint_generator"):
        assert state_hash(getattr(pulled, name)) == state_hash(getattr(local, name))
    assert pulled.resolution == local.resolution == 64


# ---------------------------------------------------------------------------------------------------------------------
# In process, one rank


def _in_process(arguments: list[str]) -> dict:
    return train_accelerate.main(train_accelerate.parse_args(arguments))


def test_resume_continues_from_the_saved_step(runs, tmp_path, fresh_accelerate_state):
    import shutil

    out = tmp_path / "inpaint"
    shutil.copytree(runs["out"]["inpaint"], out)
    saved = _checkpoint_weights(out / "checkpoint-2")
    base = [*runs["common"], "--stage", "inpaint", "--output_dir", str(out), "--vgg_weights", str(runs["vgg"]),
            "--validation_steps", "-1", "--dataloader_num_workers", "0", "--resume_from_checkpoint", "latest"]
    # At the saved step: nothing to train; the exported generator is the checkpoint's.
    summary = _in_process([*base, "--max_train_steps", "2"])
    assert summary["global_step"] == 2 and summary["resumed_from"] == str(out / "checkpoint-2")
    assert _same_weights(HOGInpaintPipeline.from_pretrained(out).inpaint_generator, saved)
    # One more step: continues at 3, counters carried over (8 images on two ranks, then 2 on one).
    summary = _in_process([*base, "--max_train_steps", "3"])
    assert summary["global_step"] == 3 and summary["images_seen"] == 8 + 2
    assert json.loads((out / "checkpoint-3" / "training_state.json").read_text())["global_step"] == 3
    assert not _same_weights(HOGInpaintPipeline.from_pretrained(out).inpaint_generator, saved)
    with pytest.raises(ValueError, match="written by --stage inpaint, not joint"):
        _in_process([*base, "--stage", "joint", "--structure_model", str(runs["out"]["structure"]),
                     "--perceptual_weight", "0", "--style_weight", "0"])


def _synthetic_batches(nan_from_step: int | None = None):
    """Stands in for `training_batches`: random faces and masks; NaN images from batch `nan_from_step` on."""
    def batches(options, rank, world_size, resume_step=0):
        generator = torch.Generator().manual_seed(rank)
        count = 0
        while True:
            image = torch.rand(options.batch_size, 3, options.resolution, options.resolution, generator=generator)
            mask = torch.zeros(options.batch_size, 1, options.resolution, options.resolution)
            mask[..., 16:40, 20:44] = 1
            count += 1
            if nan_from_step is not None and count >= nan_from_step:
                image = torch.full_like(image, float("nan"))
            yield {"image": image, "mask": mask, "skipped": torch.tensor(0)}
    return batches


def test_nonfinite_losses_stop_training_with_the_last_good_checkpoint(tmp_path, monkeypatch, fresh_accelerate_state):
    monkeypatch.setattr(train_accelerate, "training_batches", _synthetic_batches(nan_from_step=3))
    out = tmp_path / "nan"
    arguments = ["--stage", "inpaint", "--resolution", "64", "--base_channels", "8", "--residual_blocks", "1",
                 "--train_batch_size", "2", "--perceptual_weight", "0", "--style_weight", "0", "--output_dir",
                 str(out), "--max_train_steps", "10", "--checkpointing_steps", "2", "--validation_steps", "-1",
                 "--max_nonfinite_steps", "1"]
    with pytest.raises(train_accelerate.NonFiniteLossError, match="stopped at step 2.*more than 1 step.*checkpoint-2"):
        _in_process(arguments)
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["status"] == "nonfinite" and summary["global_step"] == 2
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-2"]
    assert not (out / "model_index.json").exists()  # no final model from a run that went wrong
    weights = _checkpoint_weights(out / "checkpoint-2")
    assert all(torch.isfinite(value).all() for value in weights.values())


def test_max_train_minutes_stops_at_the_first_step_past_the_deadline(tmp_path, monkeypatch, fresh_accelerate_state):
    monkeypatch.setattr(train_accelerate, "training_batches", _synthetic_batches())
    out = tmp_path / "timed"
    summary = _in_process(["--stage", "structure", "--resolution", "64", "--base_channels", "8", "--residual_blocks",
                           "1", "--train_batch_size", "2", "--output_dir", str(out), "--max_train_steps", "50",
                           "--max_train_minutes", "1e-9", "--validation_steps", "-1"])
    assert summary["status"] == "completed" and summary["global_step"] == 1
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-1"]  # the final state, to resume from
    assert HOGInpaintPipeline.from_pretrained(out).resolution == 64


def test_discriminator_only_steps_leave_g_and_its_average_alone_then_both_train(tmp_path, monkeypatch,
                                                                                 fresh_accelerate_state):
    monkeypatch.setattr(train_accelerate, "training_batches", _synthetic_batches())
    out = tmp_path / "critic-first"
    base = ["--stage", "inpaint", "--resolution", "64", "--base_channels", "8", "--residual_blocks", "1",
            "--train_batch_size", "2", "--perceptual_weight", "0", "--style_weight", "0", "--output_dir", str(out),
            "--checkpointing_steps", "1", "--validation_steps", "-1", "--discriminator_only_steps", "2",
            "--resume_from_checkpoint", "latest"]
    _in_process([*base, "--max_train_steps", "2"])
    g1, g2 = (_checkpoint_weights(out / f"checkpoint-{step}") for step in (1, 2))
    d1, d2 = (_checkpoint_weights(out / f"checkpoint-{step}", 1) for step in (1, 2))
    assert g1.keys() == g2.keys() and all(torch.equal(g1[key], g2[key]) for key in g1)
    assert any(not torch.equal(d1[key], d2[key]) for key in d1)
    exported = HOGInpaintPipeline.from_pretrained(out).inpaint_generator  # the moving average: untouched too
    assert all(torch.equal(value, g2[key]) for key, value in exported.state_dict().items())
    # Resumed past the discriminator-only steps, G trains.
    _in_process([*base, "--max_train_steps", "3"])
    g3 = _checkpoint_weights(out / "checkpoint-3")
    assert any(not torch.equal(g2[key], g3[key]) for key in g2)
    card = (out / "README.md").read_text()
    assert "the discriminator alone for the first 2 steps" in card


def test_a_refused_push_is_reported_and_the_local_output_kept(tmp_path, monkeypatch, fresh_accelerate_state):
    monkeypatch.setattr(train_accelerate, "training_batches", _synthetic_batches())
    out = tmp_path / "refused"
    with HubServer(forbidden={"locked"}) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        summary = _in_process(["--stage", "structure", "--resolution", "64", "--base_channels", "8",
                               "--residual_blocks", "1", "--train_batch_size", "2", "--output_dir", str(out),
                               "--max_train_steps", "1", "--validation_steps", "-1", "--push_to_hub",
                               "--hub_model_id", "locked/model"])
    assert summary["push"]["status"] == "failed" and "no write access" in summary["push"]["error"]
    assert json.loads((out / "training_summary.json").read_text())["push"]["status"] == "failed"
    assert HOGInpaintPipeline.from_pretrained(out).resolution == 64
    assert not hub.repos and not list(out.glob(".push-*"))


def test_gradient_accumulation_and_pushed_checkpoints(tmp_path, monkeypatch, fresh_accelerate_state):
    monkeypatch.setattr(train_accelerate, "training_batches", _synthetic_batches())
    out = tmp_path / "accumulate"
    with HubServer() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        summary = _in_process(["--stage", "structure", "--resolution", "64", "--base_channels", "8",
                               "--residual_blocks", "1", "--train_batch_size", "2", "--output_dir", str(out),
                               "--gradient_accumulation_steps", "2", "--max_train_steps", "2",
                               "--checkpointing_steps", "1", "--validation_steps", "-1", "--push_to_hub",
                               "--push_checkpoints", "--hub_model_id", "me/accumulated"])
    assert summary["global_step"] == 2 and summary["images_seen"] == 2 * 2 * 2  # steps x accumulation x batch
    history = hub.repos["me/accumulated"].commits
    assert [message for _, message, _ in history] == ["Training checkpoint at step 1",
                                                      "Train hoginpaint (structure stage), 2 steps"]
    first, final = history[0][2], history[1][2]
    assert first["structure_generator/model.safetensors"] != final["structure_generator/model.safetensors"]
    assert final["structure_generator/model.safetensors"] == (
        out / "structure_generator" / "model.safetensors").read_bytes()
