"""Methods side by side on photos from outside the training and evaluation data, with holes over the eyes and the
mouth: the framed face of each result, large, in one PNG, and the hole's detail, contrast and boundary step.

    python scripts/photo_study.py --methods hoginpaint=checkpoints/hoginpaint deepfill=checkpoints/deepfill \\
        biharmonic --output docs/photo_study.png

Photos: scikit-image's astronaut (Eileen Collins, NASA, public domain), shipped with scikit-image, whole and as a
tighter portrait crop; matplotlib's sample portrait of Grace Hopper (U.S. Navy, public domain); and any photos given
with `--photos`; none of them is in the data the models were trained or evaluated on. The workflow is the Space's
(`hoginpaint.photo.inpaint_photo`): the face is found on the known pixels and framed, and only the hole changes. A
photo on which dlib finds no face is skipped and named.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint import methods as method_registry  # noqa: E402
from hoginpaint import photo as photo_workflow  # noqa: E402
from hoginpaint import realism  # noqa: E402
from hoginpaint.masks import make_mask_source  # noqa: E402


def photos(extra: list[Path]) -> dict[str, np.ndarray]:
    """The photos, as uint8 RGB arrays."""
    import matplotlib.cbook
    import skimage.data

    astronaut = skimage.data.astronaut()
    found = {"astronaut": astronaut, "astronaut portrait": np.ascontiguousarray(astronaut[20:276, 110:366])}
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    found["Grace Hopper"] = np.array(Image.open(hopper).convert("RGB"))
    for path in extra:
        found[path.stem] = np.array(Image.open(path).convert("RGB"))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", required=True, help="NAME=MODEL or NAME (a classical method); a "
                                                                     "label may be given as LABEL:NAME=MODEL")
    parser.add_argument("--holes", nargs="+", default=["eyes", "mouth"], choices=["eyes", "nose", "mouth"])
    parser.add_argument("--photos", nargs="*", type=Path, default=[], help="more photos of faces")
    parser.add_argument("--output", type=Path, default=Path("photo_study.png"))
    args = parser.parse_args(argv)
    loaded = {}
    for spec in args.methods:
        label, _, rest = spec.rpartition(":")
        name, _, model = rest.partition("=")
        loaded[label or name] = method_registry.load(name, model or None)
    rows, table = [], []
    for photo_name, pixels in photos(args.photos).items():
        for hole_name in args.holes:
            try:
                hole = photo_workflow.preset_hole(pixels, np.zeros(pixels.shape[:2], bool), hole_name,
                                                  np.random.default_rng(0), make_mask_source("free_form"), 256)
            except ValueError as error:
                print(f"{photo_name}: skipped ({error})")
                break
            result = photo_workflow.inpaint_photo(loaded, pixels, hole)
            views = [result.face_view(None)] + [result.face_view(label) for label in loaded]
            rows.append((f"{photo_name}, {hole_name}", views))
            truth = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
            mask = torch.from_numpy(hole)[None, None].float()
            for label in loaded:
                filled = torch.from_numpy(result.image(label)).permute(2, 0, 1)[None].float() / 255
                table.append((photo_name, hole_name, label,
                              float(realism.hole_detail(truth, filled, mask)[0]),
                              float(realism.hole_contrast(truth, filled, mask)[0]),
                              float(realism.boundary_step(filled, mask)[0] / realism.boundary_step(truth, mask)[0])))
    side = max(view.shape[0] for _, views in rows for view in views)
    columns = ["masked", *loaded]
    sheet = Image.new("RGB", (side * len(columns), (side + 18) * len(rows) + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(columns):
        draw.text((column * side + 4, 2), title, fill="black")
    for row, (title, views) in enumerate(rows):
        top = 18 + row * (side + 18)
        draw.text((4, top + 2), title, fill="black")
        for column, view in enumerate(views):
            sheet.paste(Image.fromarray(view).resize((side, side), Image.BICUBIC), (column * side, top + 18))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print("| photo | hole | method | hole detail | hole contrast | boundary step vs photo |")
    print("|---|---|---|---|---|---|")
    for photo_name, hole_name, label, detail, contrast, step in table:
        print(f"| {photo_name} | {hole_name} | {label} | {detail:.2f} | {contrast:.2f} | {step:.2f} |")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
