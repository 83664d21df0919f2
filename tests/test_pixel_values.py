"""hoginpaint.pixel_values: one reading of dtypes for image and mask input, arrays and tensors alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoginpaint.pixel_values import to_unit_range

_RNG = np.random.default_rng(0)
_BYTES = _RNG.integers(0, 256, (5, 7), dtype=np.uint8)
_WORDS = _RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
_FLOATS = _RNG.random((5, 7))
_LABELS = (_FLOATS > 0.5).astype(np.int64)


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        (_BYTES, "image", _BYTES.astype(np.float32) / np.float32(255)),
        (_BYTES, "mask", _BYTES.astype(np.float32) / np.float32(255)),
        (_WORDS, "image", _WORDS.astype(np.float32) / np.float32(65535)),
        (_FLOATS > 0.5, "image", (_FLOATS > 0.5).astype(np.float32)),
        (_FLOATS, "image", _FLOATS.astype(np.float32)),
        (_FLOATS.astype(np.float16), "mask", _FLOATS.astype(np.float16).astype(np.float32)),
        (_LABELS, "mask", _LABELS.astype(np.float32)),
        (_LABELS.astype(np.uint16), "mask", _LABELS.astype(np.float32)),  # a mask's uint16 are labels, not 16-bit data
    ],
    ids=["uint8 image", "uint8 mask", "uint16 image", "bool", "float64", "float16", "int64 labels", "uint16 labels"],
)
def test_arrays_and_tensors_read_the_same_values(values, kind, expected) -> None:
    from_array = to_unit_range(values, "the values", kind)
    assert from_array.dtype == np.float32 and from_array.shape == values.shape
    np.testing.assert_array_equal(from_array, expected)
    from_tensor = to_unit_range(torch.from_numpy(values), "the values", kind)
    assert from_tensor.dtype == torch.float32
    np.testing.assert_array_equal(from_tensor.numpy(), expected)  # bit-identical to the array's reading


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        (np.zeros((0, 3)), "image", r"the values is empty \(shape \(0, 3\)\)"),
        (np.full((2, 2), 255.0), "image", r"values in \[255, 255\]; float images must lie in \[0, 1\] — divide"),
        (torch.full((2, 2), -0.5), "mask", r"values in \[-0.5, -0.5\]; float masks must lie in \[0, 1\] \(1 = hole\)"),
        (np.full((2, 2), np.inf), "mask", "holds NaN or infinite values"),
        (torch.full((2, 2), float("nan")), "image", "holds NaN or infinite values"),
        (np.full((2, 2), 255, np.int64), "mask", r"values in \[255, 255\]; integer masks other than uint8 must hold"),
        (np.zeros((2, 2), np.int64), "image", "has dtype int64; pass uint8, uint16 or float"),
        (np.array([["a"]]), "mask", r"has dtype <U1; pass bool, uint8, integer 0/1 or float"),
        (torch.zeros(2, 2, dtype=torch.complex64), "mask", "has dtype torch.complex64; pass bool"),
    ],
)
def test_what_is_no_pixel_value_is_refused_with_what_to_pass(values, kind, message) -> None:
    with pytest.raises(ValueError, match=message):
        to_unit_range(values, "the values", kind)

