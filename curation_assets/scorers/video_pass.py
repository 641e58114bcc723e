"""One sequential decode per video feeding every frame consumer (motion, sampled frames).

Decoding is the floor of this pipeline's cost; a second pass per scorer would double it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curation_assets.scorers.frame_sampling import FrameSamplingParams
from curation_assets.scorers.frame_stream import decode_passes, stream_frames  # noqa: F401 - decode_passes: tests
from curation_assets.scorers.motion import MotionAccumulator, MotionParams, MotionResult, default_flow_threads
from curation_assets.scorers.previews import PreviewParams


@dataclass
class VideoPassResult:
    motion: MotionResult
    frame_indices: list[int] = field(default_factory=list)
    frame_timestamps: list[float | None] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # RGB uint8
    frames_decoded: int = 0
    frames_skipped: int = 0  # unreferenced pictures left undecoded (unreferenced_frames.py)
    error: str | None = None  # a decode error mid-stream; what was read before it is kept
    preview: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (index, small RGB) for the gallery
    fps: float | None = None


def video_pass(
    path: str | Path,
    motion_params: MotionParams,
    sampling: FrameSamplingParams,
    fps: float | None = None,
    total_frames: int | None = None,
    flow_threads: int = 1,
    backend: str = "cpu",
    preview: PreviewParams | None = None,
) -> VideoPassResult:
    """Decode once, score motion pair by pair on the CPU (or OpenCL), keep the sampled frames
    (and the preview's, with `preview`)."""
    motion, out = stream_frames(
        path, lambda fps_, total: MotionAccumulator(fps_, total, motion_params, flow_threads=flow_threads, backend=backend),
        sampling, fps, total_frames, preview)
    return VideoPassResult(motion=motion.result(out.frames_decoded, out.error), frame_indices=out.frame_indices,
                           frame_timestamps=out.frame_timestamps, frames=out.frames,
                           frames_decoded=out.frames_decoded, error=out.error, preview=out.preview, fps=out.fps,
                           frames_skipped=out.frames_skipped)


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
    preview: PreviewParams | None = PreviewParams()  # None: no gallery preview


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
                            total_frames=job.frame_count, flow_threads=job.flow_threads, backend=job.backend,
                            preview=job.preview)
        paths = save_frames(job.data_dir, job.video_id, result.frame_indices, result.frames, job.image_format)
        preview = save_preview(location, job.video_id, result.preview, result.fps)
        height, width = result.frames[0].shape[:2] if result.frames else (None, None)
        return {"motion": result.motion, "frame_indices": result.frame_indices, "timestamps": result.frame_timestamps,
                "frame_paths": paths, "preview_path": preview, "width": width, "height": height,
                "frames_error": result.error, "frames_decoded": result.frames_decoded,
                "frames_skipped": result.frames_skipped, "seconds": time.perf_counter() - t0, "error": None}
    except Exception as exc:  # one bad video must not cost the shard
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "seconds": time.perf_counter() - t0}


def save_preview(location, video_id: str, frames: list, fps: float | None) -> str | None:
    """The gallery's preview; one that cannot be written costs the clip nothing but its card image."""
    if not frames:
        return None
    from curation_assets.scorers.previews import write_preview

    try:
        return write_preview(location, video_id, frames, fps or 25.0)
    except Exception as exc:  # the gallery says "no preview"; scores and frames are what matter
        import logging

        logging.getLogger(__name__).warning("preview of %s not written: %s: %s", video_id, type(exc).__name__, exc)
        return None
