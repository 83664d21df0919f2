"""Convert the published PyTorch DeepFill v2 weights to `DeepFillV2Generator`'s state dict.

Source layout: nipponjo/deepfillv2-pytorch, `model/networks.py` (`Generator(cnum_in=5, cnum=48)`), whose checkpoints
`states_pt_places2.pth` / `states_pt_celebahq.pth` hold the generator's state dict under the key "G". Its gated
convolutions (`GConv`) keep their weights in `.conv.weight` / `.conv.bias`; the upsampling ones (`GDeConv`) in
`.conv.conv.*`. Load the file yourself, without unpickling code, and pass the generator's part:

    checkpoint = torch.load("states_pt_places2.pth", map_location="cpu", weights_only=True)
    generator = DeepFillV2Generator()
    generator.load_state_dict(convert_deepfill_state_dict(checkpoint["G"]))

The same repository's `states_tf_*.pth` (the official TensorFlow checkpoint converted, keys `conv1.conv.weight`,
`xconv1...`, `pmconv1...`) is refused: those weights were trained with TensorFlow's asymmetric "SAME" padding, which
this generator does not reproduce. The published weights were not tried here (no network access when this was
written); the conversion is tested on synthetic state dicts of the same keys and shapes.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hoginpaint.baselines.deepfill import DeepFillV2Generator


def _down(name: str) -> list[str]:
    return [f"{name}.conv1_downsample.conv", f"{name}.conv2.conv"]


def _up(name: str) -> list[str]:
    return [f"{name}.conv1_upsample.conv.conv", f"{name}.conv2.conv"]


# The port's convolutions, in the order of the `nn.Conv2d`s of each of our `nn.Sequential`s.
PORT_LAYERS: dict[str, list[str]] = {
    "coarse.encoder": ["stage1.conv1.conv", *_down("stage1.down_block1"), *_down("stage1.down_block2")],
    "coarse.middle": [f"stage1.conv_bn{i}.conv" for i in range(1, 8)],
    "coarse.decoder": [*_up("stage1.up_block1"), *_up("stage1.up_block2"), "stage1.conv_to_rgb.conv"],
    "refine.conv_branch": [
        "stage2.b1_conv1.conv", *_down("stage2.b1_down_block1"), *_down("stage2.b1_down_block2"),
        *(f"stage2.b1_conv_bn{i}.conv" for i in range(1, 6)),
    ],
    "refine.attention_encoder": [
        "stage2.b2_conv1.conv", *_down("stage2.b2_down_block1"), *_down("stage2.b2_down_block2"),
        "stage2.b2_conv_bn1.conv",
    ],
    "refine.attention_decoder": ["stage2.b2_conv_bn4.conv", "stage2.b2_conv_bn5.conv"],
    "refine.decoder": [
        "stage2.conv_bn6.conv", "stage2.conv_bn7.conv", *_up("stage2.up_block1"), *_up("stage2.up_block2"),
        "stage2.conv_to_rgb.conv",
    ],
}


def layer_map(generator: DeepFillV2Generator) -> dict[str, str]:
    """Our convolution's module path → the port's, e.g. `coarse.encoder.0.conv` → `stage1.conv1.conv`."""
    mapping = {}
    for sequential_name, port_names in PORT_LAYERS.items():
        sequential = generator.get_submodule(sequential_name)
        ours = [f"{sequential_name}.{name}" for name, module in sequential.named_modules()
                if isinstance(module, nn.Conv2d)]
        if len(ours) != len(port_names):
            raise RuntimeError(f"{sequential_name} has {len(ours)} convolutions, the port {len(port_names)}")
        mapping.update(zip(ours, port_names))
    return mapping


def convert_deepfill_state_dict(
    state_dict: Mapping[str, torch.Tensor], base_channels: int = 48
) -> dict[str, torch.Tensor]:
    """The port's generator state dict (already loaded tensors) → a state dict for `DeepFillV2Generator`.

    Every key must be used and every tensor must have the expected shape; anything else is a `ValueError` naming
    the keys, so a checkpoint of another layout or width is never half-loaded.
    """
    if "G" in state_dict and not isinstance(state_dict["G"], torch.Tensor):
        raise ValueError('got a whole checkpoint (it has a "G" entry); pass checkpoint["G"], the generator\'s part')
    if any(key.startswith(("conv1.", "xconv1.", "pmconv1.")) for key in state_dict):
        raise ValueError(
            "this is the TensorFlow-converted layout (states_tf_*.pth), trained with TensorFlow's SAME padding, "
            "which this generator does not reproduce; use the PyTorch-trained states_pt_*.pth weights"
        )
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        generator = DeepFillV2Generator(base_channels=base_channels)
    target_shapes = {key: tuple(tensor.shape) for key, tensor in generator.state_dict().items()}
    converted = {}
    for ours, port in layer_map(generator).items():
        for parameter in ("weight", "bias"):
            source_key, target_key = f"{port}.{parameter}", f"{ours}.{parameter}"
            if source_key not in state_dict:
                raise ValueError(
                    f"{source_key} is missing from the state dict; pass the generator state dict of "
                    f"nipponjo/deepfillv2-pytorch model/networks.py (checkpoint['G'])"
                )
            tensor = state_dict[source_key]
            if tuple(tensor.shape) != target_shapes[target_key]:
                raise ValueError(
                    f"{source_key} has shape {tuple(tensor.shape)}, expected {target_shapes[target_key]} for "
                    f"base_channels={base_channels}; pass the base_channels (cnum) the weights were trained with"
                )
            converted[target_key] = tensor.detach().clone().float()
    unused = sorted(set(state_dict) - _port_keys(generator))
    if unused:
        raise ValueError(f"the state dict has keys this layout does not use: {unused[:5]} ({len(unused)} in all)")
    return converted


def _port_keys(generator: DeepFillV2Generator) -> set[str]:
    return {f"{port}.{parameter}" for port in layer_map(generator).values() for parameter in ("weight", "bias")}
