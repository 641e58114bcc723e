#!/usr/bin/env bash
# Install Debian's postgresql server binaries (initdb, pg_ctl under /usr/lib/postgresql/15/bin):
# curation_assets_tests/test_postgres_instance.py starts a throwaway server with them.
# Idempotent: exits 0 at once when initdb is present. Called from .ci/run before the tests.
# The package's own cluster is not needed: the test runs its own server in a temp dir.
set -euo pipefail
. "$(dirname "$0")/apt_install.sh"

INITDB=/usr/lib/postgresql/15/bin/initdb
if [ -x "$INITDB" ]; then
  echo "install_postgres: $("$INITDB" --version) already installed" >&2
  exit 0
fi
apt_install install_postgres postgresql
if ! [ -x "$INITDB" ]; then
  echo "install_postgres: apt-get finished but $INITDB is still missing (not postgresql 15?)" >&2
  exit 1
fi
echo "install_postgres: $("$INITDB" --version) installed" >&2
