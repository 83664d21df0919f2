#!/usr/bin/env bash
# A time-boxed GPU run in one command: benchmarks, then the paper's configuration trained in a time box, the pipeline
# returned as float16 parts; see scripts/gpu_run.py --help and docs/training.md, "Training on a GPU in a time box".
# On the GPU machine, with $OUT the folder whose files come back and .gpu-run (scripts/pack_gpu_data.py) beside the
# working tree:
#     bash scripts/gpu_run.sh
# Here, the CPU rehearsal (tests/test_gpu_run.py):
#     OUT=/tmp/out HOGINPAINT_GPU_PACK=/tmp/gpu-run bash scripts/gpu_run.sh --dry_run
set -euo pipefail
cd "$(dirname "$0")/.."
PACK_DIR="${HOGINPAINT_GPU_PACK:-.gpu-run}"
if compgen -G "$PACK_DIR/wheels/*.whl" >/dev/null; then
  # A GPU image may lack datasets or hold other versions of huggingface_hub & co: the pack's wheels go first.
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/hoginpaint-site "$PACK_DIR"/wheels/*.whl
  export PYTHONPATH="/tmp/hoginpaint-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 HOGINPAINT_GPU_PACK="$PACK_DIR"
exec python3 scripts/gpu_run.py "$@"
