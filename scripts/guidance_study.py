"""What the HOG guidance is worth at inference, and how trained pipelines compare, on a development set.

    python scripts/guidance_study.py --model checkpoints/hoginpaint RUN/export --num_faces 60

For each pipeline, G is run on the same faces and holes with four guidances in the hole cells:

- ``oracle``: the ground truth's own HOG image (the upper bound of what any structure stage could give G);
- ``predicted``: G_H's prediction (what the pipeline uses);
- ``prefill``: the HOG image of the classical pre-fill, which G_H starts from (G_H skipped);
- ``zeros``: no guidance in the hole cells.

Each row gives PSNR, hole detail and hole contrast (`hoginpaint.realism`; 1 = the ground truth's), landmark error
under the hole (dlib's 68 points, over the inter-ocular distance) and the HOG distance in the hole cells, averaged
over the faces, for holes over the eyes, the nose and the mouth (`faces.feature_mask`) and for NVIDIA training masks
of 30-60 %. Everything runs at the model's resolution. The default development set is UTKFace *training* photos from
position 20,000 on with NVIDIA *training* masks, neither of which is in the evaluation (`python -m
hoginpaint.evaluation` uses the validation splits and the masks whose index is divisible by 10), so choosing a model
here tunes nothing to the evaluation.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint import faces, metrics, realism  # noqa: E402
from hoginpaint.hog import composite_guidance, guidance_target  # noqa: E402
from hoginpaint.masks import FolderMasks  # noqa: E402
from hoginpaint.pipeline import HOGInpaintPipeline, coarse_fill  # noqa: E402
from hoginpaint.stages import inpaint_stage, structure_stage  # noqa: E402
from hoginpaint.training.data import center_crop_resize, decode_image, load_image_dataset  # noqa: E402

GUIDANCES = ("oracle", "predicted", "prefill", "zeros")
LANDMARK_SIDE = 256  # realism's working side: dlib misses faces much under 80 px
COLUMNS = ("psnr", "hole_detail", "hole_contrast", "landmark_error", "hog_hole_distance")


def development_faces(dataset: str, split: str, skip: int, count: int, resolution: int
                      ) -> tuple[torch.Tensor, list]:
    """`count` faces from position `skip` of the split at `resolution`, and `realism.face_references` of them."""
    images = []
    for example in itertools.islice(load_image_dataset(dataset, split, "image"), skip, None):
        image = decode_image(example["image"])
        if image is not None:
            images.append(center_crop_resize(image, resolution))
        if len(images) == count:
            break
    batch = torch.stack(images)
    return batch, realism.face_references(batch, side=LANDMARK_SIDE)


def hole_sets(landmarks: list[np.ndarray | None], resolution: int, mask_dir: str, seed: int
              ) -> dict[str, tuple[list[int], torch.Tensor]]:
    """Hole sets: the faces they apply to and their masks `(N, 1, R, R)`."""
    found = [i for i, points in enumerate(landmarks) if points is not None]
    sets = {}
    for part in faces.FACE_PARTS:
        masks = [faces.feature_mask(landmarks[i], resolution, part) for i in found]
        sets[part] = (found, torch.from_numpy(np.stack(masks))[:, None])
    source = FolderMasks(mask_dir, buckets=[3, 4, 5], split="train", augment=False)
    rng = np.random.default_rng(seed)
    masks = [source.sample(rng, resolution) for _ in landmarks]
    sets["30-60%"] = (list(range(len(landmarks))), torch.from_numpy(np.stack(masks))[:, None])
    return sets


@torch.no_grad()
def fill(pipeline: HOGInpaintPipeline, image: torch.Tensor, mask: torch.Tensor, guidance: str) -> torch.Tensor:
    """G's composited output `(B, 3, R, R)` with the hole cells of the guidance taken from `guidance` (a cascade's
    generators refining its coarse pipeline's fill)."""
    filled = coarse_fill(pipeline.coarse, image, mask) if pipeline.coarse is not None else None
    structure = structure_stage(pipeline.structure_generator, image, mask, filled=filled)
    settings = pipeline.structure_generator.hog_settings()
    hole_cells_from = {
        "oracle": guidance_target(image, settings),
        "predicted": structure.hog_pred,
        "prefill": structure.hog_known,
        "zeros": torch.zeros_like(structure.hog_pred),
    }[guidance]
    guide = composite_guidance(structure.hog_known, hole_cells_from, mask, settings.pixels_per_cell)
    return inpaint_stage(pipeline.inpaint_generator, image, mask, guide, filled=structure.filled)[1]


def nanmean(values: torch.Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def measure(truth: torch.Tensor, result: torch.Tensor, mask: torch.Tensor, references: list) -> dict[str, float]:
    psnr_values = metrics.psnr(truth, result)
    return {
        "psnr": nanmean(psnr_values[torch.isfinite(psnr_values)]),
        "hole_detail": nanmean(realism.hole_detail(truth, result, mask)),
        "hole_contrast": nanmean(realism.hole_contrast(truth, result, mask)),
        "landmark_error": nanmean(realism.landmark_error(truth, result, mask, references=references)),
        "hog_hole_distance": nanmean(realism.hog_hole_distance(truth, result, mask, pixels_per_cell=4)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["checkpoints/hoginpaint"], help="pipeline folders to compare")
    parser.add_argument("--guidances", nargs="+", default=list(GUIDANCES), choices=GUIDANCES)
    parser.add_argument("--dataset", default="../shared/data/faces")
    parser.add_argument("--split", default="train")
    parser.add_argument("--skip", type=int, default=20000, help="start at this position of the split")
    parser.add_argument("--num_faces", type=int, default=40)
    parser.add_argument("--mask_dir", default="../shared/data/masks/nvidia-irregular-test")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pipelines = {path: HOGInpaintPipeline.from_pretrained(path) for path in args.model}
    resolutions = {pipeline.resolution for pipeline in pipelines.values()}
    if len(resolutions) != 1:
        parser.error(f"the pipelines work at different resolutions ({sorted(resolutions)}); compare one at a time")
    resolution = resolutions.pop()
    images, references = development_faces(args.dataset, args.split, args.skip, args.num_faces, resolution)
    scale = resolution / max(resolution, LANDMARK_SIDE)  # the references' landmarks are at the working side
    landmarks = [None if reference is None else reference[1] * scale for reference in references]
    print(f"{len(images)} faces at {resolution} px, landmarks found on {sum(p is not None for p in landmarks)}")
    print("| holes | model | guidance | " + " | ".join(COLUMNS) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    for name, (indices, masks) in hole_sets(landmarks, resolution, args.mask_dir, args.seed).items():
        truth = images[indices]
        refs = [references[i] for i in indices]
        for path, pipeline in pipelines.items():
            for guidance in args.guidances:
                result = torch.cat([fill(pipeline, truth[i:i + args.batch_size], masks[i:i + args.batch_size],
                                         guidance) for i in range(0, len(truth), args.batch_size)])
                values = measure(truth, result, masks, refs)
                cells = " | ".join(f"{values[column]:.4f}" for column in COLUMNS)
                print(f"| {name} | {Path(path).name} | {guidance} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
