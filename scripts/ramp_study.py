"""Measure trained pipelines, and their correction ramp and low-pass (`hoginpaint.prefill`), on a development set.

    python scripts/ramp_study.py --model checkpoints/hoginpaint --ramps 0 2 4 8
    python scripts/ramp_study.py --model checkpoints/hoginpaint --ramps 4 --lowpasses 0 4 --buckets 0 2 4 5
    python scripts/ramp_study.py --model checkpoints/hoginpaint RUN/export --ramps 4 --blocks --feature_masks

For each NVIDIA bucket: the PSNR of the exact biharmonic floor and of each pipeline with G's ramp and low-pass set to
each pair of values (the same ramp, scaled to the photo, is applied where the pipeline adds the upsampled change to
the full-resolution fill). With more than one pipeline or low-pass, SSIM and the holes' grid peak (how far their
detail at the 4-px period of G's grid, at the model's resolution, stands above nearby periods: stripes raise it;
`grid_peak`) are printed too, for the ground truth as well. `--feature_masks` adds holes over the eyes, the nose and
the mouth, and dlib's identity distance in every row: a setting that smooths the fill can raise PSNR and lose identity
(it did: `docs/correction_lowpass.md`), so choose with identity measured.

The default development set is UTKFace *training* photos from position 20,000 on with NVIDIA *training* masks:
neither is in the evaluation (`python -m hoginpaint.evaluation` uses the validation splits and the masks whose index
is divisible by 10), so choosing the ramp here tunes nothing to the evaluation.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hoginpaint import metrics
from hoginpaint.training.data import center_crop_resize, decode_image, load_image_dataset
from hoginpaint.evaluation.measures import analyse_faces
from hoginpaint.evaluation.run import EvalConfig, feature_mask_sets, nvidia_mask_sets
from hoginpaint.imageio import to_pil
from hoginpaint.inference import PASTE_BACK_EXACT_PIXELS, PASTE_BACK_ITERATIONS
from hoginpaint.pipeline import HOGInpaintPipeline
from hoginpaint.prefill import prefill_around_hole
from hoginpaint.training.validation import image_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["checkpoints/hoginpaint"],
                        help="one pipeline folder, or several to compare (each at every ramp and low-pass)")
    parser.add_argument("--dataset", default="../shared/data/faces")
    parser.add_argument("--split", default="train")
    parser.add_argument("--skip", type=int, default=20000, help="start at this position of the split")
    parser.add_argument("--num_faces", type=int, default=40)
    parser.add_argument("--mask_dir", default="../shared/data/masks/nvidia-irregular-test")
    parser.add_argument("--buckets", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--ramps", type=float, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--lowpasses", type=int, nargs="+", default=None,
                        help="correction low-pass periods to measure (default: the model's own)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--blocks", action="store_true",
                        help="also measure solid rectangular holes of 25-60 %% of the image (seeded): the holes whose "
                             "middle is farthest from any known pixel, where a generator's grid shows as stripes")
    parser.add_argument("--feature_masks", action="store_true",
                        help="also measure holes over the eyes, the nose and the mouth (dlib's landmarks, as the "
                             "evaluation's), with dlib's identity distance to the ground truth in every row")
    parser.add_argument("--figure", default=None,
                        help="write the first --figure_faces solid-block holes as a PNG: masked | each column | "
                             "ground truth (needs --blocks)")
    parser.add_argument("--figure_faces", type=int, default=4)
    args = parser.parse_args()
    if args.figure and not args.blocks:
        parser.error("--figure shows the solid blocks: add --blocks")

    faces = []
    for position, example in enumerate(load_image_dataset(args.dataset, args.split, "image", streaming=True)):
        if position >= args.skip and (image := decode_image(example["image"])) is not None:
            faces.append(center_crop_resize(image, args.resolution))
        if len(faces) == args.num_faces:
            break
    images = torch.stack(faces)
    config = EvalConfig(methods=["telea"], dataset=args.dataset, mask_dir=args.mask_dir, buckets=args.buckets,
                        mask_split="train", resolution=args.resolution, seed=7)
    pipes = {path: HOGInpaintPipeline.from_pretrained(path) for path in args.model}
    settings = [(path, ramp, lowpass) for path, pipe in pipes.items() for ramp in args.ramps
                for lowpass in (args.lowpasses or [pipe.inpaint_generator.correction_lowpass])]
    detailed = len({(path, lowpass) for path, _, lowpass in settings}) > 1
    resolutions = {pipe.resolution for pipe in pipes.values()}
    if len(resolutions) > 1:
        raise SystemExit(f"the models work at different resolutions ({sorted(resolutions)}); compare them in "
                         "separate runs")

    def column(path: str, ramp: float, lowpass: int) -> str:
        name = f"{Path(path).name}, " if len(pipes) > 1 else ""
        return name + f"ramp {ramp:g}" + (f", low-pass {lowpass}" if detailed else "")

    ground_truth = analyse_faces(images) if args.feature_masks else None
    print(f"{len(faces)} faces of {args.dataset} {args.split}[{args.skip}:], NVIDIA training masks, "
          f"{args.resolution} px; " + ("PSNR (dB) / SSIM / grid peak" if detailed else "PSNR (dB)")
          + (" / identity distance" if ground_truth is not None else ""))
    print("| holes | biharmonic floor | " + " | ".join(column(*setting) for setting in settings)
          + (" | ground truth |" if detailed else " |"))
    print("| --- " * (2 + len(settings) + detailed) + "|")
    scale = resolutions.pop() / args.resolution
    everyone = list(range(len(faces)))
    mask_sets = [(mask_set.name, everyone, mask_set.masks.float()) for mask_set in nvidia_mask_sets(config, len(faces))]
    if args.blocks:
        mask_sets.append(("solid blocks", everyone, solid_blocks(len(faces), args.resolution)))
    if ground_truth is not None:
        mask_sets += [(mask_set.name, mask_set.faces, mask_set.masks.float())
                      for mask_set in feature_mask_sets(ground_truth, args.resolution)]
    for name, chosen, masks in mask_sets:
        truth = images[chosen]
        floor = torch.stack([prefill_around_hole(image, mask, iterations=PASTE_BACK_ITERATIONS,
                                                 exact_up_to=PASTE_BACK_EXACT_PIXELS)
                             for image, mask in zip(truth, masks)])

        def measured(result: torch.Tensor) -> str:
            text = f"{float(torch.as_tensor(metrics.psnr(truth, result)).mean()):.2f}"
            if detailed:
                ssim = float(torch.as_tensor(metrics.ssim(truth, result)).mean())
                text += f" / {ssim:.4f} / {metrics.grid_peak(result, masks, scale):.3f}"
            if ground_truth is not None:
                distances = metrics.identity_distances(truth, result, [ground_truth.boxes[i] for i in chosen],
                                                       [ground_truth.descriptors[i] for i in chosen])
                text += f" / {float(torch.as_tensor(distances).nanmean()):.4f}"
            return text

        row = [name, measured(floor)]
        shown = [truth[:args.figure_faces] * (1 - masks[:args.figure_faces])]
        for path, ramp, lowpass in settings:
            pipe = pipes[path]
            pipe.inpaint_generator.correction_ramp = ramp
            pipe.inpaint_generator.correction_lowpass = lowpass
            results = []
            for start in range(0, len(truth), 8):
                out = pipe(list(truth[start:start + 8]), list(masks[start:start + 8]), output_type="pt")
                results.extend(out.images)
            row.append(measured(torch.stack(results)))
            if args.figure and name == "solid blocks":
                shown.append(torch.stack(results[:args.figure_faces]))
        if detailed:
            identity = " / 0" if ground_truth is not None else ""
            row.append(f"- / - / {metrics.grid_peak(truth, masks, scale):.3f}{identity}")
        print("| " + " | ".join(row) + " |", flush=True)
        if args.figure and name == "solid blocks":
            grid = image_grid(shown + [truth[:args.figure_faces]])
            to_pil(grid).save(args.figure)
            print(f"wrote {args.figure}: masked | " + " | ".join(column(*setting) for setting in settings)
                  + " | ground truth")


def solid_blocks(count: int, resolution: int, seed: int = 1) -> torch.Tensor:
    """`count` masks `(count, 1, R, R)`, each one solid rectangle with sides of 44-78 % of R at a random place."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(count, 1, resolution, resolution)
    low, high = int(0.44 * resolution), int(0.78 * resolution)
    for mask in masks:
        height, width = torch.randint(low, high + 1, (2,), generator=generator).tolist()
        top = int(torch.randint(0, resolution - height + 1, (1,), generator=generator))
        left = int(torch.randint(0, resolution - width + 1, (1,), generator=generator))
        mask[:, top:top + height, left:left + width] = 1
    return masks


if __name__ == "__main__":
    main()
