"""Networks and models on the Hub: safetensors components, strict loading, and the layout of a model made of them.

A *component* is one network stored in a subfolder (or at the root) of a repository — a local folder or a Hub model
repository id, resolved by `hoginpaint.hub.files` — as `config.json` (its constructor arguments) +
`model.safetensors` (its weights). `load_component` is the project's one loader of networks; `StrictHubMixin` gives
each network class a `from_pretrained` through it; `save_component` writes one.

Pipeline repository layout (written by `ComponentModel.save_pretrained`, e.g. `HOGInpaintPipeline`'s):

    model_index.json            {"_class_name": "HOGInpaintPipeline", "_hoginpaint_version": "0.1.0",
                                 "structure_generator": "structure_generator",
                                 "inpaint_generator": "inpaint_generator", "resolution": 256}
    structure_generator/        config.json + model.safetensors
    inpaint_generator/          config.json + model.safetensors
    README.md                   the model card

Every component key of `model_index.json` names the subfolder that holds the component.

Errors are `HubError`s (a `ValueError`) that name the repository and say what to try: a config that does not match the
weights, truncated weights, pickled weights — which are never loaded: unpickling can run arbitrary code.
"""
from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from huggingface_hub import HfApi, constants
from torch import nn

from hoginpaint.hub.files import (
    HubError,
    MissingFileError,
    describe,
    is_local,
    parse_json_object,
    pinned_revision,
    push_to_hub,
    resolve_repo_file,
)


CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_INDEX_NAME = "model_index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_safetensors_file(path: Path, source: str) -> None:
    """Refuse a file that is not a complete safetensors file (truncated download, wrong format) with a clear message.

    Reads only the header: 8 bytes of little-endian header length, a JSON header whose tensors' `data_offsets` say
    how long the data section must be.
    """
    size = path.stat().st_size
    retry = "delete it (or the HF cache entry) and download or save it again"
    not_safetensors = HubError(f"{path.name} of {source} is not a safetensors file ({size} bytes); {retry}")
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise not_safetensors
        (header_length,) = struct.unpack("<Q", prefix)
        if 8 + header_length > size:
            raise HubError(f"{path.name} of {source} is truncated or not a safetensors file ({size} bytes, "
                           f"header claims {header_length}); {retry}")
        header_bytes = file.read(header_length)
    try:
        header = json.loads(header_bytes)
        data_length = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                          default=0)
    except (ValueError, AttributeError, KeyError, TypeError, IndexError):  # JSONDecodeError is a ValueError
        raise not_safetensors from None
    if 8 + header_length + data_length != size:
        raise HubError(f"{path.name} of {source} is truncated: {size} bytes on disk, "
                       f"{8 + header_length + data_length} expected; {retry}")


def load_component(
    cls: type[nn.Module],
    repo_id_or_path: str | Path,
    subfolder: str | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> nn.Module:
    """Build `cls(**config)` from `subfolder/config.json` (`overrides` replacing entries) and load
    `subfolder/model.safetensors` strictly, in eval mode: the project's one loader of networks.

    Pickled weights are never read; a config that does not match the weights, a truncated file, an unreachable Hub
    are `HubError`s that name the repository and say what to try.
    """
    source = describe(repo_id_or_path, revision)
    where = f"{subfolder}/" if subfolder else ""
    resolve = dict(subfolder=subfolder, token=token, cache_dir=cache_dir, local_files_only=local_files_only)
    try:
        config_path = resolve_repo_file(repo_id_or_path, CONFIG_NAME, revision=revision, **resolve)
    except MissingFileError:
        raise MissingFileError(
            f"{source} has no {where}{CONFIG_NAME}: a component is a folder with {CONFIG_NAME} and {WEIGHTS_NAME} "
            f"(written by save_pretrained); check the repository and the subfolder name {subfolder!r}"
        ) from None
    config = parse_json_object(config_path, f"{where}{CONFIG_NAME}", source,
                               "save the component again with save_pretrained")
    revision = pinned_revision(config_path, revision)
    try:
        weights_path = resolve_repo_file(repo_id_or_path, WEIGHTS_NAME, revision=revision, **resolve)
    except HubError as error:
        missing = isinstance(error, MissingFileError)
        pickles = _pickled_weights(repo_id_or_path, config_path.parent, subfolder, revision, token, ask_hub=missing)
        if pickles:
            raise MissingFileError(
                f"{source} holds only pickled weights in {where or 'its root'} ({', '.join(pickles)}) and no "
                f"{WEIGHTS_NAME}. hoginpaint loads safetensors only and never unpickles (unpickling can run "
                "arbitrary code); convert them once, in an environment you trust, with "
                f"safetensors.torch.save_file(torch.load(path, weights_only=True), '{WEIGHTS_NAME}')"
            ) from None
        if missing:
            raise MissingFileError(f"{source} has {where}{CONFIG_NAME} but no {where}{WEIGHTS_NAME}; "
                                   "save the component again with save_pretrained") from None
        raise
    check_safetensors_file(weights_path, source)
    if config_path.parent != weights_path.parent:
        raise HubError(f"{source}: {CONFIG_NAME} and {WEIGHTS_NAME} resolved to different folders; clear the cache")
    try:
        model = cls(**{**config, **(overrides or {})})
        state_dict = safetensors.torch.load_file(str(weights_path), device="cpu")
        check_state_dict(model, state_dict)
        model.load_state_dict(state_dict, strict=True)
    except (ValueError, TypeError, RuntimeError) as error:
        part = f"{subfolder}/ of" if subfolder else "the root of"
        raise HubError(f"could not load {cls.__name__} from {part} {source}: {error}") from None
    return model.to(device).eval()


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise a ValueError unless `state_dict` has exactly the model's keys and shapes (dtypes may differ: float16
    weights load into a float32 model)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [f"{key} {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}"
                  for key in expected if key in state_dict and state_dict[key].shape != expected[key].shape]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatch (file vs model)", mismatched)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{', ...' if len(items) > 3 else ''}")
    config = getattr(model, "_hub_mixin_config", None)
    raise ValueError(f"the weights do not match {type(model).__name__}({config}): the config does not match the "
                     f"weights ({'; '.join(problems)}); load with the constructor arguments the weights were saved "
                     "with (their config.json)")


class StrictHubMixin:
    """Strict, safetensors-only `from_pretrained` for the project's `PyTorchModelHubMixin` networks.

    Put it before `PyTorchModelHubMixin` in the bases. huggingface_hub's own `from_pretrained` loads leniently
    (`strict=False`) and falls back to pickled weights; this one goes through `load_component`: the config is read
    from `config.json` (keyword arguments override it), the weights only from `model.safetensors`, every key and
    shape must match, and every failure is a worded `HubError`.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, subfolder: str | None = None,
                        revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False,
                        map_location: str | torch.device = "cpu", strict: bool = True, **model_kwargs: Any):
        """Load a model saved with `save_pretrained` from a local folder or a Hub repository id (in eval mode)."""
        if not strict:
            raise ValueError(f"{cls.__name__} loads strictly only (strict=False would leave layers untrained "
                             "silently); drop the strict argument")
        return load_component(cls, pretrained_model_name_or_path, subfolder, revision=revision, token=token,
                              cache_dir=cache_dir, local_files_only=local_files_only, device=map_location,
                              overrides=model_kwargs)


def save_component(model: nn.Module, directory: str | Path, config: dict[str, Any] | None = None) -> Path:
    """Write `config.json` + `model.safetensors` for `model` into `directory` (created); returns `directory`.

    `config` defaults to the constructor arguments a `PyTorchModelHubMixin` recorded; plain modules must pass it.
    """
    directory = Path(directory)
    if config is None:
        config = getattr(model, "_hub_mixin_config", None)
        if config is None:
            raise ValueError(f"{type(model).__name__} records no config; pass config= (its constructor arguments)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # save_model, not save_file: it handles tensors that share memory.
    safetensors.torch.save_model(model, str(directory / WEIGHTS_NAME))
    return directory


def _pickled_weights(repo_id_or_path: str | Path, local_folder: Path, subfolder: str | None,
                     revision: str | None, token: str | bool | None, ask_hub: bool) -> list[str]:
    """Names of pickled weight files beside the component: on disk (folder or cached snapshot), else on the Hub."""
    names = sorted(path.name for path in local_folder.iterdir() if path.name.endswith(PICKLE_SUFFIXES))
    if names or not ask_hub or is_local(repo_id_or_path) or constants.is_offline_mode():
        return names
    prefix = f"{subfolder}/" if subfolder else ""
    try:
        files = HfApi(token=token).list_repo_files(str(repo_id_or_path), revision=revision)
    except Exception:  # noqa: BLE001 — only a hint for the message; the missing safetensors file is the error
        return []
    return sorted(name[len(prefix):] for name in files
                  if name.startswith(prefix) and "/" not in name[len(prefix):] and name.endswith(PICKLE_SUFFIXES))


# ---------------------------------------------------------------------------------------------------------------------
# Models made of components: the pipeline's repository layout


MODEL_INDEX_NAME = "model_index.json"


class ComponentModel:
    """Hub I/O of a model made of networks, each in a subfolder beside a `model_index.json`.

    The layout of `HOGInpaintPipeline` and `DeepFillInpainter`: `model_index.json` names the class, the hoginpaint
    version, each component's subfolder and the model resolution; each subfolder holds `config.json` +
    `model.safetensors`; `README.md` is the model card. Subclasses set `COMPONENTS` (constructor argument → network
    class), `PARTS` (optional constructor arguments that are models of this kind, each saved whole in its subfolder
    and named in the index), `NOUN` (what to call the model in messages) and `KIND` (the "not a ..." of a folder
    without an index), take the components and `resolution` as constructor arguments, and describe themselves for the
    default model card (`CARD_TITLE`, `CARD_TAGS`, `CARD_DESCRIPTION`, `CARD_USAGE`).
    """

    COMPONENTS: dict[str, type] = {}
    PARTS: dict[str, type] = {}  # optional constructor arguments that are themselves ComponentModels, in subfolders
    NOUN = "model"
    KIND = "hoginpaint model"
    resolution: int

    CARD_TITLE = "hoginpaint model"
    CARD_TAGS: tuple[str, ...] = ()
    CARD_DESCRIPTION = ""
    CARD_USAGE = ""

    def default_model_card(self) -> str:
        """A minimal model card (`hoginpaint.hub.model_card.default_model_card`); training passes a fuller one."""
        from hoginpaint.hub.model_card import default_model_card

        return default_model_card(self)

    @property
    def device(self) -> torch.device:
        return next(getattr(self, next(iter(self.COMPONENTS))).parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(getattr(self, next(iter(self.COMPONENTS))).parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
           memory_format: torch.memory_format | None = None):
        """Move every component to `device`, cast it to `dtype` and/or lay out its weights in `memory_format`.

        `memory_format=torch.channels_last` makes every convolution run channels-last (the layout oneDNN and cuDNN
        prefer; `benchmarks/bench_inference.py --options` measures it); results equal the default layout's to float
        rounding. Returns the model.
        """
        layout = {} if memory_format is None else {"memory_format": memory_format}
        for name in self.COMPONENTS:
            getattr(self, name).to(device=device, dtype=dtype, **layout)
        for name in self.PARTS:
            if getattr(self, name) is not None:
                getattr(self, name).to(device=device, dtype=dtype, memory_format=memory_format)
        return self

    @classmethod
    def from_pretrained(cls, repo_id_or_path: str | Path, *, revision: str | None = None,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, subfolder: str | None = None):
        """Load a model saved by `save_pretrained` from a local folder or a Hub repository id (`subfolder`: the
        folder inside it that holds the model).

        Raises `HubError` (a ValueError) naming the repository and what to try when it cannot.
        """
        access = dict(token=token, cache_dir=cache_dir, local_files_only=local_files_only)
        source = describe(repo_id_or_path, revision) + (f", subfolder '{subfolder}'" if subfolder else "")
        try:
            index_path = resolve_repo_file(repo_id_or_path, MODEL_INDEX_NAME, subfolder=subfolder, revision=revision,
                                           **access)
        except MissingFileError:
            raise MissingFileError(f"{source} has no {MODEL_INDEX_NAME}, so it is not a {cls.KIND}; save one with "
                                   f"{cls.__name__}.save_pretrained") from None
        index = cls._read_index(index_path, source)
        revision = pinned_revision(index_path, revision)  # every component from the same commit

        def inside(name: str) -> str:
            return f"{subfolder}/{name}" if subfolder else name

        components = {
            name: load_component(component_class, repo_id_or_path, inside(index[name]), revision=revision, **access)
            for name, component_class in cls.COMPONENTS.items()
        }
        parts = {name: part_class.from_pretrained(repo_id_or_path, revision=revision, subfolder=inside(index[name]),
                                                  **access)
                 for name, part_class in cls.PARTS.items() if index.get(name) is not None}
        return cls(**components, **parts, resolution=index["resolution"]).to(device=device, dtype=dtype)

    def save_pretrained(self, save_directory: str | Path, model_card: str | None = None) -> Path:
        """Write `model_index.json`, one subfolder per component and `README.md` into `save_directory`.

        `model_card` is the README's text (e.g. rendered from the repository's `model_card.md`); by default
        `default_model_card()`. Returns `save_directory`.
        """
        import hoginpaint

        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        for name in self.COMPONENTS:
            save_component(getattr(self, name), save_directory / name)
        parts = {name: getattr(self, name) for name in self.PARTS if getattr(self, name) is not None}
        for name, part in parts.items():
            part.save_pretrained(save_directory / name, model_card=f"The `{name}` part of the model one folder up.\n")
        index = {
            "_class_name": type(self).__name__,
            "_hoginpaint_version": hoginpaint.__version__,
            **{name: name for name in (*self.COMPONENTS, *parts)},
            "resolution": self.resolution,
        }
        (save_directory / MODEL_INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        card = model_card if model_card is not None else self.default_model_card()
        (save_directory / "README.md").write_text(card, encoding="utf-8")
        return save_directory

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    commit_message: str | None = None, revision: str | None = None,
                    model_card: str | None = None) -> str:
        """Save to a temporary folder and upload it to the Hub model repository `repo_id`; returns the commit URL."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, model_card=model_card)
            return push_to_hub(folder, repo_id, token=token, private=private,
                               commit_message=commit_message or f"Upload {type(self).__name__}", revision=revision)

    @classmethod
    def _read_index(cls, path: Path, source: str) -> dict:
        """Parse and check `model_index.json`: the class, each component's (and present part's) subfolder, the
        resolution."""
        index = parse_json_object(path, MODEL_INDEX_NAME, source, f"re-save the {cls.NOUN}")
        if index.get("_class_name") != cls.__name__:
            raise HubError(f"{source} holds a {index.get('_class_name')!r}, not a {cls.__name__}; pass a repository "
                           f"saved by {cls.__name__}.save_pretrained")
        for name in (*cls.COMPONENTS, *(part for part in cls.PARTS if index.get(part) is not None)):
            subfolder = index.get(name)
            if not isinstance(subfolder, str) or not subfolder or ".." in Path(subfolder).parts or \
                    Path(subfolder).is_absolute():
                raise HubError(f"{MODEL_INDEX_NAME} of {source} must name the subfolder of {name!r} (a relative "
                               f"folder name), got {subfolder!r}")
        resolution = index.get("resolution")
        if isinstance(resolution, bool) or not isinstance(resolution, int):
            raise HubError(f"{MODEL_INDEX_NAME} of {source} must give the model resolution as an int, "
                           f"got {resolution!r}")
        return index
