import time

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, asset

from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, primary_videos, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version
from curation_assets.orchestration.resources import CurationStore

RESOLUTION = "resolution"
COLUMNS = ["video_id", "path", "width", "height", "rotation", "display_width", "display_height", "fps", "frame_count", "duration_s"]


def build_resolution(recipe: Recipe):
    @asset(
        name=RESOLUTION,
        deps=[RAW_VIDEOS],
        partitions_def=shard_partitions,
        code_version=code_version(RESOLUTION, recipe),
        group_name="scores",
        kinds={"duckdb"},
        check_specs=[AssetCheckSpec("positive_dimensions", asset=RESOLUTION)],
        description="Coded width/height (as data-juicer reports them), display size after rotation, "
        "fps and duration, from the stream header: nothing is decoded.",
    )
    def resolution(context: AssetExecutionContext, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        frame = primary_videos(store, context.partition_key).select(COLUMNS).with_columns(pl.lit(None, pl.Utf8).alias("error"))
        bad = frame.filter((pl.col("width") <= 0) | (pl.col("height") <= 0) | (pl.col("display_width") <= 0))
        check = AssetCheckResult(check_name="positive_dimensions", passed=bad.height == 0, metadata={"bad_rows": bad.height})
        return write_shard(context, store, RESOLUTION, frame, started, check_results=[check])

    return resolution
