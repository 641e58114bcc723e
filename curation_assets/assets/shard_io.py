"""What every shard asset does around its scorer: read inputs, write one shard atomically."""


import json
import time
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from curation_assets.store import ScoreStore

RAW_VIDEOS = "raw_videos"


def primary_videos(store: ScoreStore, shard: str) -> pl.DataFrame:
    """The shard's videos that probed fine and are not copies of another: what gets scored."""
    rows = store.read_shard(RAW_VIDEOS, shard)
    return rows.filter(pl.col("error").is_null() & pl.col("duplicate_of").is_null()).sort("seq")


def to_frame(rows: list[dict[str, Any]], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def params_json(params: Any) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def write_shard(
    context: AssetExecutionContext,
    store: ScoreStore,
    table: str,
    frame: pl.DataFrame,
    started: float,
    metadata: dict[str, Any] | None = None,
    check_results=None,
) -> MaterializeResult:
    shard = context.partition_key
    code_version = context.assets_def.code_versions_by_key.get(context.asset_key) or ""
    frame = frame.with_columns(pl.lit(shard).alias("shard"), pl.lit(code_version).alias("code_version"))
    written = store.replace_shard(table, shard, frame, code_version=code_version)
    errors = int(frame["error"].is_not_null().sum()) if "error" in frame.columns else 0
    meta = {
        "dagster/row_count": written,
        "errors": errors,
        "seconds": round(time.perf_counter() - started, 3),
        "table": MetadataValue.text(f"{store.db_path}::{table}"),
    }
    meta.update(metadata or {})
    context.log.info(f"{table}[{shard}]: wrote {written} rows ({errors} with errors)")
    return MaterializeResult(metadata=meta, check_results=check_results)
