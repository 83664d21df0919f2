"""Evaluation: inpainting methods side by side on the same faces and holes (`run`), and what a run writes (`report`).

    python -m hoginpaint.evaluation --methods hoginpaint=checkpoints/hoginpaint telea biharmonic \\
        --dataset ../shared/data/faces --split validation --mask_dir ../shared/data/masks/nvidia-irregular-test \\
        --feature_masks --output_dir evaluation
"""
from __future__ import annotations

from hoginpaint.evaluation.report import SUMMARY_METRICS, EvaluationResult, render_report, write_outputs
from hoginpaint.evaluation.run import EvalConfig, MaskSet, MethodSpec, main, pairing, run_evaluation

__all__ = ["SUMMARY_METRICS", "EvalConfig", "EvaluationResult", "MaskSet", "MethodSpec", "main", "pairing",
           "render_report", "run_evaluation", "write_outputs"]
