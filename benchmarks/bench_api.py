"""The Space through its real API: latency of 1 MP and 49 MP photos, and the server's memory while it serves them.

    python benchmarks/bench_api.py                         # the shipped checkpoints, 1 and 49 MP, 5 rounds
    python benchmarks/bench_api.py --models tiny --rounds 3

Starts `python app.py` on 127.0.0.1 (`tests.app_server.start_app`) with the checkpoints shipped in `checkpoints/`
(`--models shipped`, the app's defaults) or tiny random-weight ones (`--models tiny`), and calls `/inpaint` with
`gradio_client` as a user would: the photo and the mask uploaded, every output file downloaded. The photos are
scikit-image's astronaut (`assets/astronaut.jpg`) resized to each size (bicubic, JPEG quality 92) with its mask over
the face (`assets/astronaut_mask.png`, nearest): the same face, framing and hole at every size, so the difference is
what the photo's size costs. One warm-up request per size, then `--rounds` rounds of one request per size, the sizes
interleaved so that both see the same load; the median of each size and their ratio are printed.

Memory: the resident set (VmRSS, from /proc/PID/status) of the server and its children, sampled every 5 ms. Idle is
the server after the warm-up requests (models and dlib loaded, nothing in flight); the peak while serving each size
is printed over it, with the server's lifetime high-water mark (VmHWM) for reference. The load average is printed at
the start and the end: on a shared machine compare the ratio, not the absolute times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests import app_server  # noqa: E402

ASTRONAUT = REPO_ROOT / "assets" / "astronaut.jpg"
ASTRONAUT_MASK = REPO_ROOT / "assets" / "astronaut_mask.png"
MIB = 2 ** 20
Image.MAX_IMAGE_PIXELS = None  # the photos are made here, at up to 49 MP


def status_kib(pid: int, field: str) -> int:
    """A `kB` field (VmRSS, VmHWM) of /proc/PID/status, in KiB; 0 for a process that has gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class TreeRSS:
    """VmRSS of a process and its children, summed, sampled in a background thread; `peak` since `reset`."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval = pid, interval
        self.current = self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> int:
        try:
            children = [child.pid for child in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            children = []
        return sum(status_kib(pid, "VmRSS") for pid in [self.pid, *children]) * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self.current = self.read()
            self.peak = max(self.peak, self.current)
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self.current = self.read()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def make_inputs(folder: Path, megapixels: float) -> tuple[Path, Path, int]:
    """The astronaut and her mask at `megapixels` → (photo.jpg, mask.png, side)."""
    side = round((megapixels * 1e6) ** 0.5)
    photo, mask = folder / f"photo-{megapixels:g}mp.jpg", folder / f"mask-{megapixels:g}mp.png"
    with Image.open(ASTRONAUT) as image:
        image.convert("RGB").resize((side, side), Image.BICUBIC).save(photo, quality=92)
    with Image.open(ASTRONAUT_MASK) as image:
        image.convert("L").resize((side, side), Image.NEAREST).save(mask)
    return photo, mask, side


def request(client, photo: Path, mask: Path, timeout: float) -> tuple[float, str]:
    """One `/inpaint` call, outputs downloaded → (seconds, the status line)."""
    from gradio_client import handle_file

    started = time.perf_counter()
    outputs = client.submit(photo=handle_file(str(photo)), mask=handle_file(str(mask)), intact=True,
                            api_name="/inpaint").result(timeout=timeout)
    return time.perf_counter() - started, outputs[-1]


def load_line() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["shipped", "tiny"], default="shipped",
                        help="the checkpoints in checkpoints/ (the app's defaults), or tiny random-weight models")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 49])
    parser.add_argument("--rounds", type=int, default=5, help="timed requests per size, sizes interleaved")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for start-up and for each request")
    args = parser.parse_args()
    from gradio_client import Client

    print(f"start: {load_line()}")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as name:
        folder = Path(name)
        inputs = {megapixels: make_inputs(folder, megapixels) for megapixels in args.megapixels}
        samplers: list[TreeRSS] = []
        process, url = app_server.start_app(folder, args.timeout, models={} if args.models == "shipped" else None,
                                            on_start=lambda started: samplers.append(TreeRSS(started.pid)))
        sampler = samplers[0]
        try:
            cold_idle = sampler.read()
            client = Client(url, verbose=False, download_files=str(folder / "downloads"),
                            httpx_kwargs={"timeout": args.timeout})
            statuses = {megapixels: request(client, photo, mask, args.timeout)[1]
                        for megapixels, (photo, mask, _) in inputs.items()}  # warm-up
            time.sleep(1.0)
            idle = sampler.read()
            seconds: dict[float, list[float]] = {megapixels: [] for megapixels in inputs}
            peaks: dict[float, int] = {megapixels: 0 for megapixels in inputs}
            for _ in range(args.rounds):
                for megapixels, (photo, mask, _) in inputs.items():
                    sampler.reset()
                    seconds[megapixels].append(request(client, photo, mask, args.timeout)[0])
                    peaks[megapixels] = max(peaks[megapixels], sampler.peak)
            high_water = status_kib(process.pid, "VmHWM") * 1024
        finally:
            sampler.stop()
            app_server.stop_app(process)

    print(f"models: {args.models}; photos: the astronaut with her mask over the face, resized; {args.rounds} rounds")
    print(f"server RSS: {cold_idle / MIB:.0f} MiB when the page answers, {idle / MIB:.0f} MiB idle after the warm-up")
    print(f"  {'photo':>11} {'MP':>5} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS over idle MiB':>23}")
    for megapixels, (_, _, side) in inputs.items():
        times = seconds[megapixels]
        print(f"  {f'{side}x{side}':>11} {side * side / 1e6:5.1f} {statistics.median(times):9.2f} {min(times):7.2f} "
              f"{max(times):7.2f} {(peaks[megapixels] - idle) / MIB:23.0f}")
        print(f"      status: {statuses[megapixels].splitlines()[0]}")
    sizes = list(inputs)
    if len(sizes) > 1:
        first, last = statistics.median(seconds[sizes[0]]), statistics.median(seconds[sizes[-1]])
        print(f"ratio of medians, {sizes[-1]:g} MP / {sizes[0]:g} MP: {last / first:.2f}")
    print(f"server VmHWM (lifetime peak, start-up included): {high_water / MIB:.0f} MiB, "
          f"{(high_water - idle) / MIB:+.0f} over idle")
    print(f"end: {load_line()}")


if __name__ == "__main__":
    main()
