"""HOG picture speed: the batched torch HOG against a loop of scikit-image calls, measured in one run.

    python benchmarks/bench_hog.py [--count 64] [--size 256] [--repeats 3] [--device cpu|cuda]

Prints seconds per batch for both and the speed ratio (skimage / torch). Inputs are real faces when
../shared/data is present, else random images (HOG's cost does not depend on content).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint.hog import hog_image  # noqa: E402


def load_faces(count: int, size: int) -> torch.Tensor:
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "faces"
    if shared.is_dir():
        from tests.conftest import load_validation_faces, pil_to_tensor

        return pil_to_tensor(load_validation_faces(shared, count, size))
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(0))


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    from skimage.feature import hog as skimage_hog

    faces = load_faces(args.count, args.size)
    gray = (faces * torch.tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    gray_np = [image[0].double().numpy() for image in gray]
    on_device = gray.to(args.device)

    def run_skimage() -> None:
        for image in gray_np:
            skimage_hog(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3), visualize=True)

    def run_torch() -> None:
        hog_image(on_device, orientations=9, pixels_per_cell=8)
        if on_device.is_cuda:
            torch.cuda.synchronize()

    run_torch()  # warm-up (kernel caches, CUDA context)
    skimage_s = best_of(args.repeats, run_skimage)
    torch_s = best_of(args.repeats, run_torch)
    check = np.abs(hog_image(gray[:1].double())[0, 0].numpy() - skimage_hog(gray_np[0], visualize=True)[1]).max()
    print(f"HOG picture, {args.count} gray faces at {args.size}x{args.size}, 9 orientations, 8-pixel cells")
    print(f"device: {args.device}; torch threads: {torch.get_num_threads()}; max |torch - skimage| = {check:.2e}")
    print(f"skimage loop : {skimage_s:8.3f} s  ({skimage_s / args.count * 1e3:.1f} ms/image)")
    print(f"torch batched: {torch_s:8.3f} s  ({torch_s / args.count * 1e3:.2f} ms/image)")
    print(f"speed-up     : {skimage_s / torch_s:8.1f}x")


if __name__ == "__main__":
    main()
