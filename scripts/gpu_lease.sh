#!/usr/bin/env bash
# One GPU lease in one command: benchmarks, then the paper's configuration trained in a time box; see
# scripts/gpu_lease.py --help and the README's "Using a GPU lease". On the device machine (which sets $OUT), with
# .lease packed by scripts/pack_lease.py and carried:
#     bash scripts/gpu_lease.sh
# Here, the CPU rehearsal (tests/test_gpu_lease.py):
#     OUT=/tmp/out HOGINPAINT_LEASE_DIR=/tmp/lease bash scripts/gpu_lease.sh --dry_run
set -euo pipefail
cd "$(dirname "$0")/.."
LEASE_DIR="${HOGINPAINT_LEASE_DIR:-.lease}"
if compgen -G "$LEASE_DIR/wheels/*.whl" >/dev/null; then
  # The device image lacks datasets and holds other versions of huggingface_hub & co: the pack's wheels go first.
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/hoginpaint-site "$LEASE_DIR"/wheels/*.whl
  export PYTHONPATH="/tmp/hoginpaint-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 HOGINPAINT_LEASE_DIR="$LEASE_DIR"
exec python3 scripts/gpu_lease.py "$@"
