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


def ensure_dagster_home(data_dir: Path) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and INSTANCE_TEMPLATE.exists():
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
