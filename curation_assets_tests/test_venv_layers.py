"""Two clones on one machine each run their own code (scripts/setup_venv.sh).

The cached dependency venv is shared by every checkout and never gets the project installed;
each clone gets a small `.venv` layered on it. The test clones this repository twice, sets
both up against the dependency venv this suite runs on, edits one clone, and checks that
each clone's console script and python import that clone's code, and that the shared
dependency venv was not touched.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _dependency_venv() -> Path:
    prefix = Path(sys.prefix)
    if (prefix / ".deps").is_file():  # running in a checkout's layer: its dependency venv
        deps = Path((prefix / ".deps").read_text().strip())
    else:
        deps = prefix  # running directly in a dependency venv
    if not (deps / ".complete").is_file():
        pytest.skip(f"{deps} is not a complete dependency venv (built by scripts/setup_venv.sh); "
                    "the test does not build one (~7 GB)")
    return deps


def _snapshot(deps: Path) -> dict[str, bytes]:
    site = next((deps / "lib").glob("python3*/site-packages"))
    files = [*site.glob("*.pth"), *site.glob("__editable__*"), *(deps / "bin").iterdir()]
    return {str(f): f.read_bytes() for f in files if f.is_file()}


def _clone(tmp_path: Path, name: str) -> Path:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    target = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True, timeout=120)
    # the clone gets this working tree's setup script, committed or not
    shutil.copyfile(REPO_ROOT / "scripts" / "setup_venv.sh", target / "scripts" / "setup_venv.sh")
    return target


def test_two_clones_each_run_their_own_code(tmp_path):
    deps = _dependency_venv()
    before = _snapshot(deps)
    clones = [_clone(tmp_path, "first"), _clone(tmp_path, "second")]
    # a visible difference: the second clone's CLI describes itself differently
    cli = clones[1] / "curation_assets" / "cli.py"
    cli.write_text(cli.read_text().replace('"""`curation-assets`:', '"""SECOND CLONE `curation-assets`:', 1))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["CURATION_VENV"] = str(deps)
    venvs = []
    for clone in clones:
        setup = subprocess.run([str(clone / "scripts" / "setup_venv.sh")], env=env, capture_output=True, text=True,
                               timeout=300)
        assert setup.returncode == 0, setup.stderr
        assert setup.stdout.strip() == str(clone / ".venv")
        venvs.append(Path(setup.stdout.strip()))

    for clone, venv in zip(clones, venvs):
        # from another directory, so nothing but the venv decides what is imported
        where = subprocess.run([str(venv / "bin" / "python"), "-c", "import curation_assets, dagster; "
                                "print(curation_assets.__file__)"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=120)
        assert where.returncode == 0, where.stderr
        assert where.stdout.strip() == str(clone / "curation_assets" / "__init__.py")
        # console scripts of the dependency venv run with this clone's python
        assert (venv / "bin" / "dagster").read_text().splitlines()[0] == f"#!{venv}/bin/python"
    helps = [subprocess.run([str(venv / "bin" / "curation-assets"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120).stdout for venv in venvs]
    assert "SECOND CLONE" not in helps[0] and "SECOND CLONE" in helps[1]

    # running the setup again (as demo.sh and test.sh do) keeps each clone on its own code
    again = subprocess.run([str(clones[0] / "scripts" / "setup_venv.sh")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    help_again = subprocess.run([str(venvs[1] / "bin" / "curation-assets"), "--help"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120).stdout
    assert "SECOND CLONE" in help_again
    assert _snapshot(deps) == before  # the shared dependency venv is exactly as it was
