"""The batched torch pre-fill (`hoginpaint.prefill`) against scikit-image's biharmonic and OpenCV's Telea, in one run.

    python benchmarks/bench_prefill.py [--count 32] [--size 256] [--dataset celeba|faces] [--device cpu|cuda]

For each NVIDIA hole-ratio bucket (evaluation-reserved masks): mean PSNR of each fill against the ground truth, and
seconds per face (the torch fills run the whole batch at once; scikit-image and OpenCV loop over faces). Needs
../shared/data (real faces and masks).
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint.baselines.classical import inpaint_array  # noqa: E402
from hoginpaint.masks import FolderMasks  # noqa: E402
from hoginpaint.prefill import prefill  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load_faces(dataset: str, count: int, size: int) -> torch.Tensor:
    import pyarrow.parquet as pq
    from PIL import Image

    from hoginpaint.training.data import center_crop_resize

    table = pq.read_table(SHARED / dataset / "validation-00000-of-00001.parquet", columns=["image"]).slice(0, count)
    faces = [center_crop_resize(Image.open(io.BytesIO(row["bytes"])).convert("RGB"), size)
             for row in table.column("image").to_pylist()]
    return torch.stack(faces)


def psnr(result: torch.Tensor, truth: torch.Tensor) -> float:
    mse = (result.double() - truth.double()).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return float((10 * torch.log10(1 / mse)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dataset", choices=["celeba", "faces"], default="celeba")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    faces = load_faces(args.dataset, args.count, args.size)
    print(f"{args.count} {args.dataset} validation faces at {args.size} px, evaluation masks; PSNR dB / s per face")
    print(f"{'bucket':>8} | {'biharmonic (torch)':>19} | {'biharm. 150 it':>19} | {'harmonic (torch)':>17} | "
          f"{'skimage biharmonic':>19} | {'Telea':>14}")
    for bucket in range(6):
        source = FolderMasks(SHARED / "masks" / "nvidia-irregular-test", buckets=[bucket], split="eval",
                             augment=False)
        picks = np.random.default_rng([0, bucket]).permutation(len(source))[: args.count]
        masks = torch.from_numpy(np.stack([source.mask(int(i), args.size) for i in picks]))[:, None]
        row = []
        for kind, iterations in (("biharmonic", None), ("biharmonic", 150), ("harmonic", None)):
            image, mask = faces.to(args.device), masks.to(args.device)
            prefill(image[:2], mask[:2], kind)  # warm-up
            start = time.perf_counter()
            result = prefill(image, mask, kind, iterations).cpu()
            row.append((psnr(result, faces), (time.perf_counter() - start) / args.count))
        for method in ("biharmonic", "telea"):
            start = time.perf_counter()
            results = [torch.from_numpy(inpaint_array(face.permute(1, 2, 0).numpy(), mask[0].numpy() >= 0.5,
                                                      method)).permute(2, 0, 1) for face, mask in zip(faces, masks)]
            row.append((psnr(torch.stack(results), faces), (time.perf_counter() - start) / args.count))
        cells = " | ".join(f"{value:6.2f} / {seconds:6.3f}s".rjust(width)
                           for (value, seconds), width in zip(row, (19, 19, 17, 19, 14)))
        print(f"{bucket * 10 + 1:>3}-{bucket * 10 + 10:<3}% | {cells}")


if __name__ == "__main__":
    main()
