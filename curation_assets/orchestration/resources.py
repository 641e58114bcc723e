from __future__ import annotations

from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource
from pydantic import Field

from curation_assets import settings
from curation_assets.store import ScoreStore


class CurationStore(ConfigurableResource):
    """The score store: objects under `store_location` (default: $CURATION_STORE, else
    `data_dir`), catalog `data_dir`/curation.duckdb (default: $CURATION_DATA_DIR or ./data)."""

    data_dir: str = Field(default_factory=lambda: str(settings.data_dir()))
    store_location: Optional[str] = Field(default_factory=settings.store_location,
                                          description="folder or fsspec URL (s3://, gs://); empty: data_dir")

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / settings.DB_FILENAME

    @property
    def location(self) -> str:
        """Where frames, clips and score objects go (a folder or a URL)."""
        return self.store_location or self.data_dir

    def store(self) -> ScoreStore:
        return ScoreStore(self.db_path, location=self.location)


class ModelResource(ConfigurableResource):
    """Model settings shared by the learned scorers: profile, weights folder, device, batching.

    Defaults come from CURATION_MODEL_PROFILE (real | tiny), CURATION_MODEL_DIR and
    CURATION_DEVICE, so a whole run switches profile with one variable.
    """

    profile: str = Field(default_factory=lambda: _env("CURATION_MODEL_PROFILE", "real"))
    model_dir: Optional[str] = Field(default_factory=lambda: _env("CURATION_MODEL_DIR", None))
    device: str = Field("auto", description="auto: cuda when available, else cpu")
    batch_size: int = Field(16, ge=1)
    dtype: str = Field("auto", description="auto: float16 on cuda, float32 on cpu")

    def settings(self):
        from curation_assets.models.registry import ModelSettings

        return ModelSettings(profile=self.profile, model_dir=Path(self.model_dir) if self.model_dir else None,
                             device=self.device, batch_size=self.batch_size, dtype=self.dtype)


def _env(name: str, default):
    import os

    return os.environ.get(name) or default
