"""Where things live, from the environment, with project-local defaults."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "CURATION_DATA_DIR"
INPUT_DIR_ENV = "CURATION_INPUT_DIR"
SHARD_SIZE_ENV = "CURATION_SHARD_SIZE"
DEFAULT_SHARD_SIZE = 64
DB_FILENAME = "curation.duckdb"
STORE_ENV = "CURATION_STORE"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data").resolve()


def input_dir() -> Path:
    return Path(os.environ.get(INPUT_DIR_ENV) or data_dir() / "raw").resolve()


def shard_size() -> int | None:
    """Videos per new shard from $CURATION_SHARD_SIZE; None: it grows with the corpus (at least
    DEFAULT_SHARD_SIZE; ingest/registry.py `auto_shard_size`)."""
    value = os.environ.get(SHARD_SIZE_ENV)
    return int(value) if value else None


def store_location() -> str | None:
    """Where score objects, frames and clips live: a folder or an fsspec URL (s3://, gs://).
    None: the data dir itself (the one-machine default)."""
    return os.environ.get(STORE_ENV) or None


def positive_seconds(name: str, default: float) -> float:
    """A duration setting from $name; a bad value raises ValueError in one line naming it."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a number of seconds") from None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{name}={value!r}: expected a number of seconds > 0")
    return seconds
