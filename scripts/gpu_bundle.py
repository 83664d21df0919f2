"""A trained pipeline as float16 parts small enough to copy back from a GPU machine, and the way back to a pipeline.

    python scripts/gpu_bundle.py join FILES --output runs/gpu-run/pipeline

A time-boxed GPU run (`scripts/gpu_run.py`) returns its results as at most 8 files of under 16 MiB each, small
enough for the file transfer of a remote machine. `split_pipeline` turns a `HOGInpaintPipeline` folder
(`save_pretrained` layout) into:

- `weights.part-NN`: consecutive byte ranges (each at most `part_bytes`) of one safetensors file that holds both
  generators' tensors in float16, named `structure_generator.<key>` and `inpaint_generator.<key>`;
- `manifest.json`: the SHA-256 and size of every part and of the whole file, the pipeline's `model_index.json`, each
  component's `config.json`, the model card, and free notes (where each component came from).

`join_bundle` checks every hash, joins the parts and writes the pipeline folder back: `model_index.json`,
`structure_generator/` and `inpaint_generator/` (each `config.json` + `model.safetensors`, float32 holding the float16
values) and `README.md`, loadable with `HOGInpaintPipeline.from_pretrained`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

FORMAT = "hoginpaint-fp16-parts/1"
MANIFEST = "manifest.json"
PART_PREFIX = "weights.part-"
PART_BYTES = 15 * 2**20  # under the 16 MiB a returned file may have
COMPONENTS = ("structure_generator", "inpaint_generator")
FP16_MAX = torch.finfo(torch.float16).max


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_pipeline(pipeline_dir: str | Path, out_dir: str | Path, part_bytes: int = PART_BYTES,
                   notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `pipeline_dir`'s weights as float16 parts + `manifest.json` into `out_dir`; returns the manifest.

    Raises `ValueError` if a weight does not fit float16 (|value| > 65504), rather than return a broken model.
    """
    pipeline_dir, out_dir = Path(pipeline_dir), Path(out_dir)
    index = json.loads((pipeline_dir / "model_index.json").read_text())
    tensors, configs = {}, {}
    for component in COMPONENTS:
        folder = pipeline_dir / index[component]
        configs[component] = json.loads((folder / "config.json").read_text())
        for key, tensor in safetensors.torch.load_file(folder / "model.safetensors").items():
            if tensor.is_floating_point():
                if not bool(torch.isfinite(tensor).all()) or tensor.abs().max() > FP16_MAX:
                    raise ValueError(f"{component}.{key} has values float16 cannot hold (non-finite or beyond "
                                     f"{FP16_MAX:.0f}); bring this checkpoint back in float32 instead")
                tensor = tensor.half()
            tensors[f"{component}.{key}"] = tensor.contiguous()
    blob = safetensors.torch.save(tensors)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{PART_PREFIX}*"):
        stale.unlink()  # a smaller bundle replaces a larger one
    parts = []
    for number, start in enumerate(range(0, len(blob), part_bytes)):
        chunk = blob[start:start + part_bytes]
        name = f"{PART_PREFIX}{number:02d}"
        (out_dir / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": sha256(chunk)})
    card = pipeline_dir / "README.md"
    manifest = {
        "format": FORMAT,
        "dtype": "float16",
        "whole": {"bytes": len(blob), "sha256": sha256(blob)},
        "parts": parts,
        "model_index": index,
        "configs": configs,
        "model_card": card.read_text() if card.is_file() else None,
        "notes": notes or {},
    }
    # The manifest last: a bundle cut short by a killed run has no manifest naming its missing parts.
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_verified(bundle_dir: str | Path) -> tuple[dict[str, Any], bytes]:
    """The manifest and the joined safetensors bytes of `bundle_dir`, every hash checked.

    Raises `ValueError` naming the part that is missing, short or corrupt.
    """
    bundle_dir = Path(bundle_dir)
    manifest_path = bundle_dir / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{bundle_dir} has no {MANIFEST}; pass the folder the GPU run's files were copied into")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path} is format {manifest.get('format')!r}, expected {FORMAT!r}")
    chunks = []
    for part in manifest["parts"]:
        path = bundle_dir / part["name"]
        if not path.is_file():
            raise ValueError(f"{path} is missing: the GPU run returned {len(manifest['parts'])} parts; copy them all")
        chunk = path.read_bytes()
        if len(chunk) != part["bytes"] or sha256(chunk) != part["sha256"]:
            raise ValueError(f"{path} is corrupt ({len(chunk)} bytes, expected {part['bytes']} with SHA-256 "
                             f"{part['sha256']}); copy the GPU run's files again")
        chunks.append(chunk)
    blob = b"".join(chunks)
    if sha256(blob) != manifest["whole"]["sha256"]:
        raise ValueError(f"the joined parts of {bundle_dir} do not hash to the manifest's SHA-256; copy them again")
    return manifest, blob


def join_bundle(bundle_dir: str | Path, output_dir: str | Path) -> Path:
    """Verify `bundle_dir` and write the pipeline folder `output_dir` (float32 weights); returns `output_dir`."""
    manifest, blob = read_verified(bundle_dir)
    tensors = safetensors.torch.load(blob)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    index = manifest["model_index"]
    for component in COMPONENTS:
        prefix = f"{component}."
        weights = {key.removeprefix(prefix): tensor.float() if tensor.is_floating_point() else tensor
                   for key, tensor in tensors.items() if key.startswith(prefix)}
        folder = output_dir / index[component]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(manifest["configs"][component], indent=2, sort_keys=True)
                                            + "\n")
        safetensors.torch.save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    (output_dir / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    if manifest.get("model_card"):
        (output_dir / "README.md").write_text(manifest["model_card"])
    return output_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    join = commands.add_parser("join", help="verify a returned bundle and write the pipeline folder")
    join.add_argument("bundle_dir", type=Path, help="the folder holding manifest.json and the weights.part-NN files")
    join.add_argument("--output", type=Path, required=True, help="the pipeline folder to write")
    split = commands.add_parser("split", help="a pipeline folder → fp16 parts + manifest.json")
    split.add_argument("pipeline_dir", type=Path)
    split.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "split":
        manifest = split_pipeline(args.pipeline_dir, args.output)
        print(f"wrote {len(manifest['parts'])} parts ({manifest['whole']['bytes']} bytes) into {args.output}")
        return
    from hoginpaint import HOGInpaintPipeline

    folder = join_bundle(args.bundle_dir, args.output)
    pipeline = HOGInpaintPipeline.from_pretrained(folder)  # the check that it loads as the app and the CLI load it
    print(f"verified every SHA-256 and wrote {folder}; loads as a {type(pipeline).__name__} at "
          f"{pipeline.resolution} px")


if __name__ == "__main__":
    main()
