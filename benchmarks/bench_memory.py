"""Memory: the Space's resident set at idle and while serving a request, and peak memory by batch size.

    python benchmarks/bench_memory.py                          # both parts, paper-size models, CPU
    python benchmarks/bench_memory.py --parts app --models tiny
    python benchmarks/bench_memory.py --parts photo --megapixels 1 12 49
    python benchmarks/bench_memory.py --parts batch --device cuda --batch_sizes 1 2 4 8 16

`app`: saves random-weight models with `save_pretrained` into a temporary folder (`paper`: the HOG pipeline at base 64,
8 residual blocks and DeepFill v2 at cnum 48, both at 256 px; `tiny`: base 8, one block / cnum 8, 64 px), starts
`python app.py` on them as a subprocess (`HOGINPAINT_MODEL` / `DEEPFILL_MODEL`, as `tests/test_app.py` does) and
samples the resident set size of the app and all its children with psutil every 20 ms. Reported: RSS once the page
answers, at idle (after `--idle_seconds`), the peak while serving one `/inpaint` request (the astronaut example, the
three methods, face alignment and the identity table), and RSS after it. Children's RSS is added to the parent's
(pages they share are counted twice). The app puts its models on CUDA when it is available.

`photo`: time and peak RSS of one `/inpaint` request by photo size (the astronaut upscaled to 1, 12 and 49 MP,
saved as JPEG, with its mask upscaled alike), the handler `app.inpaint` called in a fresh subprocess per size with
`--models` random models; peak RSS over the subprocess's RSS just before the call (`ru_maxrss` is not reset, so
each size runs in its own process). Writing the PNGs (the masked photo and three full-size results, the framed faces)
is included. `benchmarks/bench_api.py` measures the same through the API, against a running server.

`batch`: peak memory of one pipeline call and one DeepFill call by batch size (random images at the model resolution,
a quarter of each image in the hole). On CUDA: `torch.cuda.max_memory_allocated` above what the models hold, in this
process. On the CPU: the peak RSS (`ru_maxrss`) of a fresh subprocess that loads the models and makes one call, minus
its peak RSS before the call (one-time costs included, as for a fresh server's first request). Prints figures;
asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from hoginpaint import methods  # noqa: E402
from tests import app_server  # noqa: E402

MODELS = {
    "paper": dict(hoginpaint=dict(base_channels=64, residual_blocks=8, resolution=256),
                  deepfill=dict(base_channels=48, resolution=256)),
    "tiny": dict(hoginpaint=dict(base_channels=8, residual_blocks=1, resolution=64),
                 deepfill=dict(base_channels=8, resolution=64)),
}
ASTRONAUT = REPO_ROOT / "assets" / "astronaut.jpg"
ASTRONAUT_MASK = REPO_ROOT / "assets" / "astronaut_mask.png"
MIB = 2 ** 20


def save_models(folder: Path, size: str) -> dict[str, str]:
    """Random-weight models saved as the app loads them → the app's environment variables."""
    paths = {}
    for name, variable in (("hoginpaint", "HOGINPAINT_MODEL"), ("deepfill", "DEEPFILL_MODEL")):
        method = methods.load(name, random_init=True, **MODELS[size][name])
        paths[variable] = str(method.save_pretrained(folder / name))
    return paths


class RSSSampler:
    """Samples the RSS of a process tree (the process and its children, recursively) in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.current = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def tree_rss(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.current = self.tree_rss()
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, self.current)
            time.sleep(self.interval)

    def reset_peak(self) -> None:
        self.peak = self.current

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def bench_app(args: argparse.Namespace) -> None:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        samplers: list[RSSSampler] = []
        try:
            process, url = app_server.start_app(folder, args.timeout, models=save_models(folder, args.models),
                                                on_start=lambda started_process: samplers.append(
                                                    RSSSampler(started_process.pid)))
        except RuntimeError as error:
            raise SystemExit(str(error)) from None
        sampler = samplers[0]
        try:
            up_seconds = time.perf_counter() - started
            at_start, start_peak = sampler.current, sampler.peak
            time.sleep(args.idle_seconds)
            idle = sampler.current
            client = Client(url, verbose=False, download_files=str(folder / "downloads"),
                            httpx_kwargs={"timeout": args.timeout})
            sampler.reset_peak()
            before = sampler.current
            started = time.perf_counter()
            job = client.submit(photo=handle_file(str(ASTRONAUT)), mask=handle_file(str(ASTRONAUT_MASK)),
                                intact=True, api_name="/inpaint")
            status = job.result(timeout=args.timeout)[-1]
            request_seconds = time.perf_counter() - started
            serving_peak = sampler.peak
            time.sleep(1.0)
            after = sampler.current
        finally:
            sampler.stop()
            app_server.stop_app(process)

    sizes = MODELS[args.models]
    print(f"\napp.py RSS (process + children), {args.models} random models {json.dumps(sizes)}:")
    print(f"  {'phase':<44} {'MiB':>8}")
    print(f"  {f'page answering ({up_seconds:.0f} s after start)':<44} {at_start / MIB:8.0f}")
    print(f"  {'peak during start-up':<44} {start_peak / MIB:8.0f}")
    print(f"  {f'idle ({args.idle_seconds:.0f} s later)':<44} {idle / MIB:8.0f}")
    print(f"  {'just before the request':<44} {before / MIB:8.0f}")
    print(f"  {f'peak while serving one request ({request_seconds:.1f} s)':<44} {serving_peak / MIB:8.0f}"
          f"   (+{(serving_peak - before) / MIB:.0f} over idle)")
    print(f"  {'1 s after the request':<44} {after / MIB:8.0f}")
    print(f"  request status: {status}")


# ---------------------------------------------------------------------------------------------------------------------
# Peak memory by batch size


def make_inputs(batch: int, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(batch, 1, size, size)
    mask[..., 3 * size // 8: 7 * size // 8, size // 4: 3 * size // 4] = 1.0
    return image, mask


def load_method(name: str, size: str, device: str):
    return methods.load(name, random_init=True, **MODELS[size][name]).to(device)


CPU_CHILD = """
import resource, sys, json
sys.path.insert(0, {root!r})
from benchmarks.bench_memory import load_method, make_inputs
method = load_method({name!r}, {size!r}, "cpu")
image, mask = make_inputs({batch}, {resolution})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
method(image, mask)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps([before, after]))
"""


def bench_batches(args: argparse.Namespace) -> None:
    resolution = MODELS[args.models]["hoginpaint"]["resolution"]
    names = ("hoginpaint", "deepfill")
    print(f"\npeak memory of one call by batch size ({args.models} models, {resolution} px inputs, device "
          f"{args.device}):")
    if args.device == "cuda":
        print(f"  {'batch':>5}  " + "  ".join(f"{name + ' MiB':>16} {'per image':>9}" for name in names))
        methods = {name: load_method(name, args.models, "cuda") for name in names}
        for batch in args.batch_sizes:
            image, mask = make_inputs(batch, resolution)
            row = []
            for name, method in methods.items():
                method(image[:1], mask[:1])  # warm-up: cuDNN workspace, allocator
                torch.cuda.synchronize()
                resident = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                method(image, mask)
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - resident
                row.append(f"{peak / MIB:16.0f} {peak / MIB / batch:9.0f}")
            print(f"  {batch:>5}  " + "  ".join(row))
        print(f"  weights: {torch.cuda.memory_allocated() / MIB:.0f} MiB allocated for both models")
        return
    print("  GPU: skipped (no CUDA device, or --device cpu). CPU: peak RSS of a fresh process's first call above "
          "its RSS with the model loaded:")
    print(f"  {'batch':>5}  " + "  ".join(f"{name + ' MiB':>16} {'per image':>9}" for name in names))
    for batch in args.batch_sizes:
        row = []
        for name in names:
            code = CPU_CHILD.format(root=str(REPO_ROOT), name=name, size=args.models, batch=batch,
                                    resolution=resolution)
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                                    timeout=args.timeout)
            if result.returncode:
                raise SystemExit(f"the {name} subprocess failed:\n{result.stderr}")
            before, after = json.loads(result.stdout.strip().splitlines()[-1])  # KiB on Linux
            peak = (after - before) * 1024
            row.append(f"{peak / MIB:16.0f} {peak / MIB / batch:9.0f}")
        print(f"  {batch:>5}  " + "  ".join(row))


PHOTO_CHILD = """
import os, resource, sys, time, json
os.environ.update({env!r})
sys.path.insert(0, {root!r})
import psutil
import app
process = psutil.Process()
before = process.memory_info().rss
started = time.perf_counter()
outputs = app.inpaint({photo!r}, {mask!r}, None, True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps([seconds, before, peak, outputs[-1]]))
"""


def bench_photos(args: argparse.Namespace) -> None:
    from PIL import Image

    print(f"\none /inpaint request by photo size ({args.models} random models, in a fresh process each):")
    print(f"  {'photo':>16} {'MP':>5} {'seconds':>8} {'RSS before MiB':>15} {'peak MiB':>9} {'over MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**save_models(folder, args.models), "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(folder / "gradio")}
        photo, mask = Image.open(ASTRONAUT).convert("RGB"), Image.open(ASTRONAUT_MASK).convert("L")
        for megapixels in args.megapixels:
            side = round((megapixels * 1e6) ** 0.5)
            photo.resize((side, side), Image.BICUBIC).save(folder / "photo.jpg", quality=92)
            mask.resize((side, side), Image.NEAREST).save(folder / "mask.png")
            code = PHOTO_CHILD.format(env=env, root=str(REPO_ROOT), photo=str(folder / "photo.jpg"),
                                      mask=str(folder / "mask.png"))
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                                    timeout=args.timeout)
            if result.returncode:
                raise SystemExit(f"the {megapixels} MP subprocess failed:\n{result.stderr[-3000:]}")
            seconds, before, peak, status = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"  {f'{side}x{side}':>16} {side * side / 1e6:5.1f} {seconds:8.1f} {before / MIB:15.0f} "
                  f"{peak / MIB:9.0f} {(peak - before) / MIB:9.0f}   {status.splitlines()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=["app", "photo", "batch"], default=["app", "photo", "batch"])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 12, 49])
    parser.add_argument("--models", choices=list(MODELS), default="paper")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=None,
                        help="default: 1 4 on the CPU (a fresh process each), 1 2 4 8 16 32 on CUDA")
    parser.add_argument("--idle_seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds for start-up and for the request")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here; run with --device cpu")
    args.batch_sizes = args.batch_sizes or ([1, 2, 4, 8, 16, 32] if args.device == "cuda" else [1, 4])
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"torch {torch.__version__}; device {args.device}; {psutil.virtual_memory().total / 2 ** 30:.0f} GiB RAM; "
          f"load average at start: {load}")
    if "app" in args.parts:
        bench_app(args)
    if "photo" in args.parts:
        bench_photos(args)
    if "batch" in args.parts:
        bench_batches(args)


if __name__ == "__main__":
    main()
