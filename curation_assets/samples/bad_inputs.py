"""A corpus of hostile and broken inputs, each with the single outcome it must end in.

The promise under test: every bad input ends as a recorded row in `curated_videos` with a
readable reason, and the shard goes on. :func:`write_bad_input_set` writes the files and a
data-juicer jsonl manifest (one line per case, in :data:`BAD_INPUT_CASES` order);
:func:`expected_outcomes` maps each registry path the manifest produces to its case.

Layout written under `folder`::

    folder/outside.mp4          a valid clip the manifest reaches through `../` (refused)
    folder/inputs/manifest.jsonl
    folder/inputs/<every other file>

Cases that need the caller's help:

* `removed before scoring`: the caller deletes :data:`REMOVED_NAME` after registering
  the manifest and before the run (``(manifest.parent / REMOVED_NAME).unlink()``).
* `unreadable (chmod 000)`: written with mode 000. Root reads any file whatever its mode,
  so under root the clip is simply scored (a tiny clip: rejected for its size); the
  expectation then only asks for exactly one row (:attr:`ExpectedOutcome.status` None).

Valid clips are tiny (64x48, 12-25 frames) so a full run stays fast (OCR runs for real):
they are `rejected` for `width<256`/`height<256`, which is the point (each ends in
exactly one state). The two clips of 256 px or more (rotated, a name with spaces) are
`kept`.
Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from curation_assets.samples import synthetic

PathLike = str | Path

KEPT, REJECTED, FAILED = "kept", "rejected", "failed"
SMALL = "width<256"  # the reason every tiny valid clip is rejected for

REMOVED_NAME = "removed_before_scoring.mp4"
UNREADABLE_NAME = "unreadable_chmod_000.mp4"
HUGE_REFUSED = (30000, 30000)  # FFmpeg itself refuses frames this large ((w+128)*(h+128) >= INT_MAX/8)
HUGE_ACCEPTED = (16000, 16000)  # FFmpeg would allocate it: only our own bound stops it
LONG_CAPTION_CHARS = 100_000
INVALID_UTF8_CAPTION = b"<__dj__video> a clip whose caption has bad bytes \xff\xfe and caf\xe9 <|__dj__eoc|>"


@dataclass(frozen=True)
class ExpectedOutcome:
    status: str | None  # kept / rejected / failed; None: any single state (see `note`)
    reason: str | None  # words the row's joined reasons must contain (None for kept)
    note: str = ""


@dataclass(frozen=True)
class BadInput:
    label: str  # short name for reports
    expected: ExpectedOutcome
    video: str | None = None  # path as the manifest names it (relative to the manifest)
    text: str | bytes | None = None  # caption; bytes go into the line verbatim (invalid UTF-8)
    raw_line: bytes | None = None  # a line written as is instead of a JSON record


def _dj(caption: str) -> str:
    return f"<__dj__video> {caption} <|__dj__eoc|>"


def _long_caption(n_chars: int = LONG_CAPTION_CHARS) -> str:
    # varied words, so the repetition ratio stays ordinary: the length is what is under test
    rng = np.random.default_rng(7)
    words = ["texture", "drifts", "slowly", "across", "a", "mottled", "field", "of", "colour", "light", "shadow",
             "camera", "pans", "over", "soft", "blotches", "grain", "warm", "cool", "edge"]
    out, size = [], 0
    while size < n_chars:
        word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(3, 9)))) \
            if rng.random() < 0.5 else str(rng.choice(words))
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n_chars]


# reasons of lines discovery refuses: they register under `<manifest>:<line>`, not a path
REFUSED_AT_DISCOVERY = ("escapes the manifest", "NUL", "symlink loop")

GOOD = "a mottled texture slides smoothly to the right"

BAD_INPUT_CASES: list[BadInput] = [
    # --- files that are not (usable) videos
    BadInput("zero-byte file", ExpectedOutcome(FAILED, "empty file"), "zero_byte.mp4", _dj("an empty file")),
    BadInput("text file named .mp4", ExpectedOutcome(FAILED, "not a readable media file"), "not_a_video.mp4",
             _dj("a text document")),
    BadInput("truncated mp4, index at the end", ExpectedOutcome(FAILED, "not a readable media file"), "truncated.mp4",
             _dj("cut at 40%: the moov index is gone")),
    BadInput("truncated mp4, index first (faststart)", ExpectedOutcome(FAILED, "truncated"),
             "truncated_faststart.mp4", _dj("cut mid-file: the index points past the end")),
    BadInput("truncated mkv (cut mid-file, cues lost)", ExpectedOutcome(FAILED, "truncated"), "truncated.mkv",
             _dj("cut at 50%: FFmpeg would decode the first half and stop quietly")),
    BadInput("audio-only file", ExpectedOutcome(FAILED, "audio-only"), "audio_only.mp4", _dj("a sine tone")),
    BadInput("single frame", ExpectedOutcome(FAILED, "fewer than two decodable frames"), "single_frame.mp4",
             _dj("one still frame")),
    BadInput("declared 30000x30000 (FFmpeg refuses)", ExpectedOutcome(FAILED, "implausibly large"),
             "huge_30000x30000.mkv", _dj("a header claiming 900 megapixels")),
    BadInput("declared 16000x16000 (FFmpeg accepts)", ExpectedOutcome(FAILED, "implausibly large"),
             "huge_16000x16000.mkv", _dj("a header claiming 256 megapixels")),
    BadInput("a folder named .mp4", ExpectedOutcome(FAILED, "not a regular file"), "folder.mp4", _dj("a directory")),
    BadInput("dangling symlink", ExpectedOutcome(FAILED, "file not found"), "dangling_link.mp4", _dj("a broken link")),
    BadInput("symlink loop", ExpectedOutcome(FAILED, "symlink loop"), "symlink_loop.mp4", _dj("a link to itself")),
    BadInput("named pipe (FIFO)", ExpectedOutcome(FAILED, "not a regular file"), "named_pipe.mp4",
             _dj("would block a reader forever")),
    BadInput("removed before scoring", ExpectedOutcome(FAILED, "file not found"), REMOVED_NAME,
             _dj("deleted after registration")),
    BadInput("unreadable (chmod 000)", ExpectedOutcome(FAILED, "permission denied"), UNREADABLE_NAME,
             _dj("mode 000")),
    BadInput("file name too long (300 chars)", ExpectedOutcome(FAILED, "file name too long"), "x" * 300 + ".mp4",
             _dj("a name no file system stores")),
    # --- real videos with awkward properties
    BadInput("rotated phone video (90 degrees)", ExpectedOutcome(KEPT, None), "rotated_phone.mp4", _dj(GOOD)),
    BadInput("variable frame rate", ExpectedOutcome(REJECTED, SMALL), "vfr.mp4", _dj(GOOD)),
    # --- awkward names
    BadInput("name with spaces", ExpectedOutcome(KEPT, None), "name with  spaces.mp4", _dj(GOOD)),
    BadInput("name starting with ~", ExpectedOutcome(REJECTED, SMALL), "~tilde name.mp4", _dj(GOOD)),
    BadInput("unicode name", ExpectedOutcome(REJECTED, SMALL), "ünïcödé 视频 🎬.mp4", _dj(GOOD)),
    BadInput("quotes in name", ExpectedOutcome(REJECTED, SMALL), "quote\"d 'name'.mp4", _dj(GOOD)),
    BadInput("leading '-' in name", ExpectedOutcome(REJECTED, SMALL), "-leading-dash.mp4", _dj(GOOD)),
    BadInput("shell metacharacters in name", ExpectedOutcome(REJECTED, SMALL), "$(touch pwned);`x`&|.mp4",
             _dj(GOOD)),
    # --- manifest lines that name no usable file
    BadInput("line that is not JSON", ExpectedOutcome(FAILED, "not valid JSON"),
             raw_line=b'{"videos": ["zero_byte.mp4"], "text": oops this is not json\n'),
    BadInput("line that is a JSON array", ExpectedOutcome(FAILED, "not a JSON object"),
             raw_line=b'["not_a_video.mp4"]\n'),
    BadInput("line without a video", ExpectedOutcome(FAILED, "names no video"),
             raw_line=b'{"text": "<__dj__video> a caption for nothing <|__dj__eoc|>"}\n'),
    BadInput("path escaping via ..", ExpectedOutcome(FAILED, "escapes the manifest"), "../outside.mp4", _dj(GOOD)),
    BadInput("path with a NUL byte", ExpectedOutcome(FAILED, "NUL"), "nul\u0000byte.mp4", _dj(GOOD)),
    # --- captions
    BadInput("empty caption", ExpectedOutcome(REJECTED, SMALL), "caption_empty.mp4", ""),
    BadInput("whitespace caption", ExpectedOutcome(REJECTED, SMALL), "caption_whitespace.mp4", " \t \u3000 \n "),
    BadInput("100k-character caption", ExpectedOutcome(REJECTED, SMALL), "caption_100k.mp4",
             _dj(_long_caption())),
    BadInput("invalid UTF-8 caption", ExpectedOutcome(REJECTED, SMALL), "caption_bad_utf8.mp4",
             INVALID_UTF8_CAPTION),
]


# --------------------------------------------------------------------------- writers


def _tiny(path: Path, seed: int) -> Path:
    return synthetic.write_moving_pattern(path, width=64, height=48, fps=12, n_frames=12,
                                          shift_px_per_frame=(1, 0), seed=seed)


def _big(path: Path, seed: int) -> Path:
    return synthetic.write_moving_pattern(path, width=256, height=256, fps=24, n_frames=24,
                                          shift_px_per_frame=(0.5, 0), seed=seed)


def write_faststart_truncated(path: PathLike, src: PathLike, *, keep_fraction: float = 0.5) -> Path:
    """`src` rewritten with its moov index first (ffmpeg -movflags +faststart), then cut.

    The container opens (its index is intact) but the index points past the end of the
    file: only a decode to the end, or a look at the index, finds out.
    """
    path = Path(path)
    whole = path.with_name(path.stem + ".whole" + path.suffix)
    synthetic._run_ffmpeg(["-i", str(src), "-c", "copy", "-movflags", "+faststart", str(whole)])
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def write_huge_declared(path: PathLike, width: int, height: int, *, n_frames: int = 3) -> Path:
    """A ~5 KB Matroska/MJPEG clip (coded 256x256) whose headers claim `width` x `height`.

    Both the container (PixelWidth/PixelHeight) and every JPEG SOF0 header are patched, so
    nothing in the file tells the true size. Decoding it would allocate a frame of the
    declared size (or fail): the probe must refuse it from the header alone.
    """
    if not (0 < width < 65536 and 0 < height < 65536):
        raise ValueError("JPEG stores sizes in 16 bits")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuvj420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((256, 256, 3), 60 + 40 * i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(path.read_bytes())
    # EBML: PixelWidth (0xB0) and PixelHeight (0xBA), each a 2-byte uint holding 256
    for element_id, value in ((0xB0, width), (0xBA, height)):
        at = data.find(bytes([element_id, 0x82, 0x01, 0x00]))
        if at < 0:
            raise RuntimeError(f"Matroska element {element_id:#x} not found where expected")
        struct.pack_into(">H", data, at + 2, value)
    sof, at, patched = b"\xff\xc0\x00\x11\x08", 0, 0  # SOF0, length 17, 8-bit: then height, width
    while (at := data.find(sof, at)) >= 0:
        struct.pack_into(">HH", data, at + len(sof), height, width)
        at += len(sof)
        patched += 1
    if patched < n_frames:
        raise RuntimeError(f"patched {patched} JPEG headers, expected {n_frames}")
    path.write_bytes(bytes(data))
    return path


def write_vfr(path: PathLike, *, width: int = 256, height: int = 256, seed: int = 0) -> Path:
    """A clip with irregular frame timing (gaps of 20-120 ms, time base 1/1000).

    Content moves 0.5 px per frame, so motion (measured between frames, as data-juicer
    does) is well defined whatever the timing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gaps_ms = [33, 20, 120, 40, 33, 80, 25, 60, 33, 100, 20, 45] * 2
    frames = synthetic._moving_texture_frames(width=width, height=height, n_frames=len(gaps_ms) + 1,
                                              shift=(0.5, 0.0), seed=seed)
    codec = synthetic._video_codec()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        pts = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
            pts += gaps_ms[i] if i < len(gaps_ms) else 33
        for packet in stream.encode():
            container.mux(packet)
    return path


def _manifest_line(case: BadInput) -> bytes:
    if case.raw_line is not None:
        return case.raw_line
    if isinstance(case.text, bytes):
        # json.dumps cannot carry invalid UTF-8: splice the raw bytes into the string literal
        head = json.dumps({"videos": [case.video], "text": "\x00SPLICE\x00"}, ensure_ascii=False).encode("utf-8")
        return head.replace(b"\\u0000SPLICE\\u0000", case.text) + b"\n"
    record: dict[str, object] = {"videos": [case.video]}
    if case.text is not None:
        record["text"] = case.text
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def write_bad_input_set(folder: PathLike) -> Path:
    """Write every case of :data:`BAD_INPUT_CASES`; return `folder/inputs/manifest.jsonl`."""
    folder = Path(folder)
    inputs = folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)

    seed = iter(range(100, 1000))
    tiny_names = ["~tilde name.mp4", "ünïcödé 视频 🎬.mp4", "quote\"d 'name'.mp4", "-leading-dash.mp4", "$(touch pwned);`x`&|.mp4",
                  "caption_empty.mp4", "caption_whitespace.mp4", "caption_100k.mp4", "caption_bad_utf8.mp4",
                  REMOVED_NAME, UNREADABLE_NAME]
    for name in tiny_names:
        _tiny(inputs / name, next(seed))
    _big(inputs / "name with  spaces.mp4", next(seed))
    _big(folder / "outside.mp4", next(seed))
    synthetic.write_rotated(inputs / "rotated_phone.mp4", rotation=90, width=320, height=256, fps=24, n_frames=24,
                            shift_px_per_frame=(0.5, 0), seed=next(seed))
    write_vfr(inputs / "vfr.mp4", width=64, height=48, seed=next(seed))

    synthetic.write_zero_byte(inputs / "zero_byte.mp4")
    synthetic.write_text_as_mp4(inputs / "not_a_video.mp4")
    source = _tiny(inputs / ".source.mp4", next(seed))
    synthetic.write_truncated(inputs / "truncated.mp4", source, keep_fraction=0.4)
    write_faststart_truncated(inputs / "truncated_faststart.mp4", source, keep_fraction=0.5)
    source.unlink()
    source = synthetic.write_moving_pattern(inputs / ".source.mkv", width=64, height=48, fps=12, n_frames=24,
                                            shift_px_per_frame=(1, 0), seed=next(seed))
    synthetic.write_truncated(inputs / "truncated.mkv", source, keep_fraction=0.5)
    source.unlink()
    synthetic.write_audio_only(inputs / "audio_only.mp4", seconds=0.5)
    synthetic.write_single_frame(inputs / "single_frame.mp4", width=64, height=48)
    write_huge_declared(inputs / "huge_30000x30000.mkv", *HUGE_REFUSED)
    write_huge_declared(inputs / "huge_16000x16000.mkv", *HUGE_ACCEPTED)
    (inputs / "folder.mp4").mkdir(exist_ok=True)
    dangling = inputs / "dangling_link.mp4"
    if dangling.is_symlink():
        dangling.unlink()
    dangling.symlink_to(inputs / "no_such_target.mp4")
    loop = inputs / "symlink_loop.mp4"
    if loop.is_symlink():
        loop.unlink()
    loop.symlink_to(loop.name)  # relative link to itself
    pipe = inputs / "named_pipe.mp4"
    if not pipe.exists():
        os.mkfifo(pipe)
    (inputs / UNREADABLE_NAME).chmod(0)

    manifest = inputs / "manifest.jsonl"
    with manifest.open("wb") as fh:
        for case in BAD_INPUT_CASES:
            fh.write(_manifest_line(case))
    return manifest


def expected_outcomes(manifest: PathLike) -> dict[str, BadInput]:
    """Registry path -> case, for the manifest :func:`write_bad_input_set` wrote.

    Files register under their resolved absolute path; lines that name no usable file
    under `<manifest>:<line>` (see curation_assets.ingest.discover). Under root the chmod
    000 case expects only "one row, any state" (root reads it anyway).
    """
    manifest = Path(manifest).resolve()
    base = manifest.parent
    out: dict[str, BadInput] = {}
    for line_no, case in enumerate(BAD_INPUT_CASES, start=1):
        locator = f"{manifest}:{line_no}"
        if case.video is None or case.expected.reason in REFUSED_AT_DISCOVERY:
            key = locator  # refused at discovery: registered under the manifest line
        else:
            key = str((base / case.video).resolve())  # a dangling link resolves to its missing target
        if case.video == UNREADABLE_NAME and is_root():
            case = replace(case, expected=ExpectedOutcome(None, None, "root reads a mode-000 file: scored normally"))
        out[key] = case
    return out


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


__all__ = [
    "BAD_INPUT_CASES", "BadInput", "ExpectedOutcome", "LONG_CAPTION_CHARS", "REMOVED_NAME", "UNREADABLE_NAME",
    "expected_outcomes", "is_root", "write_bad_input_set", "write_faststart_truncated", "write_huge_declared",
    "write_vfr",
]
