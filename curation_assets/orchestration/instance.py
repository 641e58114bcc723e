"""The Dagster instance the CLI runs against: $DAGSTER_HOME, else <data-dir>/dagster_home.

Runs made by `curation-assets run` land in the same instance `dagster dev` shows when it is
started with the same DAGSTER_HOME, so the UI lists them. The home's dagster.yaml comes from
the project's template (copied on first use, and brought up to date while it is an unedited
copy of an earlier template).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from curation_assets.settings import PROJECT_ROOT

INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"


def ensure_dagster_home(data_dir: Path, template: str | Path | None = None) -> Path:
    """`template`: a dagster.yaml variant chosen by the deployment (e.g. Postgres storage). It
    gets a home of its own (<data-dir>/dagster_home-<name>) and is copied there on every start,
    so the file the user edits stays the one in force and the SQLite home is never overwritten."""
    if template:
        default_home = data_dir / f"dagster_home-{Path(template).stem.replace('dagster.', '')}"
    else:
        default_home = data_dir / "dagster_home"
    home = Path(os.environ.get("DAGSTER_HOME") or default_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if template:
        text = Path(template).read_text()
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
    elif INSTANCE_TEMPLATE.exists() and (not config.exists() or _is_old_template(config)):
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home)
    _initialize_storage_once(home)
    return home


# sha256 of every earlier dagster.yaml template: a home holding one unedited is brought up to
# date (a file the user edited is left alone; `launcher_note` tells what it misses)
OLD_TEMPLATES = {
    "2fb29cb3502fb378fa65a6bf7ecedd1de1d29cc198fe956c5f1a29e02081270f",  # 3f08cf8
    "9179138529be20ee1af1c794df26b9741af155a73b8db00afac0c56855d55404",  # e0df0b5
}


def _is_old_template(config: Path) -> bool:
    import hashlib

    return hashlib.sha256(config.read_bytes()).hexdigest() in OLD_TEMPLATES


def launcher_note(home: Path) -> str | None:
    """A line for `curation-assets ui` when the instance's dagster.yaml starts a process per
    run (no run_launcher of ours): the UI path then costs ~2x the CLI's CPU."""
    import yaml

    config = home / "dagster.yaml"
    try:
        launcher = (yaml.safe_load(config.read_text()) or {}).get("run_launcher") or {}
    except (OSError, yaml.YAMLError):
        return None
    if launcher.get("class") == "RunWorkerLauncher":
        return None
    return (f"NOTE: {config} has no `run_launcher: RunWorkerLauncher`: each run from the UI starts fresh processes "
            f"and reloads its models (docs/ui.md, 'Run workers'); copy the run_launcher section of {INSTANCE_TEMPLATE}")


def _initialize_storage_once(home: Path) -> None:
    """Create the instance's SQLite storage under a lock.

    Two processes creating a fresh instance at once both stamp alembic's version table,
    leaving it with two heads that no later process can open.
    """
    from filelock import FileLock

    marker = home / ".storage-initialized"
    if marker.exists():
        return
    with FileLock(str(home / ".storage-init.lock")):
        if marker.exists():
            return
        from dagster import DagsterInstance

        with DagsterInstance.get():
            pass
        marker.touch()
