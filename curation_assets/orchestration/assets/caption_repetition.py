import time

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, asset

from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.shard_io import params_json, to_frame, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scorers.caption_text import char_repetition_ratio

CAPTION_REPETITION = "caption_repetition"
SCHEMA = {"video_id": pl.Utf8, "char_rep_ratio": pl.Float64, "caption_source": pl.Utf8, "params": pl.Utf8, "error": pl.Utf8}


def build_caption_repetition(recipe: Recipe):
    RepetitionConfig = config_class(CAPTION_REPETITION, recipe)

    @asset(
        name=CAPTION_REPETITION,
        deps=[CAPTIONS],
        partitions_def=shard_partitions,
        code_version=code_version(CAPTION_REPETITION, recipe),
        group_name="scores",
        kinds={"duckdb"},
        check_specs=[AssetCheckSpec("ratio_in_unit_interval", asset=CAPTION_REPETITION)],
        description="data-juicer's character repetition ratio of each caption (n-grams of rep_len chars).",
    )
    def caption_repetition(context: AssetExecutionContext, config: RepetitionConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        params = params_json({"rep_len": config.rep_len})
        rows = []
        for row in store.read_shard(CAPTIONS, context.partition_key).iter_rows(named=True):
            if row["caption"] is None:
                continue  # nothing to score; curated_videos applies require_caption
            rows.append({"video_id": row["video_id"], "char_rep_ratio": char_repetition_ratio(row["caption"], config.rep_len),
                         "caption_source": row["source"], "params": params, "error": None})
        frame = to_frame(rows, SCHEMA)
        bad = frame.filter((pl.col("char_rep_ratio") < 0) | (pl.col("char_rep_ratio") > 1)).height
        check = AssetCheckResult(check_name="ratio_in_unit_interval", passed=bad == 0, metadata={"out_of_range": bad})
        return write_shard(context, store, CAPTION_REPETITION, frame, started, check_results=[check])

    return caption_repetition
