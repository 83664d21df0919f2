"""How fast the 70x70 PatchGAN learns to tell real faces from a fixed, plainly visible damage, in isolation.

    python scripts/discriminator_check.py --fake eye_band --steps 150
    python scripts/discriminator_check.py --fake eye_band --no-spectral_norm --init default --lr 2e-4
    python scripts/discriminator_check.py --fake darker --bias

The fakes are the real faces themselves with a change no viewer would miss: `eye_band` blurs a band over the eyes
(two 9x9 box blurs over rows 31-56 % and columns 23-77 % of a 128-px aligned face), `darker` halves the brightness.
The discriminator trains on them alone, with the non-saturating loss and Adam (0, 0.9), as in a GAN's
discriminator step; every `--every` steps the script prints the loss (log 2 = 0.693 is chance) and the gap between
the mean logits of the real and the fake batch. A discriminator that cannot leave chance here in a few hundred steps
gives a generator's adversarial term nothing to say in a fine-tune of that length.

Faces: the first `--faces` of the CelebA training split under `--data` (default ../shared/data/celeba).
"""
from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint import losses  # noqa: E402
from hoginpaint.networks import PatchDiscriminator  # noqa: E402
from hoginpaint.training.data import center_crop_resize, decode_image, load_image_dataset  # noqa: E402


def damaged(images: torch.Tensor, fake: str) -> torch.Tensor:
    """`images` `(B, 3, H, W)` with the `fake` change."""
    if fake == "darker":
        return images * 0.5
    height, width = images.shape[2:]
    rows, cols = slice(round(0.31 * height), round(0.56 * height)), slice(round(0.23 * width), round(0.77 * width))
    blurred = F.avg_pool2d(F.avg_pool2d(images, 9, 1, 4), 9, 1, 4)
    out = images.clone()
    out[:, :, rows, cols] = blurred[:, :, rows, cols]
    return out


def build_discriminator(spectral: bool, bias: bool, init: str) -> PatchDiscriminator:
    """The PatchGAN with spectral norm on or off, conv biases on or off (EdgeConnect: off with spectral norm), and
    EdgeConnect's N(0, 0.02) weights or PyTorch's default init."""
    discriminator = PatchDiscriminator(3, 64, use_spectral_norm=False)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        block = getattr(discriminator, name)
        conv = block[0]
        if init == "default":
            conv.reset_parameters()
        if not bias:
            conv.bias = None
        block[0] = spectral_norm(conv) if spectral else conv
    return discriminator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/celeba"))
    parser.add_argument("--faces", type=int, default=256)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--fake", choices=["eye_band", "darker"], default="eye_band")
    parser.add_argument("--spectral_norm", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--init", choices=["edgeconnect", "default"], default="edgeconnect")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        sys.exit(f"no dataset folder at {args.data}: pass --data with a folder of parquet shards or images")
    torch.manual_seed(args.seed)  # the discriminator's initial weights
    batches = torch.Generator().manual_seed(args.seed)
    stream = load_image_dataset(args.data, "train", "image")
    decoded = (decode_image(row["image"]) for row in stream)
    faces = torch.stack([center_crop_resize(image, args.resolution)
                         for image in islice((image for image in decoded if image is not None), args.faces)])
    discriminator = build_discriminator(args.spectral_norm, args.bias, args.init)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.0, 0.9))
    print(f"{len(faces)} faces at {args.resolution} px, fake {args.fake}, spectral norm {args.spectral_norm}, "
          f"bias {args.bias}, init {args.init}, lr {args.lr:g}")
    for step in range(1, args.steps + 1):
        real = faces[torch.randint(0, len(faces), (args.batch_size,), generator=batches)]
        logits, _ = discriminator(torch.cat([real, damaged(real, args.fake)]))
        real_logits, fake_logits = logits.chunk(2)
        loss = losses.discriminator_loss(real_logits, fake_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            gap = (real_logits.mean() - fake_logits.mean()).item()
            print(f"step {step:4d}  loss {loss.item():.4f}  logit gap {gap:+.3f}", flush=True)


if __name__ == "__main__":
    main()
