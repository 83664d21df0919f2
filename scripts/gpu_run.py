"""A time-boxed GPU run in one command: the GPU benchmarks, then the paper's configuration trained inside a wall-clock
budget, the trained pipeline coming back as a few small files.

Run by `scripts/gpu_run.sh` on the GPU machine (docs/training.md, "Training on a GPU in a time box"), over the pack of
`scripts/pack_gpu_data.py` (`.gpu-run/`); `--dry_run` runs the same path on the CPU at toy size
(tests/test_gpu_run.py).

1. Benchmarks (`benchmarks/bench_*.py --device cuda`, each capped in time; their output goes into the logs):
   HOG vs scikit-image at 64x256², pipeline latency at 256/512 vs DeepFill v2, training images/s per stage (fp32 and
   bf16), peak memory by batch size.
2. Training, `train_accelerate.py` with `--max_train_minutes` per stage: `structure` and `inpaint` at once (they are
   independent: G learns from the ground-truth HOG, and one batch-8 run leaves most of a large GPU idle), then
   `joint` (G guided by the trained G_H). The paper's networks (256 px, base 64, 8 residual blocks, 8-pixel cells) in
   bf16, with the CPU model's recipe (`RECIPE`); no VGG losses, so that the run downloads nothing (VGG-16's weights
   come from the Hub). Where the pack holds landmark caches, `--face_part_share` of the holes go over facial parts. No
   validation during training: its identity metric needs dlib's models, which a GPU image need not have; the returned
   model is evaluated where the shared data is.
3. What comes back in `--out` (at most 8 files of < 16 MiB): the pipeline as float16 parts + `manifest.json` with
   their SHA-256 (`scripts/gpu_bundle.py`; G_H from the structure run, G from the last stage that finished),
   `run.json` (the timeline: what ran, for how long, with what result) and `logs.tar.gz` (benchmark output, each
   run's stdout, training summary, model card and TensorBoard events). They are rewritten after each phase, so a run
   cut short still returns what it finished.

A failing benchmark or stage is recorded and the rest goes on; the exit status is 0 only if a pipeline with both
generators trained came back.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from gpu_bundle import split_pipeline  # noqa: E402

MAX_RETURNED_FILES = 8  # with parts under 16 MiB: small enough to copy back from a remote machine
RECORD = "run.json"
# The CPU model's recipe, with the VGG terms off (no weights offline). Its correction ramp, 4 px at 128 px
# (docs/correction_ramp.md), is the same share of the face at the paper's 256 px as 8 px. The grid loss
# (docs/grid_loss.md) is on from the start: G has the same 4-pixel grid at every width.
RECIPE = ["--prefill", "biharmonic", "--l1_hole_weight", "6", "--ema_decay", "0.999", "--correction_ramp", "8",
          "--grid_weight", "1000", "--perceptual_weight", "0", "--style_weight", "0"]
PAPER = dict(resolution=256, base_channels=64, residual_blocks=8, pixels_per_cell=8)
TOY = dict(resolution=64, base_channels=8, residual_blocks=1, pixels_per_cell=8)


def benchmarks(dry_run: bool) -> list[tuple[str, list[str], float]]:
    """(name, command line, cap in seconds) of each benchmark: the GPU figures, or toy CPU runs for the dry run."""
    if dry_run:
        return [
            ("hog", ["benchmarks/bench_hog.py", "--device", "cpu", "--count", "2", "--size", "64", "--repeats", "1"],
             60),
            ("training", ["benchmarks/bench_training.py", "--device", "cpu", "--configs", "small", "--stages",
                          "structure", "--steps", "1", "--batch_size", "2", "--data_images", "0",
                          "--mixed_precision", "no"], 60),
        ]
    return [
        ("hog", ["benchmarks/bench_hog.py", "--device", "cuda", "--count", "64", "--size", "256", "--repeats", "3"],
         45),
        ("memory", ["benchmarks/bench_memory.py", "--parts", "batch", "--device", "cuda", "--batch_sizes", "1", "2",
                    "4", "8", "16", "32"], 45),
        ("inference", ["benchmarks/bench_inference.py", "--device", "cuda", "--sizes", "256", "512", "--repeats",
                       "3"], 60),
        ("training", ["benchmarks/bench_training.py", "--device", "cuda", "--configs", "paper", "--stages",
                      "structure", "inpaint", "joint", "--steps", "5", "--data_images", "0", "--mixed_precision",
                      "no", "bf16"], 90),
    ]


@dataclass
class Job:
    """One subprocess of the run and what became of it (`run.json`)."""

    name: str
    command: list[str]
    status: str = "pending"  # ok, failed (exit status), timed out, skipped
    returncode: int | None = None
    seconds: float = 0.0
    log: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class GpuRun:
    """The clock, the work folder and the record of one time-boxed run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.deadline = self.started + 60 * args.budget_minutes
        self.work = Path(args.work_dir)
        for stale in [*self.work.glob("run-*"), self.work / "logs", self.work / "pipeline"]:
            shutil.rmtree(stale, ignore_errors=True)  # an earlier run's stages must never be bundled as this one's
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.jobs: list[Job] = []
        self.record: dict[str, Any] = {"budget_minutes": args.budget_minutes, "dry_run": args.dry_run,
                                       "environment": environment(), "landmarks": [str(path) for path in
                                                                                   landmark_caches(args)],
                                       "jobs": [], "bundle": None}

    def left(self) -> float:
        """Seconds to the deadline."""
        return self.deadline - time.monotonic()

    def start(self, job: Job) -> subprocess.Popen:
        """Start `job` in the repository root, its output going to `logs/<name>.txt`."""
        job.log = f"{job.name}.txt"
        handle = open(self.logs / job.log, "w")
        handle.write(f"$ {' '.join(job.command)}\n")
        handle.flush()
        self.jobs.append(job)
        job.details["started_s"] = round(time.monotonic() - self.started, 1)
        process = subprocess.Popen(job.command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT)
        process.log_handle = handle  # closed in `wait`
        return process

    def wait(self, job: Job, process: subprocess.Popen, until: float) -> None:
        """Wait for `process` until the monotonic time `until`, then kill it; records the outcome in `job`."""
        try:
            job.returncode = process.wait(timeout=max(0.0, until - time.monotonic()))
            job.status = "ok" if job.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            job.status = "timed out"
        process.log_handle.close()
        job.seconds = round(time.monotonic() - self.started - job.details["started_s"], 1)
        print(f"[{self.elapsed():6.1f} s] {job.name}: {job.status} after {job.seconds:.1f} s", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def write_back(self) -> None:
        """`run.json` and `logs.tar.gz` into `--out` (rewritten each time: the latest state comes back)."""
        self.record["jobs"] = [asdict(job) for job in self.jobs]
        self.record["elapsed_s"] = round(self.elapsed(), 1)
        text = json.dumps(self.record, indent=2) + "\n"
        (self.logs / RECORD).write_text(text)
        with tarfile.open(self.out / "logs.tar.gz.tmp", "w:gz") as archive:
            archive.add(self.logs, arcname="logs")
            for run in sorted(self.work.glob("run-*")):
                for path in small_run_files(run):
                    archive.add(path, arcname=str(path.relative_to(self.work)))
        os.replace(self.out / "logs.tar.gz.tmp", self.out / "logs.tar.gz")
        (self.out / RECORD).write_text(text)
        returned = [path for path in self.out.rglob("*") if path.is_file()]
        if len(returned) > MAX_RETURNED_FILES:
            raise RuntimeError(f"{len(returned)} files in {self.out}, more than the {MAX_RETURNED_FILES} a GPU run "
                               "returns; pass an empty --out, or bundle fewer")


def small_run_files(run: Path) -> list[Path]:
    """What of a training run comes back: its summary, card, validation curve and TensorBoard events."""
    wanted = [run / "training_summary.json", run / "README.md", run / "validation" / "metrics.jsonl"]
    return [path for path in wanted if path.is_file()] + sorted((run / "logs").rglob("events.*"))


def environment() -> dict[str, Any]:
    """Versions and the device, so that the figures can be read against them."""
    import importlib.metadata as metadata

    import torch

    versions = {}
    for name in ("torch", "accelerate", "datasets", "huggingface_hub", "safetensors", "numpy", "pyarrow",
                 "scikit-image", "pillow", "opencv-python-headless"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "packages": versions,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "cpus": os.cpu_count()}


def preflight() -> str | None:
    """Why training cannot start here (an import that fails, e.g. a package the GPU image lacks), or None."""
    try:
        import hoginpaint.training.data  # noqa: F401  (datasets)
        import hoginpaint.pipeline  # noqa: F401
        import hoginpaint.training  # noqa: F401
    except Exception as error:  # noqa: BLE001  (any failure here is reported in run.json, not raised)
        return f"{type(error).__name__}: {error}"
    return None


def run_benchmarks(run: GpuRun) -> None:
    """Each benchmark in turn, capped by its own limit and by what is left of `--bench_minutes`."""
    bench_end = time.monotonic() + 60 * run.args.bench_minutes
    for name, command, cap in benchmarks(run.args.dry_run):
        job = Job(f"bench_{name}", [sys.executable, *command])
        if bench_end - time.monotonic() < 5:
            job.status = "skipped"
            run.jobs.append(job)
            continue
        process = run.start(job)
        run.wait(job, process, min(time.monotonic() + cap, bench_end))


def landmark_caches(args: argparse.Namespace) -> list[Path]:
    """The pack's landmark caches (`scripts/pack_gpu_data.py --landmarks`), none if `--face_part_share` is 0."""
    if not args.face_part_share:
        return []
    return sorted((Path(args.pack_dir) / "landmarks").glob("*.npz"))


def train_command(run: GpuRun, stage: str, minutes: float) -> list[str]:
    """`train_accelerate.py`'s command line for `stage`, time-boxed to `minutes` of training."""
    args, pack = run.args, Path(run.args.pack_dir)
    size = TOY if args.dry_run else PAPER
    command = [sys.executable, "train_accelerate.py", "--stage", stage, "--output_dir", str(run_dir(run, stage)),
               "--train_data_dir", f"{pack / 'data' / 'celeba'},{pack / 'data' / 'faces'}",
               "--mask_dir", str(pack / "masks"),
               *[f"--{key}={value}" for key, value in size.items()], *RECIPE,
               "--mixed_precision", args.mixed_precision,
               "--train_batch_size", str(args.train_batch_size),
               "--max_train_steps", str(args.max_train_steps),
               "--max_train_minutes", f"{minutes:.3f}",
               "--checkpointing_steps", "0", "--validation_steps", "-1",
               # A lone NaN/Inf step in bf16 is skipped rather than end the stage without a model.
               "--max_nonfinite_steps", str(args.max_nonfinite_steps),
               "--dataloader_num_workers", str(args.dataloader_num_workers),
               "--seed", str(args.seed)]
    caches = landmark_caches(args)
    if caches:
        command += ["--landmarks", ",".join(str(path) for path in caches),
                    "--face_part_share", str(args.face_part_share)]
    if stage in ("inpaint", "joint") and finished(run, "structure"):
        command += ["--structure_model", str(run_dir(run, "structure"))]
    if stage == "joint":
        command += ["--inpaint_model", str(run_dir(run, "inpaint"))]
    return command


def run_dir(run: GpuRun, stage: str) -> Path:
    return run.work / f"run-{stage}"


def finished(run: GpuRun, stage: str) -> bool:
    return (run_dir(run, stage) / "model_index.json").is_file()


def run_stages(run: GpuRun, stages: list[str], window: float) -> None:
    """Train `stages` at once, each time-boxed to `window` seconds less the start-up and export allowance."""
    if any(stage == "joint" for stage in stages) and not (finished(run, "structure") and finished(run, "inpaint")):
        run.jobs.append(Job("train_joint", [], status="skipped",
                            details={"reason": "needs finished structure and inpaint runs"}))
        return
    if window < run.args.stage_overhead_s + 15:
        for stage in stages:
            run.jobs.append(Job(f"train_{stage}", [], status="skipped",
                                details={"reason": f"{window:.0f} s left for it, too little to train"}))
        return
    minutes = (window - run.args.stage_overhead_s) / 60
    # Killed only if it overruns its box by a lot, and never past the time the bundle needs.
    until = min(time.monotonic() + window + run.args.stage_overhead_s, run.deadline - run.args.reserve_s)
    running = []
    for stage in stages:
        job = Job(f"train_{stage}", train_command(run, stage, minutes), details={"max_train_minutes": minutes})
        running.append((job, run.start(job)))
    for job, process in running:
        run.wait(job, process, until)
        summary = run_dir(run, job.name.removeprefix("train_")) / "training_summary.json"
        if summary.is_file():
            values = json.loads(summary.read_text())
            job.details.update({key: values.get(key) for key in ("status", "global_step", "images_seen",
                                                                 "wall_time_s", "run_wall_time_s")})
            if values.get("wall_time_s"):
                job.details["images_per_s"] = round(values["images_seen"] / values["wall_time_s"], 2)


def bundle(run: GpuRun) -> bool:
    """The best pipeline the runs made, as float16 parts in `--out`: G_H from the structure run, G from the last of
    joint, inpaint that finished. Returns whether both generators came back trained."""
    from hoginpaint import HOGInpaintPipeline
    from hoginpaint.networks import InpaintGenerator, StructureGenerator
    from hoginpaint.training.hog_model import load_generator

    g_source = next((stage for stage in ("joint", "inpaint", "structure") if finished(run, stage)), None)
    if g_source is None:
        return False
    h_source = "structure" if finished(run, "structure") else g_source
    structure = load_generator(StructureGenerator, str(run_dir(run, h_source)), "structure_generator")
    inpaint = load_generator(InpaintGenerator, str(run_dir(run, g_source)), "inpaint_generator")
    resolution = json.loads((run_dir(run, g_source) / "model_index.json").read_text())["resolution"]
    card = (run_dir(run, g_source) / "README.md").read_text()
    final = run.work / "pipeline"
    HOGInpaintPipeline(structure, inpaint, resolution=resolution).save_pretrained(final, model_card=card)
    untrained = (["structure_generator"] if h_source != "structure" else []) + \
        (["inpaint_generator"] if g_source == "structure" else [])
    notes = {"structure_generator_from": h_source, "inpaint_generator_from": g_source, "untrained": untrained,
             "model_card_from": g_source}
    manifest = split_pipeline(final, run.out, notes=notes)
    run.record["bundle"] = {**notes, "parts": len(manifest["parts"]), "bytes": manifest["whole"]["bytes"]}
    return not untrained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT"), help="where the returned files go (default: $OUT)")
    parser.add_argument("--pack_dir", default=os.environ.get("HOGINPAINT_GPU_PACK", ".gpu-run"),
                        help="the pack of scripts/pack_gpu_data.py (default: $HOGINPAINT_GPU_PACK or .gpu-run)")
    parser.add_argument("--work_dir", default="/tmp/hoginpaint-gpu-run", help="runs and logs (not returned whole)")
    parser.add_argument("--budget_minutes", type=float, default=9.0,
                        help="wall-clock budget of the whole run, benchmarks, training and bundle included")
    parser.add_argument("--bench_minutes", type=float, default=2.0, help="of the budget, for the benchmarks")
    parser.add_argument("--no_benchmarks", action="store_true", help="train only")
    parser.add_argument("--joint_share", type=float, default=0.2,
                        help="share of the training time for the joint stage (structure and inpaint share the rest, "
                             "side by side)")
    parser.add_argument("--stage_overhead_s", type=float, default=45.0,
                        help="seconds of a stage's start-up and export, outside its --max_train_minutes")
    parser.add_argument("--reserve_s", type=float, default=30.0, help="seconds kept at the end for the bundle")
    parser.add_argument("--train_batch_size", type=int, default=8, help="per stage (the paper's and CPU model's: 8)")
    parser.add_argument("--dataloader_num_workers", type=int, default=6, help="per stage")
    parser.add_argument("--max_train_steps", type=int, default=1_000_000, help="a ceiling; the time box governs")
    parser.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"], default="bf16")
    parser.add_argument("--max_nonfinite_steps", type=int, default=20,
                        help="NaN/Inf steps in a row a stage skips before it stops")
    parser.add_argument("--face_part_share", type=float, default=0.5,
                        help="share of the training holes over facial parts, where the pack holds landmark caches "
                             "(0: the NVIDIA masks alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry_run", action="store_true",
                        help="the same path on the CPU at toy size (64 px, base 8, 1 block, a few steps, toy "
                             "benchmarks) for the tests")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("pass --out or set $OUT: the folder whose files come back")
    if not 0.0 <= args.face_part_share <= 1.0:
        parser.error(f"--face_part_share must be in [0, 1], got {args.face_part_share}")
    if args.dry_run:
        args.dataloader_num_workers = 0
        args.train_batch_size = 2
        args.max_train_steps = min(args.max_train_steps, 3)
        args.stage_overhead_s = min(args.stage_overhead_s, 20.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: the GPU run trains the paper's configuration on a GPU; use --dry_run "
                         "for the CPU rehearsal")
    if not (Path(args.pack_dir) / "masks").is_dir():
        raise SystemExit(f"{args.pack_dir} holds no pack: run scripts/pack_gpu_data.py and copy .gpu-run beside "
                         "the working tree")
    run = GpuRun(args)
    print(f"GPU run: {args.budget_minutes} min budget on {run.record['environment']['device']}", flush=True)
    run.record["preflight"] = problem = preflight()
    run.write_back()
    if not args.no_benchmarks:
        run_benchmarks(run)
        run.write_back()
    if problem is not None:
        print(f"training skipped: {problem}", flush=True)  # the benchmarks' figures still come back
        return 1
    window = run.left() - args.reserve_s
    first_window = window * (1 - args.joint_share)
    run_stages(run, ["structure", "inpaint"], first_window)
    bundle(run)
    run.write_back()
    run_stages(run, ["joint"], run.left() - args.reserve_s)
    trained = bundle(run)
    run.write_back()
    print(json.dumps(run.record["bundle"], indent=2), flush=True)
    return 0 if trained else 1


if __name__ == "__main__":
    sys.exit(main())
