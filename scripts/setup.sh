#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine: Python packages and Debian's chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and apt-get is not available: the browser test will be skipped" >&2
  fi
fi
