"""The Dagster instance the CLI runs against: $DAGSTER_HOME, else <data-dir>/dagster_home.

Runs made by `curation-assets run` land in the same instance `dagster dev` shows when it is
started with the same DAGSTER_HOME, so the UI lists them.
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
    elif not config.exists() and INSTANCE_TEMPLATE.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home)
    _initialize_storage_once(home)
    return home


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
