#!/usr/bin/env bash
# Install the browser the UI test drives (curation_assets_tests/test_ui_browser.py):
# Debian's chromium at /usr/bin/chromium, plus chromium-driver. Idempotent: exits 0 at once
# when both are present. Never downloads a browser any other way (no `playwright install`).
#
# Called from .ci/run before the tests. Needs root (or sudo) and the Debian package mirror;
# without them it says so and exits non-zero (`scripts/install_browser.sh || true` lets CI go on,
# and the UI test then skips itself).
set -euo pipefail
. "$(dirname "$0")/apt_install.sh"

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

if [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; then
  echo "install_browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) already installed" >&2
  exit 0
fi

# With recommends (fonts-liberation among them): the configuration the UI test was verified on.
apt_install install_browser chromium chromium-driver

if ! [ -x "$CHROMIUM" ]; then
  echo "install_browser: apt-get finished but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "install_browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed" >&2
