"""Shared fixtures: where the real data lives, and small batches of it.

Tests that read ../shared/data skip with a clear reason when it is absent (a user's fresh clone); CI always has it.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("HOGINPAINT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))



def pytest_configure(config: pytest.Config) -> None:
    # Two cores in CI: at most two intra-op threads. In a hook, not at import, so that scripts importing the
    # helpers below (benchmarks) keep their own thread settings.
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "faces").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def faces_dir(shared_data: Path) -> Path:
    return shared_data / "faces"


@pytest.fixture(scope="session")
def nvidia_mask_dir(shared_data: Path) -> Path:
    path = shared_data / "masks" / "nvidia-irregular-test"
    if not path.is_dir():
        pytest.skip(f"NVIDIA masks not found at {path}")
    return path


def load_validation_faces(faces_dir: Path, count: int, size: int = 256) -> list[Image.Image]:
    """The first `count` validation faces as RGB PIL images resized to `size` (bicubic)."""
    import pyarrow.parquet as pq

    table = pq.read_table(faces_dir / "validation-00000-of-00001.parquet", columns=["image"]).slice(0, count)
    images = []
    for row in table.column("image").to_pylist():
        image = Image.open(io.BytesIO(row["bytes"])).convert("RGB")
        images.append(image.resize((size, size), Image.BICUBIC) if size else image)
    return images


def pil_to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB PIL images of one size → float `(B, 3, H, W)` in [0, 1]."""
    array = np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="session")
def val_face_images(faces_dir: Path) -> list[Image.Image]:
    """Eight real validation faces, 256x256 RGB PIL images."""
    return load_validation_faces(faces_dir, 8)


@pytest.fixture(scope="session")
def val_faces(val_face_images: list[Image.Image]) -> torch.Tensor:
    """Eight real validation faces, `(8, 3, 256, 256)` in [0, 1]."""
    return pil_to_tensor(val_face_images)
