"""Training throughput: images per second of one training step per stage, and of the data path alone.

    python benchmarks/bench_training.py                       # CPU: small config + the paper's, data path
    python benchmarks/bench_training.py --device cuda         # the same on the GPU
    python benchmarks/bench_training.py --configs small --stages structure inpaint --steps 5

Configurations: ``paper`` (256 px, base 64, 8 residual blocks, the paper's networks) and ``small`` (64 px, base 8,
one block: the tests' size). A step is what `train_accelerate.py` runs: generator forward, discriminator step,
generator step (`hoginpaint.trainer.train_step`) under Accelerate on one process, with batched HOG targets on the
device. The inpaint and joint stages include the VGG-16 perceptual and style terms, with random VGG weights (speed
only). The data path is `hoginpaint.training.data.FaceMaskStream` in the calling process: parquet read, JPEG decode, crop,
bicubic resize and one mask per image, i.e. the rate of one loader worker. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import dataclasses
import tempfile
import time
from pathlib import Path

import safetensors.torch
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

CONFIGS = {
    "paper": dict(resolution=256, base_channels=64, residual_blocks=8),
    "small": dict(resolution=64, base_channels=8, residual_blocks=1),
    # What a 2-core CPU trains: the shipped checkpoint's size.
    "cpu": dict(resolution=128, base_channels=32, residual_blocks=4, pixels_per_cell=4, hog_scale=0.12),
    # The same networks fine-tuned at 256 px (they are fully convolutional): what doubling the side costs.
    "cpu256": dict(resolution=256, base_channels=32, residual_blocks=4, pixels_per_cell=4, hog_scale=0.12),
}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_stage(stage: str, config_name: str, batch_size: int, steps: int, device: str, workdir: Path,
                mixed_precision: str = "no", prefill: str = "none", vgg_losses: bool = True) -> float:
    """Images per second of `train_step` for `stage` ("structure", "inpaint", "joint" or "deepfill")."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from hoginpaint.training import hog_model, trainer
    from hoginpaint.training.options import TrainConfig
    from train_accelerate import build_models
    from hoginpaint.losses import VGG16Features
    from hoginpaint.networks import StructureGenerator

    size = CONFIGS[config_name]
    vgg = workdir / "vgg16.safetensors"
    if not vgg.exists():
        safetensors.torch.save_model(VGG16Features(), str(vgg))
    guide = workdir / f"structure-{config_name}-{prefill}"
    if stage == "joint" and not guide.exists():
        StructureGenerator(size["base_channels"], size["residual_blocks"], pixels_per_cell=size.get("pixels_per_cell", 8),
                           hog_scale=size.get("hog_scale", 0.05), prefill=prefill).save_pretrained(guide)
    options = {"structure": dict(stage="structure"), "inpaint": dict(stage="inpaint"),
               "joint": dict(stage="joint", structure_model=str(guide)),
               "deepfill": dict(model="deepfill", stage="inpaint", base_channels=None)}[stage]
    losses = {"vgg_weights": str(vgg)} if vgg_losses else {"perceptual_weight": 0.0, "style_weight": 0.0}
    config = TrainConfig(**{**size, "train_batch_size": batch_size, **losses, **options,
                                     "mixed_precision": mixed_precision, "prefill": prefill})

    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision)
    models = build_models(config)
    g_opt, d_opt = trainer.make_optimizers(models, config.learning_rate, config.d_lr_ratio,
                                           (config.adam_beta1, config.adam_beta2))
    generator, discriminator, g_opt, d_opt = accelerator.prepare(models.generator, models.discriminator, g_opt, d_opt)
    models = dataclasses.replace(
        models, generator=generator, discriminator=discriminator,
        **{name: getattr(models, name).to(accelerator.device)
           for name in ("structure_generator", "vgg") if getattr(models, name) is not None})
    settings = hog_model.hog_settings(models, config)
    resolution = config.resolution
    image = torch.rand(batch_size, 3, resolution, resolution, device=accelerator.device)
    mask = torch.zeros(batch_size, 1, resolution, resolution, device=accelerator.device)
    mask[..., resolution // 4: resolution // 2, resolution // 3: 2 * resolution // 3] = 1

    def step() -> None:
        result = trainer.train_step(accelerator, models, g_opt, d_opt, image, mask, config.stage,
                                     config.loss_weights(), settings)
        assert result.finite

    step()  # warm-up: allocations, cuDNN autotuning
    _synchronize(accelerator.device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(accelerator.device)
    return steps * batch_size / (time.perf_counter() - started)


def bench_data(faces_dir: Path, mask_dir: Path | None, resolution: int, images: int) -> float:
    """Images per second through `FaceMaskStream` in this process (one loader worker's rate)."""
    from hoginpaint.training import data
    from hoginpaint.masks import FolderMasks, make_mask_source

    masks = FolderMasks(mask_dir, split="train", augment=True) if mask_dir else make_mask_source("free_form")
    stream_images = data.training_stream(data.load_image_dataset(str(faces_dir), "train", "image"), seed=0, rank=0,
                                         world_size=1, shuffle_buffer_size=64, shuffle_input_shards=1)
    stream = data.FaceMaskStream(stream_images, "image", resolution, masks, seed=0)
    iterator = iter(stream)
    for _ in range(8):  # warm-up: open the parquet shard, fill the shuffle buffer
        next(iterator)
    started = time.perf_counter()
    for _ in range(images):
        next(iterator)
    return images / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["small", "paper"])
    parser.add_argument("--stages", nargs="+", choices=["structure", "inpaint", "joint", "deepfill"],
                        default=["structure", "inpaint", "joint"])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 5 small / 2 paper on CPU)")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 8, or 2 for the paper config on CPU")
    parser.add_argument("--data_images", type=int, default=200, help="images timed through the data path (0: skip)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads on CPU")
    parser.add_argument("--mixed_precision", nargs="+", choices=["no", "bf16", "fp16"], default=["no", "bf16"],
                        help="precisions compared in the same run (the first is the reference of the ratio)")
    parser.add_argument("--prefill", choices=["none", "harmonic", "biharmonic"], default="none")
    parser.add_argument("--vgg_losses", action=argparse.BooleanOptionalAction, default=True,
                        help="include the VGG-16 perceptual and style terms (random weights) in the inpaint/joint step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"device: {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} threads'}), torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        for config_name in args.configs:
            slow = config_name == "paper" and args.device == "cpu"
            batch_size = args.batch_size or (2 if slow else 8)
            steps = args.steps or (2 if slow else 5)
            print(f"\n{config_name} config {CONFIGS[config_name]}, batch {batch_size}, {steps} timed steps")
            for stage in args.stages:
                reference = None
                for precision in args.mixed_precision:
                    rate = bench_stage(stage, config_name, batch_size, steps, args.device, Path(folder), precision,
                                       args.prefill, args.vgg_losses)
                    reference = reference or rate
                    print(f"  {stage:<10} {precision:<4} {rate:8.2f} images/s  ({batch_size / rate:7.3f} s/step)  "
                          f"x{rate / reference:.2f}")

    faces, masks = SHARED_DATA / "faces", SHARED_DATA / "masks" / "nvidia-irregular-test"
    if args.data_images and faces.is_dir():
        print(f"\ndata path, one worker ({args.data_images} images, decode + crop + resize + mask):")
        for resolution in (256, 64):
            for mask_dir in (masks if masks.is_dir() else None, None):
                kind = "NVIDIA masks (augmented)" if mask_dir else "free-form masks"
                rate = bench_data(faces, mask_dir, resolution, args.data_images)
                print(f"  {resolution:>3} px, {kind:<25} {rate:8.1f} images/s")
    elif args.data_images:
        print(f"\ndata path skipped: {faces} not found")


if __name__ == "__main__":
    main()
