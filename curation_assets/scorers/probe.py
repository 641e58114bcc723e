"""Stream facts from the container header plus one decoded frame (PyAV, no ffprobe)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

# Larger than any real camera (16K is 15360x8640); a header claiming more is corrupt or
# hostile and decoding it would exhaust memory.
MAX_DECLARED_PIXELS = 16384 * 16384


@dataclass
class ProbeResult:
    width: int | None = None  # coded, as data-juicer reports it
    height: int | None = None
    rotation: int | None = None  # degrees, as the display matrix says
    display_width: int | None = None
    display_height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    has_audio: bool | None = None
    file_size: int | None = None
    error: str | None = None

    def as_row(self) -> dict:
        return asdict(self)


def probe_video(path: str | Path) -> ProbeResult:
    """Never raises for bad input: the reason lands in `error`."""
    import av  # heavy-ish; keep definitions import fast

    result = ProbeResult()
    path = Path(path)
    try:
        result.file_size = path.stat().st_size
    except FileNotFoundError:
        result.error = "file not found"
        return result
    except OSError as exc:
        result.error = f"cannot stat file: {exc.strerror or exc}"
        return result
    if result.file_size == 0:
        result.error = "empty file (0 bytes)"
        return result
    if not os.access(path, os.R_OK):
        result.error = "permission denied: file is not readable"
        return result

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:  # PyAV raises a zoo of FFmpegError subclasses
        result.error = f"not a readable media file: {_short(exc)}"
        return result
    try:
        result.has_audio = bool(container.streams.audio)
        if not container.streams.video:
            result.error = "no video stream (audio-only file)" if result.has_audio else "no video stream"
            return result
        stream = container.streams.video[0]
        ctx = stream.codec_context
        result.codec = ctx.name
        result.width, result.height = int(ctx.width or 0), int(ctx.height or 0)
        if result.width <= 0 or result.height <= 0:
            result.error = "video stream declares no frame size"
            return result
        if result.width * result.height > MAX_DECLARED_PIXELS:
            result.error = f"declared resolution {result.width}x{result.height} is implausibly large"
            return result
        rate = stream.base_rate or stream.average_rate or stream.guessed_rate
        result.fps = float(rate) if rate else None
        result.duration_s = _duration_s(stream, container)
        frames = int(stream.frames or 0)
        if frames <= 0 and result.duration_s and result.fps:
            frames = int(round(result.duration_s * result.fps))
        result.frame_count = frames

        try:
            first = next(container.decode(stream), None)
        except Exception as exc:
            result.error = f"cannot decode the first frame: {_short(exc)}"
            return result
        if first is None:
            result.error = "zero-length video (no decodable frames)"
            return result
        result.rotation = int(getattr(first, "rotation", 0) or 0)
        if result.rotation % 180:
            result.display_width, result.display_height = result.height, result.width
        else:
            result.display_width, result.display_height = result.width, result.height
        if not result.fps:
            result.error = "video stream declares no frame rate"
    finally:
        container.close()
    return result


def _duration_s(stream, container) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * Fraction(stream.time_base))
    if container.duration:
        return container.duration / 1_000_000
    return None


def _short(exc: Exception) -> str:
    # FFmpegError's str() repeats errno and path; its strerror is the readable part
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
