"""Command line: `python -m hoginpaint inpaint --image IMG --mask MASK --output OUT [--model ID_OR_PATH] [--aligned]`.

One image, or a folder of images with a folder of masks matched by file stem (`face1.jpg` ↔ `face1.png`). Masks are
white (or 1) where the face is to be filled in. Any photo works, as in the Space (`hoginpaint.photo.inpaint_photo`):
the face the hole overlaps most is found on the known pixels and framed for the model, and only the hole is pasted
back at the photo's resolution; each image's framing, and why, is printed. `--aligned` takes the images as aligned
face crops, as the model was trained on: the whole image goes to the model, in batches in folder mode. Results are
written as PNG in folder mode (lossless, so every pixel outside the hole is the input's own). Errors are reported on
stderr with exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hoginpaint.config import add_options

# The checkpoint shipped with the repository, used when --model is not given.
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "checkpoints" / "hoginpaint"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class InpaintOptions:
    """Options of `python -m hoginpaint inpaint` (the argparse flags are generated from these fields)."""

    image: Path = field(metadata={"help": "an image file, or a folder of images"})
    mask: Path = field(metadata={"help": "the mask file (white = hole), or a folder of masks named like the images"})
    output: Path = field(metadata={"help": "the output file, or the output folder (created) in folder mode"})
    model: str | None = field(default=None, metadata={
        "help": f"a Hub repository id or a local folder saved by save_pretrained (default: {DEFAULT_MODEL}, "
                "when present)"})
    revision: str | None = field(default=None, metadata={"help": "branch, tag or commit of a Hub --model"})
    device: str | None = field(default=None, metadata={"help": "torch device, e.g. cpu or cuda:0 (default: cuda "
                                                               "when available, else cpu)"})
    aligned: bool = field(default=False, metadata={
        "help": "the images are aligned face crops, as the model was trained on: send each whole image to the model "
                "instead of finding the face and framing it"})
    batch_size: int = field(default=8, metadata={"help": "images per forward pass in folder mode with --aligned"})
    feather: int = field(default=4, metadata={"help": "width in pixels of the seam blend inside the hole"})
    save_guidance: bool = field(default=False, metadata={
        "help": "also write the HOG guidance image (model resolution): OUT_guidance.png, or guidance/ in folder mode"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hoginpaint", description="Identity-preserving face inpainting guided by HOG structure.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inpaint = commands.add_parser(
        "inpaint", help="fill the holes of one image or of a folder of images",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Fill the masked parts of face photos: the face the hole is on is found and framed for the "
                    "model (--aligned: the whole image goes to it). Folder mode: --image DIR --mask DIR --output DIR, "
                    "images and masks matched by file stem; unmatched files are reported.")
    add_options(inpaint, InpaintOptions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = InpaintOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(InpaintOptions)})
    try:
        return run_inpaint(options)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run_inpaint(options: InpaintOptions) -> int:
    """Inpaint one image or a folder; returns the exit status (2 if any image failed)."""
    if options.batch_size < 1 or options.feather < 0:
        raise ValueError("--batch_size must be at least 1 and --feather at least 0")
    if options.image.is_dir():
        if not options.mask.is_dir():
            raise ValueError(f"--image {options.image} is a folder, so --mask must be a folder too")
        pairs = match_by_stem(options.image, options.mask)
        for image_path, _ in pairs:
            _check_output_path(options.output / f"{image_path.stem}.png", image_path)
        pipeline = _load_pipeline(options)
        return (_inpaint_aligned_folder if options.aligned else _inpaint_folder)(pipeline, pairs, options)
    if not options.image.is_file():
        raise ValueError(f"--image {options.image} does not exist; pass an image file or a folder of images")
    if not options.mask.is_file():
        raise ValueError(f"--mask {options.mask} is not a file; pass the mask of {options.image.name}")
    output = options.output / f"{options.image.stem}.png" if options.output.is_dir() else options.output
    _check_output_path(output, options.image)
    pipeline = _load_pipeline(options)
    output.parent.mkdir(parents=True, exist_ok=True)
    guidance = output.with_name(f"{output.stem}_guidance.png") if options.save_guidance else None
    print(_inpaint_photo(pipeline, options.image, options.mask, output, guidance, options), file=sys.stderr)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _inpaint_photo(pipeline, image: Path, mask: Path, output: Path, guidance: Path | None,
                   options: InpaintOptions) -> str:
    """One photo through `hoginpaint.photo.inpaint_photo`, its result written to `output` (and the HOG guidance to
    `guidance`) → the line that says how it was framed."""
    from PIL import Image

    from hoginpaint.photo import inpaint_photo

    method = functools.partial(pipeline, feather=options.feather)
    result = inpaint_photo({"hoginpaint": method}, image, mask, aligned=options.aligned,
                           crop_size=pipeline.resolution)
    if output.suffix.lower() == ".png":
        result.write_png(output, "hoginpaint")  # lossless, the rows away from the hole written as they are
    else:
        Image.fromarray(result.image("hoginpaint")).save(output)
    if guidance is not None:
        result.results["hoginpaint"].guidance.save(guidance)
    return f"{image.name}: {result.describe()}"


def match_by_stem(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs (image, mask) of the two folders' image files with the same stem, sorted; unmatched ones reported."""
    images, masks = _images_by_stem(image_dir), _images_by_stem(mask_dir)
    lonely_images, lonely_masks = sorted(images.keys() - masks.keys()), sorted(masks.keys() - images.keys())
    if lonely_images:
        print(f"warning: {len(lonely_images)} image(s) in {image_dir} have no mask in {mask_dir}, skipped: "
              f"{_some(images[stem].name for stem in lonely_images)}", file=sys.stderr)
    if lonely_masks:
        print(f"warning: {len(lonely_masks)} mask(s) in {mask_dir} have no image in {image_dir}, ignored: "
              f"{_some(masks[stem].name for stem in lonely_masks)}", file=sys.stderr)
    stems = sorted(images.keys() & masks.keys())
    if not stems:
        raise ValueError(f"no image in {image_dir} has a mask of the same file stem in {mask_dir} (e.g. face1.jpg "
                         "and face1.png); check the folders")
    return [(images[stem], masks[stem]) for stem in stems]


def _inpaint_folder(pipeline, pairs: list[tuple[Path, Path]], options: InpaintOptions) -> int:
    """Each photo framed on its own (`_inpaint_photo`); a bad file fails alone."""
    from tqdm import tqdm

    guidance_dir, failed = _output_folders(options), []
    for image_path, mask_path in tqdm(pairs, unit="image", desc="inpainting", disable=None):
        guidance = guidance_dir / f"{image_path.stem}.png" if guidance_dir else None
        try:
            tqdm.write(_inpaint_photo(pipeline, image_path, mask_path, options.output / f"{image_path.stem}.png",
                                      guidance, options), file=sys.stderr)
        except ValueError as error:
            failed.append((image_path, error))
    return _report(pairs, failed, options.output)


def _inpaint_aligned_folder(pipeline, pairs: list[tuple[Path, Path]], options: InpaintOptions) -> int:
    """Aligned face crops, `--batch_size` at a time through the pipeline; a bad file fails alone."""
    from tqdm import tqdm

    guidance_dir, failed = _output_folders(options), []
    with tqdm(total=len(pairs), unit="image", desc="inpainting", disable=None) as progress:
        for batch in _chunks(pairs, options.batch_size):
            for (image_path, _), result in _run_batch(pipeline, batch, options.feather, failed):
                result_image, guidance = result
                result_image.save(options.output / f"{image_path.stem}.png")
                if guidance_dir:
                    guidance.save(guidance_dir / f"{image_path.stem}.png")
            progress.update(len(batch))
    return _report(pairs, failed, options.output)


def _output_folders(options: InpaintOptions) -> Path | None:
    """Create the output folder, and its guidance/ with --save_guidance → that folder, or None."""
    options.output.mkdir(parents=True, exist_ok=True)
    if not options.save_guidance:
        return None
    (options.output / "guidance").mkdir(exist_ok=True)
    return options.output / "guidance"


def _report(pairs: list[tuple[Path, Path]], failed: list[tuple[Path, Exception]], output: Path) -> int:
    """Print what failed and the count → the exit status (2 if any image failed)."""
    done = len(pairs) - len(failed)
    for image_path, reason in failed:
        print(f"error: {image_path.name}: {reason}", file=sys.stderr)
    print(f"inpainted {done} of {len(pairs)} image(s) into {output}", file=sys.stderr)
    return 2 if failed else 0


def _run_batch(pipeline, batch: list[tuple[Path, Path]], feather: int, failed: list) -> list:
    """Run a batch at once; if one of its files is bad, run its images one by one so the others still go through."""
    try:
        output = pipeline(image=[image for image, _ in batch], mask_image=[mask for _, mask in batch], feather=feather)
        return list(zip(batch, zip(output.images, output.guidance)))
    except ValueError:
        if len(batch) == 1:
            raise
    results = []
    for pair in batch:
        try:
            results.extend(_run_batch(pipeline, [pair], feather, failed))
        except ValueError as error:
            failed.append((pair[0], error))
    return results


def _load_pipeline(options: InpaintOptions):
    import torch

    from hoginpaint.pipeline import HOGInpaintPipeline

    model = options.model
    if model is None:
        if not DEFAULT_MODEL.is_dir():
            raise ValueError(f"no --model given and no checkpoint shipped at {DEFAULT_MODEL}; pass --model with a Hub "
                             "repository id or a folder saved by HOGInpaintPipeline.save_pretrained")
        model = str(DEFAULT_MODEL)
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {options.device!r} is not a torch device; pass e.g. cpu or cuda:0") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {options.device} asks for CUDA, which this machine lacks; pass --device cpu")
    return HOGInpaintPipeline.from_pretrained(model, revision=options.revision, device=device)


def _check_output_path(output: Path, image: Path) -> None:
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"--output {output} has no image extension; use one of {', '.join(IMAGE_SUFFIXES)}")
    if output.exists() and output.resolve() == image.resolve():
        raise ValueError(f"--output {output} is the input image; write the result elsewhere")


def _images_by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise ValueError(f"{folder} holds two images named {path.stem} ({found[path.stem].name} and "
                                 f"{path.name}); keep one, so that images and masks pair up unambiguously")
            found[path.stem] = path
    return found


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _some(names: typing.Iterable[str], limit: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


if __name__ == "__main__":
    sys.exit(main())
