#!/usr/bin/env bash
# Install Debian's postgresql server binaries (initdb, pg_ctl under /usr/lib/postgresql/15/bin):
# curation_assets_tests/test_postgres_instance.py starts a throwaway server with them.
# Idempotent: exits 0 at once when initdb is present. Called from .ci/run before the tests.
# The package's own cluster is not needed: the test runs its own server in a temp dir.
set -euo pipefail

INITDB=/usr/lib/postgresql/15/bin/initdb
if [ -x "$INITDB" ]; then
  echo "install_postgres: $("$INITDB" --version) already installed" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install_postgres: $INITDB missing and apt-get not available; install postgresql 15 by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install_postgres: need root (or sudo) to apt-get install postgresql" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install_postgres: installing postgresql with apt-get" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >&2
if ! [ -x "$INITDB" ]; then
  echo "install_postgres: apt-get finished but $INITDB is still missing (not postgresql 15?)" >&2
  exit 1
fi
echo "install_postgres: $("$INITDB" --version) installed" >&2
