#!/usr/bin/env bash
# Create (or reuse) the project venv and print its path.
#
# The venv is several GB (torch), so it lives outside the clone, keyed by a hash of the
# pinned requirements: a machine that has it reuses it, any other builds it from scratch
# (~2.5 min here). Override the location with CURATION_VENV=/path.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
key=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
VENV=${CURATION_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/curation_assets/venv-$key}

pip_quiet() {
  # pip warns once per local index folder it skips; keep real errors, keep its exit code
  "$VENV/bin/pip" -q "$@" 2> >(grep -v '^WARNING: Location' >&2) >&2
}

if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "building venv $VENV" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  pip_quiet install -U pip
  # torch first, alone: pip takes the pinned local wheel instead of resolving a newer one
  pip_quiet install torch==2.14.1 torchvision==0.29.1
  pip_quiet install -r requirements.lock
  # scenedetect declares opencv-python (the GUI build); the headless cv2 above serves it
  pip_quiet install --no-deps scenedetect==0.7.2
  touch "$VENV/.complete"
fi
pip_quiet install --no-deps -e .
echo "$VENV"
