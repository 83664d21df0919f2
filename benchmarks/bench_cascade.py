"""What a model's resolution and a coarse-to-fine cascade cost per image: trained pipelines, one call each.

    python benchmarks/bench_cascade.py --models 128px=checkpoints/hoginpaint 256px=runs/joint-256 \
        cascade=runs/cascade-256

Each pipeline inpaints the same face (the first UTKFace validation photo when ../shared/data is there, else noise)
with a hole over eyes and nose, one image per call as a user's call, at each `--sizes` input size; the calls are
interleaved round-robin and the best of `--repeats` rounds is kept (`bench_inference.interleaved_best`), so the
ratios to the first model hold on a machine whose load changes while it runs. A cascade's call runs its coarse
pipeline first (`HOGInpaintPipeline(coarse=...)`). Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inference import eyes_and_nose, faces, interleaved_best, intra_op_threads  # noqa: E402

from hoginpaint.pipeline import HOGInpaintPipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="LABEL=PIPELINE (folder or Hub id); the first is "
                                                                   "the reference of the ratios")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="input sizes (square)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    pipelines = {}
    for spec in args.models:
        label, _, reference = spec.partition("=")
        if not reference:
            parser.error(f"{spec!r}: pass LABEL=PIPELINE")
        pipelines[label] = HOGInpaintPipeline.from_pretrained(reference)
    device = torch.device("cpu")
    print(f"threads: {args.threads or torch.get_num_threads()}; best of {args.repeats} interleaved rounds")
    print("| input | model | resolution | seconds per call | x first |")
    print("|---|---|---|---|---|")
    with intra_op_threads(args.threads):
        for size in args.sizes:
            image, mask = faces(size)[0], eyes_and_nose(size)[0]
            calls = {label: (lambda pipe=pipe: pipe(image, mask, output_type="pt")) for label, pipe in pipelines.items()}
            timings = interleaved_best(calls, args.repeats, device)
            first = timings[next(iter(pipelines))].wall
            for label, pipe in pipelines.items():
                resolution = f"{pipe.coarse.resolution} → {pipe.resolution}" if pipe.coarse else str(pipe.resolution)
                print(f"| {size} px | {label} | {resolution} | {timings[label].wall:.3f} | "
                      f"{timings[label].wall / first:.2f} |", flush=True)


if __name__ == "__main__":
    main()
