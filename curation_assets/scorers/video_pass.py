"""One sequential decode per video feeding every frame consumer (motion, sampled frames).

Decoding is the floor of this pipeline's cost; a second pass per scorer would double it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curation_assets.scorers.frame_sampling import FrameCollector, FrameSamplingParams
from curation_assets.scorers.motion import MotionAccumulator, MotionParams, MotionResult, default_flow_threads

# Counts full decode passes in this process; tests use it to prove one pass per video.
_passes = 0


def decode_passes() -> int:
    return _passes


@dataclass
class VideoPassResult:
    motion: MotionResult
    frame_indices: list[int] = field(default_factory=list)
    frame_timestamps: list[float | None] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # RGB uint8
    frames_decoded: int = 0
    error: str | None = None  # a decode error mid-stream; what was read before it is kept


@dataclass
class StreamOutcome:
    """What one sequential decode left besides motion: the sampled frames and how it ended."""

    frame_indices: list[int]
    frame_timestamps: list[float | None]
    frames: list[np.ndarray]  # RGB uint8
    frames_decoded: int
    error: str | None  # a decode error mid-stream; what was read before it is kept


def stream_frames(path: str | Path, make_motion: Callable[[float, int], Any], sampling: FrameSamplingParams,
                  fps: float | None = None, total_frames: int | None = None) -> tuple[Any, StreamOutcome]:
    """Decode a video once with PyAV, in order, handing each frame motion wants (as BGR) to
    the consumer make_motion(fps, total_frames) builds (MotionAccumulator, MotionFrames) and
    keeping the sampled frames; stops after the last frame either needs."""
    import av

    global _passes
    _passes += 1
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if fps is None:
            fps = float(stream.base_rate or stream.average_rate or stream.guessed_rate)
        if total_frames is None or total_frames <= 0:
            total_frames = int(stream.frames or 0)
        motion = make_motion(fps, total_frames)
        # the stream's declared duration places data-juicer's uniform targets (in pts units)
        collector = FrameCollector(total_frames, sampling, duration_pts=stream.duration)
        decoded, error, stopped_early = 0, None, False
        last_frame, last_index = None, -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded += 1
                last_frame, last_index = frame, index
                if motion.wants(index):
                    motion.add(index, frame.to_ndarray(format="bgr24"))
                if collector.wants(index, frame):
                    collector.add(index, frame, frame.to_ndarray(format="rgb24"))
                if motion.done(index) and collector.done(index):
                    stopped_early = True
                    break
        except Exception as exc:
            error = f"decode failed after {decoded} frames: {str(exc)[:200]}"
        declared = int(stream.frames or 0)
        if error is None and not stopped_early and declared and decoded < 0.9 * declared:
            # containers without a size index (e.g. MPEG-TS) end quietly when cut short
            error = f"decoded {decoded} of {declared} frames the header declares (truncated?)"
        last_rgb = last_frame.to_ndarray(format="rgb24") if last_frame is not None else None
        indices = collector.finish(last_index, last_frame, last_rgb)
        return motion, StreamOutcome(indices, [collector.timestamps[i] for i in indices],
                                     [collector.frames[i] for i in indices], decoded, error)
    finally:
        container.close()


def video_pass(
    path: str | Path,
    motion_params: MotionParams,
    sampling: FrameSamplingParams,
    fps: float | None = None,
    total_frames: int | None = None,
    flow_threads: int = 1,
    backend: str = "cpu",
) -> VideoPassResult:
    """Decode once, score motion pair by pair on the CPU (or OpenCL), keep the sampled frames."""
    motion, out = stream_frames(
        path, lambda fps_, total: MotionAccumulator(fps_, total, motion_params, flow_threads=flow_threads, backend=backend),
        sampling, fps, total_frames)
    return VideoPassResult(motion=motion.result(out.frames_decoded, out.error), frame_indices=out.frame_indices,
                           frame_timestamps=out.frame_timestamps, frames=out.frames,
                           frames_decoded=out.frames_decoded, error=out.error)


def motion_score(path: str | Path, params: MotionParams = MotionParams(), fps: float | None = None,
                 total_frames: int | None = None, flow_threads: int | None = None,
                 backend: str = "cpu") -> MotionResult:
    """Score one video on its own (the asset graph scores motion inside the shared decode pass).

    flow_threads: None = default_flow_threads(); pass 1 inside a process pool that already
    uses every core. backend: "cpu", "opencl", "torch" or "auto" (scorers/flow_backends.py);
    torch decodes with PyAV and scores the video's pairs in batches on its device.
    """
    from curation_assets.scorers.flow_backends import resolve_backend

    threads = default_flow_threads() if flow_threads is None else flow_threads
    resolved = resolve_backend(backend) if backend != "cpu" else None
    if resolved is not None and resolved.backend == "torch":
        from curation_assets.scorers.decoders import decode_with_pyav
        from curation_assets.scorers.motion import motion_result
        from curation_assets.scorers.torch_motion import Sequence, score_sequences

        video = decode_with_pyav(path, params, FrameSamplingParams(num_frames=0), fps, total_frames)
        scores = score_sequences([Sequence(video.grays, video.source_hw)], params, resolved.torch_device)[0]
        return motion_result(scores.pair_scores, video.motion_indices, video.frames_decoded, params, video.error)
    return video_pass(path, params, FrameSamplingParams(num_frames=0), fps, total_frames, flow_threads=threads,
                      backend=resolved.backend if resolved is not None else "cpu").motion


@dataclass(frozen=True)
class PassJob:
    """One video's work for a worker process: everything picklable, no Dagster."""

    video_id: str
    path: str
    fps: float | None
    frame_count: int | None
    motion_params: MotionParams
    sampling: FrameSamplingParams
    data_dir: str  # the store location (folder or fsspec URL) the frames go under
    image_format: str = "png"
    flow_threads: int = 1  # >1 only when this job's process has cores to spare
    backend: str = "cpu"  # resolved before any job starts: "cpu" or "opencl" (torch: scorers/torch_pass.py)


def run_pass_job(job: PassJob) -> dict:
    """Decode once, score motion, store the sampled frames; errors come back as values."""
    import time

    from curation_assets.frames.files import save_frames
    from curation_assets.store.location import StoreLocation

    t0 = time.perf_counter()
    try:
        # a clip cut by `shots` is recorded as a key relative to the store location: open it
        # there (fetched once when the location is remote); registered sources are absolute
        location = job.data_dir if isinstance(job.data_dir, StoreLocation) else StoreLocation(job.data_dir)
        result = video_pass(location.local_file(job.path), job.motion_params, job.sampling, fps=job.fps,
                            total_frames=job.frame_count, flow_threads=job.flow_threads, backend=job.backend)
        paths = save_frames(job.data_dir, job.video_id, result.frame_indices, result.frames, job.image_format)
        height, width = result.frames[0].shape[:2] if result.frames else (None, None)
        return {"motion": result.motion, "frame_indices": result.frame_indices, "timestamps": result.frame_timestamps,
                "frame_paths": paths, "width": width, "height": height, "frames_error": result.error,
                "seconds": time.perf_counter() - t0, "error": None}
    except Exception as exc:  # one bad video must not cost the shard
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "seconds": time.perf_counter() - t0}
