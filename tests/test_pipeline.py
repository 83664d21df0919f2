"""HOGInpaintPipeline on real faces and real NVIDIA masks, with tiny random weights (the call's plumbing, not quality)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hoginpaint.hog import guidance_target, hole_cells
from hoginpaint.imageio import load_image, load_mask
from hoginpaint.pipeline import HOGInpaintPipeline, InpaintOutput
from hoginpaint.stages import inpaint_stage, structure_stage

RESOLUTION = 64


@pytest.fixture(scope="module")
def pipeline() -> HOGInpaintPipeline:
    return HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=RESOLUTION, seed=0)


@pytest.fixture(scope="module")
def faces(val_face_images) -> list[Image.Image]:
    return val_face_images[:2]


@pytest.fixture(scope="module")
def masks(nvidia_mask_dir, faces) -> list[Image.Image]:
    """Two evaluation masks (indices multiple of 10; 20-30 % and 40-50 % holes), at the faces' size."""
    size = faces[0].size
    return [Image.open(nvidia_mask_dir / f"{index:05d}.png").convert("L").resize(size, Image.NEAREST)
            for index in (4010, 8020)]


def _check_output(output: InpaintOutput, images: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
    """Every result: the input's size, bit-identical outside the hole, different inside it."""
    assert len(output.images) == len(images)
    for result, image, mask in zip(output.images, images, masks):
        result = load_image(result)
        hole = mask[0] >= 0.5
        assert result.shape == image.shape
        assert hole.any() and (~hole).any()
        assert torch.equal(result[:, ~hole], image[:, ~hole])
        assert (result[:, hole] != image[:, hole]).any(dim=0).float().mean() > 0.9


def test_real_face_and_real_mask(pipeline, faces, masks):
    output = pipeline(image=faces[0], mask_image=masks[0])
    image, mask = load_image(faces[0]), load_mask(masks[0])
    _check_output(output, [image], [mask])
    assert isinstance(output.images[0], Image.Image) and output.images[0].mode == "RGB"
    # The guidance returned is the one G was given: known cells are the input's HOG image, bit for bit.
    assert output.guidance[0].size == (RESOLUTION, RESOLUTION) and output.guidance[0].mode == "L"
    assert output.guidance_tensor.shape == (1, 1, RESOLUTION, RESOLUTION)
    assert np.array_equal(np.asarray(output.guidance[0]),
                          (output.guidance_tensor[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    low_res_image = torch.nn.functional.interpolate(image[None], size=(RESOLUTION, RESOLUTION), mode="bicubic",
                                                    antialias=True).clamp(0, 1)
    hog = guidance_target(low_res_image, pipeline.structure_generator.hog_settings())
    untouched = hole_cells(output.mask_tensor, 8) == 0  # cells whose HOG the hole cannot change
    torch.testing.assert_close(output.guidance_tensor[untouched], hog[untouched], rtol=0, atol=1e-6)
    assert not torch.equal(output.guidance_tensor, hog)  # the hole cells came from G_H
    # The masked preview paints the hole white and keeps the rest.
    masked = load_image(output.masked[0])
    assert torch.all(masked[:, mask[0] == 1] == 1) and torch.equal(masked[:, mask[0] == 0], image[:, mask[0] == 0])


def test_batch_equals_one_by_one(pipeline, faces, masks):
    batch = pipeline(image=faces, mask_image=masks, output_type="pt")
    images, hole_masks = [load_image(face) for face in faces], [load_mask(mask) for mask in masks]
    _check_output(batch, images, hole_masks)
    assert batch.result_tensor.shape == (2, 3, RESOLUTION, RESOLUTION)
    assert batch.hog_pred_tensor.shape == batch.mask_tensor.shape == (2, 1, RESOLUTION, RESOLUTION)
    for index in range(2):
        single = pipeline(image=faces[index], mask_image=masks[index], output_type="pt")
        torch.testing.assert_close(single.images[0], batch.images[index], rtol=0, atol=1e-5)
    # A (B, 3, H, W) tensor batch gives the same results as the list of PIL images.
    stacked = pipeline(image=torch.stack(images), mask_image=torch.stack(hole_masks), output_type="pt")
    torch.testing.assert_close(torch.stack(stacked.images), torch.stack(batch.images), rtol=0, atol=0)


def test_call_matches_the_stages_run_by_hand(pipeline, faces, masks):
    output = pipeline(image=faces[0], mask_image=masks[0])
    image = _low(faces[0])
    with torch.no_grad():
        structure = structure_stage(pipeline.structure_generator, image, output.mask_tensor)
        _, composited = inpaint_stage(pipeline.inpaint_generator, image, output.mask_tensor, structure.guidance)
    torch.testing.assert_close(output.result_tensor, composited, rtol=0, atol=1e-6)
    torch.testing.assert_close(output.hog_pred_tensor, structure.hog_pred, rtol=0, atol=1e-6)


def _low(face: Image.Image) -> torch.Tensor:
    return torch.nn.functional.interpolate(load_image(face)[None], size=(RESOLUTION, RESOLUTION), mode="bicubic",
                                           antialias=True, align_corners=False).clamp(0, 1)


def test_odd_size_image(pipeline, faces, nvidia_mask_dir):
    face = faces[0].resize((300, 217), Image.BICUBIC)
    mask = Image.open(nvidia_mask_dir / "06000.png").convert("L").resize((300, 217), Image.NEAREST)
    output = pipeline(image=face, mask_image=mask)
    assert output.images[0].size == (300, 217) and output.masked[0].size == (300, 217)
    _check_output(output, [load_image(face)], [load_mask(mask)])


def test_empty_and_full_masks(pipeline, faces):
    image = load_image(faces[0])
    empty = pipeline(image=image, mask_image=torch.zeros(1, *image.shape[-2:]), output_type="pt")
    assert torch.equal(empty.images[0], image)
    full = pipeline(image=image, mask_image=torch.ones(1, *image.shape[-2:]), output_type="pt")
    assert (full.images[0] != image).any(dim=0).float().mean() > 0.9
    # What a call returns is ordinary tensors, not inference-mode ones: editing them in place works.
    for tensor in (full.images[0], full.result_tensor, full.guidance_tensor, full.mask_tensor):
        assert not tensor.is_inference()
        tensor.mul_(1)


def test_bad_calls_are_refused(pipeline, faces, masks):
    with pytest.raises(ValueError, match="mask is 100x100 but image is 256x256"):
        pipeline(image=faces[0], mask_image=masks[0].resize((100, 100)))
    with pytest.raises(ValueError, match="got 2 images and 1 masks"):
        pipeline(image=faces, mask_image=masks[:1])
    with pytest.raises(ValueError, match="output_type must be 'pil' or 'pt'"):
        pipeline(image=faces[0], mask_image=masks[0], output_type="np")
    with pytest.raises(ValueError, match="multiple of 8"):
        HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=60)


def test_save_and_load_give_bit_identical_outputs(pipeline, faces, masks, tmp_path):
    pipeline.save_pretrained(tmp_path / "pipe")
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.resolution == RESOLUTION
    before = pipeline(image=faces, mask_image=masks, output_type="pt")
    after = loaded(image=faces, mask_image=masks, output_type="pt")
    assert all(torch.equal(a, b) for a, b in zip(before.images, after.images))
    assert torch.equal(before.guidance_tensor, after.guidance_tensor)
    card = (tmp_path / "pipe" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: hoginpaint") and "resolution: 64x64" in card
    pipeline.save_pretrained(tmp_path / "carded", model_card="# my card\n")
    assert (tmp_path / "carded" / "README.md").read_text() == "# my card\n"


def test_from_config_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=RESOLUTION, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    second = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=RESOLUTION, seed=5)
    other = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=RESOLUTION, seed=6)
    weights = [p.inpaint_generator.state_dict()["encoder.1.weight"] for p in (first, second, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_to_changes_device_and_dtype(faces, masks):
    pipe = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=RESOLUTION, seed=0)
    reference = pipe(image=faces[0], mask_image=masks[0], output_type="pt").images[0]
    pipe.to(dtype=torch.float64)
    assert pipe.dtype == torch.float64 and pipe.device.type == "cpu"
    result = pipe(image=faces[0], mask_image=masks[0], output_type="pt").images[0]
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, reference, rtol=0, atol=1e-4)


def test_the_shared_call_equals_the_two_stages_composed_by_hand():
    # hoginpaint.inference.Inpainter.__call__ is shared with DeepFill: for the paper's configuration it must be
    # exactly prepare → structure_stage → inpaint_stage → paste_back, bit for bit.
    from hoginpaint.imageio import paste_back, prepare
    from hoginpaint.stages import inpaint_stage, structure_stage

    pipe = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=32, seed=3)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 50, 60, generator=generator)
    mask = torch.zeros(1, 50, 60)
    mask[:, 10:30, 20:45] = 1
    out = pipe(image=image, mask_image=mask, output_type="pt")
    batch = prepare([image], [mask], 32)
    with torch.inference_mode():
        structure = structure_stage(pipe.structure_generator, batch.image, batch.mask)
        _, composited = inpaint_stage(pipe.inpaint_generator, batch.image, batch.mask, structure.guidance)
    assert torch.equal(out.result_tensor, composited)
    assert torch.equal(out.guidance_tensor, structure.guidance)
    assert torch.equal(out.images[0], paste_back(image, composited[0].clone(), mask, feather=4))


def _prefilled_pipeline(resolution: int, seed: int, coarse: HOGInpaintPipeline | None = None) -> HOGInpaintPipeline:
    from hoginpaint.networks import InpaintGenerator, StructureGenerator

    torch.manual_seed(seed)
    return HOGInpaintPipeline(StructureGenerator(8, 1, pixels_per_cell=4, prefill="biharmonic"),
                              InpaintGenerator(8, 1, prefill="biharmonic"), resolution=resolution, coarse=coarse)


def test_a_cascade_refines_the_coarse_pipelines_result(tmp_path):
    """A coarse-to-fine cascade: the fine generators refine the coarse pipeline's full-size results (in place of the
    classical fill), the known pixels stay the input's, and the cascade saves and loads whole."""
    from hoginpaint.imageio import paste_back, prepare, resize_images
    from hoginpaint.pipeline import coarse_fill

    coarse = _prefilled_pipeline(32, seed=1)
    with torch.no_grad():  # a coarse G that corrects its classical fill (a fresh one's last layer is zero)
        for parameter in coarse.inpaint_generator.parameters():
            parameter.normal_(0, 0.1, generator=torch.Generator().manual_seed(parameter.numel()))
    fine = _prefilled_pipeline(64, seed=2, coarse=coarse)
    rows, columns = torch.meshgrid(torch.linspace(0, 3, 90), torch.linspace(0, 2, 70), indexing="ij")
    image = torch.stack([0.5 + 0.4 * torch.sin(rows + columns), 0.5 + 0.3 * torch.cos(rows), 0.4 + 0.2 * columns])
    mask = torch.zeros(1, 90, 70)
    mask[:, 20:55, 15:50] = 1
    out = fine(image=image, mask_image=mask, output_type="pt")
    assert torch.equal(out.images[0] * (1 - mask), image * (1 - mask))
    # By hand: the coarse pipeline's result at the input's size is the base; the fine stages refine it at 64 px.
    base = coarse(image=image, mask_image=mask, output_type="pt").images[0]
    batch = prepare([image], [mask], 64)
    filled = resize_images([base], 64)
    with torch.inference_mode():
        structure = structure_stage(fine.structure_generator, filled, batch.mask, filled=filled)
        _, composited = inpaint_stage(fine.inpaint_generator, filled, batch.mask, structure.guidance, filled=filled)
    assert torch.equal(out.result_tensor, composited)
    classical = _prefilled_pipeline(64, seed=2)(image=image, mask_image=mask, output_type="pt").images[0]
    assert float((out.images[0] - classical).abs().max()) > 0.05  # the coarse stage is not the classical fill
    expected = paste_back(image, composited[0].clone(), mask, feather=4, base=base, base_lowres=filled[0],
                          ramp=fine._correction_ramp() * (90 * 70) ** 0.5 / 64)
    assert torch.equal(out.images[0], expected)
    # The training path's fill (coarse_fill, batched at the model's resolution) is the same coarse fill: on a smooth
    # image, inside the hole, it departs from the full-size result brought to 64 px by a fraction of what the coarse
    # G changed (the classical floor is solved at 64 px there, more precisely and at the input's size here).
    trained_on = coarse_fill(coarse, batch.image, batch.mask)
    inside = batch.mask.expand_as(trained_on) == 1
    assert torch.equal(trained_on[~inside], batch.image[~inside])
    correction = float((resize_images([classical], 64) - filled)[inside].abs().mean())
    assert float((trained_on - filled)[inside].abs().mean()) < 0.25 * correction

    fine.save_pretrained(tmp_path / "cascade")
    loaded = HOGInpaintPipeline.from_pretrained(tmp_path / "cascade")
    assert loaded.coarse.resolution == 32 and loaded.coarse.coarse is None
    assert torch.equal(loaded(image=image, mask_image=mask, output_type="pt").images[0], out.images[0])
    assert loaded.to(dtype=torch.float64).coarse.dtype == torch.float64


def test_a_cascade_is_refused_where_it_cannot_work():
    coarse = _prefilled_pipeline(32, seed=1)
    with pytest.raises(ValueError, match="coarse pipeline works at 32 px, not below this pipeline's 32 px"):
        _prefilled_pipeline(32, seed=2, coarse=coarse)
    with pytest.raises(ValueError, match="coarse is itself a cascade"):
        _prefilled_pipeline(128, seed=2, coarse=_prefilled_pipeline(64, seed=3, coarse=coarse))
    paper = HOGInpaintPipeline.from_config(base_channels=8, residual_blocks=1, resolution=64)
    with pytest.raises(ValueError, match="prefill='none'.* cannot refine a coarse pipeline's result"):
        HOGInpaintPipeline(paper.structure_generator, paper.inpaint_generator, resolution=64, coarse=coarse)
    with pytest.raises(ValueError, match="coarse must be a HOGInpaintPipeline"):
        HOGInpaintPipeline(paper.structure_generator, paper.inpaint_generator, resolution=64, coarse="coarse/")
