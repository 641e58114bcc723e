"""One sequential PyAV decode of a video, handing each frame to whoever wants it: motion
(BGR), the sampled frames (RGB) and the gallery's preview. The CPU decode pass (video_pass.py)
and the torch backend's PyAV decoder (decoders.py) both read videos through it, so their
frame indices and pixels are the same by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from curation_assets.scorers.frame_convert import FrameConverter
from curation_assets.scorers.frame_sampling import FrameCollector, FrameSamplingParams
from curation_assets.scorers.previews import PreviewCollector, PreviewParams

# Counts full decode passes in this process; tests use it to prove one pass per video.
_passes = 0


def decode_passes() -> int:
    return _passes


# FFmpeg's decoder threads per video: 0 = its own choice (as many as the cores). A pool of one
# decode process per core sets 1 (set_codec_threads): N processes x N threads each only
# oversubscribes the cores (measured here: 2 processes, 1 thread each 6-7% faster than auto).
_codec_threads = 0


def set_codec_threads(threads: int) -> None:
    global _codec_threads
    _codec_threads = max(0, int(threads))


def codec_threads_for(processes: int) -> int:
    """A decode process's share of the cores when `processes` of them decode side by side."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


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
    frames_skipped: int = 0  # unreferenced pictures left undecoded (unreferenced_frames.py)


def stream_frames(path: str | Path, make_motion: Callable[[float, int], Any], sampling: FrameSamplingParams,
                  fps: float | None = None, total_frames: int | None = None,
                  preview: PreviewParams | None = None, skip_unreferenced: bool | None = None) -> tuple[Any, StreamOutcome]:
    """Decode a video once with PyAV, in order, handing each frame motion wants (as BGR) to
    the consumer make_motion(fps, total_frames) builds (MotionAccumulator, MotionFrames) and
    keeping the sampled frames (and, with `preview`, the gallery's preview frames: previews.py);
    stops after the last frame any of them needs.

    `skip_unreferenced` (default: on, `CURATION_DECODE_SKIP_UNREFERENCED=0` turns it off):
    H.264 pictures that no other picture is predicted from and that nobody picked are not
    decoded (unreferenced_frames.py); every frame handed on is bit for bit what the full
    decode gives, with the same index. Whenever that cannot be shown as the frames come out
    (a frame the scan did not foresee, a decode error), the video is decoded again in full."""
    global _passes
    _passes += 1
    if skip_unreferenced is None:
        skip_unreferenced = skipping_enabled()
    if skip_unreferenced and sampling.method != "keyframes":  # keyframes: the decoder's flag decides
        try:
            done = _stream(path, make_motion, sampling, fps, total_frames, preview, skipping=True)
        except Exception:  # the full decode below meets the same fault and records it in its words
            done = None
        if done is not None:
            return done
    return _stream(path, make_motion, sampling, fps, total_frames, preview, skipping=False)


def skipping_enabled() -> bool:
    return os.environ.get("CURATION_DECODE_SKIP_UNREFERENCED", "1").strip().lower() not in ("0", "false", "no", "off")


class _Unforeseen(Exception):
    """The decoder gave a frame the packet scan did not predict: skipping is not proven safe."""


def _stream(path, make_motion, sampling, fps, total_frames, preview, skipping: bool):
    """One decode; with `skipping`, None when the scan's prediction failed or the decode raised
    (the caller then decodes in full, in a fresh container)."""
    import av

    from curation_assets.scorers.unreferenced_frames import eligible, scan

    packets = None
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        if skipping and eligible(stream):  # else: the plain decode below, nothing demuxed yet
            packets = scan(container, stream)  # a demux alone: ~1-2% of a decode
            if packets is None:
                return None
            # back to the start in the same container (one open per video); every frame that
            # comes out is then checked against the scan, so a seek that landed anywhere else
            # sends the video to a full decode in a fresh container
            container.seek(0, stream=stream)
        stream.thread_type = "AUTO"
        if _codec_threads:
            stream.thread_count = _codec_threads
        if fps is None:
            fps = float(stream.base_rate or stream.average_rate or stream.guessed_rate)
        if total_frames is None or total_frames <= 0:
            total_frames = int(stream.frames or 0)
        motion = make_motion(fps, total_frames)
        # the stream's declared duration places data-juicer's uniform targets (in pts units)
        collector = FrameCollector(total_frames, sampling, duration_pts=stream.duration)
        previews = PreviewCollector(fps, total_frames, preview) if preview is not None else None
        skip: set[int] = set()
        if packets is not None:  # (with nothing to skip, still checked frame by frame)
            skip = packets.unreferenced - _needed(packets, motion, sampling, total_frames, previews)
            frames = _skipping_decode(container, stream, packets, skip)
        else:
            frames = enumerate(container.decode(stream))
        convert = FrameConverter(threads=_codec_threads or None)
        decoded, error, stopped_early = 0, None, False
        last_frame, last_index = None, -1
        try:
            for index, frame in frames:
                decoded = index + 1
                last_frame, last_index = frame, index
                if motion.wants(index):
                    motion.add(index, convert.to_ndarray(frame, "bgr24"))
                if collector.wants(index, frame):
                    collector.add(index, frame, convert.to_ndarray(frame, "rgb24"))
                if previews is not None and previews.wants(index):
                    previews.add(index, frame, convert)
                if motion.done(index) and collector.done(index) and (previews is None or previews.done(index)):
                    stopped_early = True
                    break
        except Exception as exc:
            if packets is not None:
                return None
            error = f"decode failed after {decoded} frames: {str(exc)[:200]}"
        declared = int(stream.frames or 0)
        if error is None and not stopped_early and declared and decoded < 0.9 * declared:
            # containers without a size index (e.g. MPEG-TS) end quietly when cut short
            error = f"decoded {decoded} of {declared} frames the header declares (truncated?)"
        last_rgb = convert.to_ndarray(last_frame, "rgb24") if last_frame is not None else None
        indices = collector.finish(last_index, last_frame, last_rgb)
        return motion, StreamOutcome(indices, [collector.timestamps[i] for i in indices],
                                     [collector.frames[i] for i in indices], decoded, error,
                                     previews.result() if previews is not None else [], fps,
                                     frames_skipped=len(skip))
    finally:
        container.close()


def _needed(packets, motion, sampling: FrameSamplingParams, total_frames: int, previews) -> set[int]:
    """The frames some consumer takes, found by walking their rules over the packets (as
    decoders.plan_decode does for NVDEC), and the last frame (the collector's fallback)."""
    needed = {packets.frames - 1}
    simulated = FrameCollector(total_frames, sampling, duration_pts=packets.duration)
    for index in range(packets.frames):
        frame = packets.frame(index)
        if motion.wants(index) or (previews is not None and previews.wants(index)):
            needed.add(index)
        if simulated.wants(index, frame):
            simulated.add(index, frame, None)
            needed.add(index)
    return needed


def _skipping_decode(container, stream, packets, skip: set[int]):
    """(index, frame) in presentation order as a full decode yields them, leaving out the
    packets of `skip`; raises _Unforeseen when a frame is not the one expected next."""
    index_of = {pts: i for i, pts in enumerate(packets.pts)}
    skip_pts = {packets.pts[i] for i in skip}
    expected = 0
    for packet in container.demux(stream):
        if packet.size and packet.pts in skip_pts:
            continue
        for frame in packet.decode():
            while expected in skip:
                expected += 1
            if index_of.get(frame.pts) != expected:
                raise _Unforeseen(f"frame pts {frame.pts} where index {expected} was expected")
            yield expected, frame
            expected += 1
    while expected in skip:
        expected += 1
    if expected != packets.frames:
        raise _Unforeseen(f"{expected} of {packets.frames} frames came out")
