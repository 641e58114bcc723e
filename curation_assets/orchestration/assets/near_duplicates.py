import time

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from curation_assets.ingest.registry import shard_number
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, primary_videos, to_frame, write_shard
from curation_assets.orchestration.assets.video_hashes import VIDEO_HASHES
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scorers.video_hash import Candidate, choose_near_duplicates

AESTHETICS = "aesthetics"  # the keep rule prefers the better clip by its aesthetics score
NEAR_DUPLICATES = "near_duplicates"
SCHEMA = {
    "video_id": pl.Utf8,
    "near_duplicate_of": pl.Utf8,  # video_id of the kept video it repeats; null = kept
    "similarity": pl.Float64,  # to that video, or the highest similarity to any kept one
    "rank": pl.Int64,  # position under the keep rule within the shard (0 = best)
    "threshold": pl.Float64,
    "error": pl.Utf8,
}


def build_near_duplicates(recipe: Recipe):
    NearDuplicatesConfig = config_class(NEAR_DUPLICATES, recipe)

    @asset(
        name=NEAR_DUPLICATES,
        deps=[RAW_VIDEOS, VIDEO_HASHES, AESTHETICS],
        partitions_def=shard_partitions,
        code_version=code_version(NEAR_DUPLICATES, recipe),
        group_name="curation",
        kinds={"parquet", "duckdb"},
        description="Near-duplicate clips (re-encodes, small crops, brightness changes, the same shot shifted "
        "in time) by perceptual video hash: within the shard the best by the keep rule stays (aesthetics, "
        "then resolution, then duration, then registration order); a clip matching an earlier shard's "
        "clip is the duplicate. Off unless the recipe enables it.",
    )
    def near_duplicates(context: AssetExecutionContext, config: NearDuplicatesConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        shard = context.partition_key
        if not config.enabled:
            return write_shard(context, store, NEAR_DUPLICATES, to_frame([], SCHEMA), started,
                               {"near_duplicate_check": "off (recipe near_duplicates.enabled: false)"})
        videos = primary_videos(store, shard)
        hashes = {r["video_id"]: r for r in store.read_shard(VIDEO_HASHES, shard).iter_rows(named=True)}
        aesthetics = {r["video_id"]: r for r in store.read_shard(AESTHETICS, shard).iter_rows(named=True)}
        candidates, rows = [], []
        for order, video in enumerate(videos.iter_rows(named=True)):
            vid = video["video_id"]
            h = hashes.get(vid)
            if h is None or h["error"] or not h["frame_hashes"]:
                rows.append({"video_id": vid, "threshold": config.threshold,
                             "error": (h or {}).get("error") or "no video hash recorded"})
                continue
            candidates.append(Candidate(vid, h["frame_hashes"], _rank_key(video, aesthetics.get(vid), order)))
        earlier = _earlier_hashes(store, shard) if config.across_shards else []
        ranks = {c.video_id: i for i, c in enumerate(sorted(candidates, key=lambda c: c.rank_key))}
        for match in choose_near_duplicates(candidates, earlier, config.threshold):
            rows.append({"video_id": match.video_id, "near_duplicate_of": match.near_duplicate_of,
                         "similarity": match.similarity, "rank": ranks[match.video_id],
                         "threshold": config.threshold, "error": None})
        frame = to_frame(rows, SCHEMA)
        dups = frame.filter(pl.col("near_duplicate_of").is_not_null())
        lines = ["| video_id | near_duplicate_of | similarity |", "|---|---|---|"] + [
            f"| {r['video_id'][:12]} | {r['near_duplicate_of'][:12]} | {r['similarity']:.3f} |"
            for r in dups.head(50).iter_rows(named=True)]
        return write_shard(context, store, NEAR_DUPLICATES, frame, started,
                           {"near_duplicates": dups.height, "compared_with_earlier_videos": len(earlier),
                            "threshold": config.threshold, "pairs": MetadataValue.md("\n".join(lines))})

    return near_duplicates


def _rank_key(video: dict, aesthetics: dict | None, order: int) -> tuple:
    """Smaller is better: aesthetics (real models only: tiny-profile scores are noise), then
    display pixels, then duration, then registration order (seq, clip_index)."""
    score = None
    if aesthetics and not aesthetics.get("error") and aesthetics.get("profile") != "tiny":
        score = aesthetics.get("aesthetics_score")
    pixels = (video.get("display_width") or 0) * (video.get("display_height") or 0)
    return (-(score if score is not None else -1.0), -pixels, -(video.get("duration_s") or 0.0), order)


def _earlier_hashes(store, shard: str) -> list[tuple[str, list[int]]]:
    """Hashes of the videos every earlier shard already written kept (earlier shards win; a
    later clip is named a duplicate of the kept video, not of another duplicate)."""
    tables = store.tables()
    if VIDEO_HASHES not in tables:
        return []
    sql = f"select h.shard, h.video_id, h.frame_hashes from {VIDEO_HASHES} h "
    if NEAR_DUPLICATES in tables:
        # a shard judged with the check off has no rows here: all its videos count as kept
        sql += (f"left join {NEAR_DUPLICATES} n on n.shard = h.shard and n.video_id = h.video_id "
                "where n.near_duplicate_of is null and ")
    else:
        sql += "where "
    rows = store.query(sql + "h.error is null and h.shard <> ?", [shard])
    mine = shard_number(shard)
    return [(r["video_id"], r["frame_hashes"]) for r in rows.sort("shard", "video_id").iter_rows(named=True)
            if shard_number(r["shard"]) < mine]
