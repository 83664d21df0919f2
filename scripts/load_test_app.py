"""Load test of the Space: concurrent `gradio_client` callers against `python app.py` with tiny random models.

    python scripts/load_test_app.py                      # 16 callers, 16 waves (what CI runs)
    python scripts/load_test_app.py --callers 16 --waves 2

`app.py` runs on 127.0.0.1 in a subprocess (random-weight HOG and DeepFill models at 64 px, as in tests/test_app.py).
Each wave, every caller submits one request at once, and waits for it:

- most send the astronaut photo with its mask (256 px): the HOG-guided result must equal the photo outside the hole;
- one caller in four sends a bad input instead (a file that is not an image, a decompression-bomb header, a mask of
  another size, an empty mask): it must get the app's worded error, and the good calls around it must still work;
- a full queue (`app.py` queues 16 at most) is a clean answer too: gradio_client's QueueError, counted.

After each wave one more request checks that the app still serves, and the resident memory (RSS) of the app process
is read. Between the first wave and the last it must grow by less than `--max_growth_mb` (default 200 MB). Measured
on 2 busy cores (load average 6): +64 MB, most of it over the first eight waves (warming up), then 0-5 MB a wave,
levelling off at ~680 MB. Keeping every request's output images (~1.4 MB) would add ~360 MB over 16 waves of 16
callers. Prints one line per wave and a summary (~1.5 minutes on 2 busy cores); exit status 0 when every check held,
1 otherwise.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import app_server  # noqa: E402

PHOTO = ROOT / "assets" / "astronaut.jpg"
MASK = ROOT / "assets" / "astronaut_mask.png"
SIDE = 256  # the photo is sent at this size
PHOTO_NAME, MASK_NAME = "photo.png", "mask.png"
BAD_EVERY = 4  # one caller in four sends a bad input
BAD_INPUTS = {
    # name: (photo file, mask file, how the error message must start)
    "not an image": ("notes.png", MASK_NAME, "Photo: the file is not an image Pillow can read"),
    "decompression bomb": ("bomb.png", MASK_NAME, "Photo: the file is larger than 50,000,000 pixels"),
    "mask of another size": (PHOTO_NAME, "small.png", f"Mask: mask is 300x200 but image is {SIDE}x{SIDE}"),
    "empty mask": (PHOTO_NAME, "empty.png", "Mask: the mask is empty"),
}


@dataclass
class Wave:
    """What the callers of one wave got."""

    correct: int = 0
    refused_bad_input: int = 0
    queue_full: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rss_mb: float = 0.0


def write_inputs(folder: Path) -> None:
    """The photo and its mask at half size (face detection is 4x quicker), and the bad inputs, all in `folder`."""
    with Image.open(PHOTO) as photo, Image.open(MASK) as mask:
        photo.convert("RGB").resize((SIDE, SIDE), Image.BICUBIC).save(folder / PHOTO_NAME)
        mask.convert("L").resize((SIDE, SIDE), Image.NEAREST).save(folder / MASK_NAME)
    (folder / "notes.png").write_text("not a picture")
    (folder / "bomb.png").write_bytes(app_server.png_header(12_000, 12_000))
    Image.new("L", (300, 200), 255).save(folder / "small.png")
    Image.new("L", (SIDE, SIDE), 0).save(folder / "empty.png")


def start_app(folder: Path, start_timeout_s: float) -> tuple[subprocess.Popen, str]:
    """`python app.py` on 127.0.0.1 with tiny models, one intra-op thread (`tests.app_server.start_app`)."""
    return app_server.start_app(folder, start_timeout_s, extra_env={"OMP_NUM_THREADS": "1"})


stop_app = app_server.stop_app


def pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def call(client, folder: Path, photo: str, mask: str, timeout_s: float) -> tuple:
    from gradio_client import handle_file

    job = client.submit(photo=handle_file(str(folder / photo)), mask=handle_file(str(folder / mask)), intact=False,
                        api_name="/inpaint")
    return job.result(timeout=timeout_s)


def good_call(client, folder: Path, timeout_s: float) -> str | None:
    """A real request; None when its HOG-guided result is the photo outside the hole, else what went wrong."""
    outputs = call(client, folder, PHOTO_NAME, MASK_NAME, timeout_s)  # as in tests/test_app.py's OUTPUTS
    hog, status = outputs[0], outputs[-1]
    hole = pixels(folder / MASK_NAME)[..., 0] > 127
    result, photo = pixels(hog), pixels(folder / PHOTO_NAME)
    if result.shape != photo.shape or not np.array_equal(result[~hole], photo[~hole]):
        return f"the result differs from the photo outside the hole (shape {result.shape})"
    if not status.startswith("Face found"):
        return f"unexpected status {status!r}"
    return None


def one_caller(client, folder: Path, bad: tuple[str, str, str] | None, index: int, wave: Wave,
               lock: threading.Lock, timeout_s: float) -> None:
    """One call, good (`bad` None) or bad, and its outcome counted in `wave`."""
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    try:
        if bad is None:
            problem = good_call(client, folder, timeout_s)
            outcome = "correct" if problem is None else problem
        else:
            try:
                call(client, folder, bad[0], bad[1], timeout_s)
                outcome = f"bad input {bad[0]} / {bad[1]} was accepted"
            except AppError as error:
                message = str(error)
                clean = message.startswith(bad[2]) and "Traceback" not in message and "/tmp" not in message
                outcome = "refused" if clean else f"bad input answered with {message!r}"
    except QueueError:
        outcome = "queue full"
    except Exception as error:  # noqa: BLE001 — any other failure of a call is what this test reports
        outcome = f"{type(error).__name__}: {error}"
    with lock:
        if outcome == "correct":
            wave.correct += 1
        elif outcome == "refused":
            wave.refused_bad_input += 1
        elif outcome == "queue full":
            wave.queue_full += 1
        else:
            wave.failures.append(f"caller {index}: {outcome}")


def make_clients(url: str, folder: Path, callers: int, timeout_s: float) -> list:
    from gradio_client import Client

    # One download folder per caller: equal results of two callers must not be written over each other.
    return [Client(url, verbose=False, download_files=str(folder / "downloads" / str(index)),
                   httpx_kwargs={"timeout": timeout_s}) for index in range(callers)]


def run_wave(clients: list, folder: Path, timeout_s: float, bad_every: int = BAD_EVERY) -> Wave:
    """Every client calls at once (every `bad_every`-th with a bad input; 0: none), then one more good call checks
    that the app still serves."""
    wave, lock = Wave(), threading.Lock()
    bad_inputs = list(BAD_INPUTS.values())
    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for index, client in enumerate(clients):
            bad = bad_inputs[index // bad_every % len(bad_inputs)] if bad_every and index % bad_every == bad_every - 1 \
                else None
            pool.submit(one_caller, client, folder, bad, index, wave, lock, timeout_s)
    problem = good_call(clients[0], folder, timeout_s)
    if problem is not None:
        wave.failures.append(f"after the wave: {problem}")
    wave.seconds = time.monotonic() - begin
    return wave


def run(callers: int, waves: int, max_growth_mb: float, timeout_s: float, log=print) -> bool:
    """The whole load test; True when every check held. `log` receives one line per wave and the summary."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="load-test-app-") as name:
        folder = Path(name)
        write_inputs(folder)
        process, url = start_app(folder, timeout_s)
        try:
            app = psutil.Process(process.pid)
            clients = make_clients(url, folder, callers, timeout_s)
            results: list[Wave] = []
            for number in range(1, waves + 1):
                wave = run_wave(clients, folder, timeout_s)
                wave.rss_mb = app.memory_info().rss / 2**20
                results.append(wave)
                log(f"wave {number:2d}: {wave.correct} correct, {wave.refused_bad_input} bad inputs refused, "
                    f"{wave.queue_full} queue full, {len(wave.failures)} failed; {wave.seconds:.1f} s; "
                    f"app RSS {wave.rss_mb:.0f} MB")
                for failure in wave.failures:
                    log(f"    {failure}")
        finally:
            stop_app(process)
    growth = results[-1].rss_mb - results[0].rss_mb
    failures = sum(len(wave.failures) for wave in results)
    answered = sum(wave.correct + wave.refused_bad_input + wave.queue_full for wave in results)
    ok = failures == 0 and growth < max_growth_mb and answered == callers * waves
    log(f"{'PASS' if ok else 'FAIL'}: {answered} of {callers * waves} calls answered correctly or cleanly "
        f"({sum(w.queue_full for w in results)} queue full), {failures} failures; RSS grew {growth:+.0f} MB from wave "
        f"1 to wave {waves} (limit {max_growth_mb:.0f} MB); {time.monotonic() - started:.0f} s in all")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=16, help="concurrent gradio_client callers (default 16)")
    parser.add_argument("--waves", type=int, default=16, help="waves of calls, all callers at once (default 16)")
    parser.add_argument("--max_growth_mb", type=float, default=200.0,
                        help="allowed RSS growth of the app from the first wave to the last (default 200)")
    parser.add_argument("--timeout_s", type=float, default=300.0, help="limit for one call and for start-up")
    args = parser.parse_args(argv)
    if args.callers < 1 or args.waves < 2:
        parser.error("--callers must be at least 1 and --waves at least 2 (memory is compared between waves)")
    return 0 if run(args.callers, args.waves, args.max_growth_mb, args.timeout_s) else 1


if __name__ == "__main__":
    sys.exit(main())
