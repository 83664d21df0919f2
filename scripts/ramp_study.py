"""Measure the correction ramp (`hoginpaint.prefill.correction_ramp`) of a trained pipeline on a development set.

    python scripts/ramp_study.py --model checkpoints/hoginpaint --ramps 0 2 4 8

For each NVIDIA bucket: the PSNR of the exact biharmonic floor and of the pipeline with G's ramp set to each value
(the same ramp, scaled to the photo, is applied where the pipeline adds the upsampled change to the full-resolution
fill). The default development set is UTKFace *training* photos from position 20,000 on with NVIDIA *training* masks:
neither is in the evaluation (`python -m hoginpaint.evaluate` uses the validation splits and the masks whose index
is divisible by 10), so choosing the ramp here tunes nothing to the evaluation.
"""
from __future__ import annotations

import argparse

import torch

from hoginpaint import metrics
from hoginpaint.data import center_crop_resize, decode_image, load_image_dataset
from hoginpaint.evaluate import EvalConfig, nvidia_mask_sets
from hoginpaint.inference import PASTE_BACK_EXACT_PIXELS, PASTE_BACK_ITERATIONS
from hoginpaint.pipeline import HOGInpaintPipeline
from hoginpaint.prefill import prefill_around_hole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="checkpoints/hoginpaint")
    parser.add_argument("--dataset", default="../shared/data/faces")
    parser.add_argument("--split", default="train")
    parser.add_argument("--skip", type=int, default=20000, help="start at this position of the split")
    parser.add_argument("--num_faces", type=int, default=40)
    parser.add_argument("--mask_dir", default="../shared/data/masks/nvidia-irregular-test")
    parser.add_argument("--buckets", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--ramps", type=float, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()

    faces = []
    for position, example in enumerate(load_image_dataset(args.dataset, args.split, "image", streaming=True)):
        if position >= args.skip and (image := decode_image(example["image"])) is not None:
            faces.append(center_crop_resize(image, args.resolution))
        if len(faces) == args.num_faces:
            break
    images = torch.stack(faces)
    config = EvalConfig(methods=["telea"], dataset=args.dataset, mask_dir=args.mask_dir, buckets=args.buckets,
                        mask_split="train", resolution=args.resolution, seed=7)
    pipe = HOGInpaintPipeline.from_pretrained(args.model)
    print(f"{len(faces)} faces of {args.dataset} {args.split}[{args.skip}:], NVIDIA training masks, "
          f"{args.resolution} px; PSNR (dB)")
    print("| holes | biharmonic floor | " + " | ".join(f"ramp {ramp:g}" for ramp in args.ramps) + " |")
    print("| --- " * (2 + len(args.ramps)) + "|")
    for mask_set in nvidia_mask_sets(config, len(faces)):
        masks = mask_set.masks.float()
        floor = torch.stack([prefill_around_hole(image, mask, iterations=PASTE_BACK_ITERATIONS,
                                                 exact_up_to=PASTE_BACK_EXACT_PIXELS)
                             for image, mask in zip(images, masks)])
        row = [mask_set.name, f"{float(torch.as_tensor(metrics.psnr(images, floor)).mean()):.2f}"]
        for ramp in args.ramps:
            pipe.inpaint_generator.correction_ramp = ramp
            results = []
            for start in range(0, len(faces), 8):
                out = pipe(list(images[start:start + 8]), list(masks[start:start + 8]), output_type="pt")
                results.extend(out.images)
            row.append(f"{float(torch.as_tensor(metrics.psnr(images, torch.stack(results))).mean()):.2f}")
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
