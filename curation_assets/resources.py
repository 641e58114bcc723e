from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from curation_assets import settings
from curation_assets.store import ScoreStore


class CurationStore(ConfigurableResource):
    """The DuckDB score store under `data_dir` (default: $CURATION_DATA_DIR or ./data)."""

    data_dir: str = Field(default_factory=lambda: str(settings.data_dir()))

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / settings.DB_FILENAME

    def store(self) -> ScoreStore:
        return ScoreStore(self.db_path)
