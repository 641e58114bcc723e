"""What every shard asset does around its scorer: read inputs, write one shard atomically."""


import json
import time
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from curation_assets.store import ScoreStore
from curation_assets.store.catalog import ensure_in_catalog

RAW_VIDEOS = "raw_videos"


def primary_videos(store: ScoreStore, shard: str) -> pl.DataFrame:
    """The shard's videos that probed fine and are not copies of another: what gets scored.
    A source split into clips is not scored itself: its clips are."""
    rows = store.read_shard(RAW_VIDEOS, shard)
    keep = pl.col("error").is_null() & pl.col("duplicate_of").is_null()
    if "split_into" in rows.columns:
        keep = keep & pl.col("split_into").is_null()
    return rows.filter(keep).sort("seq", *(["clip_index"] if "clip_index" in rows.columns else []), nulls_last=False)


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
    asset_key: str | None = None,
) -> MaterializeResult:
    """Write the shard's rows; `asset_key` names which output when one op makes several assets."""
    shard = context.partition_key
    key = AssetKey(asset_key) if asset_key else context.asset_key
    code_version = context.assets_def.code_versions_by_key.get(key) or ""
    frame = frame.with_columns(pl.lit(shard).alias("shard"), pl.lit(code_version).alias("code_version"))
    published = store.publish_shard(table, shard, frame, code_version=code_version)
    ensure_in_catalog(store, table)  # a table new to the catalog shows at once (folder locations)
    written = published.rows
    errors = int(frame["error"].is_not_null().sum()) if "error" in frame.columns else 0
    meta = {
        "dagster/row_count": written,
        "errors": errors,
        "seconds": round(time.perf_counter() - started, 3),
        "table": MetadataValue.text(table),
        "object": MetadataValue.path(store.location.resolve(published.key)),
    }
    meta.update(metadata or {})
    context.log.info(f"{table}[{shard}]: wrote {written} rows ({errors} with errors)")
    return MaterializeResult(asset_key=key if asset_key else None, metadata=meta, check_results=check_results)


def write_switched_off(context: AssetExecutionContext, store: ScoreStore, table: str, schema: dict, started: float,
                       check_results=None, asset_key: str | None = None) -> MaterializeResult:
    """A scorer the recipe switched off: no model loaded, an empty shard written, so the
    partition is materialized (green, not stale) and curated_videos knows it has no scores."""
    context.log.info(f"{table}: switched off by the recipe (scorers: {{{table}: false}}); no model loaded")
    return write_shard(context, store, table, to_frame([], schema), started,
                       {"switched_off": MetadataValue.text(f"by the recipe: scorers: {{{table}: false}}")},
                       check_results=check_results, asset_key=asset_key)


SAMPLED_FRAMES = "sampled_frames"


def shard_frames(store: ScoreStore, shard: str) -> dict[str, dict]:
    """video_id -> its sampled_frames row (frame_paths resolved to readable paths/URLs, frame_indices, error)."""
    rows = store.read_shard(SAMPLED_FRAMES, shard)
    resolve = store.location.resolve  # rows hold keys relative to the store location
    return {r["video_id"]: {**r, "frame_paths": [resolve(p) for p in (r["frame_paths"] or [])]}
            for r in rows.iter_rows(named=True)}


def frames_or_error(frame_row: dict | None) -> tuple[list, str | None]:
    """Load a video's sampled frames; a missing or failed row becomes the reason, not an exception."""
    from curation_assets.frames.files import load_frames

    if frame_row is None:
        return [], "no sampled frames recorded (materialize sampled_frames)"
    if frame_row.get("error"):
        return [], f"sampled_frames: {frame_row['error']}"
    try:
        frames = load_frames(frame_row["frame_paths"] or [])
    except FileNotFoundError as exc:
        return [], str(exc)
    return (frames, None) if frames else ([], "no frames")


def load_videos_frames(frames_by_id: dict[str, dict], video_ids: list[str], threads: int | None = None):
    """([(video_id, frames)] for videos whose frames all load, {video_id: reason} for the rest).

    Every frame file of every listed video goes through one thread pool (cv2.imread releases
    the GIL), so a shard's frames are decoded once, in parallel, for all the scorers that use them.
    """
    from curation_assets.frames.files import read_frames_parallel

    errors: dict[str, str] = {}
    wanted: list[tuple[str, list[str]]] = []
    for vid in video_ids:
        row = frames_by_id.get(vid)
        if row is None:
            errors[vid] = "no sampled frames recorded (materialize sampled_frames)"
        elif row.get("error"):
            errors[vid] = f"sampled_frames: {row['error']}"
        elif not row.get("frame_paths"):
            errors[vid] = "no frames"
        else:
            wanted.append((vid, list(row["frame_paths"])))
    decoded = iter(read_frames_parallel([p for _, paths in wanted for p in paths], threads))
    ready = []
    for vid, paths in wanted:
        frames = [next(decoded) for _ in paths]
        failed = next((f for f in frames if isinstance(f, Exception)), None)
        if failed is not None:
            errors[vid] = str(failed)
        else:
            ready.append((vid, frames))
    return ready, errors


def model_metadata(model_id: str, profile: str) -> dict:
    meta = {"model": model_id, "model_profile": profile}
    if profile == "tiny":
        meta["WARNING"] = "tiny random-weight models: these scores are noise, for tests only"
    return meta
