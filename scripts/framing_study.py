"""Measure how the Space frames damaged photos (`hoginpaint.faces.framing.frame`): faces found under large holes, and
faces invented where there is none.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/framing_study.py --num_faces 30   # ~4 CPU-minutes

Faces: the first `num_faces` validation faces of CelebA (178 px centre crops) and of UTKFace (200 px tight crops) from
position `skip` on in which dlib finds the intact face, resized to 256 px, each under one evaluation-reserved NVIDIA
mask (index a multiple of 10) of the 40-50 % and one of the 50-60 % bucket, spread evenly over the bucket (holes away
from the border and touching it), with the hole burned in white as in EdgeConnect's examples. Reported per data set and
bucket: the share framed on a face, the frame kinds, where the face was found, and the anchor error of the faces found
(eye and mouth centres, `anchor_points`, against the intact face's; the largest of the three distances, in % of the
side).

Face-less images: 16 of scikit-image's photographs and textures, a flat grey square and uniform noise, each under 12
evaluation-reserved NVIDIA masks spread over the 10-60 % buckets: how many faces are invented (a frame with landmarks).

Run it on two checkouts to compare them (`git worktree add /tmp/before HEAD`, then from /tmp/before:
`PYTHONPATH=. python /path/to/scripts/framing_study.py --data_dir /path/to/shared/data`).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hoginpaint import faces

SIDE = 256
NO_FACE_PHOTOS = ("rocket", "coffee", "chelsea", "hubble_deep_field", "immunohistochemistry", "retina", "coins",
                  "moon", "clock", "cell", "brick", "grass", "gravel", "colorwheel", "page", "logo")


@dataclass
class StudyConfig:
    data_dir: str = "../shared/data"
    num_faces: int = 30  # per data set
    skip: int = 100  # the first validation position looked at: the tests use positions 0-7
    num_no_face_holes: int = 12


def parse_args() -> StudyConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(StudyConfig):
        parser.add_argument(f"--{field.name}", type=type(field.default), default=field.default)
    return StudyConfig(**vars(parser.parse_args()))


def nvidia_hole(config: StudyConfig, number: int, shape: tuple[int, int]) -> np.ndarray:
    """NVIDIA mask `number` resized (nearest) to `shape` `(H, W)` → `(H, W)` bool, True = hole."""
    path = Path(config.data_dir) / "masks" / "nvidia-irregular-test" / f"{number:05d}.png"
    with Image.open(path) as mask:
        return np.asarray(mask.convert("L").resize(shape[::-1], Image.NEAREST)) > 127


def spread(first: int, count: int, per_bucket: int = 2000) -> list[int]:
    """`count` evaluation-reserved mask numbers (multiples of 10) spread evenly over `first`'s bucket."""
    return [first + 10 * (round(i * per_bucket / 10 / count) % (per_bucket // 10)) for i in range(count)]


def intact_faces(config: StudyConfig, dataset: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(256 px face, its anchor points) for the first `num_faces` validation faces from `skip` on that dlib finds."""
    import pyarrow.parquet as pq

    table = pq.read_table(Path(config.data_dir) / dataset / "validation-00000-of-00001.parquet", columns=["image"])
    found = []
    for row in table.slice(config.skip).column("image").to_pylist():
        face = np.asarray(Image.open(io.BytesIO(row["bytes"])).convert("RGB").resize((SIDE, SIDE), Image.BICUBIC))
        if boxes := faces.detect_faces(face):
            found.append((face, faces.anchor_points(faces.landmarks68(face, boxes[0]))))
        if len(found) == config.num_faces:
            break
    return found


def face_rows(config: StudyConfig) -> list[str]:
    rows = []
    for dataset in ("celeba", "faces"):
        examples = intact_faces(config, dataset)
        for bucket, first in (("40-50 %", 8000), ("50-60 %", 10000)):
            kinds, sources, errors = Counter(), Counter(), []
            for (face, anchors), number in zip(examples, spread(first, len(examples))):
                hole = nvidia_hole(config, number, face.shape[:2])
                burned = face.copy()
                burned[hole] = 255
                framed = faces.frame(burned, hole, SIDE)
                kinds[framed.kind] += 1
                if framed.landmarks is not None:
                    sources[framed.found_on] += 1
                    distances = np.linalg.norm(faces.anchor_points(framed.landmarks) - anchors, axis=1)
                    errors.append(100 * distances.max() / SIDE)
            errors = np.array(errors)
            error_text = (f"median {np.median(errors):.1f}, 90th pct {np.percentile(errors, 90):.1f}, max "
                          f"{errors.max():.1f}; over 8 %: {(errors > 8).sum()}") if errors.size else "-"
            rows.append(f"| {dataset} | {bucket} | {len(errors)}/{len(examples)} | {dict(kinds)} | {dict(sources)} "
                        f"| {error_text} |")
            print(rows[-1], flush=True)
    return rows


def no_face_images() -> dict[str, np.ndarray]:
    """The face-less images, uint8 `(H, W, 3)`."""
    from skimage import data

    images = {}
    for name in NO_FACE_PHOTOS:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        images[name] = np.ascontiguousarray(image[..., :3].astype(np.uint8))
    images["flat"] = np.full((SIDE, SIDE, 3), 128, dtype=np.uint8)
    images["noise"] = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return images


def no_face_rows(config: StudyConfig) -> list[str]:
    # Spread over the 10-60 % buckets (masks 2000-11999), both halves of each (away from and touching the border).
    numbers = spread(2000, config.num_no_face_holes, per_bucket=10000)
    invented, kinds, total = {}, Counter(), 0
    for name, image in no_face_images().items():
        for number in numbers:
            hole = nvidia_hole(config, number, image.shape[:2])
            burned = image.copy()
            burned[hole] = 255
            framed = faces.frame(burned, hole, SIDE)
            total += 1
            if framed.landmarks is not None:
                invented.setdefault(name, []).append(number)
                kinds[f"{framed.kind} / {framed.found_on}"] += 1
    count = sum(len(numbers) for numbers in invented.values())
    rows = [f"faces invented under {count} of {total} holes ({len(invented)} of {len(no_face_images())} images); "
            f"frames: {dict(kinds)}", f"masks: {numbers}"]
    rows += [f"  {name}: masks {numbers}" for name, numbers in invented.items()]
    for row in rows:
        print(row, flush=True)
    return rows


def main(config: StudyConfig) -> None:
    start = time.perf_counter()
    print(f"faces from validation position {config.skip} on, {SIDE} px, hole burned in white; anchor error: the "
          "largest of the eye and mouth centres' distances to the intact face's, % of the side")
    print("| data | holes | framed on a face | kinds | found on | anchor error (%) |")
    print("| --- | --- | --- | --- | --- | --- |")
    face_rows(config)
    no_face_rows(config)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(parse_args())
