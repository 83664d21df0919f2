"""The classical pre-fill (hoginpaint.prefill) and the generators, stages and pipeline that refine it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.restoration import inpaint_biharmonic

from hoginpaint.imageio import paste_back
from hoginpaint.masks import FolderMasks
from hoginpaint.networks import InpaintGenerator, StructureGenerator
from hoginpaint.inference import PASTE_BACK_EXACT_PIXELS, PASTE_BACK_ITERATIONS
from hoginpaint.pipeline import HOGInpaintPipeline
from hoginpaint.prefill import (
    PREFILL_KINDS, correction_ramp, lowpass_correction, lowpass_kernel, prefill, prefill_around_hole,
)
from hoginpaint.stages import inpaint_stage, structure_stage


def _square_hole(batch: int = 1, size: int = 64, top: int = 20, side: int = 20) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[..., top:top + side, top:top + side] = 1
    return mask


def _psnr(result: torch.Tensor, truth: torch.Tensor) -> float:
    mse = (result.double() - truth.double()).pow(2).mean().clamp_min(1e-12)
    return float(10 * torch.log10(1 / mse))


@pytest.mark.parametrize("kind", ["harmonic", "biharmonic"])
def test_a_linear_ramp_is_filled_exactly(kind):
    # Linear functions are harmonic and biharmonic: the interpolant of a ramp is the ramp.
    rows, columns = torch.meshgrid(torch.linspace(0.1, 0.7, 64), torch.linspace(0.2, 0.5, 64), indexing="ij")
    image = (rows + columns)[None, None].expand(1, 3, 64, 64) / 1.3
    filled = prefill(image, _square_hole(), kind)
    assert (filled - image).abs().max() < 2e-3


@pytest.mark.parametrize("kind", PREFILL_KINDS)
def test_known_pixels_are_kept_and_the_hole_content_is_never_read(kind):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 48, 48, generator=generator)
    mask = _square_hole(2, 48, 10, 16)
    other = torch.where(mask.bool(), torch.rand(2, 3, 48, 48, generator=generator), image)  # differs in the hole only
    first, second = prefill(image, mask, kind), prefill(other, mask, kind)
    assert torch.equal(first, second)
    assert torch.equal(first[~mask.expand_as(image).bool()], image[~mask.expand_as(image).bool()])
    if kind == "none":
        assert torch.all(first[mask.expand_as(image).bool()] == 0)


def test_edge_cases_empty_and_full_masks_and_bad_shapes():
    image = torch.rand(2, 3, 32, 32)
    assert torch.equal(prefill(image, torch.zeros(2, 1, 32, 32)), image)
    full = torch.zeros(2, 1, 32, 32)
    full[0] = 1  # the first image has no known pixel: grey; the second is untouched
    filled = prefill(image, full)
    assert torch.all(filled[0] == 0.5) and torch.equal(filled[1], image[1])
    with pytest.raises(ValueError, match="unknown prefill 'telea'"):
        prefill(image, full, "telea")
    with pytest.raises(ValueError, match="same B, H, W"):
        prefill(image, torch.zeros(2, 1, 16, 16))


def test_biharmonic_matches_scikit_image_on_real_faces(val_faces, nvidia_mask_dir):
    # Four faces x the 20-30 % and 40-50 % evaluation buckets: within 0.4 dB of skimage's exact sparse solve.
    faces = val_faces[:4]
    for bucket in (2, 4):
        source = FolderMasks(nvidia_mask_dir, buckets=[bucket], split="eval", augment=False)
        masks = torch.from_numpy(np.stack([source.mask(i, 256) for i in range(4)]))[:, None]
        ours = prefill(faces, masks, "biharmonic")
        reference = torch.stack([
            torch.from_numpy(inpaint_biharmonic(face.permute(1, 2, 0).double().numpy(), mask[0].numpy() > 0.5,
                                                channel_axis=-1)).permute(2, 0, 1).float()
            for face, mask in zip(faces, masks)])
        ours_psnr, reference_psnr = _psnr(ours, faces), _psnr(reference, faces)
        assert abs(ours_psnr - reference_psnr) < 0.4, (bucket, ours_psnr, reference_psnr)
        assert _psnr(ours, reference) > 35  # and the two fills agree pixel by pixel
        # The harmonic fill is blurrier: biharmonic beats it on faces.
        assert ours_psnr > _psnr(prefill(faces, masks, "harmonic"), faces)


def test_solving_on_the_hole_box_agrees_with_the_whole_image(val_faces):
    face = val_faces[0]
    mask = _square_hole(1, 256, 100, 40)[0]
    whole = prefill(face[None], mask[None])[0]
    boxed = prefill_around_hole(face, mask, margin=24)
    assert _psnr(boxed, whole) > 45
    outside = torch.ones_like(mask, dtype=torch.bool)
    outside[:, 76:164, 76:164] = False
    assert torch.equal(boxed[outside.expand_as(face)], face[outside.expand_as(face)])


@pytest.mark.parametrize("kind", ["harmonic", "biharmonic"])
def test_untrained_generators_with_a_prefill_return_the_prefill(kind):
    torch.manual_seed(0)
    structure = StructureGenerator(8, 1, pixels_per_cell=4, prefill=kind).eval()
    inpaint = InpaintGenerator(8, 1, prefill=kind).eval()
    image, mask = torch.rand(2, 3, 32, 32), _square_hole(2, 32, 8, 12)
    with torch.no_grad():
        result = structure_stage(structure, image, mask)
        assert torch.equal(result.filled, prefill(image, mask, kind))
        assert torch.equal(result.hog_pred, result.hog_known)  # G_H's correction starts at zero
        raw, composited = inpaint_stage(inpaint, image, mask, result.guidance)
    assert torch.equal(raw, result.filled)
    assert torch.allclose(composited, result.filled, atol=1e-6)


def test_the_prefill_is_part_of_the_config_and_survives_a_round_trip(tmp_path):
    torch.manual_seed(0)
    pipe = HOGInpaintPipeline(StructureGenerator(8, 1, pixels_per_cell=4, prefill="biharmonic"),
                              InpaintGenerator(8, 1, prefill="biharmonic"), resolution=32)
    pipe.save_pretrained(tmp_path)
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path)
    assert loaded.structure_generator.prefill == loaded.inpaint_generator.prefill == "biharmonic"
    with pytest.raises(ValueError, match="unknown prefill"):
        InpaintGenerator(8, 1, prefill="telea")


def test_pipeline_with_an_untrained_refiner_returns_the_full_resolution_prefill():
    # The model runs at 32 px, the photo is 96 px: with a zero correction the hole holds the 96-px fill itself,
    # not an upsampled 32-px one.
    torch.manual_seed(0)
    pipe = HOGInpaintPipeline(StructureGenerator(8, 1, pixels_per_cell=4, prefill="biharmonic"),
                              InpaintGenerator(8, 1, prefill="biharmonic"), resolution=32)
    rows, columns = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    image = torch.stack([rows, columns, (rows * columns).sqrt()]) * 0.8 + 0.1  # smooth, so the fill is accurate
    mask = _square_hole(1, 96, 30, 30)[0]
    out = pipe(image=image, mask_image=mask, output_type="pt", feather=0)
    expected = prefill_around_hole(image, mask, iterations=PASTE_BACK_ITERATIONS, exact_up_to=PASTE_BACK_EXACT_PIXELS)
    assert (out.images[0] - expected).abs().max() < 1e-5
    assert torch.equal(out.images[0][:, mask[0] < 0.5], image[:, mask[0] < 0.5])


def test_paste_back_adds_only_the_models_change_to_the_base():
    original = torch.rand(3, 64, 64)
    mask = _square_hole(1, 64, 16, 24)[0]
    base = torch.where(mask.bool(), torch.full_like(original, 0.3), original)
    base_low = torch.nn.functional.interpolate(base[None], size=(16, 16), mode="area")[0]
    same = paste_back(original, base_low, mask, feather=0, base=base, base_lowres=base_low)
    assert torch.allclose(same, base, atol=1e-6)  # no change at model resolution: the base, exactly
    brighter = paste_back(original, base_low + 0.1, mask, feather=0, base=base, base_lowres=base_low)
    assert torch.allclose(brighter[:, 20:36, 20:36], torch.full((3, 16, 16), 0.4), atol=1e-5)
    with pytest.raises(ValueError, match="pass both base and base_lowres"):
        paste_back(original, base_low, mask, base=base)


def test_more_iterations_converge_thin_holes_towards_scikit_image(val_faces, nvidia_mask_dir):
    faces = val_faces[:4]
    source = FolderMasks(nvidia_mask_dir, buckets=[0], split="eval", augment=False)  # 1-10 %: thin strokes
    masks = torch.from_numpy(np.stack([source.mask(i, 256) for i in range(4)]))[:, None]
    reference = torch.stack([
        torch.from_numpy(inpaint_biharmonic(face.permute(1, 2, 0).double().numpy(), mask[0].numpy() > 0.5,
                                            channel_axis=-1)).permute(2, 0, 1).float()
        for face, mask in zip(faces, masks)])
    default, converged = prefill(faces, masks), prefill(faces, masks, iterations=PASTE_BACK_ITERATIONS)
    assert _psnr(converged, reference) > _psnr(default, reference) + 5


def test_small_holes_can_be_solved_exactly(val_faces):
    face = val_faces[0]
    mask = torch.zeros(1, 256, 256)
    mask[:, 100:110, 50:200] = 1  # 1,500 pixels
    exact = prefill_around_hole(face, mask, exact_up_to=1500)
    reference = inpaint_biharmonic(face.permute(1, 2, 0).double().numpy(), mask[0].numpy() > 0, channel_axis=-1)
    torch.testing.assert_close(exact, torch.from_numpy(reference).permute(2, 0, 1).float().clamp(0, 1), atol=1e-6,
                               rtol=0)
    iterative = prefill_around_hole(face, mask, exact_up_to=1499)  # one pixel over: conjugate gradients
    assert not torch.equal(iterative, exact) and _psnr(iterative, exact) > 35


def test_correction_ramp_grows_with_the_distance_to_known_pixels():
    mask = _square_hole(1, 32, 8, 12)  # rows and columns 8..19
    ramp = correction_ramp(mask, 4)
    assert torch.equal(ramp[mask < 0.5], torch.zeros(int((mask < 0.5).sum())))  # nothing outside the hole
    row = ramp[0, 0, 13]  # across the middle of the hole: 1/4 on the rim, 2/4, 3/4, then 1 inside
    assert torch.allclose(row[8:14], torch.tensor([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]))
    assert torch.allclose(row[14:20], torch.tensor([1.0, 1.0, 1.0, 0.75, 0.5, 0.25]))
    assert torch.equal(correction_ramp(mask, 0), mask)  # off: the whole hole
    # the image border is not known: a hole along it ramps from its inner rim only
    border = torch.zeros(1, 1, 16, 16)
    border[..., :, :4] = 1
    assert torch.allclose(correction_ramp(border, 2)[0, 0, 8, :4], torch.tensor([1.0, 1.0, 1.0, 0.5]))
    # a fractional ramp: distance / pixels, capped at 1
    assert torch.allclose(correction_ramp(mask, 2.5)[0, 0, 13, 8:11], torch.tensor([0.4, 0.8, 1.0]))


def test_a_generator_with_a_ramp_leaves_the_rim_to_the_fill_and_records_the_ramp(tmp_path):
    torch.manual_seed(0)
    inpaint = InpaintGenerator(8, 1, prefill="biharmonic", correction_ramp=3).eval()
    torch.nn.init.normal_(inpaint.decoder[-1].weight, std=0.1)  # a non-zero correction
    image, mask = torch.rand(1, 3, 32, 32), _square_hole(1, 32, 8, 12)
    filled, guidance = prefill(image, mask), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        ramped = inpaint(filled, guidance, mask)
        inpaint.correction_ramp = 0
        full = inpaint(filled, guidance, mask)
    weight = correction_ramp(mask, 3)
    inside = (weight == 1) & (mask > 0.5)
    assert torch.equal(ramped.expand(1, 3, 32, 32)[inside.expand(1, 3, 32, 32)],
                       full[inside.expand(1, 3, 32, 32)])  # deep in the hole: the same correction
    rim = (weight > 0) & (weight < 1)
    rim3 = rim.expand(1, 3, 32, 32)
    assert (ramped - filled)[rim3].abs().sum() < (full - filled)[rim3].abs().sum()  # damped on the rim
    inpaint.correction_ramp = 3
    inpaint.save_pretrained(tmp_path)
    assert InpaintGenerator.from_pretrained(tmp_path).correction_ramp == 3.0
    with pytest.raises(ValueError, match="without a pre-fill"):
        InpaintGenerator(8, 1, correction_ramp=2)
    with pytest.raises(ValueError, match="number of pixels >= 0"):
        InpaintGenerator(8, 1, prefill="biharmonic", correction_ramp=-1)


def test_the_lowpass_removes_the_grid_periods_and_keeps_smooth_corrections():
    assert torch.equal(lowpass_kernel(4), torch.tensor([1.0, 2, 2, 2, 1]) / 8)
    assert torch.equal(lowpass_kernel(2), torch.tensor([1.0, 2, 1]) / 4)
    mask = torch.ones(1, 1, 32, 32)
    rows = torch.arange(32.0).view(1, 1, 32, 1).expand(1, 3, 32, 32)
    inner = (slice(None), slice(None), slice(4, 28), slice(4, 28))  # away from the image border's zero padding
    for period in (4, 2):  # stripes of 4 and 2 pixels, in either direction, are gone
        stripes = torch.cos(2 * torch.pi * rows / period)
        for pattern in (stripes, stripes.transpose(2, 3)):
            assert lowpass_correction(pattern, mask, 4)[inner].abs().max() < 1e-5
    ramp = 0.01 * rows  # a linear correction passes unchanged (the filter is centred and sums to 1)
    torch.testing.assert_close(lowpass_correction(ramp, mask, 4)[inner], ramp[inner])
    slow = torch.cos(2 * torch.pi * rows / 16)  # a 16-pixel period keeps 89 % of its amplitude
    assert lowpass_correction(slow, mask, 4)[inner].abs().max() == pytest.approx(0.889, abs=0.001)
    # outside the hole the correction counts as zero, and period 0 is off
    hole = _square_hole(1, 32, 8, 12)
    constant = torch.ones(1, 3, 32, 32)
    smoothed = lowpass_correction(constant, hole, 4)
    assert smoothed[..., 13, 13].eq(1).all() and smoothed[..., 13, 8].lt(1).all() and smoothed[..., 0, 0].eq(0).all()
    assert lowpass_correction(constant, hole, 0) is constant


def test_a_generator_with_a_lowpass_smooths_its_correction_and_records_it(tmp_path):
    torch.manual_seed(0)
    inpaint = InpaintGenerator(8, 1, prefill="biharmonic", correction_lowpass=4).eval()
    torch.nn.init.normal_(inpaint.decoder[-1].weight, std=0.1)
    image, mask = torch.rand(1, 3, 32, 32), _square_hole(1, 32, 8, 12)
    filled, guidance = prefill(image, mask), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        smoothed = inpaint(filled, guidance, mask)
        inpaint.correction_lowpass = 0
        raw = inpaint(filled, guidance, mask)
        expected = (filled + lowpass_correction(inpaint.body(torch.cat([filled, guidance, mask], 1)), mask, 4))
    torch.testing.assert_close(smoothed, expected.clamp(0, 1))
    assert not torch.equal(smoothed, raw)
    outside = (mask < 0.5).expand(1, 3, 32, 32)
    assert torch.equal(smoothed[outside], filled[outside])  # only the hole is corrected
    inpaint.correction_lowpass = 4
    inpaint.save_pretrained(tmp_path)
    assert InpaintGenerator.from_pretrained(tmp_path).correction_lowpass == 4
    with pytest.raises(ValueError, match="without a pre-fill"):
        InpaintGenerator(8, 1, correction_lowpass=4)
    for bad in (3, -2, True, 4.0):
        with pytest.raises(ValueError, match="even period"):
            InpaintGenerator(8, 1, prefill="biharmonic", correction_lowpass=bad)


def test_paste_back_ramps_the_change_in_from_the_rim():
    original = torch.rand(3, 64, 64)
    mask = _square_hole(1, 64, 16, 24)[0]
    base = torch.where(mask.bool(), torch.full_like(original, 0.3), original)
    base_low = torch.nn.functional.interpolate(base[None], size=(16, 16), mode="area")[0]
    ramped = paste_back(original, base_low + 0.1, mask, feather=0, base=base, base_lowres=base_low, ramp=8)
    weight = correction_ramp(mask[None], 8)[0]
    # a uniform change of 0.1 at model resolution arrives as 0.1 x the ramp (the bicubic upsample is exact inside)
    assert torch.allclose(ramped[:, 20:36, 20:36], 0.3 + 0.1 * weight[:, 20:36, 20:36], atol=1e-5)
    assert torch.allclose(ramped[:, 16, 16], torch.full((3,), 0.3 + 0.1 / 8), atol=1e-5)  # the rim's corner


def test_the_pipeline_refines_the_photos_own_fill_and_ignores_what_is_under_the_hole():
    # The networks see the full-resolution fill, downsampled: two photos that differ only under the hole give
    # identical outputs, and the model's input holds the 96-px fill (not one solved at 32 px).
    torch.manual_seed(0)
    inpaint = InpaintGenerator(8, 1, prefill="biharmonic", correction_ramp=2)
    torch.nn.init.normal_(inpaint.decoder[-1].weight, std=0.05)
    pipe = HOGInpaintPipeline(StructureGenerator(8, 1, pixels_per_cell=4, prefill="biharmonic"), inpaint.eval(),
                              resolution=32)
    image, mask = torch.rand(3, 96, 96), _square_hole(1, 96, 30, 30)[0]
    noisy = torch.where(mask.bool(), torch.rand(3, 96, 96), image)
    first = pipe(image=image, mask_image=mask, output_type="pt")
    second = pipe(image=noisy, mask_image=mask, output_type="pt")
    assert torch.equal(first.images[0], second.images[0])
    assert not torch.allclose(first.images[0], prefill_around_hole(image, mask, iterations=PASTE_BACK_ITERATIONS))
