import time

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetOut, Config, Failure, MetadataValue, multi_asset
from pydantic import Field, create_model

from curation_assets.execution import ray_cluster
from curation_assets.execution.local_pool import default_workers, map_videos, threads_per_process
from curation_assets.orchestration.assets.score_assets import score_kinds
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, params_json, primary_videos, to_frame, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scorers.video_pass import PassJob, run_pass_job
from curation_assets.scores.motion import MOTION as MOTION_SCORE

MOTION = MOTION_SCORE.name
SAMPLED_FRAMES = "sampled_frames"
MOTION_SCHEMA = MOTION_SCORE.table_schema()
FRAMES_SCHEMA = {
    "video_id": pl.Utf8,
    "frame_indices": pl.List(pl.Int64),
    "timestamps": pl.List(pl.Float64),
    "frame_paths": pl.List(pl.Utf8),
    # the gallery's animated preview (scorers/previews.py); null in data dirs written before it
    "preview_path": pl.Utf8,
    "width": pl.Int64,
    "height": pl.Int64,
    "params": pl.Utf8,
    "error": pl.Utf8,
}


def build_video_pass(recipe: Recipe):
    MotionConfig = config_class(MOTION, recipe)
    FramesConfig = config_class(SAMPLED_FRAMES, recipe)
    VideoPassConfig = create_model(
        "VideoPassConfig", __base__=Config,
        motion=(MotionConfig, Field(default_factory=MotionConfig)),
        sampled_frames=(FramesConfig, Field(default_factory=FramesConfig)),
    )

    @multi_asset(
        name="video_pass",
        outs={
            MOTION: AssetOut(
                code_version=code_version(MOTION, recipe), group_name="scores", kinds=score_kinds(MOTION_SCORE),
                description=MOTION_SCORE.description + " Per-pair values kept beside the score.",
            ),
            SAMPLED_FRAMES: AssetOut(
                code_version=code_version(SAMPLED_FRAMES, recipe), group_name="frames", kinds={"parquet", "duckdb", "pyav"},
                description="The frames every image scorer reads (first/middle/last by default), as image files "
                "under <store location>/frames, indexed here by relative key.",
            ),
        },
        deps=[RAW_VIDEOS],
        partitions_def=shard_partitions,
        check_specs=[AssetCheckSpec("motion_in_range", asset=MOTION),
                     AssetCheckSpec("frames_for_every_scored_video", asset=SAMPLED_FRAMES)],
        description="Decodes each video once, sequentially, feeding motion and the sampled frames.",
    )
    def video_pass_asset(context: AssetExecutionContext, config: VideoPassConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        motion_params, sampling = config.motion.params(), config.sampled_frames.params()
        # before any decoding: a backend or decoder that cannot run stops the step in one line
        backend, decoder = _resolve_motion_execution(config.motion.backend, config.motion.decoder)
        motion_base = {**motion_params.as_dict(), **backend.as_dict()}
        frames_base = {**sampling.as_dict(), "image_format": config.sampled_frames.image_format}
        motion_json, frames_json = params_json(motion_base), params_json(frames_base)
        motion_rows, frame_rows = [], []
        videos = list(primary_videos(store, context.partition_key).iter_rows(named=True))
        on_ray = ray_cluster.enabled() and backend.backend != "torch"
        workers = 0 if on_ray else default_workers()
        # a shard too small for worker processes still gets every core: flow on threads
        flow_threads = 1 if on_ray else min(4, threads_per_process(len(videos), workers))
        jobs = [PassJob(v["video_id"], v["path"], v["fps"], v["frame_count"], motion_params, sampling,
                        curation_store.location, config.sampled_frames.image_format, flow_threads, backend.backend)
                for v in videos]
        placement, execution = {}, {}
        if backend.backend == "torch":
            # the torch backend batches pairs across the shard's videos on one device: the
            # whole shard runs in this process (decode threads + flow calls), on Ray too
            from curation_assets.scorers.torch_pass import TorchPassOptions, run_torch_pass

            stats: dict = {}
            options = TorchPassOptions(device=backend.torch_device, decoder=decoder)
            outs = run_torch_pass(jobs, options, stats)
            workers, flow_threads = 0, 0
            execution = {"motion_decoder": decoder, "decode_threads": 0 if options.processes() else options.threads(),
                         "flow_calls": stats["flow_calls"], "flow_seconds": round(stats["flow_seconds"], 3),
                         "decoder_fallbacks": sum(1 for o in outs if o.get("decoder_fallback")),
                         "flow_fallbacks": sum(1 for o in outs if o.get("flow_fallback")),
                         "decode_processes": options.processes(),
                         "flow_kernels": stats["kernels"] if not stats.get("kernel_failure") else "eager",
                         "flow_compiled": stats["kernels"] == "compiled" and not stats.get("kernel_failure"),
                         **({"flow_kernel_failure": stats["kernel_failure"]} if stats.get("kernel_failure") else {}),
                         **({"flow_compile_failure": stats["compile_failure"]} if stats.get("compile_failure") else {})}
        elif on_ray:  # one Ray task per video, one core each: Ray spreads the shard over the cluster
            outs, nodes = ray_cluster.map_on_ray(run_pass_job, jobs, num_cpus=1, what="decode task")
            placement = {"ray_nodes": MetadataValue.json(sorted(set(nodes))),
                         "ray_node_per_video": MetadataValue.json(dict(zip((j.video_id for j in jobs), nodes)))}
        else:
            outs = map_videos(run_pass_job, jobs, workers)
        for job, out in zip(jobs, outs):
            vid = job.video_id
            if out["error"]:
                motion_rows.append({"video_id": vid, "params": motion_json, "seconds": out["seconds"], "error": out["error"]})
                frame_rows.append({"video_id": vid, "params": frames_json, "error": out["error"]})
                continue
            m = out["motion"]
            motion_row_json, frames_row_json = motion_json, frames_json
            if backend.backend == "torch":  # what ran for this video: its decoder, and any fallback
                ran = _torch_row_record(out, backend)
                motion_row_json = params_json({**motion_base, **ran})
                frames_row_json = params_json({**frames_base, **{k: v for k, v in ran.items()
                                                                 if k in ("decoder", "decoder_fallback")}})
            motion_rows.append({"video_id": vid, "motion_score": m.motion_score, "pair_scores": m.pair_scores,
                                "frame_indices": m.frame_indices, "frames_decoded": m.frames_decoded,
                                "params": motion_row_json, "seconds": out["seconds"], "error": m.error})
            frame_rows.append({"video_id": vid, "frame_indices": out["frame_indices"], "timestamps": out["timestamps"],
                               "frame_paths": out["frame_paths"], "preview_path": out.get("preview_path"),
                               "width": out["width"], "height": out["height"],
                               "params": frames_row_json,
                               "error": None if out["frame_paths"] else (out["frames_error"] or "no frame could be decoded")})
        motion = pl.DataFrame(motion_rows, schema=MOTION_SCHEMA) if motion_rows else to_frame([], MOTION_SCHEMA)
        frames = pl.DataFrame(frame_rows, schema=FRAMES_SCHEMA) if frame_rows else to_frame([], FRAMES_SCHEMA)

        # the decoder's work: pictures decoded, and those no pick needed and nothing referenced
        decode_work = {"decode_frames": sum(o.get("frames_decoded") or 0 for o in outs),
                       "decode_frames_skipped": sum(o.get("frames_skipped") or 0 for o in outs)}
        scored = motion.filter(pl.col("error").is_null())
        negative = scored.filter(pl.col("motion_score") < 0).height
        without_frames = frames.filter(pl.col("error").is_null() & (pl.col("frame_paths").list.len() == 0)).height
        motion_result = write_shard(
            context, store, MOTION, motion, started,
            {"mean_motion_score": float(scored["motion_score"].mean()) if scored.height else 0.0, "workers": workers,
             "flow_threads": flow_threads, "motion_backend": backend.backend, "motion_device": backend.device,
             **execution, **decode_work, **placement},
            check_results=[AssetCheckResult(asset_key=MOTION, check_name="motion_in_range", passed=negative == 0,
                                            metadata={"negative_scores_without_error": negative})],
            asset_key=MOTION,
        )
        frames_result = write_shard(
            context, store, SAMPLED_FRAMES, frames, started,
            {"frames_stored": int(frames["frame_paths"].list.len().sum() or 0)},
            check_results=[AssetCheckResult(asset_key=SAMPLED_FRAMES, check_name="frames_for_every_scored_video",
                                            passed=without_frames == 0, metadata={"videos_without_frames": without_frames})],
            asset_key=SAMPLED_FRAMES,
        )
        yield motion_result
        yield frames_result

    return video_pass_asset


def _resolve_motion_execution(backend: str, decoder: str):
    from curation_assets.scorers.decoders import resolve_decoder
    from curation_assets.scorers.flow_backends import BackendError, resolve_backend

    try:
        resolved = resolve_backend(backend)
        return resolved, resolve_decoder(decoder, resolved.backend, resolved.torch_device)
    except BackendError as exc:
        raise Failure(description=str(exc)) from exc


def _torch_row_record(out: dict, backend) -> dict:
    """A torch-backend row's record of what ran: the decoder, and why the GPU decoder or the
    flow device did not take this video (OpenCV then scored it on the CPU: backend cpu)."""
    from curation_assets.scorers.flow_backends import cpu_name

    ran = {"decoder": out["decoder"]}
    if out.get("decoder_fallback"):
        ran["decoder_fallback"] = out["decoder_fallback"]
    if out.get("flow_fallback"):
        ran["flow_fallback"] = out["flow_fallback"]
        if out.get("flow_backend") == "cpu":
            ran.update(backend="cpu", device=cpu_name())
    return ran
