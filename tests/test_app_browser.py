"""The Space in a real browser: pick the example, paint a stroke on the face, run, read the results back.

Uses the system Chromium (never downloads one) through Playwright; skips when either is missing. Set
HOGINPAINT_SCREENSHOT=path.png to save a screenshot of the page with its results (the README's).
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_app import ASTRONAUT, TIMEOUT, serve_app

pytestmark = pytest.mark.slow  # starts servers or processes: minutes on 2 cores; `-m "not slow"` skips it

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
STROKE = ((208, 124), (234, 124))  # across the nose of the astronaut, in photo pixels (x, y)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}; the browser test never downloads one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with serve_app(tmp_path_factory.mktemp("browser")) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=TIMEOUT * 1000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(url)
            page.wait_for_selector("#run")
            yield page
        finally:
            browser.close()


def screen_mapping(page, photo_size: tuple[int, int]):
    """photo pixel (x, y) → screen position: the editor shows the photo centred in its canvas, at its zoom."""
    box = page.locator("#brush canvas").first.bounding_box()
    zoom = float(page.locator("#brush .zoom-number span").inner_text().strip().rstrip("%")) / 100
    left = box["x"] + (box["width"] - photo_size[0] * zoom) / 2
    top = box["y"] + (box["height"] - photo_size[1] * zoom) / 2
    return lambda x, y: (left + x * zoom, top + y * zoom)


def wait_for_steady_zoom(page) -> None:
    """The editor zooms to fit once the photo is on the canvas; wait until its zoom stops changing."""
    zoom = page.locator("#brush .zoom-number span")
    previous, deadline = None, time.monotonic() + TIMEOUT
    while (current := zoom.inner_text()) != previous:
        assert time.monotonic() < deadline, "the editor's zoom never settled"
        previous = current
        time.sleep(0.5)


def fetch(page, selector: str) -> np.ndarray:
    image = page.locator(f"{selector} img")
    assert image.evaluate("element => element.naturalWidth * element.naturalHeight") > 0
    response = page.request.get(image.get_attribute("src"))
    assert response.ok
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB")).astype(np.int16)


def test_paint_on_the_example_and_inpaint(page):
    page.locator("[data-testid='dataset-cell-0-0']").click()  # the first example: the photo alone
    page.wait_for_selector("#brush button[aria-label='Brush'].highlight")  # the photo is on the canvas
    wait_for_steady_zoom(page)

    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(np.int16)
    to_screen = screen_mapping(page, (photo.shape[1], photo.shape[0]))
    (x0, y0), (x1, y1) = STROKE
    page.mouse.move(*to_screen(x0, y0))
    page.mouse.down()
    page.mouse.move(*to_screen(x1, y1), steps=4)  # each pointer event redraws the canvas: few steps (software GL)
    page.mouse.up()
    page.locator("#run").click()
    for key in ("masked", "guidance", "hoginpaint", "deepfill", "telea"):
        page.wait_for_selector(f"#out-{key} img")
    page.wait_for_function("document.querySelector('#status').innerText.trim().length > 0")

    # The stroke is where it was painted: the masked photo changed only around it, and so did each result.
    painted = (fetch(page, "#out-masked") != photo).any(axis=-1)
    ys, xs = np.nonzero(painted)
    assert painted.sum() > 100
    assert xs.min() >= x0 - 30 and xs.max() <= x1 + 30 and ys.min() >= y0 - 30 and ys.max() <= y1 + 30
    for key in ("hoginpaint", "deepfill", "telea"):
        result = fetch(page, f"#out-{key}")
        assert result.shape == photo.shape
        changed = (result != photo).any(axis=-1)
        assert changed.any() and not (changed & ~painted).any()
    assert fetch(page, "#out-guidance").shape[0] >= 256
    assert page.locator("#status").inner_text().startswith("Face found: aligned to the training framing.")
    page.wait_for_function("document.querySelector('#identity').innerText.includes('HOG-guided')")
    if os.environ.get("HOGINPAINT_SCREENSHOT"):
        page.screenshot(path=os.environ["HOGINPAINT_SCREENSHOT"], full_page=True)


def test_eyes_button_then_inpaint_fills_the_eyes_and_compares_identities(page):
    # The paper's question in two clicks: a hole over the eyes from the landmarks, then the identity table.
    page.reload()
    page.wait_for_selector("#run")
    page.locator("[data-testid='dataset-cell-0-0']").click()
    page.wait_for_selector("#brush button[aria-label='Brush'].highlight")
    wait_for_steady_zoom(page)
    canvas = page.locator("#brush canvas").first
    before = canvas.screenshot()
    page.locator("#hole-eyes").click()
    deadline = time.monotonic() + TIMEOUT
    while canvas.screenshot() == before:  # the button's event paints the hole as a layer on the canvas
        assert time.monotonic() < deadline, "the eyes button never painted a hole on the canvas"
        time.sleep(0.5)
    time.sleep(3.0)  # the editor uploads its new layer after drawing it; Inpaint sends what it has uploaded
    page.locator("#run").click()
    page.wait_for_function("() => { const image = document.querySelector('#out-masked img'); "
                           "return image && image.complete && image.naturalWidth > 0; }")
    page.wait_for_function("document.querySelector('#identity').innerText.includes('HOG-guided')")
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(np.int16)
    hole = (fetch(page, "#out-masked") != photo).any(axis=-1)
    ys, xs = np.nonzero(hole)
    # Both eyes of the astronaut (the button's hole spans x 188-262, y 91-113 in the photo), nothing else.
    assert hole.sum() > 600 and xs.min() > 170 and xs.max() < 280 and ys.min() > 75 and ys.max() < 130
    assert all(row in page.locator("#identity").inner_text() for row in ("masked input", "HOG-guided", "Telea"))
    assert page.locator("#status").inner_text().startswith("Face found: aligned to the training framing.")
    if os.environ.get("HOGINPAINT_SCREENSHOT"):
        page.screenshot(path=os.environ["HOGINPAINT_SCREENSHOT"], full_page=True)
