import time
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from curation_assets.ingest.registry import shard_members
from curation_assets.orchestration.assets.shard_io import params_json, to_frame, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.execution.local_pool import default_workers, map_videos
from curation_assets.scorers.hashing import content_hash
from curation_assets.scorers.probe import probe_video
from curation_assets.scorers.shots import SplitJob, split_source

SHOTS = "shots"

# One table, two kinds of row: per split source ("source": what detection found, its error)
# and per clip ("clip": its file and where it sits in the source). raw_videos reads both.
# clip_path is the clip's key relative to the store location (`clips/ab/<source id>/...`),
# resolved by readers with StoreLocation.resolve / local_file; rows of data dirs written
# before hold absolute paths, which resolve to themselves.
SHOTS_SCHEMA = {
    "kind": pl.Utf8,
    "source_seq": pl.Int64,
    "source_path": pl.Utf8,
    "source_video_id": pl.Utf8,
    "clip_index": pl.Int64,
    "clip_path": pl.Utf8,
    "shot": pl.Int64,
    "start_frame": pl.Int64,
    "end_frame": pl.Int64,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "cut_mode": pl.Utf8,
    "caption": pl.Utf8,  # the source's manifest caption when inherit_caption is on
    "fps": pl.Float64,
    "frames_decoded": pl.Int64,
    "cuts": pl.List(pl.Int64),
    "shots_found": pl.Int64,
    "clips_made": pl.Int64,
    "dropped_short": pl.Int64,
    "detect_seconds": pl.Float64,
    "params": pl.Utf8,
    "error": pl.Utf8,
}


def build_shots(recipe: Recipe):
    ShotsConfig = config_class(SHOTS, recipe)

    @asset(
        name=SHOTS,
        partitions_def=shard_partitions,
        code_version=code_version(SHOTS, recipe),
        group_name="ingest",
        kinds={"pyav", "ffmpeg"},
        description="Shot splitting (off unless the recipe enables it): PySceneDetect cuts of each long source "
        "video, and the clips cut there with ffmpeg under <store location>/clips (rows hold keys relative to "
        "it). raw_videos scores the clips in place of their source.",
    )
    def shots(context: AssetExecutionContext, config: ShotsConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        params = config.params()
        params_str = params_json(params.as_dict())
        jobs, sources = [], []
        # a byte-identical copy of a source already split is not split again: raw_videos
        # rejects it as a duplicate, and its clips would be the very same files
        seen = _split_elsewhere(store, context.partition_key) if config.enabled else set()
        if config.enabled:
            for member in shard_members(store, context.partition_key).iter_rows(named=True):
                if member["registration_error"]:
                    continue
                probe = probe_video(member["path"])
                if probe.error or not config.splits(probe.duration_s):
                    continue  # unreadable files fail in raw_videos as today; short ones are scored whole
                try:
                    source_id = content_hash(member["path"])
                except OSError:
                    continue  # raw_videos records the read error
                if source_id in seen:
                    continue
                seen.add(source_id)
                sources.append((member, source_id))
                # clips go under the store location (like sampled frames), so a node elsewhere
                # reads them; remote locations stage ffmpeg's output in the data dir first
                jobs.append(SplitJob(member["path"], source_id, curation_store.location, params, config.reencode_crf,
                                     str(Path(curation_store.data_dir) / ".staging")))
        rows = []
        for (member, source_id), out in zip(sources, map_videos(split_source, jobs, default_workers(), 1)):
            caption = member["manifest_text"] if config.inherit_caption else None
            rows.extend(_rows(member, source_id, out, params_str, caption))
        frame = to_frame(rows, SHOTS_SCHEMA)
        return write_shard(context, store, SHOTS, frame, started, _metadata(frame, config.enabled))

    return shots


def _split_elsewhere(store, shard: str) -> set[str]:
    if SHOTS not in store.tables():
        return set()
    found = store.query(f"select distinct source_video_id from {SHOTS} where shard <> ? and kind = 'source'", [shard])
    return set(found["source_video_id"].to_list())


def _rows(member: dict, source_id: str, out: dict, params_str: str, caption: str | None) -> list[dict]:
    det = out["detection"]
    base = {"source_seq": member["seq"], "source_path": member["path"], "source_video_id": source_id,
            "fps": det.fps, "params": params_str}
    good = [c for c in out["clips"] if not c["error"]]
    rows = [{**base, "kind": "source", "frames_decoded": det.frames_decoded, "cuts": det.cuts,
             "shots_found": len(det.cuts) + 1 if det.frames_decoded else 0, "clips_made": len(good),
             "dropped_short": out["dropped_short"], "detect_seconds": det.seconds, "error": det.error}]
    for clip in out["clips"]:
        plan = clip["plan"]
        rows.append({**base, "kind": "clip", "clip_index": plan.index, "clip_path": clip["key"], "shot": plan.shot,
                     "start_frame": plan.start_frame, "end_frame": plan.end_frame,
                     "start_s": plan.start_frame / det.fps, "end_s": plan.end_frame / det.fps,
                     "cut_mode": clip["mode"], "caption": caption, "error": clip["error"]})
    return rows


def _metadata(frame: pl.DataFrame, enabled: bool) -> dict:
    sources = frame.filter(pl.col("kind") == "source")
    clips = frame.filter(pl.col("kind") == "clip")
    meta = {"splitting": "on" if enabled else "off (recipe shots.enabled: false)",
            "sources_split": sources.height, "clips": clips.height,
            "clips_failed": int(clips["error"].is_not_null().sum()),
            "sources_with_errors": int(sources["error"].is_not_null().sum())}
    # The UI's view of lineage: for each source, its clips and where they sit.
    lines = ["| source | shots | clips (start-end s, cut) | error |", "|---|---|---|---|"]
    for src in sources.iter_rows(named=True):
        own = clips.filter(pl.col("source_path") == src["source_path"]).sort("clip_index")
        spans = ", ".join(f"{r['start_s']:.2f}-{r['end_s']:.2f} {r['cut_mode'] or 'FAILED'}"
                          for r in own.head(12).iter_rows(named=True))
        if own.height > 12:
            spans += f", ... ({own.height} in all)"
        lines.append(f"| {Path(src['source_path']).name} | {src['shots_found']} | {spans} | {src['error'] or ''} |")
    meta["clips_by_source"] = MetadataValue.md("\n".join(lines))
    return meta
