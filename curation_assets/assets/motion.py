import time

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, asset

from curation_assets.assets.shard_io import RAW_VIDEOS, params_json, primary_videos, to_frame, write_shard
from curation_assets.partitions import shard_partitions
from curation_assets.recipe import Recipe, code_version, config_class
from curation_assets.resources import CurationStore
from curation_assets.scorers.motion import motion_score

MOTION = "motion"
MOTION_SCHEMA = {
    "video_id": pl.Utf8,
    "motion_score": pl.Float64,
    "pair_scores": pl.List(pl.Float64),
    "frame_indices": pl.List(pl.Int64),
    "frames_decoded": pl.Int64,
    "params": pl.Utf8,
    "seconds": pl.Float64,
    "error": pl.Utf8,
}


def build_motion(recipe: Recipe):
    MotionConfig = config_class(MOTION, recipe)

    @asset(
        name=MOTION,
        deps=[RAW_VIDEOS],
        partitions_def=shard_partitions,
        code_version=code_version(MOTION, recipe),
        group_name="scores",
        kinds={"duckdb", "opencv"},
        check_specs=[AssetCheckSpec("motion_in_range", asset=MOTION)],
        description="Farneback optical-flow motion score (data-juicer compatible), with per-pair values.",
    )
    def motion(context: AssetExecutionContext, config: MotionConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        params = config.params()
        rows = []
        for video in primary_videos(store, context.partition_key).iter_rows(named=True):
            t0 = time.perf_counter()
            try:
                result = motion_score(video["path"], params, fps=video["fps"], total_frames=video["frame_count"])
                row = {"motion_score": result.motion_score, "pair_scores": result.pair_scores,
                       "frame_indices": result.frame_indices, "frames_decoded": result.frames_decoded,
                       "error": result.error}
            except Exception as exc:  # one bad video must not cost the shard
                row = {"motion_score": None, "pair_scores": None, "frame_indices": None,
                       "frames_decoded": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            row.update(video_id=video["video_id"], params=params_json(params.as_dict()),
                       seconds=time.perf_counter() - t0)
            rows.append(row)
        frame = to_frame(rows, MOTION_SCHEMA)
        scored = frame.filter(pl.col("error").is_null())
        out_of_range = scored.filter(pl.col("motion_score") < 0).height
        check = AssetCheckResult(check_name="motion_in_range", passed=out_of_range == 0,
                                 metadata={"negative_scores_without_error": out_of_range})
        meta = {"mean_motion_score": float(scored["motion_score"].mean()) if scored.height else 0.0}
        return write_shard(context, store, MOTION, frame, started, meta, check_results=[check])

    return motion
