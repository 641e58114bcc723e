import time

import polars as pl
from dagster import AssetExecutionContext, Failure, asset

from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, to_frame, write_shard
from curation_assets.orchestration.assets.shots import SHOTS
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
    # shot splitting (null for a video scored whole): a split source names its clip count,
    # each clip its source and where it sits there
    "split_into": pl.Int64,
    "split_error": pl.Utf8,
    "clip_index": pl.Int64,
    "source_video_id": pl.Utf8,
    "source_path": pl.Utf8,
    "start_frame": pl.Int64,
    "end_frame": pl.Int64,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
}


def build_raw_videos(recipe: Recipe):
    @asset(
        name=RAW_VIDEOS,
        deps=[SHOTS],
        partitions_def=shard_partitions,
        code_version=code_version(RAW_VIDEOS, recipe),
        group_name="ingest",
        kinds={"parquet", "duckdb", "pyav"},
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
        split = _shots_by_source(store, shard)
        rows = []
        for member in members.iter_rows(named=True):
            rows.append(_probe_member(member))
            if member["path"] in split:
                rows.extend(_split_rows(rows[-1], member, split[member["path"]], store.location))
        _mark_duplicates(rows, _known_primaries(store, shard, rows))
        frame = to_frame(rows, RAW_VIDEOS_SCHEMA)
        duplicates = int(frame["duplicate_of"].is_not_null().sum())
        meta = {"registered": members.height, "duplicates": duplicates}
        if split:
            meta.update(sources_split=int(frame["split_into"].is_not_null().sum()),
                        clips=int(frame["clip_index"].is_not_null().sum()))
        return write_shard(context, store, RAW_VIDEOS, frame, started, meta)

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


def _shots_by_source(store, shard: str) -> dict[str, list[dict]]:
    """source path -> its shots rows (source row first, then clips in order)."""
    if SHOTS not in store.tables():
        return {}
    rows = store.read_shard(SHOTS, shard).sort("source_seq", "clip_index", nulls_last=False)
    out: dict[str, list[dict]] = {}
    for row in rows.iter_rows(named=True):
        out.setdefault(row["source_path"], []).append(row)
    return out


def _split_rows(source_row: dict, member: dict, shots: list[dict], location) -> list[dict]:
    """Mark the source as split and add one row per clip. A source whose detection decoded
    nothing fails with that reason; a clip ffmpeg could not cut fails with ffmpeg's.
    A clip's `path` is its key relative to the store location, as `shots` recorded it (an
    absolute path in data dirs written before); it is probed through a local copy."""
    source = next(r for r in shots if r["kind"] == "source")
    if source_row["error"]:
        return []
    if not source["frames_decoded"]:
        source_row["error"] = f"shot detection: {source['error'] or 'no frame decoded'}"
        return []
    source_row["split_into"] = source["clips_made"]
    source_row["split_error"] = source["error"]
    rows = []
    for clip in (r for r in shots if r["kind"] == "clip"):
        row = {"path": clip["clip_path"], "seq": member["seq"], "source_caption": clip["caption"],
               "video_id": None, "duplicate_of": None, "clip_index": clip["clip_index"],
               "source_video_id": clip["source_video_id"], "source_path": member["path"],
               "start_frame": clip["start_frame"], "end_frame": clip["end_frame"],
               "start_s": clip["start_s"], "end_s": clip["end_s"]}
        if clip["error"]:
            row.update(ProbeResult(error=f"cut failed: {clip['error']}").as_row())
        else:
            try:
                local = location.local_file(clip["clip_path"])
            except Exception as exc:  # a remote object that cannot be fetched fails this clip only
                row.update(ProbeResult(error=f"cannot fetch clip: {type(exc).__name__}: {str(exc)[:200]}").as_row())
                rows.append(row)
                continue
            row.update(_probe_member({"path": local, "seq": member["seq"], "manifest_text": clip["caption"],
                                      "registration_error": None}))
            row["path"], row["source_caption"] = clip["clip_path"], clip["caption"]
        rows.append(row)
    return rows


def _known_primaries(store, shard: str, rows: list[dict]) -> dict[str, tuple[int, str]]:
    """video_id -> (seq, path) of copies already recorded in other shards: the content-hash
    index for compacted shards, the newer shards' objects directly (curation/upkeep.py)."""
    from curation_assets.curation.upkeep import known_primaries

    ids = [r["video_id"] for r in rows if r["video_id"]]
    if not ids or RAW_VIDEOS not in store.tables():
        return {}
    return known_primaries(store, shard, ids)


def _mark_duplicates(rows: list[dict], elsewhere: dict[str, tuple[int, str]]) -> None:
    # The earliest registration wins, whichever shard happens to be processed first.
    # Clips share their source's seq and are ordered after it by clip_index.
    first: dict[str, tuple[tuple[int, int], str]] = {vid: ((seq, -1), path) for vid, (seq, path) in elsewhere.items()}
    for row in sorted(rows, key=_order):
        vid = row["video_id"]
        if not vid:
            continue
        if vid in first and first[vid][0] < _order(row):
            row["duplicate_of"] = first[vid][1]
        else:
            first[vid] = (_order(row), row["path"])


def _order(row: dict) -> tuple[int, int]:
    return row["seq"], -1 if row.get("clip_index") is None else row["clip_index"]
