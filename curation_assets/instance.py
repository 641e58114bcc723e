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
    return home
