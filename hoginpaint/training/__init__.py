"""Training: what `train_accelerate.py` composes for one run.

- `options`: `TrainConfig`, every option with its default and help, and its parser.
- `data`: the training stream (faces, interleaved sources, masks; facial-part holes from `landmarks` caches) and
  the fixed validation batch.
- `landmarks`: the landmark caches of training sets (`scripts/cache_landmarks.py` writes them).
- `types`: what the trainer knows of a model (`TrainableModel`) and the types both trainable models share.
- `hog_model`: the HOG-guided GAN as a `TrainableModel` (`HOGInpaintTraining`); DeepFill v2's is
  `hoginpaint.baselines.deepfill.DeepFillTraining`.
- `trainer`: one GAN step, the optimizers, the moving average and the published model.
- `validation`: metrics and image grids on the fixed batch; `checkpoints`: atomic, resumable checkpoints.

The names below are importable from here; each is loaded with its module on first use, so that importing one
piece (say `types`, as DeepFill does) does not import the data stack.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "options", "config_from_args": "options", "build_parser": "options",
    "GANModels": "types", "Stage": "types", "STAGES": "types", "StageOutputs": "types", "TrainableModel": "types",
    "TrainedModel": "types", "GuidanceKind": "types",
    "HOGInpaintTraining": "hog_model",
    "train_step": "trainer", "StepResult": "trainer", "make_optimizers": "trainer", "update_ema": "trainer",
    "forward_stage": "trainer", "trained_model": "trainer",
    "training_batches": "data", "validation_data": "data",
    "validate": "validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hoginpaint.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
