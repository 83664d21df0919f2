"""The study scripts that compare pipelines on photos and development faces run, and measure what they say."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import discriminator_check  # noqa: E402
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


def test_discriminator_check_damages_only_its_band_and_builds_each_variant():
    torch.manual_seed(0)
    faces = torch.rand(2, 3, 64, 64)
    band = discriminator_check.damaged(faces, "eye_band")
    changed = (band != faces).any(1)  # (B, H, W)
    rows, cols = changed.any(2).nonzero()[:, 1], changed.any(1).nonzero()[:, 1]
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 35, 15, 48)  # 31-56 % and 23-77 % of 64
    assert torch.equal(discriminator_check.damaged(faces, "darker"), faces * 0.5)
    plain = discriminator_check.build_discriminator(spectral=False, bias=True, init="default")
    edgeconnect = discriminator_check.build_discriminator(spectral=True, bias=False, init="edgeconnect")
    assert plain.conv1[0].bias is not None and not hasattr(plain.conv1[0], "parametrizations")
    assert edgeconnect.conv5[0].bias is None and hasattr(edgeconnect.conv5[0], "parametrizations")
    assert edgeconnect.conv1[0].parametrizations.weight.original.std().item() < 0.03  # N(0, 0.02)
    assert plain.conv1[0].weight.std().item() > 0.05  # PyTorch's default: U(±1/sqrt(fan_in)), fan_in 48
    logits, _ = edgeconnect(torch.cat([faces, band]))
    assert logits.shape == (4, 1, 6, 6)


def test_critic_study_counts_each_critic_as_the_training_does_and_learns_a_plain_difference():
    import critic_study

    torch.manual_seed(0)
    real = torch.nn.functional.avg_pool2d(torch.rand(40, 3, 64, 64), 5, 1, 2)
    mask = torch.zeros(40, 1, 64, 64)
    mask[:, :, 20:36, 16:48] = 1
    fake = real * (1 - mask) + 0.5 * mask  # a flat grey hole
    for kind in critic_study.CRITICS:
        critic = critic_study.build_critic(kind, 8).eval()
        logits = critic_study.image_logits(critic, kind, real[:4], mask[:4])
        assert logits.shape == (4,)
        loss = critic_study.batch_loss(critic, kind, real[:4], fake[:4], mask[:4])
        assert 0.6 < loss.item() < 0.8  # an untrained critic is near chance
    # Outside the hole's box the crop critic sees nothing: a change there leaves its logits alone.
    crop = critic_study.build_critic("crop", 8).eval()
    far = real[:4].clone()
    far[..., :4, :4] = 0
    assert torch.equal(critic_study.image_logits(crop, "crop", far, mask[:4]),
                       critic_study.image_logits(crop, "crop", real[:4], mask[:4]))
    reported = []
    black = real * (1 - mask)
    history = critic_study.train_critic("crop", real, black, mask, held_out=8, steps=60, lr=4e-4, base_channels=8,
                                        every=30, report=lambda *row: reported.append(row))
    assert [row[0] for row in history] == [30, 60] and reported == history
    assert history[-1][3] == 1.0 and history[-1][2] < 0.1  # held-out accuracy and loss: it has learnt the black hole
    with pytest.raises(ValueError, match="held_out must leave faces to train on"):
        critic_study.train_critic("crop", real, fake, mask, held_out=40, steps=1)
