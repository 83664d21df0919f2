"""User input to tensors and back: loading images and masks, resizing to the model, pasting the hole back.

Every image the package accepts (a path, a PIL image, an ndarray or a tensor) becomes a float `(3, H, W)` tensor in
[0, 1] at its own size, every mask a float `(1, H, W)` tensor in {0, 1} (1 = hole). `prepare` resizes a batch of them
to the model's square resolution; `paste_back` brings the model's output back to each image's own size and blends it
in *only* inside the hole, so that every known pixel of the result is bit-identical to the input.

Conventions decided here:
- EXIF orientation is applied, so an image is used the way a viewer shows it.
- Transparency (RGBA, LA, PA, P with a transparent colour, (H, W, 4) arrays) is composited on white.
- Grayscale, palette, CMYK, 1-bit and 16-bit (I;16) images become RGB; 16-bit data keeps its full range.
- Pillow's decompression-bomb guard stays on: images above `MAX_IMAGE_PIXELS` (50 megapixels) are refused with a
  ValueError, whatever their source. Images smaller than `MIN_IMAGE_SIDE` (16 px) on a side are refused too: a HOG
  cell is 8 px, and nothing useful is left of a face that small.
- Non-square images are stretched to the model's square resolution and the result stretched back; pass square,
  aligned face crops for the best results.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from hoginpaint.masks.user_input import to_mask_tensor
from hoginpaint.pixel_values import to_unit_range
from hoginpaint.prefill import correction_ramp

MAX_IMAGE_PIXELS = 50_000_000
MIN_IMAGE_SIDE = 16

# Lower than Pillow's default (~89 MP) on purpose: a face photo never needs more, and the check runs when a file is
# opened, before its pixels are decoded.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

ImageLike = Union[str, Path, Image.Image, np.ndarray, torch.Tensor]

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def open_image_file(path: str | Path) -> Image.Image:
    """Open an image file with the decompression-bomb guard and EXIF orientation applied (any mode)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file; pass the path of an image (PNG, JPEG, ...)")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse both, with the same message.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{path} is larger than {MAX_IMAGE_PIXELS:,} pixels ({error}); downscale it before inpainting"
        ) from None
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image Pillow can read; pass a PNG, JPEG, WebP, BMP or TIFF file") from None
    except OSError as error:
        raise ValueError(f"could not read the image {path}: {error}; is the file complete?") from None
    return image


def load_image(image: ImageLike) -> torch.Tensor:
    """One image of any supported kind → float `(3, H, W)` in [0, 1].

    Accepts a path; a PIL image of any mode; an ndarray `(H, W)`, `(H, W, 3)` or `(H, W, 4)` of uint8, uint16 or
    float in [0, 1]; a tensor `(3, H, W)` or `(1, H, W)` of float in [0, 1] or uint8.
    """
    if isinstance(image, (str, Path)):
        image = open_image_file(image)
    if isinstance(image, Image.Image):
        tensor = _channels_first(_pil_to_array(image))
    elif isinstance(image, np.ndarray):
        if image.ndim >= 2:
            _check_pixel_count(image.shape[:2][::-1], source="image")  # before copying a huge array
        tensor = _channels_first(_normalise_array(image))
    elif isinstance(image, torch.Tensor):
        if image.ndim >= 2:
            _check_pixel_count(tuple(image.shape[-2:])[::-1], source="image")
        tensor = _tensor_to_image(image)
    else:
        raise ValueError(
            f"cannot read an image from {type(image).__name__}; pass a path, a PIL image, an ndarray or a tensor"
        )
    _check_size(tuple(tensor.shape[-2:]), source="image")
    return tensor


def load_images(images: ImageLike | Sequence[ImageLike]) -> list[torch.Tensor]:
    """One image, a list of images, or a `(B, 3, H, W)` batch → list of float `(3, H, W)` tensors in [0, 1]."""
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return [load_image(image) for image in images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("got an empty list of images; pass at least one image")
        return [load_image(image) for image in images]
    return [load_image(images)]


def load_mask(mask: ImageLike, from_alpha: bool = False) -> torch.Tensor:
    """One mask of any supported kind → float `(1, H, W)` in {0, 1}, 1 = hole (white in an image file).

    A path is opened like an image (EXIF orientation applied); the rest is `hoginpaint.masks.user_input.to_mask_tensor`'s
    reading: luminance above 0.5 is a hole, or opacity with `from_alpha=True` (a brush layer on transparency).
    """
    if isinstance(mask, (str, Path)):
        mask = open_image_file(mask)
    if isinstance(mask, Image.Image):
        _check_pixel_count(mask.size, source="mask")
    if isinstance(mask, torch.Tensor) and mask.ndim == 4 and mask.shape[0] != 1:
        raise ValueError(f"expected one mask, got a batch of {mask.shape[0]}; use load_masks")
    tensor = to_mask_tensor(mask, from_alpha=from_alpha)  # (B, 1, H, W)
    if tensor.shape[0] != 1:
        shape = tuple(mask.shape) if isinstance(mask, (np.ndarray, torch.Tensor)) else None
        raise ValueError(f"expected one mask, got a batch of {tensor.shape[0]} (shape {shape} is read as "
                         f"{tensor.shape[0]} masks of {tensor.shape[-1]}x{tensor.shape[-2]}); pass one (H, W) mask, "
                         "or use load_masks for a batch")
    _check_size(tuple(tensor.shape[-2:]), source="mask")
    return tensor[0].cpu()


def load_masks(masks: ImageLike | Sequence[ImageLike], from_alpha: bool = False) -> list[torch.Tensor]:
    """One mask, a list of masks, or a `(B, 1, H, W)` batch → list of float `(1, H, W)` tensors in {0, 1}."""
    if isinstance(masks, torch.Tensor) and masks.ndim == 4:
        return [load_mask(mask, from_alpha) for mask in masks]
    if isinstance(masks, (list, tuple)):
        if not masks:
            raise ValueError("got an empty list of masks; pass one mask per image")
        return [load_mask(mask, from_alpha) for mask in masks]
    return [load_mask(masks, from_alpha)]


def check_mask_matches(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Refuse a mask whose size differs from its image's: stretching it would move the hole."""
    (image_h, image_w), (mask_h, mask_w) = image.shape[-2:], mask.shape[-2:]
    if (image_h, image_w) != (mask_h, mask_w):
        raise ValueError(
            f"mask is {mask_w}x{mask_h} but image is {image_w}x{image_h}; pass a mask of the image's size"
        )


def to_pil(image: torch.Tensor) -> Image.Image:
    """Float `(3, H, W)` or `(1, H, W)` in [0, 1] → RGB or L PIL image (rounded to 8 bits)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got {tuple(image.shape)}")
    array = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


@dataclass
class PreparedBatch:
    """A batch at the model's resolution, and what `paste_back` needs to return to each input's own size."""

    image: torch.Tensor  # (B, 3, R, R) in [0, 1]
    mask: torch.Tensor  # (B, 1, R, R) in {0, 1}; a hole pixel of the input is never lost (max-pooled)
    originals: list[torch.Tensor]  # each (3, H_i, W_i), the inputs as given
    original_masks: list[torch.Tensor]  # each (1, H_i, W_i)


def resize_images(images: Sequence[torch.Tensor], resolution: int) -> torch.Tensor:
    """Images `(3, H_i, W_i)` in [0, 1] → one `(B, 3, R, R)` batch, resized bicubic with antialiasing."""
    size = (resolution, resolution)
    return torch.cat([
        F.interpolate(image[None], size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        for image in images
    ])


def prepare(images: list[torch.Tensor], masks: list[torch.Tensor], resolution: int) -> PreparedBatch:
    """Resize images `(3, H_i, W_i)` and masks `(1, H_i, W_i)` to one `(B, ·, R, R)` batch for the model.

    Images are resized with antialiasing (bicubic). Masks are resized with adaptive max-pooling: every output pixel
    whose footprint touches a hole pixel is a hole, so the model regenerates everything the hole can reach. An
    empty mask stays empty (the result is then the input, unchanged); a full mask is allowed (the whole image is
    generated).
    """
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images and {len(masks)} masks; pass one mask per image")
    for image, mask in zip(images, masks):
        check_mask_matches(image, mask)
    resized_masks = [F.adaptive_max_pool2d(mask[None], (resolution, resolution)) for mask in masks]
    return PreparedBatch(
        image=resize_images(images, resolution),  # (B, 3, R, R)
        mask=torch.cat(resized_masks),  # (B, 1, R, R)
        originals=list(images),
        original_masks=list(masks),
    )


def paste_back(
    original: torch.Tensor, result_lowres: torch.Tensor, mask_fullres: torch.Tensor, feather: int = 4,
    base: torch.Tensor | None = None, base_lowres: torch.Tensor | None = None, ramp: float = 0.0,
) -> torch.Tensor:
    """Bring the model's output back to the input's size and put it in the hole only.

    `original` `(3, H, W)` in [0, 1]; `result_lowres` `(3, R, R)` in [0, 1]; `mask_fullres` `(1, H, W)`, 1 = hole.
    Returns `(3, H, W)`: bit-identical to `original` wherever the mask is 0.

    The feather works inward only. Upsampled output and the full-resolution input disagree slightly along the rim
    of the hole (resampling, colour drift), which shows as a seam. The disagreement is measured on known pixels
    within `feather` pixels of the rim and added to the hole's pixels there, fading to nothing `feather` pixels
    deep. The input's own pixels under the hole are never read, so a hole painted over (or holding the ground truth)
    cannot leak into the result. `feather=0` pastes the upsampled output as is.

    `base` `(3, H, W)` and `base_lowres` `(3, R, R)`: a full-resolution fill of the hole and the same fill at the
    model's resolution (what the model refined). Then only the model's change, `result_lowres - base_lowres`, is
    upsampled and added to `base`: where the model changed nothing, the result is the full-resolution fill exactly.
    `ramp` (pixels of the input; with a `base` only): the change fades in over this many pixels from the hole's rim
    (`hoginpaint.prefill.correction_ramp`).
    """
    if isinstance(feather, bool) or not isinstance(feather, int) or feather < 0:
        raise ValueError(f"feather must be an int >= 0 (pixels), got {feather!r}")
    check_mask_matches(original, mask_fullres)
    original = original.float()
    height, width = original.shape[-2:]
    hole = mask_fullres.to(original.device) >= 0.5  # (1, H, W)
    if (base is None) != (base_lowres is None):
        raise ValueError("pass both base and base_lowres (a fill at full and at model resolution), or neither")
    change = result_lowres.float() if base_lowres is None else result_lowres.float() - base_lowres.float()
    upsampled = F.interpolate(
        change[None].to(original.device), size=(height, width), mode="bicubic", antialias=True, align_corners=False,
    )[0]  # (3, H, W)
    if base is not None:
        if ramp > 0:
            upsampled = upsampled * correction_ramp(mask_fullres[None].to(original.device).float(), ramp)[0]
        upsampled = upsampled + base.float().to(original.device)
    upsampled = upsampled.clamp(0, 1)
    if feather > 0:
        known = (~hole).float()[None]  # (1, 1, H, W)
        window = 2 * feather + 1
        # Normalised convolution: the mean input-minus-output gap over the known pixels of each window.
        gap = F.avg_pool2d(((original - upsampled)[None] * known), window, stride=1, padding=feather,
                           count_include_pad=False)  # (1, 3, H, W)
        known_share = F.avg_pool2d(known, window, stride=1, padding=feather, count_include_pad=False)
        correction = gap / known_share.clamp_min(1e-6)
        # A rim pixel has about half its window known: full weight there, none where the window sees no known pixel.
        weight = (2 * known_share).clamp(max=1)
        upsampled = (upsampled + weight[0] * correction[0]).clamp(0, 1)
    return torch.where(hole, upsampled, original)


def _check_pixel_count(size: tuple[int, int], source: str) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{source} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS:,}; downscale it before inpainting"
        )


def _check_size(shape: tuple[int, ...], source: str) -> None:
    height, width = shape[-2:]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"{source} is {width}x{height}; the smallest accepted is {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels"
        )
    _check_pixel_count((width, height), source=source)


def _channels_first(values: np.ndarray) -> torch.Tensor:
    """Float32 `(H, W)` or `(H, W, 3)` → `(3, H, W)` tensor, grayscale repeated on the three channels."""
    if values.ndim == 2:
        values = np.repeat(values[..., None], 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1).contiguous()


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """Any PIL mode → float32 `(H, W)` or `(H, W, 3)` in [0, 1]; transparency composited on white."""
    _check_pixel_count(image.size, source="image")
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's convert("RGB") clips 16-bit values at 255; scale them instead.
        return np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        return _normalise_array(np.asarray(image.convert("RGBA")))
    if image.mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _normalise_array(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / bool / float `(H, W)`, `(H, W, 1|3|4)` → float32 `(H, W)` or `(H, W, 3)` in [0, 1].

    An alpha channel is composited on white.
    """
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise ValueError(
            f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got {array.shape}"
            " (channels-first arrays: transpose them to channels-last)"
        )
    _check_size(array.shape[:2], source="image")  # an empty or tiny image is refused for its size first
    values = to_unit_range(array, "the image")
    if values.ndim == 3 and values.shape[-1] == 4:
        alpha = values[..., 3:]
        values = values[..., :3] * alpha + (1.0 - alpha)
    return values.astype(np.float32)


def _tensor_to_image(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(
            f"an image tensor must be (3, H, W), (1, H, W) or a (B, 3, H, W) batch; got {tuple(tensor.shape)}"
            " (channels-last tensors: permute them to channels-first)"
        )
    _check_size(tuple(tensor.shape), source="image")  # an empty or tiny image is refused for its size first
    image = to_unit_range(tensor.detach().cpu(), "the image tensor")
    return image.expand(3, -1, -1).contiguous()
