import json
import time
from pathlib import Path

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, asset

from curation_assets.orchestration.assets.curated_videos import CURATED_VIDEOS
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, params_json, to_frame, write_shard
from curation_assets.orchestration.assets.video_pass import MOTION
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scorers.acceleration import choose_factor, output_path, speed_up
from curation_assets.scorers.flow_backends import split_motion_row_params
from curation_assets.scorers.motion import MotionParams
from curation_assets.scorers.video_pass import motion_score
from curation_assets.scorers.probe import probe_video

ACCELERATED_VIDEOS = "accelerated_videos"
SCHEMA = {
    "video_id": pl.Utf8, "path": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8, "output_path": pl.Utf8,
    "factor": pl.Float64, "original_duration_s": pl.Float64, "new_duration_s": pl.Float64,
    "original_frames": pl.Int64, "new_frames": pl.Int64, "fps": pl.Float64,
    "motion_before": pl.Float64, "motion_after": pl.Float64, "target_min": pl.Float64, "target_max": pl.Float64,
    "params": pl.Utf8, "error": pl.Utf8,
}


def build_accelerated_videos(recipe: Recipe):
    AccelerationConfig = config_class(ACCELERATED_VIDEOS, recipe)

    @asset(
        name=ACCELERATED_VIDEOS, deps=[CURATED_VIDEOS, MOTION, RAW_VIDEOS], partitions_def=shard_partitions,
        code_version=code_version(ACCELERATED_VIDEOS, recipe), group_name="curation", kinds={"parquet", "duckdb", "ffmpeg"},
        check_specs=[AssetCheckSpec("in_band_with_exact_duration", asset=ACCELERATED_VIDEOS,
                                    description="Each accelerated clip's re-scored motion is in the target band and "
                                    "its duration is original/factor to within one frame.")],
        description="Kept clips in slow motion (motion below accelerate_below, aesthetics above a floor) sped up "
        "with ffmpeg so their motion lands in the target band; re-probed and re-scored.",
    )
    def accelerated_videos(context: AssetExecutionContext, config: AccelerationConfig, curation_store: CurationStore):
        started, store, shard = time.perf_counter(), curation_store.store(), context.partition_key
        params = config.params()
        curated = store.read_shard(CURATED_VIDEOS, shard).filter(pl.col("status") == "kept")
        raw = {r["video_id"]: r for r in store.read_shard(RAW_VIDEOS, shard).iter_rows(named=True) if r["video_id"]}
        motion_params = {r["video_id"]: r["params"] for r in store.read_shard(MOTION, shard).iter_rows(named=True)}
        location = store.location
        # ffmpeg writes a local file: straight into a local location, else into a staging
        # folder and uploaded (one PUT) once the clip is re-probed and re-scored
        out_dir = (Path(location.path("accelerated")) if location.is_local
                   else Path(curation_store.data_dir) / ".staging" / "accelerated")
        rows = []
        for video in curated.iter_rows(named=True):
            motion = video["motion_score"]
            if not config.enabled or motion is None or motion >= params.accelerate_below:
                continue
            probe = raw[video["video_id"]]
            row = {"video_id": video["video_id"], "path": video["path"], "motion_before": motion,
                   "original_duration_s": probe["duration_s"], "original_frames": probe["frame_count"],
                   "fps": probe["fps"], "target_min": params.target_min, "target_max": params.target_max,
                   "params": params_json(params.as_dict()), "status": "skipped"}
            aesthetics = video["aesthetics_score"]
            # no gate on noise (tiny profile) or on a scorer the recipe switched off
            aesthetics_off = "aesthetics" in (video.get("scorers_off") or [])
            if (config.aesthetics_min is not None and video["model_profile"] != "tiny" and not aesthetics_off
                    and (aesthetics is None or aesthetics < config.aesthetics_min)):
                row["reason"] = f"aesthetics_score {aesthetics} < {config.aesthetics_min:g}"
                rows.append(row)
                continue
            choice = choose_factor(motion, probe["frame_count"], params)
            if choice.factor is None:
                row["reason"] = choice.reason
                rows.append(row)
                continue
            try:
                motion_params_, backend = split_motion_row_params(json.loads(motion_params[video["video_id"]]))
                # a clip cut by `shots` is a key relative to the location: ffmpeg reads a local copy
                source = {**video, "path": location.local_file(video["path"])}
                row.update(_accelerate(source, probe, choice.factor, params, out_dir, MotionParams(**motion_params_),
                                       backend))
                # rows hold the clip's key relative to the store location
                key = "accelerated/" + Path(row["output_path"]).relative_to(out_dir).as_posix()
                location.put_file(row["output_path"], key)
                row["output_path"] = key
            except Exception as exc:
                row.update(status="failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            rows.append(row)
        frame = to_frame(rows, SCHEMA)
        done = frame.filter(pl.col("status") == "accelerated")
        bad = done.filter(
            (pl.col("motion_after") < pl.col("target_min")) | (pl.col("motion_after") > pl.col("target_max"))
            | ((pl.col("new_duration_s") - pl.col("original_duration_s") / pl.col("factor")).abs() > 1.0 / pl.col("fps") + 1e-6)
        )
        check = AssetCheckResult(check_name="in_band_with_exact_duration", passed=bad.height == 0,
                                 metadata={"accelerated": done.height, "violations": bad.height})
        return write_shard(context, store, ACCELERATED_VIDEOS, frame, started,
                           {"accelerated": done.height, "skipped": frame.filter(pl.col("status") == "skipped").height},
                           check_results=[check])

    return accelerated_videos


def _accelerate(video: dict, probe: dict, factor: float, params, out_dir: Path, motion_params: MotionParams,
                backend: str = "cpu") -> dict:
    """Encode (or reuse) the sped-up clip, re-probe and re-score it; one corrective retry."""
    for attempt in range(2):
        target = output_path(out_dir, video["video_id"], factor)
        if not (target.exists() and probe_video(target).error is None):  # a re-run reuses the file
            speed_up(video["path"], target, factor, probe["fps"], params.audio, bool(probe["has_audio"]))
        after = probe_video(target)
        if after.error:
            raise RuntimeError(f"accelerated file unreadable: {after.error}")
        # the backend that scored the original, so before and after are on one footing
        new_motion = motion_score(target, motion_params, fps=after.fps, total_frames=after.frame_count, backend=backend)
        result = {"status": "accelerated", "reason": "ok", "output_path": str(target), "factor": factor,
                  "new_duration_s": after.duration_s, "new_frames": after.frame_count,
                  "motion_after": new_motion.motion_score}
        in_band = params.target_min <= new_motion.motion_score <= params.target_max
        if in_band or attempt:
            return result
        # Motion is not exactly linear in speed (e.g. data-juicer's extra 0->1 pair): correct once.
        corrected = factor * (params.target / new_motion.motion_score)
        frames_cap = probe["frame_count"] / params.min_output_frames
        factor = round(min(corrected, params.max_factor, frames_cap), 3)
        if factor <= result["factor"] and new_motion.motion_score < params.target_min:
            return result  # capped: keep the best we could do; the check reports it
    return result
