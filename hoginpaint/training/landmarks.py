"""Landmarks of a training set's faces, computed once and looked up by image content while training.

Facial-part holes (`hoginpaint.masks.face_parts`) are placed from each face's 68 landmarks. dlib takes 6-15 ms a
face on one CPU core, a cost that a data-loader worker should not pay at every epoch, so `build_landmark_cache`
runs once per data source (`scripts/cache_landmarks.py`) and writes an `.npz` beside the run:

- ``keys``: `(N, 12)` uint8, the BLAKE2b-96 digest of each image's encoded bytes (`image_key`): the lookup needs no
  file name and survives any shuffling, sharding or interleaving of the stream;
- ``landmarks``: `(N, 68, 2)` float32, the landmarks on the image's centred square crop (the crop training takes,
  `hoginpaint.training.data.center_crop_resize`), in units of its side: multiply by the training resolution.

Images in which dlib finds no face are left out; training gives them irregular holes instead.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Side at which faces are detected and landmarked: large enough for dlib's detector without upsampling on the
# aligned 128-200 px crops of the data sets (upsampled once where that finds nothing).
_DETECTION_SIDE = 256


def encoded_bytes(value: Any) -> bytes | None:
    """The encoded bytes of a `datasets` image value (``{"bytes", "path"}``), read from its path when needed."""
    if not isinstance(value, dict):
        return None
    if value.get("bytes") is not None:
        return value["bytes"]
    if value.get("path"):
        try:
            return Path(value["path"]).read_bytes()
        except OSError:
            return None
    return None


def image_key(value: Any) -> bytes | None:
    """The cache key of a `datasets` image value (``{"bytes", "path"}``): a digest of its encoded bytes, or None."""
    data = encoded_bytes(value)
    return None if data is None else hashlib.blake2b(data, digest_size=12).digest()


def square_crop_landmarks(image: Image.Image) -> np.ndarray | None:
    """The 68 landmarks of the largest face on `image`'s centred square crop, in units of the crop's side, or None."""
    from hoginpaint import faces

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((_DETECTION_SIDE, _DETECTION_SIDE),
                                                                     Image.BICUBIC)
    array = np.asarray(square.convert("RGB"))
    boxes = faces.detect_faces(array, upsample=0) or faces.detect_faces(array, upsample=1)
    if not boxes:
        return None
    return (faces.landmarks68(array, boxes[0]) / _DETECTION_SIDE).astype(np.float32)


def build_landmark_cache(values: Iterable[Any], output: str | Path, total: int | None = None,
                         progress: bool = True) -> dict[str, int]:
    """Landmark every image value of `values` and write the cache to `output` (atomically) → counts
    ``{"images", "faces", "undecodable"}``."""
    from tqdm.auto import tqdm

    from hoginpaint.training.data import decode_image

    keys, points = [], []
    counts = {"images": 0, "faces": 0, "undecodable": 0}
    seen = set()
    for value in tqdm(values, total=total, disable=not progress, desc="landmarks", unit="img"):
        counts["images"] += 1
        data = encoded_bytes(value)  # read once: the key and the image both come from it
        key = None if data is None else image_key({"bytes": data})
        image = None if data is None else decode_image({"bytes": data})
        if key is None or image is None:
            counts["undecodable"] += 1
            continue
        if key in seen:
            continue
        landmarks = square_crop_landmarks(image)
        if landmarks is not None:
            seen.add(key)
            keys.append(key)
            points.append(landmarks)
    counts["faces"] = len(keys)
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=output.name, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        np.savez(file, keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 12),
                 landmarks=np.stack(points) if points else np.zeros((0, 68, 2), np.float32))
    os.replace(temporary, output)
    return counts


class LandmarkCache:
    """Landmarks by image key, from one or more cache files written by `build_landmark_cache`."""

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = [Path(path).expanduser() for path in paths]
        self._index: dict[bytes, np.ndarray] = {}
        for path in self.paths:
            if not path.is_file():
                raise ValueError(f"landmark cache {path} does not exist; write it with "
                                 "python scripts/cache_landmarks.py --data_dir DATA --output PATH")
            try:
                with np.load(path) as data:
                    keys, landmarks = data["keys"], data["landmarks"]
            except (OSError, ValueError, KeyError) as error:
                raise ValueError(f"{path} is not a landmark cache ({error}); rewrite it with "
                                 "python scripts/cache_landmarks.py") from error
            if landmarks.shape[1:] != (68, 2) or keys.shape != (len(landmarks), 12):
                raise ValueError(f"{path} holds landmarks of shape {landmarks.shape} for {len(keys)} keys, expected "
                                 "(N, 68, 2); rewrite it with python scripts/cache_landmarks.py")
            self._index.update(zip((row.tobytes() for row in keys), landmarks))

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, value: Any) -> np.ndarray | None:
        """The `(68, 2)` landmarks (units of the square crop's side) of a `datasets` image value, or None."""
        key = image_key(value)
        return None if key is None else self._index.get(key)
