"""hoginpaint.hub, hub_files: loading from folders, a pre-filled HF cache offline, a local Hub; every failure worded.

huggingface_hub reads HF_HOME, HF_HUB_OFFLINE and HF_ENDPOINT when it is imported, so the checks that need them
run in a subprocess with the environment set (`_run_python`).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
import safetensors.torch
import torch
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from hoginpaint import hub
from hoginpaint.hub import files as hub_files
from hoginpaint.hub import HubError
from hoginpaint.networks import InpaintGenerator
from hoginpaint.pipeline import HOGInpaintPipeline
from tests.hub_server import Failure, HubServer

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def pipeline() -> HOGInpaintPipeline:
    return HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=64, seed=0)


@pytest.fixture(scope="module")
def saved(pipeline, tmp_path_factory) -> Path:
    return pipeline.save_pretrained(tmp_path_factory.mktemp("saved") / "pipe")


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    """A private copy of the saved pipeline that a test may damage."""
    return Path(shutil.copytree(saved, tmp_path / "pipe"))


@pytest.fixture(scope="module")
def probe(pipeline, tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """An input file (image + mask) and the pipeline's output on it, to compare loaded pipelines against."""
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 64, 64, generator=generator)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 20:44] = 1
    path = tmp_path_factory.mktemp("probe") / "probe.safetensors"
    safetensors.torch.save_file({"image": image, "mask": mask}, str(path))
    return path, pipeline(image=image, mask_image=mask, output_type="pt").images[0]


def _fill_cache(hub_cache: Path, repo_id: str, folder: Path, commit: str = COMMIT) -> Path:
    """Lay `folder` out in the HF cache as huggingface_hub does: blobs by hash, snapshot symlinks, refs/main."""
    storage = hub_cache / f"models--{repo_id.replace('/', '--')}"
    for file in sorted(path for path in folder.rglob("*") if path.is_file()):
        data = file.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        pointer = storage / "snapshots" / commit / file.relative_to(folder)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    return storage / "snapshots" / commit


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "PYTHONPATH": python_path, "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


_LOAD_AND_RUN = """
import json, sys
import safetensors.torch
from hoginpaint.hub import HubError
from hoginpaint.pipeline import HOGInpaintPipeline
probe, out, repo = sys.argv[1:] if len(sys.argv) > 1 else (PROBE, OUT, REPO)
inputs = safetensors.torch.load_file(probe)
pipe = HOGInpaintPipeline.from_pretrained(repo, **KWARGS)
result = pipe(image=inputs["image"], mask_image=inputs["mask"], output_type="pt").images[0]
safetensors.torch.save_file({"result": result}, out)
messages = {}
for name, repo_id, kwargs in FAILING:
    try:
        HOGInpaintPipeline.from_pretrained(repo_id, **kwargs)
        messages[name] = None
    except HubError as error:
        messages[name] = str(error)
print(json.dumps(messages))
"""


def _script(probe: Path, out: Path, repo: str, kwargs: dict, failing: list) -> str:
    return (f"PROBE, OUT, REPO, KWARGS, FAILING = {str(probe)!r}, {str(out)!r}, {repo!r}, {kwargs!r}, {failing!r}\n"
            + _LOAD_AND_RUN)


# ---------------------------------------------------------------------------------------------------------------------
# A pre-filled HF cache, offline


def test_from_pretrained_reads_a_prefilled_cache_offline(saved, probe, tmp_path):
    _fill_cache(tmp_path / "hf" / "hub", "org/name", saved)
    probe_path, expected = probe
    out = tmp_path / "out.safetensors"
    failing = [("absent", "org/absent", {}), ("bad revision", "org/name", {"revision": "v9"})]
    script = _script(probe_path, out, "org/name", {}, failing)
    done = _run_python(script, {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert torch.equal(safetensors.torch.load_file(str(out))["result"], expected)
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    assert "'org/absent'" in messages["absent"] and "HF_HUB_OFFLINE=1" in messages["absent"]
    assert "hf download org/absent" in messages["absent"]
    assert "'org/name' (revision v9)" in messages["bad revision"]


def test_cache_dir_with_local_files_only(saved, probe, tmp_path):
    snapshot = _fill_cache(tmp_path / "cache", "org/name", saved)
    pipe = HOGInpaintPipeline.from_pretrained("org/name", cache_dir=tmp_path / "cache", local_files_only=True)
    probe_path, expected = probe
    inputs = safetensors.torch.load_file(str(probe_path))
    assert torch.equal(pipe(image=inputs["image"], mask_image=inputs["mask"], output_type="pt").images[0], expected)
    # Pinned to the commit: the same call by commit hash resolves the same files.
    by_commit = hub.resolve_repo_file("org/name", "config.json", subfolder="inpaint_generator", revision=COMMIT,
                                      cache_dir=tmp_path / "cache", local_files_only=True)
    assert by_commit == snapshot / "inpaint_generator" / "config.json"
    with pytest.raises(HubError, match="'org/other'.*local_files_only=True.*hf download org/other"):
        HOGInpaintPipeline.from_pretrained("org/other", cache_dir=tmp_path / "cache", local_files_only=True)


def test_pickle_only_component_in_the_cache_is_refused(copy, tmp_path):
    (copy / "structure_generator" / "model.safetensors").unlink()
    torch.save({"weight": torch.zeros(1)}, copy / "structure_generator" / "pytorch_model.bin")
    _fill_cache(tmp_path / "cache", "org/pickled", copy)
    with pytest.raises(HubError, match="only pickled weights.*pytorch_model.bin.*never unpickles"):
        HOGInpaintPipeline.from_pretrained("org/pickled", cache_dir=tmp_path / "cache", local_files_only=True)


# ---------------------------------------------------------------------------------------------------------------------
# Local folders: every way a repository can be wrong


def test_component_round_trip_is_exact(pipeline, tmp_path):
    hub.save_component(pipeline.inpaint_generator, tmp_path / "g")
    loaded = hub.load_component(InpaintGenerator, tmp_path / "g")
    assert not loaded.training
    original = pipeline.inpaint_generator.state_dict()
    assert loaded.state_dict().keys() == original.keys()
    assert all(torch.equal(value, original[key]) for key, value in loaded.state_dict().items())


class _Plain(torch.nn.Module):
    """A component that is not a PyTorchModelHubMixin: built from config.json, loaded with load_state_dict."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, 2)


def test_plain_module_component(tmp_path):
    model = _Plain(4)
    with pytest.raises(ValueError, match="records no config"):
        hub.save_component(model, tmp_path / "plain")
    hub.save_component(model, tmp_path / "plain", config={"width": 4})
    loaded = hub.load_component(_Plain, tmp_path, "plain")
    assert not loaded.training and torch.equal(loaded.linear.weight, model.linear.weight)
    (tmp_path / "plain" / "config.json").write_text(json.dumps({"width": 5}))
    with pytest.raises(HubError, match="(?s)_Plain from plain/ of folder .*shape mismatch .*linear.weight \\(2, 4\\) vs \\(2, 5\\)"):
        hub.load_component(_Plain, tmp_path, "plain")


def test_json_that_is_no_object_is_refused_with_the_fix_of_each_file(copy):
    (copy / "inpaint_generator" / "config.json").write_text("[64, 8]")
    with pytest.raises(HubError, match=r"^inpaint_generator/config.json of folder .* must hold a JSON object, got "
                                       r"list; save the component again with save_pretrained$"):
        HOGInpaintPipeline.from_pretrained(copy)
    (copy / "model_index.json").write_text('"HOGInpaintPipeline"')
    with pytest.raises(HubError, match=r"^model_index.json of folder .* must hold a JSON object, got str; re-save the "
                                       r"pipeline$"):
        HOGInpaintPipeline.from_pretrained(copy)
    with pytest.raises(HubError, match=r"^model_index.json of folder .* must hold a JSON object, got str; re-save it$"):
        hub.read_json(copy, "model_index.json")


def test_mismatched_config_is_refused(copy):
    config_path = copy / "inpaint_generator" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "base_channels": 16}))
    with pytest.raises(HubError, match="InpaintGenerator from inpaint_generator/ of folder .*do not match"):
        HOGInpaintPipeline.from_pretrained(copy)


def test_pickle_only_folder_is_refused_and_never_unpickled(copy, tmp_path):
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (copy / "inpaint_generator" / "model.safetensors").unlink()
    (copy / "inpaint_generator" / "pytorch_model.bin").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(HubError, match="only pickled weights.*pytorch_model.bin"):
        HOGInpaintPipeline.from_pretrained(copy)
    assert not marker.exists()
    pickle.loads(pickle.dumps(Exploit()))  # the same payload, unpickled, would have left the marker
    assert marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "header only"])
def test_broken_safetensors_file_is_refused(copy, damage):
    weights = copy / "structure_generator" / "model.safetensors"
    data = weights.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    weights.write_bytes({"truncate": data[: len(data) - 100], "garbage": b"not safetensors at all",
                         "header only": data[:header_end]}[damage])
    with pytest.raises(HubError, match=r"model.safetensors of folder .* (is truncated|is not a safetensors file)"):
        HOGInpaintPipeline.from_pretrained(copy)


def test_missing_subfolder_and_missing_index_are_named(copy):
    shutil.rmtree(copy / "inpaint_generator")
    with pytest.raises(HubError, match="has no inpaint_generator/config.json.*subfolder name 'inpaint_generator'"):
        HOGInpaintPipeline.from_pretrained(copy)
    (copy / "model_index.json").unlink()
    with pytest.raises(HubError, match="has no model_index.json, so it is not a hoginpaint pipeline"):
        HOGInpaintPipeline.from_pretrained(copy)


def test_index_of_another_class_is_refused(copy):
    index = json.loads((copy / "model_index.json").read_text())
    (copy / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(HubError, match="'StableDiffusionPipeline', not a HOGInpaintPipeline"):
        HOGInpaintPipeline.from_pretrained(copy)
    (copy / "model_index.json").write_text(json.dumps({**index, "inpaint_generator": "../elsewhere"}))
    with pytest.raises(HubError, match="must name the subfolder of 'inpaint_generator'"):
        HOGInpaintPipeline.from_pretrained(copy)


def test_paths_that_are_neither_folder_nor_repo_id(tmp_path):
    with pytest.raises(HubError, match="neither an existing folder nor a valid Hub repository id"):
        HOGInpaintPipeline.from_pretrained(str(tmp_path / "no" / "such" / "folder"))
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(HubError, match="is a file, not a folder"):
        HOGInpaintPipeline.from_pretrained(tmp_path / "file.json")


def test_network_failures_are_worded(monkeypatch):
    def failing(exception):
        def download(*args, **kwargs):
            try:
                raise exception
            except Exception as cause:
                raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub") \
                    from cause
        return download

    request = httpx2.Request("HEAD", "https://huggingface.co/org/name/resolve/main/config.json")
    monkeypatch.setattr(hub_files, "hf_hub_download", failing(httpx2.ReadTimeout("read timed out", request=request)))
    with pytest.raises(HubError, match="'org/name': timed out reaching the Hub.*HF_HUB_ETAG_TIMEOUT"):
        hub.resolve_repo_file("org/name", "config.json")
    monkeypatch.setattr(hub_files, "hf_hub_download", failing(httpx2.ConnectError("refused", request=request)))
    with pytest.raises(HubError, match="'org/name': could not reach the Hub.*check your connection"):
        hub.resolve_repo_file("org/name", "config.json")


# ---------------------------------------------------------------------------------------------------------------------
# A Hub on 127.0.0.1


@contextmanager
def _serve(repos: dict[str, Path], gated: set[str]):
    """The Hub of tests/hub_server.py serving `repos` ({"org/name": folder}) at commit `COMMIT`; `gated` answer 403."""
    failures = {repo_id: Failure(403, code="GatedRepo") for repo_id in gated}
    with HubServer(failures=failures) as server:
        for repo_id, folder in repos.items():
            server.add_repo(repo_id, folder, oid=COMMIT)
        yield server.endpoint


def test_hub_on_localhost_downloads_and_words_http_errors(saved, copy, probe, tmp_path):
    shutil.rmtree(copy / "inpaint_generator")  # org/partial lacks a component
    probe_path, expected = probe
    out = tmp_path / "out.safetensors"
    failing = [
        ("missing", "org/missing", {}),
        ("gated", "org/gated", {}),
        ("revision", "org/name", {"revision": "v9"}),
        ("partial", "org/partial", {}),
    ]
    with _serve({"org/name": saved, "org/partial": copy}, gated={"org/gated"}) as endpoint:
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
        done = _run_python(_script(probe_path, out, "org/name", {}, failing), env)
    assert done.returncode == 0, done.stderr
    assert torch.equal(safetensors.torch.load_file(str(out))["result"], expected)
    assert (tmp_path / "hf" / "hub" / "models--org--name" / "snapshots" / COMMIT / "model_index.json").is_file()
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    assert "'org/missing' was not found on the Hub" in messages["missing"]
    assert "'org/gated' is gated" in messages["gated"] and "https://huggingface.co/org/gated" in messages["gated"]
    assert "'org/name' (revision v9) has no revision 'v9'" in messages["revision"]
    assert "'org/partial'" in messages["partial"] and "has no inpaint_generator/config.json" in messages["partial"]


# ---------------------------------------------------------------------------------------------------------------------
# Pushing


class _FlakyApi:
    """Stands in for HfApi: fails `failures` times with `error`, then succeeds; records what it was asked."""

    calls: list[tuple] = []
    failures = 0
    error: Exception | None = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, private=False, exist_ok=False):
        type(self).calls.append(("create_repo", repo_id, private, exist_ok))

    def create_branch(self, repo_id, branch, exist_ok=False):
        type(self).calls.append(("create_branch", repo_id, branch, exist_ok))

    def upload_folder(self, repo_id, folder_path, commit_message, revision):
        type(self).calls.append(("upload_folder", repo_id, Path(folder_path), commit_message, revision))
        if type(self).failures:
            type(self).failures -= 1
            raise type(self).error
        return f"https://huggingface.co/{repo_id}/commit/{COMMIT}"


def _http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/models/org/name/commit/main")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


def _folder_state(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_push_retries_transient_failures_then_succeeds(saved, monkeypatch):
    monkeypatch.setattr(hub_files, "HfApi", _FlakyApi)
    monkeypatch.setattr(_FlakyApi, "calls", [])
    monkeypatch.setattr(_FlakyApi, "failures", 2)
    monkeypatch.setattr(_FlakyApi, "error", _http_error(503))
    before = _folder_state(saved)
    url = hub.push_to_hub(saved, "org/name", private=True, revision="dev", backoff_s=0)
    assert url == f"https://huggingface.co/org/name/commit/{COMMIT}"
    uploads = [call for call in _FlakyApi.calls if call[0] == "upload_folder"]
    assert len(uploads) == 3 and uploads[0] == ("upload_folder", "org/name", saved, "Upload with hoginpaint", "dev")
    assert ("create_repo", "org/name", True, True) in _FlakyApi.calls
    assert ("create_branch", "org/name", "dev", True) in _FlakyApi.calls
    assert _folder_state(saved) == before


def test_push_gives_up_with_a_clear_error(saved, monkeypatch):
    monkeypatch.setattr(hub_files, "HfApi", _FlakyApi)
    monkeypatch.setattr(_FlakyApi, "calls", [])
    monkeypatch.setattr(_FlakyApi, "failures", 10)
    monkeypatch.setattr(_FlakyApi, "error", _http_error(502))
    with pytest.raises(HubError, match="'org/name' after 3 attempts: the Hub kept failing"):
        hub.push_to_hub(saved, "org/name", retries=2, backoff_s=0)
    monkeypatch.setattr(_FlakyApi, "calls", [])
    monkeypatch.setattr(_FlakyApi, "error", _http_error(403))
    with pytest.raises(HubError, match="no write access"):
        hub.push_to_hub(saved, "org/name", backoff_s=0)
    assert len([call for call in _FlakyApi.calls if call[0] == "upload_folder"]) == 1  # a 403 is not retried


def test_pipeline_push_uploads_what_save_pretrained_writes(pipeline, saved, monkeypatch):
    uploaded = {}

    class RecordingApi(_FlakyApi):
        def upload_folder(self, repo_id, folder_path, commit_message, revision):
            uploaded.update(_folder_state(Path(folder_path)))
            return "https://huggingface.co/org/name/commit/x"

    monkeypatch.setattr(hub_files, "HfApi", RecordingApi)
    monkeypatch.setattr(_FlakyApi, "calls", [])
    pipeline.push_to_hub("org/name")
    assert uploaded == _folder_state(saved)
