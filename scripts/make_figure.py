"""The README's figure: rows of (masked input | HOG guidance | HOG-guided | biharmonic | DeepFill v2 | Telea |
original).

    python scripts/make_figure.py --output assets/figure.png

The face is scikit-image's astronaut (public domain; no dataset image goes into the repository), aligned to the
training framing with `hoginpaint.faces`. Rows: large holes — free-form strokes of 30-40 % and 40-50 %, and holes over
the eyes and over the mouth placed from dlib's landmarks (the paper's identity question).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hoginpaint import faces, methods  # noqa: E402
from hoginpaint.masks import FreeFormMasks, sample_with_ratio  # noqa: E402

RATIOS = [(0.30, 0.40), (0.40, 0.50)]
FEATURES = ("eyes", "mouth")


def astronaut_face(size: int) -> tuple[Image.Image, np.ndarray]:
    """The astronaut's face aligned to the training framing, `size` x `size`, and its 68 landmarks there."""
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut())
    box = faces.detect_faces(photo)[0]
    face = faces.align_face(photo, faces.landmarks68(photo, box), size=size).image
    return face, faces.landmarks68(face, faces.detect_faces(face)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hoginpaint", default=str(ROOT / "checkpoints" / "hoginpaint"))
    parser.add_argument("--deepfill", default=str(ROOT / "checkpoints" / "deepfill"))
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    face, landmarks = astronaut_face(args.size)
    loaded = {"hoginpaint": methods.load("hoginpaint", args.hoginpaint), "biharmonic": methods.load("biharmonic"),
              "deepfill": methods.load("deepfill", args.deepfill), "telea": methods.load("telea")}
    strokes = FreeFormMasks(max_strokes=8)
    holes = [sample_with_ratio(strokes, np.random.default_rng(seed), args.size, low, high)
             for seed, (low, high) in enumerate(RATIOS)]
    holes += [faces.feature_mask(landmarks, args.size, part) for part in FEATURES]
    rows = []
    for hole in holes:
        mask = Image.fromarray((np.asarray(hole) * 255).astype(np.uint8))
        outputs = {name: method(image=face, mask_image=mask) for name, method in loaded.items()}
        hog = outputs["hoginpaint"]
        # The HOG image brightened for the eye (square root of its scaled values): its strokes are thin and dim.
        guidance = hog.guidance[0].convert("L").point(lambda value: round(255 * (value / 255) ** 0.5))
        guidance = guidance.convert("RGB").resize((args.size, args.size), Image.NEAREST)
        row = [hog.masked[0], guidance] + [outputs[name].images[0] for name in loaded] + [face]
        rows.append(np.concatenate([np.asarray(image.convert("RGB")) for image in row], axis=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.output, optimize=True)
    print(f"wrote {args.output}: masked | HOG guidance | HOG-guided | biharmonic | DeepFill v2 | Telea | original")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
