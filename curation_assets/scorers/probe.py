"""Stream facts from the container header plus one decoded frame (PyAV, no ffprobe)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

# Larger than any real camera (16K is 15360x8640; a 16K 360-degree frame 16384x8192); a
# header claiming more is corrupt or hostile and decoding it would exhaust memory. (FFmpeg's
# own limit, (w+128)*(h+128) < INT_MAX/8 ~ 268 Mpx, is higher: a 16000x16000 header passes
# it, and one past it is reported with no size at all, see _size_ffmpeg_refused.)
MAX_DECLARED_PIXELS = 16384 * 8192
_REFUSED_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid")


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
    result = ProbeResult()
    try:
        return _probe(Path(path), result)
    except Exception as exc:  # a file no check in _probe foresaw must still cost only itself
        result.error = f"probe failed: {type(exc).__name__}: {_short(exc)}"
        return result


def _probe(path: Path, result: ProbeResult) -> ProbeResult:
    import av  # heavy-ish; keep definitions import fast

    try:
        info = path.stat()
    except FileNotFoundError:
        result.error = "file not found"
        return result
    except OSError as exc:
        result.error = f"cannot stat file: {exc.strerror or exc}"
        return result
    except ValueError as exc:  # e.g. an embedded NUL byte: no file system can hold the name
        result.error = f"invalid file path: {exc}"
        return result
    if not stat.S_ISREG(info.st_mode):
        # A named pipe would block av.open (and hashing) forever; a folder is no video.
        result.error = f"not a regular file ({_file_kind(info.st_mode)})"
        return result
    result.file_size = info.st_size
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
            refused = _size_ffmpeg_refused(path)
            if refused:
                result.width, result.height = refused
                result.error = (f"declared resolution {refused[0]}x{refused[1]} is implausibly large "
                                "(FFmpeg refuses to allocate such frames)")
            else:
                result.error = "video stream declares no frame size"
            return result
        if result.width * result.height > MAX_DECLARED_PIXELS:
            result.error = (f"declared resolution {result.width}x{result.height} is implausibly large "
                            f"(over {MAX_DECLARED_PIXELS / 1e6:.0f} Mpx)")
            return result
        # avg_frame_rate first, as OpenCV's CAP_PROP_FPS (what data-juicer reads): for a
        # variable-frame-rate clip r_frame_rate (base_rate) is a tick rate such as 2000.
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        result.fps = float(rate) if rate else None
        result.duration_s = _duration_s(stream, container)
        frames = int(stream.frames or 0)
        if frames <= 0 and result.duration_s and result.fps:
            frames = int(round(result.duration_s * result.fps))
        result.frame_count = frames
        missing = _bytes_past_end(stream, result.file_size) or _matroska_bytes_missing(path, result.file_size)
        if missing:
            result.error = (f"file is truncated: {missing} bytes its container declares are missing "
                            f"({result.file_size} bytes present)")
            return result

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


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a plain file"


def _bytes_past_end(stream, file_size: int) -> int:
    """How far the container's packet index reaches past the end of the file (0: it does not).

    A file cut after an up-front index (mp4 with faststart, most camera files) opens fine and
    decodes until the cut; the index says where the data should have been.
    """
    try:
        end = max((e.pos + max(e.size, 0) for e in stream.index_entries if e.pos >= 0), default=0)
    except Exception:  # index access is best effort: containers without one report nothing
        return 0
    return max(0, end - file_size)


_EBML_MAGIC, _MATROSKA_SEGMENT = b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67"


def _ebml_vint(data: bytes, at: int) -> tuple[int | None, int]:
    """(value, offset after it) of the EBML variable-size integer at `at`; value None when
    the size is "unknown" (all data bits set, as live streams write)."""
    first = data[at]
    length = 8 - first.bit_length() + 1
    if first == 0 or at + length > len(data):
        raise ValueError("bad EBML size")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return (None if value == (1 << (7 * length)) - 1 else value), at + length


def _matroska_bytes_missing(path: Path, file_size: int) -> int:
    """Matroska/WebM declare their Segment's size up front: a cut file falls short of it.

    Their cue index sits at the end, so a truncated one has none to check and FFmpeg just
    stops decoding at the cut, silently, with the rest of the clip missing.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if not head.startswith(_EBML_MAGIC):
            return 0
        header_size, at = _ebml_vint(head, len(_EBML_MAGIC))
        at += header_size or 0
        if head[at : at + 4] != _MATROSKA_SEGMENT:
            return 0
        segment_size, at = _ebml_vint(head, at + 4)
    except (OSError, ValueError, IndexError):
        return 0
    return 0 if segment_size is None else max(0, at + segment_size - file_size)


def _size_ffmpeg_refused(path: Path) -> tuple[int, int] | None:
    """The WxH a header declared when FFmpeg refused it and left the stream with no size.

    FFmpeg drops sizes past (w+128)*(h+128) >= INT_MAX/8 at codec open and only says so in
    its log, which PyAV ignores unless a level is set: reopen with the log captured.
    """
    import av
    import av.logging

    previous = av.logging.get_level()
    try:
        if previous is None or previous < av.logging.ERROR:
            av.logging.set_level(av.logging.ERROR)
        with av.logging.Capture() as logs:
            try:
                av.open(str(path), metadata_errors="ignore").close()
            except Exception:
                pass
    except Exception:
        return None
    finally:
        av.logging.set_level(previous)
    for entry in logs:
        match = _REFUSED_SIZE.search(entry[2] if isinstance(entry, tuple) else str(entry))
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


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
