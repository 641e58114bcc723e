import time

import polars as pl
from dagster import AssetExecutionContext, asset

from curation_assets.orchestration.assets.shard_io import SAMPLED_FRAMES, frames_or_error, shard_frames, to_frame, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scorers.video_hash import frame_phash, to_signed

VIDEO_HASHES = "video_hashes"
SCHEMA = {
    "video_id": pl.Utf8,
    # 64-bit DCT perceptual hash of each sampled frame (int64 holding the uint64's bits)
    "frame_hashes": pl.List(pl.Int64),
    "frame_indices": pl.List(pl.Int64),
    "error": pl.Utf8,
}


def build_video_hashes(recipe: Recipe):
    @asset(
        name=VIDEO_HASHES,
        deps=[SAMPLED_FRAMES],
        partitions_def=shard_partitions,
        code_version=code_version(VIDEO_HASHES, recipe),
        group_name="scores",
        kinds={"parquet", "duckdb", "opencv"},
        description="Perceptual video hash: the 64-bit DCT pHash of each sampled frame (no decoding: the "
        "frames the decode pass already wrote). near_duplicates compares them.",
    )
    def video_hashes(context: AssetExecutionContext, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        rows = []
        # shard_frames resolves the rows' frame keys against the store location
        for row in shard_frames(store, context.partition_key).values():
            frames, error = frames_or_error(row)
            rows.append({"video_id": row["video_id"], "frame_indices": row["frame_indices"] if not error else None,
                         "frame_hashes": [to_signed(frame_phash(f)) for f in frames] if not error else None,
                         "error": error})
        return write_shard(context, store, VIDEO_HASHES, to_frame(rows, SCHEMA), started)

    return video_hashes
