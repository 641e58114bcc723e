#!/usr/bin/env bash
# Create (or reuse) this checkout's venv and print its path.
#
# Two layers, so that one checkout can never take over another's code:
# - the dependency venv, several GB (torch), lives outside the clone, keyed by a hash of the
#   pinned requirements, and holds ONLY the dependencies: any checkout on the machine reuses
#   it, nothing here ever installs the project into it (~2.5 min to build here). Override its
#   location with CURATION_VENV=/path.
# - this checkout's own venv, `.venv/` in the clone (a few KB): the dependency venv's
#   interpreter, its site-packages added by a .pth file, this checkout put first on the path
#   by another .pth file, and the console scripts (curation-assets, dagster, pytest, ...)
#   written to run with this venv's python. So `.venv/bin/curation-assets` always runs the
#   code of the clone it lives in, and code edits need no reinstall.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."  # the real clone, also when called through a symlink
ROOT=$PWD
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
key=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
DEPS=${CURATION_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/curation_assets/venv-$key}
VENV=$ROOT/.venv

pip_quiet() {
  # pip warns once per local index folder it skips; keep real errors, keep its exit code
  "$DEPS/bin/pip" -q "$@" 2> >(grep -v '^WARNING: Location' >&2) >&2
}

if [ ! -x "$DEPS/bin/python" ] || [ ! -f "$DEPS/.complete" ]; then
  echo "building the dependency venv $DEPS" >&2
  rm -rf "$DEPS"
  "$PY" -m venv "$DEPS"
  pip_quiet install -U pip
  # torch first, alone: pip takes the pinned local wheel instead of resolving a newer one
  pip_quiet install torch==2.14.1 torchvision==0.29.1
  pip_quiet install -r requirements.lock
  # scenedetect declares opencv-python (the GUI build); the headless cv2 above serves it
  pip_quiet install --no-deps scenedetect==0.7.2
  touch "$DEPS/.complete"
fi

# This checkout's layer: rebuilt when missing or made over another dependency venv.
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.deps" 2>/dev/null)" != "$DEPS" ]; then
  rm -rf "$VENV"
  "$DEPS/bin/python" -m venv --without-pip "$VENV"
fi
# Written every time (cheap), so a moved clone or a changed dependency venv is picked up.
"$VENV/bin/python" - "$ROOT" "$DEPS" "$VENV" <<'PY'
import os, stat, sys, sysconfig
from pathlib import Path

root, deps, venv = (Path(p) for p in sys.argv[1:])
site = Path(sysconfig.get_path("purelib"))
deps_site = deps / site.relative_to(venv)
# .pth files run in name order: the checkout first, so its curation_assets wins over any
# install left in the dependency venv; addsitedir also runs the dependency venv's own .pth files.
(site / "00_curation_assets_checkout.pth").write_text(f"{root}\n")
(site / "10_curation_assets_deps.pth").write_text(f"import site; site.addsitedir({str(deps_site)!r})\n")

bin_dir, python = venv / "bin", venv / "bin" / "python"
skip = ("python", "pip", "activate", "Activate")
for script in sorted((deps / "bin").iterdir()):
    if script.name.startswith(skip) or not script.is_file():
        continue
    with open(script, "rb") as fh:
        first, rest = fh.readline(), fh.read()
    if not first.startswith(f"#!{deps}/bin/python".encode()):
        continue  # not a Python console script of the dependency venv
    target = bin_dir / script.name
    target.write_bytes(f"#!{python}\n".encode() + rest)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
# this checkout's own console script, as pip would generate it from [project.scripts]
cli = bin_dir / "curation-assets"
cli.write_text(f"#!{python}\nimport sys\nfrom curation_assets.cli import main\nif __name__ == '__main__':\n"
               "    sys.exit(main())\n")
cli.chmod(0o755)
(venv / ".deps").write_text(str(deps))
PY
echo "$VENV"
