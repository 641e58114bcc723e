#!/usr/bin/env bash
# Set up and run the test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."  # the real clone, also when called through a symlink
VENV=$(scripts/setup_venv.sh)
export HF_HUB_OFFLINE=1 PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest -q "$@"
