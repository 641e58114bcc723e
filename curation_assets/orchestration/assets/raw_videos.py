import time

import polars as pl
from dagster import AssetExecutionContext, Failure, asset

from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, to_frame, write_shard
from curation_assets.ingest.registry import shard_members
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version
from curation_assets.orchestration.preflight import MissingWeights, check_weights
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets.scorers.hashing import content_hash
from curation_assets.scorers.probe import ProbeResult, probe_video

RAW_VIDEOS_SCHEMA = {
    "video_id": pl.Utf8,
    "path": pl.Utf8,
    "seq": pl.Int64,
    "source_caption": pl.Utf8,
    "duplicate_of": pl.Utf8,  # path of the first registered byte-identical copy
    "width": pl.Int64,
    "height": pl.Int64,
    "rotation": pl.Int64,
    "display_width": pl.Int64,
    "display_height": pl.Int64,
    "fps": pl.Float64,
    "frame_count": pl.Int64,
    "duration_s": pl.Float64,
    "codec": pl.Utf8,
    "has_audio": pl.Boolean,
    "file_size": pl.Int64,
    "error": pl.Utf8,
}


def build_raw_videos(recipe: Recipe):
    @asset(
        name=RAW_VIDEOS,
        partitions_def=shard_partitions,
        code_version=code_version(RAW_VIDEOS, recipe),
        group_name="ingest",
        kinds={"duckdb", "pyav"},
        description="Every registered file of the shard: probe (PyAV), content hash (video_id), "
        "duplicates pointing at their first copy, and the manifest caption. As the first step of a run it "
        "first checks the model weights the run's scorers need (pre-flight), so a run without them fails "
        "here, before any decoding, naming all of them.",
    )
    def raw_videos(context: AssetExecutionContext, curation_store: CurationStore, models: ModelResource):
        started = time.perf_counter()
        store = curation_store.store()
        shard = context.partition_key
        members = shard_members(store, shard)
        _preflight(context, recipe, models, members["manifest_text"].to_list())
        rows = [_probe_member(m) for m in members.iter_rows(named=True)]
        _mark_duplicates(rows, _known_primaries(store, shard, rows))
        frame = to_frame(rows, RAW_VIDEOS_SCHEMA)
        duplicates = int(frame["duplicate_of"].is_not_null().sum())
        return write_shard(context, store, RAW_VIDEOS, frame, started, {"registered": len(rows), "duplicates": duplicates})

    return raw_videos


def _preflight(context: AssetExecutionContext, recipe: Recipe, models: ModelResource, texts: list) -> None:
    """Fail the run now, not after the decode pass, when a model step of this run lacks weights."""
    selection = context.dagster_run.asset_selection  # None: the whole job
    selected = {key.to_user_string() for key in selection} if selection else None
    try:
        check_weights(recipe, models.settings(), texts, selected)
    except MissingWeights as exc:
        raise Failure(description=str(exc), allow_retries=False) from None


def _probe_member(member: dict) -> dict:
    row = {"path": member["path"], "seq": member["seq"], "source_caption": member["manifest_text"],
           "video_id": None, "duplicate_of": None}
    if member["registration_error"]:
        row.update(ProbeResult(error=member["registration_error"]).as_row())
        return row
    probe = probe_video(member["path"])
    row.update(probe.as_row())
    if probe.error is None:
        try:
            row["video_id"] = content_hash(member["path"])
        except OSError as exc:
            row["error"] = f"cannot read file to hash it: {exc.strerror or exc}"
    return row


def _known_primaries(store, shard: str, rows: list[dict]) -> dict[str, tuple[int, str]]:
    """video_id -> (seq, path) of copies already recorded in other shards."""
    ids = [r["video_id"] for r in rows if r["video_id"]]
    if not ids or RAW_VIDEOS not in store.tables():
        return {}
    found = store.query(
        f"select video_id, min(seq) as seq, arg_min(path, seq) as path from {RAW_VIDEOS} "
        "where shard <> ? and error is null and video_id in (select unnest(?)) group by video_id",
        [shard, ids],
    )
    return {r["video_id"]: (r["seq"], r["path"]) for r in found.iter_rows(named=True)}


def _mark_duplicates(rows: list[dict], elsewhere: dict[str, tuple[int, str]]) -> None:
    # The earliest registration wins, whichever shard happens to be processed first.
    first: dict[str, tuple[int, str]] = dict(elsewhere)
    for row in sorted(rows, key=lambda r: r["seq"]):
        vid = row["video_id"]
        if not vid:
            continue
        if vid in first and first[vid][0] < row["seq"]:
            row["duplicate_of"] = first[vid][1]
        else:
            first[vid] = (row["seq"], row["path"])
