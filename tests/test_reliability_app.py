"""The Space under load: concurrent `gradio_client` callers against `python app.py` with tiny random models.

Sixteen callers at once, one in four with a bad input, all get a correct result or the app's worded error, and the
app serves the next request; a burst of 32 (twice what `app.py` queues) gets results or gradio's clean "queue
full", and the app keeps serving. The memory check over 16 waves of 16 callers (~1.5 minutes on 2 busy cores) is
`scripts/load_test_app.py`, which `.ci/run` runs; this file uses its helpers.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts servers or processes: minutes on 2 cores; `-m "not slow"` skips it

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for one call, and for start-up

_spec = importlib.util.spec_from_file_location("load_test_app", REPO_ROOT / "scripts" / "load_test_app.py")
load_test_app = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = load_test_app  # its dataclasses look their module up
_spec.loader.exec_module(load_test_app)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("load")
    load_test_app.write_inputs(folder)
    process, url = load_test_app.start_app(folder, TIMEOUT)
    try:
        yield process, url, folder
    finally:
        load_test_app.stop_app(process)


def test_sixteen_concurrent_callers_get_results_or_worded_errors(app):
    process, url, folder = app
    clients = load_test_app.make_clients(url, folder, 16, TIMEOUT)
    wave = load_test_app.run_wave(clients, folder, TIMEOUT)  # callers 3, 7, 11, 15 send the four bad inputs
    assert wave.failures == []
    # 16 fit in app.py's queue (max_size=16): nobody is turned away.
    assert (wave.correct, wave.refused_bad_input, wave.queue_full) == (12, 4, 0)
    assert process.poll() is None


def test_a_burst_beyond_the_queue_gets_results_or_queue_full(app):
    process, url, folder = app
    clients = load_test_app.make_clients(url, folder, 32, TIMEOUT)
    wave = load_test_app.run_wave(clients, folder, TIMEOUT, bad_every=0)  # then one more call: still serving
    assert wave.failures == []
    assert wave.correct + wave.queue_full == 32
    assert wave.queue_full >= 1 and wave.correct >= 16  # a full queue turns callers away; the queued ones finish
    assert process.poll() is None
