"""`python -m hoginpaint.evaluation`: inpainting methods side by side on the same faces and holes, per hole size.

    python -m hoginpaint.evaluation --methods hoginpaint=org/hoginpaint-celeba deepfill=org/deepfill-celeba \\
        telea biharmonic --dataset ../shared/data/faces --split validation \\
        --mask_dir ../shared/data/masks/nvidia-irregular-test --feature_masks --output_dir evaluation

What is measured
----------------
- Faces: the first `--max_samples` decodable images of `--split` of `--dataset` (a Hub id or a local folder), each
  centre-cropped and resized to `--resolution` (`hoginpaint.training.data.center_crop_resize`, as in training).
- Holes: the NVIDIA irregular masks of `--mask_dir`, by default only the evaluation-reserved ones (`split="eval"`,
  indices divisible by 10: 200 per bucket) in the six hole-ratio buckets 1-10 % … 50-60 %; with `--feature_masks`
  also three facial-feature holes per face (eyes, nose, mouth: `hoginpaint.faces.feature_mask` on the ground truth's
  68 landmarks), one "mask set" each.
- Pairing: in NVIDIA bucket b, face i gets the mask `order_b[i % n_b]`, where `order_b` is
  `np.random.default_rng([seed, b]).permutation(n_b)` over the bucket's `n_b` masks: each mask is used once before
  any is used again, a face's mask does not depend on `--max_samples`, and every method sees exactly the same
  (face, mask) pairs (the masks are drawn once, before any method runs).
- Metrics (`hoginpaint.metrics`), per face on the whole image: L1, PSNR (identical images → +inf: the mean is over
  the finite values and the count of infinite ones is reported beside it), SSIM (RGB, skimage's Gaussian SSIM),
  SSIM-gray (EdgeConnect's), and the identity metrics: dlib's face-descriptor distance between ground truth and
  result, and the rate of results below 0.6 ("same person"). Faces in which dlib finds no face on the ground truth
  are counted and left out of the identity metrics (and of the feature-mask sets, which need landmarks). LPIPS and
  FID are reported as skipped, with the reason, unless their real pretrained networks are on this machine.
- Realism of the hole (`hoginpaint.realism`, what PSNR hides), per face: `hole_detail` (mean |Laplacian| in the
  eroded hole) and `hole_contrast` (luminance std there), result over ground truth: 1 is the truth's, less (blur,
  flat fill) and more (noise, streaks) are worse; `landmark_error` (dlib's 68 points under the hole over the eye
  distance, at 256 px, from one ground-truth detection per face shared by every method: `landmark_references`),
  faces with no face or no landmark under the hole left out and counted (`landmark_samples`, `landmark_no_face`,
  `landmark_no_point`; per face `landmark_face`: dlib found it); `hog_hole_distance`; `boundary_step_vs_truth`, the
  luminance step across the hole's border over the ground truth's across the same border (1: as seamless as the
  photo). `boundary_step_ratio` (the step over that across copies of the hole's outline in the same photo: no ground
  truth needed) comes with the truth's own (`boundary_step_ratio_truth`, e.g. ~1.4 around the eyes) and its count
  (`boundary_ratio_samples`: at 256 px a copy fits beside every feature hole but beside only ~20 % of the NVIDIA
  1-10 % holes, 3 % of the 10-20 % ones and no larger one). Means are over the faces where a value is defined.

Outputs in `--output_dir` (written by `hoginpaint.evaluation.report`): `metrics.csv` (one row per method x mask set),
`samples.csv` (one row per method x mask set x face), `metrics.json` (settings, summary, skipped metrics, timings),
`report.md` (markdown tables for the model card, with the settings: the pixel and identity metrics, then the
realism of the hole), `plot_<metric>.png` (each metric against the mean hole ratio, one line per method) and
`grid_<mask set>.png` (masked | each method | ground truth, for `--grid_images` faces per set).

Runtime (two shared CPU cores, 256 px, per face and mask): untrained full-width hoginpaint ~0.7 s, DeepFill v2
~0.35 s, biharmonic 0.14-0.30 s (1-10 % to 50-60 % holes), Telea < 0.03 s, the identity descriptor ~0.05 s per
result. The realism metrics add ~25 ms per face and method on one free core (detail 4, contrast 2, landmarks 4, HOG 5,
boundary steps 6, step ratio 2 ms; 16 faces, 3 NVIDIA buckets and the feature holes) and ~2 ms per face and set for
the truth's step ratio; the landmark reference is free from 256 px (`analyse_faces`' detection), ~40 ms per face once
below; contended cores make all of it 3-4x slower. The networks, not biharmonic, dominate; `--batch_size` sets how
many faces go through a method at once.
"""
from __future__ import annotations

import argparse
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hoginpaint import config, faces, metrics, realism
from hoginpaint.config import option
from hoginpaint.evaluation.measures import (
    PIXEL_METRICS,
    GroundTruthFaces,
    analyse_faces,
    landmark_references,
    mean_of,
    realism_metrics,
    realism_summary,
    sample_metrics,
)
from hoginpaint.evaluation.report import EvaluationResult, write_outputs
from hoginpaint.masks import FolderMasks

MaskSplit = Literal["eval", "train", "all"]
NETWORK_METHODS = ("hoginpaint", "deepfill")



@dataclass
class EvalConfig:
    """Every option of `python -m hoginpaint.evaluation`; the argument parser is generated from these fields."""

    methods: list[str] = option([], "methods to compare: NAME or NAME=MODEL (a Hub id or a local folder), NAME in "
                                     "hoginpaint, deepfill, telea, navier-stokes, biharmonic")
    random_init: bool = option(False, "build untrained networks for hoginpaint / deepfill given without a model "
                                       "(to test the evaluation before trained weights exist; labelled in the "
                                       "report)")
    random_init_base_channels: int | None = option(None, "width of the untrained networks; None: each "
                                                          "network's own (hoginpaint 64, DeepFill 48)")
    random_init_residual_blocks: int | None = option(None, "residual blocks of an untrained hoginpaint; None: 8")
    dataset: str = option("flwrlabs/celeba", "Hub dataset id or local folder (images or parquet shards)")
    split: str | None = option(None, "split to evaluate on; None: the first of validation, valid, test")
    image_column: str = option("image", "column holding the images")
    max_samples: int = option(200, "evaluate on the first N decodable faces of the split")
    resolution: int = option(256, "side of the square faces the methods see and the metrics compare (>= 64, a "
                                   "multiple of 8)")
    mask_dir: str | None = option(None, "folder of the NVIDIA irregular masks (00000.png … 11999.png)")
    mask_split: MaskSplit = option("eval", "which NVIDIA masks: eval (indices divisible by 10, never trained on), "
                                      "train or all")
    buckets: list[int] = option([0, 1, 2, 3, 4, 5], "NVIDIA hole-ratio buckets (0 = 1-10 %% … 5 = 50-60 %%)")
    feature_masks: bool = option(False, "also evaluate holes over the eyes, the nose and the mouth (from dlib's 68 "
                                         "landmarks on the ground truth)")
    output_dir: str = option("evaluation", "where the CSV, JSON, report, plots and grids are written")
    seed: int = option(0, "seed of the face-mask pairing and of untrained networks")
    batch_size: int = option(8, "faces per method call")
    grid_images: int = option(4, "faces shown per mask set in the sample grids (0: no grids)")
    device: str = option("cpu", "torch device for the networks, e.g. cuda")

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("pass --methods, e.g. --methods hoginpaint=PATH_OR_ID telea biharmonic")
        if self.mask_dir is None and not self.feature_masks:
            raise ValueError("nothing to evaluate: pass --mask_dir (NVIDIA irregular masks) and/or --feature_masks")
        if self.resolution < 64 or self.resolution % 8:
            raise ValueError(f"--resolution must be >= 64 (EdgeConnect's SSIM window is 51 px) and a multiple of 8, "
                             f"got {self.resolution}")
        for name in ("max_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.grid_images < 0:
            raise ValueError(f"--grid_images must be >= 0, got {self.grid_images}")
        if not self.buckets or any(not 0 <= bucket <= 5 for bucket in self.buckets):
            raise ValueError(f"--buckets must be one or more of 0..5, got {self.buckets}")
        specs = [parse_method(spec) for spec in self.methods]
        labels = [spec.label for spec in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"a method is listed twice in --methods {' '.join(self.methods)}; evaluate one model "
                             "per method name per run")
        for spec in specs:
            if spec.untrained and not self.random_init:
                raise ValueError(f"{spec.name} needs trained weights: pass {spec.name}=PATH_OR_HUB_ID, or "
                                 "--random_init to evaluate an untrained network")


def build_parser() -> argparse.ArgumentParser:
    """One `--option` per `EvalConfig` field, its help and default from the field."""
    return config.build_parser(EvalConfig, prog="python -m hoginpaint.evaluation", description=__doc__.split("\n")[0])


def config_from_args(argv: list[str] | None = None) -> EvalConfig:
    """Parse `argv` (default: sys.argv) into a validated `EvalConfig`; a bad value exits with the parser's usage."""
    return config.parse_config(EvalConfig, argv, parser=build_parser())


# ---------------------------------------------------------------------------------------------------------------------
# Methods


@dataclass(frozen=True)
class MethodSpec:
    """One `--methods` entry: the method's name and its model (None: classical, or untrained)."""

    name: str
    model: str | None

    @property
    def untrained(self) -> bool:
        """A network given without a model: it runs with random weights (`--random_init`)."""
        return self.name in NETWORK_METHODS and self.model is None

    @property
    def label(self) -> str:
        """The method's name in every output; untrained networks say so."""
        return f"{self.name} (random init)" if self.untrained else self.name


def parse_method(spec: str) -> MethodSpec:
    """`"telea"` or `"hoginpaint=PATH_OR_ID"` → `MethodSpec`."""
    from hoginpaint.methods import CLASSICAL_METHODS, available_methods

    name, _, model = spec.partition("=")
    if name not in available_methods():
        raise ValueError(f"unknown method {name!r} in --methods; expected NAME or NAME=MODEL with NAME one of "
                         f"{', '.join(available_methods())}")
    if name in CLASSICAL_METHODS and model:
        raise ValueError(f"{name} is a classical method without weights; pass it as {name}, not {spec}")
    return MethodSpec(name, model or None)


def method_description(spec: MethodSpec) -> str:
    """What the report says a method ran with."""
    if spec.name in NETWORK_METHODS:
        return spec.model if spec.model else "RANDOM INIT (untrained)"
    return "classical"


def build_method(spec: MethodSpec, config: EvalConfig) -> Callable:
    """The callable `method(image=..., mask_image=..., output_type="pt")` for one `--methods` entry."""
    from hoginpaint import methods

    if spec.name not in NETWORK_METHODS:
        return methods.load(spec.name)
    if spec.model is not None:
        method = methods.load(spec.name, model=spec.model)
    else:
        sizes = {"base_channels": config.random_init_base_channels}
        if spec.name == "hoginpaint":
            sizes["residual_blocks"] = config.random_init_residual_blocks
        method = methods.load(spec.name, random_init=True, resolution=config.resolution, seed=config.seed,
                              **{key: value for key, value in sizes.items() if value is not None})
    return method.to(device=config.device)


# ---------------------------------------------------------------------------------------------------------------------
# Faces, masks and their pairing


def load_faces(config: EvalConfig) -> tuple[torch.Tensor, list[int]]:
    """The first `max_samples` decodable faces of the split → (`(N, 3, R, R)` in [0, 1], their positions in it)."""
    from hoginpaint.training.data import center_crop_resize, decode_image, load_image_dataset, validation_split_name

    split = config.split or validation_split_name(config.dataset)
    stream = load_image_dataset(config.dataset, split, config.image_column, streaming=True)
    images, positions = [], []
    for position, example in enumerate(stream):
        image = decode_image(example[config.image_column])
        if image is None:
            continue
        images.append(center_crop_resize(image, config.resolution))
        positions.append(position)
        if len(images) == config.max_samples:
            break
    if not images:
        raise ValueError(f"no decodable image in split {split!r} of {config.dataset!r}; check --dataset, --split and "
                         "--image_column")
    return torch.stack(images), positions


def pairing(seed: int, bucket: int, num_faces: int, num_masks: int) -> np.ndarray:
    """The mask (position in the bucket's masks) of each face: see the module docstring → `(num_faces,)` int."""
    order = np.random.default_rng([seed, bucket]).permutation(num_masks)
    return order[np.arange(num_faces) % num_masks]


@dataclass
class MaskSet:
    """Holes for (some of) the faces: `masks[k]` `(1, R, R)` goes with face `faces[k]`; `mask_ids[k]` names it."""

    name: str
    kind: str  # "nvidia" or "feature"
    faces: list[int]
    masks: torch.Tensor
    mask_ids: list[str]

    @property
    def mean_hole_ratio(self) -> float:
        return float(self.masks.mean())


def bucket_name(bucket: int) -> str:
    return f"{max(1, 10 * bucket)}-{10 * (bucket + 1)}%"


def nvidia_mask_sets(config: EvalConfig, num_faces: int) -> list[MaskSet]:
    """One mask set per NVIDIA bucket, every face paired with its mask (`pairing`)."""
    sets = []
    for bucket in config.buckets:
        source = FolderMasks(config.mask_dir, buckets=[bucket], split=config.mask_split, augment=False)
        chosen = pairing(config.seed, bucket, num_faces, len(source))
        masks = torch.from_numpy(np.stack([source.mask(int(i), config.resolution) for i in chosen]))[:, None]
        sets.append(MaskSet(bucket_name(bucket), "nvidia", list(range(num_faces)), masks,
                            [f"{source.indices[int(i)]:05d}" for i in chosen]))
    return sets


def feature_mask_sets(ground_truth: GroundTruthFaces, resolution: int) -> list[MaskSet]:
    """Holes over the eyes, the nose and the mouth of every face dlib finds."""
    found = ground_truth.found
    sets = []
    for part in faces.FACE_PARTS:
        masks = [faces.feature_mask(ground_truth.landmarks[i], resolution, part) for i in found]
        tensor = torch.from_numpy(np.stack(masks))[:, None] if masks else torch.zeros(0, 1, resolution, resolution)
        sets.append(MaskSet(part, "feature", found, tensor, [part] * len(found)))
    return sets


# ---------------------------------------------------------------------------------------------------------------------
# The run


def run_evaluation(config: EvalConfig, methods: dict[str, Callable], images: torch.Tensor,
                   mask_sets: Sequence[MaskSet], ground_truth: GroundTruthFaces,
                   learned: dict[str, Callable | metrics.Skipped] | None = None,
                   progress: bool = True) -> EvaluationResult:
    """Run every method on every (face, mask) pair of every mask set, in batches, and measure the results.

    `learned`: `{"lpips": ..., "fid": ...}` from `metrics.load_lpips` / `load_fid`; those that loaded are computed
    (LPIPS per face, FID per method x mask set), the `Skipped` ones are not.
    """
    from tqdm.auto import tqdm

    batches = {mask_set.name: math.ceil(len(mask_set.faces) / config.batch_size) for mask_set in mask_sets}
    bar = tqdm(total=sum(batches.values()) * len(methods), desc="evaluating", unit="batch", disable=not progress)
    samples: list[dict[str, Any]] = []
    seconds = dict.fromkeys(methods, 0.0)
    grids: dict[str, dict[str, list[torch.Tensor]]] = {}
    learned = {name: value for name, value in (learned or {}).items() if callable(value)}
    fid_values: dict[tuple[str, str], float] = {}
    references = landmark_references(images, ground_truth)
    for mask_set in mask_sets:
        fid_results: dict[str, list[torch.Tensor]] = {label: [] for label in methods}
        grid = grids.setdefault(mask_set.name, {"masked": [], **{label: [] for label in methods}, "ground truth": []})
        for start in range(0, len(mask_set.faces), config.batch_size):
            face_ids = mask_set.faces[start:start + config.batch_size]
            truth = images[face_ids]  # (b, 3, R, R)
            mask = mask_set.masks[start:start + config.batch_size]  # (b, 1, R, R)
            boxes = [ground_truth.boxes[i] for i in face_ids]
            descriptors = [ground_truth.descriptors[i] for i in face_ids]
            faces_found = [references[i] for i in face_ids]
            truth_ratio = realism.boundary_step_ratio(truth, mask).tolist()  # once per face: the method's reference
            shown = max(0, min(len(face_ids), config.grid_images - start))  # faces of this batch in the grid
            grid["masked"] += list(torch.where(mask[:shown] >= 0.5, 1.0, truth[:shown]))
            grid["ground truth"] += list(truth[:shown])
            for label, method in methods.items():
                began = time.perf_counter()
                output = method(image=truth, mask_image=mask, output_type="pt")
                seconds[label] += time.perf_counter() - began
                result = torch.stack(output.images).float().clamp(0, 1)
                grid[label] += list(result[:shown])
                values = sample_metrics(truth, result, boxes, descriptors, learned.get("lpips"))
                values |= realism_metrics(truth, result, mask, faces_found)
                values |= {"boundary_step_ratio_truth": truth_ratio,
                           "landmark_face": [reference is not None for reference in faces_found]}
                if "fid" in learned:
                    fid_results[label].append(result)
                for k, face in enumerate(face_ids):
                    samples.append({"method": label, "mask_set": mask_set.name, "kind": mask_set.kind,
                                    "face": face, "mask": mask_set.mask_ids[start + k],
                                    "hole_ratio": float(mask[k].mean()),
                                    **{name: column[k] for name, column in values.items()}})
                bar.update(1)
        for label, results in fid_results.items():
            if results:
                fid_values[label, mask_set.name] = learned["fid"](images[mask_set.faces], torch.cat(results))
    bar.close()
    summary = summarise(samples, methods, mask_sets)
    for row in summary if fid_values else ():
        row["fid"] = fid_values.get((row["method"], row["mask_set"]), math.nan)
    return EvaluationResult(samples, summary, seconds, grids)


def summarise(samples: list[dict[str, Any]], methods: Sequence[str], mask_sets: Sequence[MaskSet]
              ) -> list[dict[str, Any]]:
    """One row per method x mask set: mean metrics, PSNR's infinite count, identity counts."""
    rows = []
    for label, mask_set in itertools.product(methods, mask_sets):
        chosen = [s for s in samples if s["method"] == label and s["mask_set"] == mask_set.name]
        column = {name: np.array([s[name] for s in chosen], dtype=np.float64)
                  for name in (*PIXEL_METRICS, "identity_distance", "same_person", "hole_ratio")}
        measured = ~np.isnan(column["identity_distance"])
        psnr_mean, psnr_infinite = metrics.finite_mean(column["psnr"])
        rows.append({
            "method": label, "mask_set": mask_set.name, "kind": mask_set.kind, "samples": len(chosen),
            "mean_hole_ratio": mean_of(column["hole_ratio"]),
            "l1": mean_of(column["l1"]), "psnr": psnr_mean, "psnr_infinite": psnr_infinite,
            "ssim": mean_of(column["ssim"]), "ssim_gray": mean_of(column["ssim_gray"]),
            "identity_distance": mean_of(column["identity_distance"][measured]),
            "same_person_rate": mean_of(column["same_person"][measured]),
            "identity_samples": int(measured.sum()), "no_face": int((~measured).sum()),
            **realism_summary(chosen),
        })
        if chosen and "lpips" in chosen[0]:
            rows[-1]["lpips"] = mean_of(np.array([s["lpips"] for s in chosen], dtype=np.float64))
    return rows


def main(argv: list[str] | None = None) -> EvaluationResult:
    """Parse the options, run the evaluation and write every output; returns the result."""
    config = config_from_args(argv)
    began = time.perf_counter()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    specs = [parse_method(spec) for spec in config.methods]
    methods = {spec.label: build_method(spec, config) for spec in specs}

    images, positions = load_faces(config)
    ground_truth = analyse_faces(images)
    mask_sets = nvidia_mask_sets(config, len(images)) if config.mask_dir else []
    if config.feature_masks:
        mask_sets += feature_mask_sets(ground_truth, config.resolution)
    learned = {"lpips": metrics.load_lpips(), "fid": metrics.load_fid()}
    result = run_evaluation(config, methods, images, mask_sets, ground_truth, learned)
    settings = {
        **{key: value for key, value in asdict(config).items() if key != "methods"},
        "methods": [f"{spec.label}: {method_description(spec)}" for spec in specs],
        "faces": len(images), "undecodable_skipped": positions[-1] + 1 - len(images),
        "faces_without_detection": len(images) - len(ground_truth.found),
        "pairs": sum(len(mask_set.faces) for mask_set in mask_sets),
        "learned_metrics": {name: (str(value) if isinstance(value, metrics.Skipped) else "computed (columns "
                                   f"{name} of metrics.csv)") for name, value in learned.items()},
        "wall_seconds": time.perf_counter() - began,
    }
    write_outputs(output_dir, result, settings, untrained=any(spec.untrained for spec in specs))
    return result

