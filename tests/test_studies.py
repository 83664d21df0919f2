"""The study scripts that compare pipelines on photos and development faces run, and measure what they say."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import guidance_study  # noqa: E402
import photo_study  # noqa: E402

from hoginpaint.pipeline import HOGInpaintPipeline  # noqa: E402


def test_guidance_study_changes_only_the_hole_and_its_guidance_matters():
    pipeline = HOGInpaintPipeline.from_pretrained(str(REPO_ROOT / "checkpoints" / "hoginpaint"))
    image = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 128, 128)
    mask[..., 40:80, 30:90] = 1
    results = {kind: guidance_study.fill(pipeline, image, mask, kind) for kind in guidance_study.GUIDANCES}
    for result in results.values():
        assert result.shape == image.shape
        torch.testing.assert_close(result * (1 - mask), image * (1 - mask))  # only the hole is filled
    # G reads its guidance: the hole differs between the ground truth's HOG and none
    assert float(((results["oracle"] - results["zeros"]).abs() * mask).max()) > 0.01
    no_hole = torch.zeros_like(mask)
    torch.testing.assert_close(guidance_study.fill(pipeline, image, no_hole, "zeros"), image)


def test_photo_study_writes_the_sheet_and_measures_each_method(tmp_path, capsys):
    output = tmp_path / "sheet.png"
    photo_study.main(["--methods", "biharmonic", "telea", "--holes", "eyes", "--output", str(output)])
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| astronaut")]
    assert len(rows) == 4  # two photos x two methods, one hole
    assert sum(line.startswith("| Grace Hopper |") for line in printed.splitlines()) == 2  # a second person
    detail = {line.split(" | ")[2]: float(line.split(" | ")[3]) for line in rows if "portrait" not in line}
    assert detail["biharmonic"] < detail["telea"]  # the smooth fill has the least detail
    from PIL import Image

    assert Image.open(output).size[0] >= 3 * 128  # masked input and the two methods, side by side
