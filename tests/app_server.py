"""Running the Space for tests, the load test and the memory benchmark: one way to start and stop `python app.py`.

`start_app` runs `app.py` in a subprocess on 127.0.0.1 and a free port (through GRADIO_SERVER_*), offline, with the
models it is given (by default tiny random ones at 64 px, `save_tiny_models`) and returns once the page answers;
`stop_app` ends it; `serve_app` does both around a block. `png_header` builds a decompression bomb's header in
microseconds (a PNG that declares a huge size but holds a few rows).
"""
from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def save_tiny_models(folder: Path) -> dict[str, str]:
    """Random-weight HOG and DeepFill models at 64 px, saved as the app loads them → the app's env vars."""
    from hoginpaint import methods

    hog = methods.load("hoginpaint", random_init=True, base_channels=8, residual_blocks=1, resolution=64)
    deepfill = methods.load("deepfill", random_init=True, base_channels=8, resolution=64)
    return {"HOGINPAINT_MODEL": str(hog.save_pretrained(folder / "hoginpaint")),
            "DEEPFILL_MODEL": str(deepfill.save_pretrained(folder / "deepfill"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(folder: Path, timeout_s: float, models: dict[str, str] | None = None,
              extra_env: dict[str, str] | None = None,
              on_start: Callable[[subprocess.Popen], None] | None = None) -> tuple[subprocess.Popen, str]:
    """`python app.py` with `models` (env vars; None: tiny random ones; {}: the app's defaults, the shipped
    checkpoints); returns the process and its URL once the page answers. `on_start(process)` is called as soon as
    the process exists (e.g. to sample its memory from the start). RuntimeError with the app's log if it exits or
    does not answer within `timeout_s`."""
    port = free_port()
    models = save_tiny_models(folder) if models is None else models
    base = {key: value for key, value in os.environ.items() if key not in ("HOGINPAINT_MODEL", "DEEPFILL_MODEL")}
    env = {**base, **models, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(folder / "gradio"),
           **(extra_env or {})}
    url = f"http://127.0.0.1:{port}/"
    log = folder / "app.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    if on_start is not None:
        on_start(process)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_app(process)
            raise RuntimeError(f"app.py did not answer within {timeout_s:.0f} s:\n{log.read_text()}")
        time.sleep(0.3)


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def serve_app(folder: Path, timeout_s: float, models: dict[str, str] | None = None,
              extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`start_app` … `stop_app` around a block; yields the URL."""
    process, url = start_app(folder, timeout_s, models, extra_env)
    try:
        yield url
    finally:
        stop_app(process)


def png_header(width: int, height: int, rows: int = 1) -> bytes:
    """A PNG that declares width x height grayscale pixels but holds only `rows` rows: a bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1) * rows))
            + chunk(b"IEND", b""))
