import time

import polars as pl
from dagster import AssetExecutionContext, asset

from curation_assets.assets.shard_io import RAW_VIDEOS, primary_videos, to_frame, write_shard
from curation_assets.partitions import shard_partitions
from curation_assets.recipe import Recipe, code_version
from curation_assets.resources import CurationStore
from curation_assets.scorers.caption_text import clean_caption

CAPTIONS = "captions"
CAPTIONS_SCHEMA = {
    "video_id": pl.Utf8,
    "caption": pl.Utf8,
    "source": pl.Utf8,  # original | missing (a generator adds 'generated')
    "model": pl.Utf8,
    "error": pl.Utf8,
}


def build_captions(recipe: Recipe):
    @asset(
        name=CAPTIONS,
        deps=[RAW_VIDEOS],
        partitions_def=shard_partitions,
        code_version=code_version(CAPTIONS, recipe),
        group_name="captions",
        kinds={"duckdb"},
        description="The manifest caption without data-juicer special tokens; source 'original', "
        "or 'missing' when there is none.",
    )
    def captions(context: AssetExecutionContext, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        rows = []
        for video in primary_videos(store, context.partition_key).iter_rows(named=True):
            caption = clean_caption(video["source_caption"])
            rows.append({"video_id": video["video_id"], "caption": caption,
                         "source": "original" if caption else "missing", "model": None, "error": None})
        frame = to_frame(rows, CAPTIONS_SCHEMA)
        counts = {f"source_{k}": int(v) for k, v in frame["source"].value_counts().iter_rows()} if frame.height else {}
        return write_shard(context, store, CAPTIONS, frame, started, counts)

    return captions
