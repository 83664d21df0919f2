"""The README's figure: rows of (masked input | HOG guidance | HOG-guided result | ground truth).

    python scripts/make_figure.py --model checkpoints/hoginpaint --faces ../shared/data/faces \
        --masks ../shared/data/masks/nvidia-irregular-test --output assets/figure.png

Validation faces and evaluation-reserved NVIDIA masks (index divisible by 10), chosen by --seed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint import HOGInpaintPipeline  # noqa: E402
from hoginpaint.masks import FolderMasks  # noqa: E402
from tests.conftest import load_validation_faces  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--faces", type=Path, required=True)
    parser.add_argument("--masks", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pipe = HOGInpaintPipeline.from_pretrained(args.model)
    rng = np.random.default_rng(args.seed)
    faces = load_validation_faces(args.faces, 40, args.size)
    masks = FolderMasks(args.masks, buckets=[2, 3, 4], split="eval", augment=False)
    picks = rng.choice(len(faces), args.rows, replace=False)
    mask_images = [masks.mask(int(rng.integers(len(masks))), args.size) for _ in picks]
    images = [faces[i] for i in picks]
    out = pipe(image=images, mask_image=[Image.fromarray((m * 255).astype(np.uint8)) for m in mask_images])
    rows = []
    for image, masked, guidance, result in zip(images, out.masked, out.guidance, out.images):
        guidance = guidance.convert("RGB").resize((args.size, args.size), Image.NEAREST)
        rows.append(np.concatenate([np.asarray(masked), np.asarray(guidance), np.asarray(result),
                                    np.asarray(image)], axis=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.output, optimize=True)
    print(f"wrote {args.output}: masked | HOG guidance | HOG-guided result | ground truth")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
