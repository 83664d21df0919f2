"""How fast each of the training's critics learns to tell a method's facial-part fills from the real faces, judged on
held-out faces.

    python scripts/critic_study.py --method hoginpaint=checkpoints/hoginpaint --critics crop window --steps 1000
    python scripts/critic_study.py --method hoginpaint=checkpoints/hoginpaint --critics patch --lr 4e-4

Faces: the first `--faces` CelebA training faces under `--data` on which dlib finds 68 landmarks, at `--resolution`;
each gets one hole over the eyes (one eye, both, or with the brows; `hoginpaint.masks.FacePartMasks`, seeded) and the
method fills it once. Each critic of `--critics` (`hoginpaint.networks.HoleDiscriminator`, spectral norm, Adam (0,
0.9)) then trains on the first faces, real against filled, with the non-saturating loss: `patch` is the 70x70
PatchGAN on the whole face, `window` the 16x16 local critic over the hole, `crop` the hole's box resized to 64 px and
judged whole. Every `--every` steps the script prints the training batch's loss and, on the last `--held_out` faces,
the loss and the accuracy (a real face's mean logit above 0, a filled one's below). Chance: loss 0.693, accuracy
0.5. A critic that stays at chance here for as many steps as a fine-tune runs gives the generator's adversarial term
nothing to say.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hoginpaint import losses  # noqa: E402
from hoginpaint import methods as method_registry  # noqa: E402
from hoginpaint.masks.face_parts import FacePartMasks  # noqa: E402
from hoginpaint.networks import HoleDiscriminator  # noqa: E402
from hoginpaint.training import hog_model  # noqa: E402
from hoginpaint.training.data import center_crop_resize, decode_image, load_image_dataset  # noqa: E402
from hoginpaint.training.landmarks import square_crop_landmarks  # noqa: E402

CRITICS = ("patch", "window", "crop")
EYE_HOLES = ("left_eye", "right_eye", "eyes", "eyes_brows")


def build_critic(kind: str, base_channels: int) -> HoleDiscriminator:
    """The training's discriminator with the local critic `kind` needs (`patch` uses its 70x70 PatchGAN)."""
    return HoleDiscriminator(3, base_channels, local_kind="crop" if kind == "crop" else "window")


def image_logits(critic: HoleDiscriminator, kind: str, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One logit per image `(B,)`: the critic's logits averaged (for `window`, over the windows on the hole)."""
    if kind == "patch":
        return critic(images)[0].flatten(1).mean(1)
    logits = critic(images, local=True, mask=mask)
    if kind == "crop":
        return logits.flatten()
    weight = losses.hole_patches(mask, logits)
    return (logits * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp(min=1)


def batch_loss(critic: HoleDiscriminator, kind: str, real: torch.Tensor, fake: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    """The discriminator's non-saturating loss on one batch, as the training counts it for this critic."""
    if kind == "patch":
        logits, _ = critic(torch.cat([real, fake]))
        return losses.discriminator_loss(*logits.chunk(2))
    return hog_model.hole_critic_loss(critic, real, fake, mask)


@torch.no_grad()
def held_out_scores(critic: HoleDiscriminator, kind: str, real: torch.Tensor, fake: torch.Tensor,
                    mask: torch.Tensor, batch: int = 32) -> tuple[float, float]:
    """(loss, accuracy) of the critic on held-out real and filled faces, from one logit per image."""
    real_logits = torch.cat([image_logits(critic, kind, real[i:i + batch], mask[i:i + batch])
                             for i in range(0, len(real), batch)])
    fake_logits = torch.cat([image_logits(critic, kind, fake[i:i + batch], mask[i:i + batch])
                             for i in range(0, len(fake), batch)])
    loss = float(losses.discriminator_loss(real_logits, fake_logits))
    accuracy = (float((real_logits > 0).float().mean()) + float((fake_logits < 0).float().mean())) / 2
    return loss, accuracy


def train_critic(kind: str, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor, held_out: int, steps: int,
                 lr: float = 2e-4, batch_size: int = 8, base_channels: int = 64, every: int = 100,
                 seed: int = 0, report=None) -> list[tuple[int, float, float, float]]:
    """Train the critic `kind` on all but the last `held_out` faces; (step, batch loss, held-out loss, held-out
    accuracy) every `every` steps and at the last, each also passed to `report` as it comes."""
    if not 0 < held_out < len(real):
        raise ValueError(f"held_out must leave faces to train on: 0 < {held_out} < {len(real)}")
    torch.manual_seed(seed)  # the critic's initial weights
    batches = torch.Generator().manual_seed(seed)
    critic = build_critic(kind, base_channels)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.0, 0.9))
    train = len(real) - held_out
    history = []
    for step in range(1, steps + 1):
        chosen = torch.randint(0, train, (batch_size,), generator=batches)
        loss = batch_loss(critic, kind, real[chosen], fake[chosen], mask[chosen])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % every == 0 or step == steps:
            critic.eval()
            scores = held_out_scores(critic, kind, real[train:], fake[train:], mask[train:])
            critic.train()
            history.append((step, loss.item(), *scores))
            if report is not None:
                report(*history[-1])
    return history


def faces_with_eye_holes(data: str, count: int, resolution: int, seed: int = 0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` faces of the training split with 68 landmarks, `(N, 3, R, R)`, and a seeded eye hole on
    each, `(N, 1, R, R)`."""
    rng = np.random.default_rng(seed)
    holes = FacePartMasks(holes=EYE_HOLES)
    images, masks = [], []
    for row in load_image_dataset(data, "train", "image"):
        image = decode_image(row["image"])
        landmarks = square_crop_landmarks(image) if image is not None else None
        if landmarks is None:
            continue
        images.append(center_crop_resize(image, resolution))
        masks.append(torch.from_numpy(holes.sample(rng, resolution, landmarks * resolution))[None])
        if len(images) == count:
            break
    if len(images) < count:
        raise ValueError(f"only {len(images)} faces with landmarks under {data}; pass a smaller --faces")
    return torch.stack(images), torch.stack(masks)


def fill(method_spec: str, images: torch.Tensor, masks: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """`images` with their holes filled by the method `NAME` or `NAME=MODEL`."""
    name, _, model = method_spec.partition("=")
    method = method_registry.load(name, model=model or None)
    filled = []
    for start in range(0, len(images), batch):
        result = method(image=images[start:start + batch], mask_image=masks[start:start + batch], output_type="pt")
        filled.append(torch.stack(list(result.images)))
        print(f"filled {min(start + batch, len(images))}/{len(images)}", end="\r", flush=True)
    print()
    return torch.cat(filled)


def report(step: int, loss: float, held_loss: float, accuracy: float) -> None:
    print(f"step {step:5d}  batch loss {loss:.3f}  held-out loss {held_loss:.3f}  accuracy {accuracy:.3f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True, help="NAME or NAME=MODEL, as python -m hoginpaint.evaluation")
    parser.add_argument("--critics", nargs="+", choices=CRITICS, default=["crop"],
                        help="each trains on the same fills, one after another")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/celeba"))
    parser.add_argument("--faces", type=int, default=768)
    parser.add_argument("--held_out", type=int, default=128)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--base_channels", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        sys.exit(f"no dataset folder at {args.data}: pass --data with a folder of parquet shards or images")
    try:
        images, masks = faces_with_eye_holes(args.data, args.faces, args.resolution, args.seed)
        filled = fill(args.method, images, masks)
        for critic in args.critics:
            print(f"{args.faces} faces at {args.resolution} px ({args.held_out} held out), eye holes filled by "
                  f"{args.method}; critic {critic}, lr {args.lr:g}, base {args.base_channels}", flush=True)
            train_critic(critic, images, filled, masks, args.held_out, args.steps, args.lr,
                         base_channels=args.base_channels, every=args.every, seed=args.seed, report=report)
    except ValueError as error:
        sys.exit(str(error))
    print(f"chance: loss {float(F.softplus(torch.zeros(()))):.3f}, accuracy 0.500")


if __name__ == "__main__":
    main()
