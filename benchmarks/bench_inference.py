"""Inference speed: the two-stage pipeline against DeepFill v2 and Telea, and against the machine's own limit.

    python benchmarks/bench_inference.py                       # comparison + roofline (CPU, paper widths)
    python benchmarks/bench_inference.py --channels_last       # the same, both learned methods channels-last
    python benchmarks/bench_inference.py --options             # table: torch option → latency of G_H + G
    python benchmarks/bench_inference.py --options compile compile+channels_last   # torch.compile (slow to build)
    python benchmarks/bench_inference.py --device cuda         # the same on the GPU

Comparison (default): one image per call (batch 1) at each `--sizes` input size, each method resizing to its model
resolution (`--resolution`, 256) and pasting the hole back: the pipeline (`HOGInpaintPipeline`, base 64, 8 residual
blocks, as the paper), DeepFill v2 (`DeepFillInpainter`, cnum 48, as the official code) and Telea (OpenCV), all with
random weights (speed does not depend on them) and the PIL output a user gets. Also timed: G_H + G alone
(`structure_stage` + `inpaint_stage`, the networks), the HOG computation inside the structure stage
(`masked_hog`), and the dense-convolution limit of this machine: a 3x3 conv 256→256 at 64x64 (the residual blocks'
shape), batch 1 and 4, contiguous and channels-last, the best of which is "the limit". The FLOPs of G_H + G (and of
DeepFill) are counted exactly at the model resolution by `torch.utils.flop_counter.FlopCounterMode`; achieved
GFLOP/s = FLOPs / measured time, and "of limit" = achieved / limit.

Every measurement is interleaved with the others (round-robin, `--repeats` rounds) and the best round is kept, so
that the ratios printed hold even on a machine whose load changes while it runs (the first round is the warm-up and
counts too: warming up can only make a call slower). The convolution is timed in chunks of 20 GFLOP; being shorter
than a pipeline call, a chunk is likelier to land in a quiet moment, which can only raise the limit (a conservative
"of limit"). Inputs are real validation faces when ../shared/data is present,
else random images; the hole is a fixed rectangle over eyes and nose (a quarter of the image).

`--options` times G_H + G (at the model resolution, batch 1) under each torch option, again interleaved, with the
largest difference of the composited output from the default run: no_grad instead of inference_mode, PyTorch's
`nn.InstanceNorm2d` (what `hoginpaint.networks.InstanceNorm2d` replaced), channels-last weights, one intra-op
thread, bf16 autocast (and fp16 autocast on CUDA), `torch.compile` with inductor's weight freezing; and DeepFill's
generator under the same layouts. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hoginpaint import methods  # noqa: E402
from hoginpaint.baselines.deepfill import DeepFillInpainter, generate  # noqa: E402
from hoginpaint.pipeline import HOGInpaintPipeline  # noqa: E402
from hoginpaint.stages import inpaint_stage, masked_hog, structure_stage  # noqa: E402

SHARED_FACES = Path(os.environ.get("HOGINPAINT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")) / "faces"
DEFAULT_OPTIONS = ("inference_mode", "no_grad", "nn.InstanceNorm2d", "channels_last", "1 thread", "bf16 autocast",
                   "deepfill", "deepfill channels_last")
COMPILE_OPTIONS = ("compile", "compile+channels_last", "deepfill compile")
CUDA_OPTIONS = ("fp16 autocast",)
CONV_CHUNK_FLOPS = 20e9  # per timed conv call: 4 convs at batch 1, 1 at batch 4; about 0.2 s on two cores


# ---------------------------------------------------------------------------------------------------------------------
# Timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Best seconds per call: by the wall clock, and in CPU time of this process (all its threads)."""

    wall: float = float("inf")
    cpu: float = float("inf")


def interleaved_best(functions: dict[str, Callable[[], object]], repeats: int,
                     device: torch.device) -> dict[str, Timing]:
    """Time each function in `repeats` round-robin rounds and keep the best. The first round warms up (allocations,
    oneDNN primitive caches); it is counted too, since warming up can only make a call slower."""
    best = {name: Timing() for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            synchronize(device)
            best[name].wall = min(best[name].wall, time.perf_counter() - wall)
            best[name].cpu = min(best[name].cpu, time.process_time() - cpu)
    return best


@contextlib.contextmanager
def intra_op_threads(count: int | None):
    """Run with `count` torch intra-op threads (None: as they are)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------------------------------
# Inputs, models, FLOPs


def faces(size: int) -> torch.Tensor:
    """One face `(1, 3, size, size)` in [0, 1]: the first validation face (bicubic resize) if the shared data is
    there, else noise. (Not through tests/conftest.py: importing it sets torch's thread count.)"""
    shard = SHARED_FACES / "validation-00000-of-00001.parquet"
    if not shard.is_file():
        return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    import pyarrow.parquet as pq
    from PIL import Image

    from hoginpaint.imageio import load_image

    row = pq.read_table(shard, columns=["image"]).slice(0, 1).column("image").to_pylist()[0]
    with Image.open(io.BytesIO(row["bytes"])) as image:
        return load_image(image.convert("RGB").resize((size, size), Image.BICUBIC))[None]


def eyes_and_nose(size: int) -> torch.Tensor:
    """A rectangular hole over eyes and nose, a quarter of the image: `(1, 1, size, size)`, 1 = hole."""
    mask = torch.zeros(1, 1, size, size)
    mask[..., 3 * size // 8: 7 * size // 8, size // 4: 3 * size // 4] = 1.0
    return mask


def networks(pipeline: HOGInpaintPipeline, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """G_H + G as the pipeline runs them (HOG, masking and compositing included) → the composited image."""
    structure = structure_stage(pipeline.structure_generator, image, mask)
    return inpaint_stage(pipeline.inpaint_generator, image, mask, structure.guidance)[1]


def count_flops(function: Callable[[], object]) -> int:
    """FLOPs of one call (a multiply-add counts 2), by FlopCounterMode. Under no_grad: inside inference_mode the
    counter cannot read spectral norm's parametrised weights."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def conv_limit_functions(device: torch.device, flops_per_call: float) -> tuple[dict[str, Callable], dict[str, int]]:
    """Timed functions for the dense-conv limit: 3x3 256→256 convs at 64x64, batch 1 and 4, contiguous and
    channels-last, with torch's intra-op threads and (CPU) with one thread. Each runs as many convs as make about
    `flops_per_call` → (functions, FLOPs per function)."""
    functions, flops = {}, {}
    thread_counts = sorted({torch.get_num_threads(), 1}, reverse=True) if device.type == "cpu" else [None]
    for threads in thread_counts:
        for batch in (1, 4):
            for layout in (torch.contiguous_format, torch.channels_last):
                conv = nn.Conv2d(256, 256, 3, padding=1).to(device).eval().to(memory_format=layout)
                x = torch.randn(batch, 256, 64, 64, device=device).contiguous(memory_format=layout)
                one = 2 * batch * 64 * 64 * 256 * 256 * 9
                calls = max(1, round(flops_per_call / one))
                name = (f"conv3x3 b{batch} {'channels_last' if layout == torch.channels_last else 'NCHW'}"
                        + (f", {threads} thread{'s' if threads > 1 else ''}" if threads else ""))

                def run(conv=conv, x=x, calls=calls, threads=threads) -> None:
                    with torch.inference_mode(), intra_op_threads(threads):
                        for _ in range(calls):
                            conv(x)

                functions[name], flops[name] = run, calls * one
    return functions, flops


# ---------------------------------------------------------------------------------------------------------------------
# The comparison


def compare(args: argparse.Namespace, device: torch.device) -> None:
    resolution = args.resolution
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    pipeline = HOGInpaintPipeline.from_config(args.base_channels, args.residual_blocks, resolution).to(
        device, memory_format=layout)
    deepfill = DeepFillInpainter.from_config(args.deepfill_base, resolution).to(device, memory_format=layout)
    telea = methods.load("telea")
    model_image = faces(resolution).to(device)
    model_mask = eyes_and_nose(resolution).to(device)

    pipeline_flops = count_flops(lambda: networks(pipeline, model_image, model_mask))
    structure_flops = count_flops(lambda: structure_stage(pipeline.structure_generator, model_image, model_mask))
    deepfill_flops = count_flops(lambda: generate(deepfill.generator, model_image, model_mask))

    functions: dict[str, Callable] = {}
    for size in args.sizes:
        image, mask = faces(size)[0], eyes_and_nose(size)[0]  # (3, S, S), (1, S, S)
        for name, method in (("HOG pipeline", pipeline), ("DeepFill v2", deepfill), ("Telea", telea)):
            functions[f"{name} @{size}"] = lambda method=method, image=image, mask=mask: method(image, mask)

    def run_networks() -> None:
        with torch.inference_mode():
            networks(pipeline, model_image, model_mask)

    def run_hog() -> None:
        with torch.inference_mode():
            masked_hog(model_image, model_mask, pipeline.structure_generator.hog_settings())

    functions["G_H + G (networks)"] = run_networks
    functions["HOG (masked_hog)"] = run_hog
    conv_functions, conv_flops = conv_limit_functions(device, CONV_CHUNK_FLOPS)
    functions.update(conv_functions)
    timings = interleaved_best(functions, args.repeats, device)
    on_cpu = device.type == "cpu"

    print(f"\nFLOPs at {resolution}x{resolution}, batch 1 (FlopCounterMode, multiply-add = 2):")
    print(f"  G_H (structure stage)  {structure_flops / 1e9:8.1f} GFLOP")
    print(f"  G   (inpaint stage)    {(pipeline_flops - structure_flops) / 1e9:8.1f} GFLOP")
    print(f"  G_H + G                {pipeline_flops / 1e9:8.1f} GFLOP")
    print(f"  DeepFill v2            {deepfill_flops / 1e9:8.1f} GFLOP")

    def rates(name: str, flops: float) -> tuple[float, float]:
        """GFLOP/s by the wall clock and per CPU-second."""
        return flops / timings[name].wall / 1e9, flops / timings[name].cpu / 1e9

    print(f"\nDense-convolution throughput of this machine, 3x3 conv 256->256 at 64x64 (best of {args.repeats} "
          "interleaved rounds):")
    print(f"  {'':<40} {'GFLOP/s':>9}" + (f" {'per CPU-s':>10}" if on_cpu else ""))
    for name, flops in conv_flops.items():
        wall_rate, cpu_rate = rates(name, flops)
        print(f"  {name:<40} {wall_rate:9.1f}" + (f" {cpu_rate:10.1f}" if on_cpu else ""))
    limit_name = max(conv_flops, key=lambda name: rates(name, conv_flops[name])[0])
    limit = rates(limit_name, conv_flops[limit_name])[0]
    cpu_limit_name = max(conv_flops, key=lambda name: rates(name, conv_flops[name])[1])
    cpu_limit = rates(cpu_limit_name, conv_flops[cpu_limit_name])[1]
    print(f"  limit = {limit:.1f} GFLOP/s ({limit_name})")
    if on_cpu:
        print(f"  limit per CPU-second = {cpu_limit:.1f} GFLOP/s ({cpu_limit_name}); CPU time leaves out the time the "
              "process waits for a core, so this measure holds under load")

    reference = timings[f"HOG pipeline @{args.sizes[0]}"]
    print(f"\nLatency, batch 1, model resolution {resolution} (best of {args.repeats} interleaved rounds):")
    print(f"  {'method':<28} {'wall ms':>9} {'x HOG':>6} {'GFLOP/s':>8} {'of limit':>8}"
          + (f" {'CPU ms':>9} {'x HOG':>6} {'per CPU-s':>9} {'of limit':>8}" if on_cpu else ""))
    flops_of = {"HOG pipeline": pipeline_flops, "DeepFill v2": deepfill_flops, "G_H + G": pipeline_flops}
    for name, timing in timings.items():
        if name.startswith("conv3x3"):
            continue
        flops = flops_of.get(name.split(" @")[0].split(" (")[0])
        wall_rate, cpu_rate = rates(name, flops) if flops else (None, None)
        row = f"  {name:<28} {timing.wall * 1e3:9.1f} {timing.wall / reference.wall:6.2f} "
        row += f"{wall_rate:8.1f} {wall_rate / limit:8.0%}" if flops else f"{'':>8} {'':>8}"
        if on_cpu:
            row += f" {timing.cpu * 1e3:9.1f} {timing.cpu / reference.cpu:6.2f} "
            row += f"{cpu_rate:9.1f} {cpu_rate / cpu_limit:8.0%}" if flops else ""
        print(row.rstrip())
    for size in args.sizes:
        pipe, deep = timings[f"HOG pipeline @{size}"], timings[f"DeepFill v2 @{size}"]
        print(f"  at {size}x{size} input DeepFill v2 takes {deep.wall / pipe.wall:.2f}x the HOG pipeline's wall time"
              + (f", {deep.cpu / pipe.cpu:.2f}x its CPU time" if on_cpu else "")
              + " (> 1: the pipeline is faster)")
    wall_rate, cpu_rate = rates("G_H + G (networks)", pipeline_flops)
    print(f"  G_H + G: {wall_rate:.1f} GFLOP/s = {wall_rate / limit:.0%} of the limit (gap {1 - wall_rate / limit:.0%})"
          + (f"; per CPU-second {cpu_rate:.1f} GFLOP/s = {cpu_rate / cpu_limit:.0%} of the limit (gap "
             f"{1 - cpu_rate / cpu_limit:.0%})" if on_cpu else ""))
    hog = timings["HOG (masked_hog)"]
    print(f"  HOG share of the pipeline call at {args.sizes[0]}: {hog.wall / reference.wall:.1%} of the wall time "
          f"({hog.wall * 1e3:.1f} ms)" + (f", {hog.cpu / reference.cpu:.1%} of the CPU time" if on_cpu else ""))


# ---------------------------------------------------------------------------------------------------------------------
# The option table


class _PyTorchInstanceNorm(nn.InstanceNorm2d):
    """PyTorch's own instance norm (batch norm over `(1, B·C, H, W)`), as the generators used before."""


def with_pytorch_instance_norm(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.InstanceNorm2d):
            setattr(model, name, _PyTorchInstanceNorm(child.num_features))
        else:
            with_pytorch_instance_norm(child)
    return model


def option_functions(names: list[str], pipeline: HOGInpaintPipeline, deepfill: DeepFillInpainter,
                     image: torch.Tensor, mask: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """One callable per option → composited output `(1, 3, R, R)` (DeepFill's for the "deepfill" options)."""
    device = image.device

    def variant(memory_format=torch.contiguous_format, compiled: bool = False, norm: bool = False):
        copied = copy.deepcopy(pipeline).to(memory_format=memory_format)
        if norm:
            for model in (copied.structure_generator, copied.inpaint_generator):
                with_pytorch_instance_norm(model)
        if compiled:
            for model in (copied.structure_generator, copied.inpaint_generator):
                model.compile(options={"freezing": True})
        return copied

    def deepfill_variant(memory_format=torch.contiguous_format, compiled: bool = False):
        copied = copy.deepcopy(deepfill).to(memory_format=memory_format)
        if compiled:
            copied.generator.compile(options={"freezing": True})
        return copied

    def in_mode(mode, model, *contexts):
        def run() -> torch.Tensor:
            with contextlib.ExitStack() as stack:
                stack.enter_context(mode())
                for context in contexts:
                    stack.enter_context(context())
                if isinstance(model, DeepFillInpainter):
                    return generate(model.generator, image, mask).completed
                return networks(model, image, mask)
        return run

    def autocast(dtype: torch.dtype):
        return lambda: torch.autocast(device.type, dtype=dtype)

    makers = {
        "inference_mode": lambda: in_mode(torch.inference_mode, pipeline),
        "no_grad": lambda: in_mode(torch.no_grad, pipeline),
        "nn.InstanceNorm2d": lambda: in_mode(torch.inference_mode, variant(norm=True)),
        "channels_last": lambda: in_mode(torch.inference_mode, variant(torch.channels_last)),
        "1 thread": lambda: in_mode(torch.inference_mode, pipeline, lambda: intra_op_threads(1)),
        "bf16 autocast": lambda: in_mode(torch.inference_mode, pipeline, autocast(torch.bfloat16)),
        "fp16 autocast": lambda: in_mode(torch.inference_mode, pipeline, autocast(torch.float16)),
        "compile": lambda: in_mode(torch.inference_mode, variant(compiled=True)),
        "compile+channels_last": lambda: in_mode(torch.inference_mode, variant(torch.channels_last, compiled=True)),
        "deepfill": lambda: in_mode(torch.inference_mode, deepfill),
        "deepfill channels_last": lambda: in_mode(torch.inference_mode, deepfill_variant(torch.channels_last)),
        "deepfill compile": lambda: in_mode(torch.inference_mode, deepfill_variant(compiled=True)),
    }
    return {name: makers[name]() for name in names}


def options(args: argparse.Namespace, device: torch.device) -> None:
    names = args.options or list(DEFAULT_OPTIONS) + (list(CUDA_OPTIONS) if device.type == "cuda" else [])
    unknown = set(names) - set(DEFAULT_OPTIONS + COMPILE_OPTIONS + CUDA_OPTIONS)
    if unknown:
        raise SystemExit(f"unknown options {sorted(unknown)}; choose from "
                         f"{list(DEFAULT_OPTIONS + COMPILE_OPTIONS + CUDA_OPTIONS)}")
    if "inference_mode" not in names:
        names.insert(0, "inference_mode")
    if any(name.startswith("deepfill") for name in names) and "deepfill" not in names:
        names.append("deepfill")
    resolution = args.resolution
    pipeline = HOGInpaintPipeline.from_config(args.base_channels, args.residual_blocks, resolution).to(device)
    deepfill = DeepFillInpainter.from_config(args.deepfill_base, resolution).to(device)
    image, mask = faces(resolution).to(device), eyes_and_nose(resolution).to(device)
    functions = option_functions(names, pipeline, deepfill, image, mask)

    outputs, build = {}, {}
    for name, function in functions.items():  # first call: compiles where compiling; output for the differences
        started = time.perf_counter()
        outputs[name] = function().float()
        synchronize(device)
        build[name] = time.perf_counter() - started
    timings = interleaved_best(functions, args.repeats, device)
    on_cpu = device.type == "cpu"

    print(f"\nG_H + G at {resolution}x{resolution}, batch 1, by torch option (best of {args.repeats} interleaved "
          f"rounds; 'max |diff|': composited output against the default run):")
    print(f"  {'option':<24} {'wall ms':>9} {'speed-up':>9}" + (f" {'CPU ms':>9} {'speed-up':>9}" if on_cpu else "")
          + f" {'max |diff|':>11} {'first call s':>13}")
    for name, timing in timings.items():
        base = timings["deepfill" if name.startswith("deepfill") else "inference_mode"]
        difference = (outputs[name] - outputs["deepfill" if name.startswith("deepfill") else "inference_mode"])
        row = f"  {name:<24} {timing.wall * 1e3:9.1f} {base.wall / timing.wall:8.2f}x"
        if on_cpu:
            row += f" {timing.cpu * 1e3:9.1f} {base.cpu / timing.cpu:8.2f}x"
        print(row + f" {difference.abs().max().item():11.2e} {build[name]:13.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="input sizes (square)")
    parser.add_argument("--resolution", type=int, default=256, help="model resolution of both learned methods")
    parser.add_argument("--base_channels", type=int, default=64)
    parser.add_argument("--residual_blocks", type=int, default=8)
    parser.add_argument("--deepfill_base", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--channels_last", action="store_true",
                        help="comparison: both learned methods with channels-last weights (`.to(memory_format=...)`)")
    parser.add_argument("--options", nargs="*", default=None,
                        help=f"time torch options instead (none named: {', '.join(DEFAULT_OPTIONS)}; "
                             f"also {', '.join(COMPILE_OPTIONS + CUDA_OPTIONS)})")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here; run with --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"device: {where}; torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; "
          f"load average at start: {load}")
    print(f"pipeline: base {args.base_channels}, {args.residual_blocks} residual blocks; DeepFill v2: cnum "
          f"{args.deepfill_base}; model resolution {args.resolution}"
          + ("; both channels-last" if args.channels_last and args.options is None else ""))
    if args.options is not None:
        options(args, device)
    else:
        compare(args, device)


if __name__ == "__main__":
    main()
