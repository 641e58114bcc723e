"""One sequential PyAV decode of a video, handing each frame to whoever wants it: motion
(BGR), the sampled frames (RGB) and the gallery's preview. The CPU decode pass (video_pass.py)
and the torch backend's PyAV decoder (decoders.py) both read videos through it, so their
frame indices and pixels are the same by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curation_assets.scorers.frame_sampling import FrameCollector, FrameSamplingParams
from curation_assets.scorers.previews import PreviewCollector, PreviewParams

# Counts full decode passes in this process; tests use it to prove one pass per video.
_passes = 0


def decode_passes() -> int:
    return _passes


@dataclass
class StreamOutcome:
    """What one sequential decode left besides motion: the sampled frames and how it ended."""

    frame_indices: list[int]
    frame_timestamps: list[float | None]
    frames: list[np.ndarray]  # RGB uint8
    frames_decoded: int
    error: str | None  # a decode error mid-stream; what was read before it is kept
    preview: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (index, small RGB) for the gallery
    fps: float | None = None


def stream_frames(path: str | Path, make_motion: Callable[[float, int], Any], sampling: FrameSamplingParams,
                  fps: float | None = None, total_frames: int | None = None,
                  preview: PreviewParams | None = None) -> tuple[Any, StreamOutcome]:
    """Decode a video once with PyAV, in order, handing each frame motion wants (as BGR) to
    the consumer make_motion(fps, total_frames) builds (MotionAccumulator, MotionFrames) and
    keeping the sampled frames (and, with `preview`, the gallery's preview frames: previews.py);
    stops after the last frame any of them needs."""
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
        previews = PreviewCollector(fps, total_frames, preview) if preview is not None else None
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
                if previews is not None and previews.wants(index):
                    previews.add(index, frame)
                if motion.done(index) and collector.done(index) and (previews is None or previews.done(index)):
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
                                     [collector.frames[i] for i in indices], decoded, error,
                                     previews.result() if previews is not None else [], fps)
    finally:
        container.close()
