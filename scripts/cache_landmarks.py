"""Write the landmark cache of one data source's training split, for facial-part holes in training.

    python scripts/cache_landmarks.py --data_dir ../shared/data/celeba --output runs/landmarks/celeba-train.npz

Then train with ``--landmarks runs/landmarks/celeba-train.npz,... --face_part_share 0.5``. dlib takes 6-15 ms a
face on one core (CelebA's 17,500 training images: about 4 minutes).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint.training.data import load_image_dataset  # noqa: E402
from hoginpaint.training.landmarks import build_landmark_cache  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="a dataset folder (Hub layout) or Hub dataset id")
    parser.add_argument("--split", default="train", help="the split to landmark (default: train)")
    parser.add_argument("--image_column", default="image")
    parser.add_argument("--output", required=True, help="the .npz to write")
    parser.add_argument("--max_images", type=int, default=None, help="landmark the first N images only")
    args = parser.parse_args(argv)
    try:
        images = load_image_dataset(args.data_dir, args.split, args.image_column, streaming=True)
    except ValueError as error:
        parser.error(str(error))
    if args.max_images is not None:
        images = images.take(args.max_images)
    values = (example[args.image_column] for example in images)
    counts = build_landmark_cache(values, args.output, total=args.max_images)
    print(json.dumps({"output": args.output, **counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
