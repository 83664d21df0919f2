"""Pack what a time-boxed GPU run trains on into `.gpu-run/` (git-ignored): a training subset, NVIDIA masks, landmark
caches and wheels.

    python scripts/pack_gpu_data.py                   # the default subset, ~32 MiB, with landmarks and wheels
    python scripts/pack_gpu_data.py --celeba 200 --faces 200 --train_masks 300 --no-wheels --output /tmp/gpu-run

The GPU machine gets the working tree and this folder, not `../shared/data`, and the less that is copied to it the
sooner it starts. So a random subset (seeded) of the shared data is written in the layout `train_accelerate.py`
reads:

- `data/celeba/`, `data/faces/`: Hub-layout parquet shards (`train-0000N-of-0000M.parquet`, `validation-00000-of-
  00001.parquet`) holding the original rows and schema (the JPEG bytes are copied, never re-encoded); pass both as
  `--train_data_dir .gpu-run/data/celeba,.gpu-run/data/faces`. Several train shards, so that loader workers share
  them.
- `masks/`: NVIDIA irregular masks under their original names (`00001.png` ...), so that `FolderMasks` keeps the
  index-based split (index % 10 == 0 reserved for evaluation) and buckets. Training masks, plus a few evaluation ones
  for the validation batch. Each is stored at `--mask_side` as FolderMasks itself resizes it ("area", threshold
  0.5), 1-bit PNG: at that training resolution the masks a run samples are the ones it would make from the originals.
- `landmarks/celeba.npz`, `landmarks/faces.npz`: the landmark caches of the packed training images
  (`hoginpaint.training.landmarks`, keyed by the images' bytes), for the facial-part holes of `--face_part_share`;
  dlib runs here, so the GPU machine needs neither dlib nor its models (`--no-landmarks` leaves them out).
- `wheels/`: the pure-Python packages a GPU image may lack or hold at other versions (`datasets` and what
  `hoginpaint` imports through it), for Python 3.12; `scripts/gpu_run.sh` installs them there.
- `pack.json`: what was packed, from where, and the sizes.

The script refuses a pack whose total with the working tree (tracked + untracked-not-ignored files + this folder),
what is copied to the GPU machine, exceeds `--max_total_mib`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hoginpaint.masks import FolderMasks  # noqa: E402
from hoginpaint.training.landmarks import build_landmark_cache  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MIB = 2**20
# Same versions as this machine's (requirements.txt is what they satisfy); pure Python, so one wheel serves 3.12.
WHEELS = ("datasets==5.2.0", "huggingface_hub==2.4.0", "httpx2==2.16.2", "httpcore2==2.16.2", "truststore==0.10.5",
          "dill==0.4.1", "multiprocess==0.70.19", "fsspec==2026.9.0", "click==8.5.1")


def pack_images(source: Path, target: Path, train_count: int, validation_count: int, shards: int,
                rng: np.random.Generator) -> dict[str, int]:
    """A random `train_count` rows of `source`'s train shards in `shards` new shards, and the first
    `validation_count` validation rows; returns row counts and bytes."""
    files = sorted(source.glob("train-*.parquet"))
    if not files:
        raise ValueError(f"no train-*.parquet shards in {source}; point --shared_data at the shared data folder")
    table = pa.concat_tables([pq.read_table(path) for path in files])
    if train_count > table.num_rows:
        raise ValueError(f"{source} has {table.num_rows} training images, fewer than the {train_count} asked for")
    chosen = np.sort(rng.choice(table.num_rows, size=train_count, replace=False))
    subset = table.take(pa.array(chosen))
    target.mkdir(parents=True, exist_ok=True)
    shards = max(1, min(shards, train_count))
    for shard, rows in enumerate(np.array_split(np.arange(train_count), shards)):
        pq.write_table(subset.take(pa.array(rows)), target / f"train-{shard:05d}-of-{shards:05d}.parquet")
    validation = pq.read_table(source / "validation-00000-of-00001.parquet")
    pq.write_table(validation.slice(0, validation_count), target / "validation-00000-of-00001.parquet")
    return {"train_images": train_count, "train_shards": shards,
            "validation_images": min(validation_count, validation.num_rows), "bytes": folder_bytes(target)}


def pack_masks(source: Path, target: Path, train_count: int, eval_count: int, side: int,
               rng: np.random.Generator) -> dict[str, int]:
    """`train_count` random training masks and `eval_count` evaluation masks of `source`, resized to `side`."""
    target.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, count in (("train", train_count), ("eval", eval_count)):
        masks = FolderMasks(source, split=split, augment=False)
        if count > len(masks):
            raise ValueError(f"{source} has {len(masks)} {split} masks, fewer than the {count} asked for")
        for i in np.sort(rng.choice(len(masks), size=count, replace=False)):
            hole = masks.mask(int(i), side) > 0.5  # (side, side), True = hole (white)
            Image.fromarray(hole).save(target / masks.paths[i].name, optimize=True)  # a bool array is mode "1"
        counts[f"{split}_masks"] = count
    return {**counts, "side": side, "bytes": folder_bytes(target)}


def pack_landmarks(data: Path, target: Path) -> dict[str, int]:
    """The landmark cache of the packed training images in `data` (its train shards' `image` column) → counts."""
    files = sorted(data.glob("train-*.parquet"))
    values = (value for path in files for value in pq.read_table(path, columns=["image"]).column("image").to_pylist())
    counts = build_landmark_cache(values, target, progress=False)
    return {**counts, "bytes": target.stat().st_size}


def download_wheels(target: Path) -> dict[str, int]:
    """The pure-Python wheels of `WHEELS` for CPython 3.12 (the GPU image's python3), through pip."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "-d", str(target), *WHEELS], check=True)
    return {"wheels": len(list(target.glob("*.whl"))), "bytes": folder_bytes(target)}


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def working_tree_bytes() -> int:
    """Bytes of the working tree's files that go to the GPU machine: tracked and untracked-not-ignored ones."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                             capture_output=True, check=True).stdout.decode()
    paths = {REPO_ROOT / name for name in listing.split("\0") if name}
    return sum(path.stat().st_size for path in paths if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".gpu-run")
    parser.add_argument("--shared_data", type=Path, default=SHARED_DATA)
    parser.add_argument("--celeba", type=int, default=2500, help="CelebA training images (of 17,500; ~4.2 KB each)")
    parser.add_argument("--faces", type=int, default=2500, help="UTKFace training images (of 22,117; ~5 KB each)")
    parser.add_argument("--validation", type=int, default=64, help="validation images of each data set")
    parser.add_argument("--shards", type=int, default=8, help="train shards per data set")
    parser.add_argument("--train_masks", type=int, default=4000, help="NVIDIA training masks (of 10,800; ~0.9 KB)")
    parser.add_argument("--eval_masks", type=int, default=60, help="NVIDIA evaluation masks, for the validation batch")
    parser.add_argument("--mask_side", type=int, default=256, help="side the masks are stored at")
    parser.add_argument("--landmarks", action=argparse.BooleanOptionalAction, default=True,
                        help="landmark the packed training images with dlib, for facial-part holes (~10 ms an image)")
    parser.add_argument("--wheels", action=argparse.BooleanOptionalAction, default=True,
                        help="download the wheels a GPU image may lack (--no-wheels for a CPU dry run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_total_mib", type=float, default=58.0,
                        help="refuse a pack that makes the working tree and the pack, what is copied to the GPU "
                             "machine, larger than this")
    args = parser.parse_args()

    if args.output.exists():
        shutil.rmtree(args.output)  # a fresh pack, never a mix of two
    rng = np.random.default_rng(args.seed)
    report = {"seed": args.seed, "shared_data": str(args.shared_data)}
    for name in ("celeba", "faces"):
        report[name] = pack_images(args.shared_data / name, args.output / "data" / name, getattr(args, name),
                                   args.validation, args.shards, rng)
    report["masks"] = pack_masks(args.shared_data / "masks" / "nvidia-irregular-test", args.output / "masks",
                                 args.train_masks, args.eval_masks, args.mask_side, rng)
    if args.landmarks:
        report["landmarks"] = {name: pack_landmarks(args.output / "data" / name,
                                                    args.output / "landmarks" / f"{name}.npz")
                               for name in ("celeba", "faces")}
    if args.wheels:
        report["wheels"] = download_wheels(args.output / "wheels")
    report["bytes"] = folder_bytes(args.output)
    inside_repo = args.output.resolve().is_relative_to(REPO_ROOT)
    report["total_bytes"] = working_tree_bytes() + (report["bytes"] if inside_repo else 0)
    (args.output / "pack.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"packed {report['bytes'] / MIB:.1f} MiB into {args.output}; working tree + pack: "
          f"{report['total_bytes'] / MIB:.1f} MiB")
    if report["total_bytes"] > args.max_total_mib * MIB:
        raise SystemExit(f"the working tree and the pack come to {report['total_bytes'] / MIB:.1f} MiB, over "
                         f"--max_total_mib {args.max_total_mib}; pack fewer images (--celeba, --faces)")


if __name__ == "__main__":
    main()
