"""Small synthetic videos with KNOWN properties, for tests and demos.

Every generator writes one file and returns its Path. The clips are built so that
the answer a curation rule should give is known in advance:

* moving pattern: a smooth random texture translated by an exact shift per frame,
  so dense optical flow should report |shift| px/frame everywhere;
* static: the same texture, motion 0;
* text overlay: large black-on-white text in a box whose rectangle is returned by
  :func:`text_overlay_box`;
* slow motion: sub-pixel shift (0.5 px/frame by default);
* low resolution, rotated (display-matrix metadata), single frame;
* broken inputs: zero bytes, text named .mp4, truncated mp4, audio only.

Video is encoded with PyAV (libx264, or mpeg4 where libx264 is absent), yuv420p,
in an mp4 container. Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

PathLike = str | Path

# Rule each demo clip is meant to trip ("ok" = should survive every rule).
# Keys are paths relative to the demo folder, as written in manifest.jsonl.
DEMO_EXPECTED: dict[str, str] = {
    "good_pan_right.mp4": "ok",
    "good_tilt_down.mp4": "ok",
    "good_diagonal.mp4": "ok",
    "static.mp4": "static",
    "too_fast.mp4": "too_fast",
    "low_res.mp4": "low_resolution",
    "text_overlay.mp4": "text",
    "slow_motion.mp4": "slow_motion",
    "uncaptioned.mp4": "uncaptioned",
    "zero_byte.mp4": "unreadable",
    "not_a_video.mp4": "unreadable",
    "truncated.mp4": "unreadable",
    "good_pan_right_copy.mp4": "duplicate",
}


# --------------------------------------------------------------------------- encoding


def _video_codec() -> str:
    # libx264 gives small, high-quality files; mpeg4 is the fallback that every
    # FFmpeg build ships, so the generators work on minimal PyAV wheels too.
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _check_even(width: int, height: int) -> None:
    # yuv420p halves chroma in both directions; encoders reject odd sizes.
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")


def _write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    *,
    width: int,
    height: int,
    fps: int,
    rotation: int | None = None,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) to an mp4 with explicit pts 0, 1, 2, ..."""
    _check_even(width, height)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _video_codec()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # Low CRF keeps the texture crisp enough that optical flow on the
            # decoded frames matches the shift we put in.
            stream.options = {"crf": "18", "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------- content


def _texture(height: int, width: int, *, seed: int, sigma: float = 3.0, contrast: float = 1.0) -> np.ndarray:
    """Smooth coloured noise (H, W, 3) uint8.

    Blurred noise has structure at every position and no dominant orientation,
    which is what Farneback needs to recover a translation without aperture
    problems. One gray field is tinted per channel so luminance keeps the full
    texture contrast.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((height, width)).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    lo, hi = np.percentile(field, [1, 99])
    gray = np.clip((field - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    gray = 0.5 + (gray - 0.5) * contrast
    tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    return np.clip(gray[..., None] * tint * 255.0, 0, 255).astype(np.uint8)


def _translating_frames(
    texture: np.ndarray,
    *,
    width: int,
    height: int,
    n_frames: int,
    shift: tuple[float, float],
    origin: tuple[float, float],
) -> Iterator[np.ndarray]:
    """Crop a window that slides over `texture` so content moves by +shift per frame.

    Moving the window by -shift makes the content appear to move by +shift,
    so the sign of `shift` is the sign of the optical flow. Integer offsets are
    plain slices (bit-exact); fractional ones use bilinear sub-pixel sampling.
    """
    dx, dy = shift
    ox, oy = origin
    for i in range(n_frames):
        x, y = ox - i * dx, oy - i * dy
        if float(x).is_integer() and float(y).is_integer():
            xi, yi = int(x), int(y)
            yield texture[yi : yi + height, xi : xi + width]
        else:
            center = (x + (width - 1) / 2.0, y + (height - 1) / 2.0)
            yield cv2.getRectSubPix(texture, (width, height), center)


def _moving_texture_frames(
    *,
    width: int,
    height: int,
    n_frames: int,
    shift: tuple[float, float],
    seed: int,
    contrast: float = 1.0,
) -> Iterator[np.ndarray]:
    # The canvas is large enough for the whole travel, so no frame wraps around
    # (np.roll would create a seam that flow would see as a motion boundary).
    dx, dy = shift
    travel_x = abs(dx) * max(n_frames - 1, 0)
    travel_y = abs(dy) * max(n_frames - 1, 0)
    margin = 2  # room for bilinear sampling at fractional offsets
    canvas = _texture(
        height + int(np.ceil(travel_y)) + 2 * margin,
        width + int(np.ceil(travel_x)) + 2 * margin,
        seed=seed,
        contrast=contrast,
    )
    origin = (margin + (travel_x if dx > 0 else 0.0), margin + (travel_y if dy > 0 else 0.0))
    return _translating_frames(canvas, width=width, height=height, n_frames=n_frames, shift=shift, origin=origin)


# --------------------------------------------------------------------------- valid clips


def write_moving_pattern(
    path: PathLike,
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    n_frames: int = 48,
    shift_px_per_frame: tuple[float, float] = (2, 0),
    seed: int = 0,
) -> Path:
    """Texture translating by `shift_px_per_frame` = (dx, dy) every frame.

    Known answer: optical flow is (dx, dy) at every pixel, magnitude
    hypot(dx, dy) px/frame. Positive dx moves content right, positive dy down.
    """
    frames = _moving_texture_frames(width=width, height=height, n_frames=n_frames, shift=shift_px_per_frame, seed=seed)
    return _write_video(path, frames, width=width, height=height, fps=fps)


def write_static(
    path: PathLike,
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    n_frames: int = 48,
    seed: int = 0,
) -> Path:
    """The moving-pattern texture held still. Known answer: motion 0."""
    return write_moving_pattern(
        path, width=width, height=height, fps=fps, n_frames=n_frames, shift_px_per_frame=(0, 0), seed=seed
    )


def write_slow_motion(
    path: PathLike,
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    n_frames: int = 48,
    shift_px_per_frame: tuple[float, float] = (0.5, 0.0),
    seed: int = 0,
) -> Path:
    """Texture drifting by a sub-pixel shift per frame (default 0.5 px/frame).

    The shift is realised by bilinear sampling every frame, not by repeating
    frames, so the flow is a uniform 0.5 px/frame rather than alternating 0/1.
    """
    return write_moving_pattern(
        path,
        width=width,
        height=height,
        fps=fps,
        n_frames=n_frames,
        shift_px_per_frame=shift_px_per_frame,
        seed=seed,
    )


def write_low_res(
    path: PathLike,
    *,
    width: int = 64,
    height: int = 48,
    fps: int = 24,
    n_frames: int = 48,
    shift_px_per_frame: tuple[float, float] = (1, 0),
    seed: int = 0,
) -> Path:
    """A tiny moving clip (64x48 by default), for resolution minimums."""
    return write_moving_pattern(
        path,
        width=width,
        height=height,
        fps=fps,
        n_frames=n_frames,
        shift_px_per_frame=shift_px_per_frame,
        seed=seed,
    )


def write_letterboxed(
    path: PathLike,
    *,
    width: int = 320,
    height: int = 256,
    bar_height: int = 64,
    fps: int = 24,
    n_frames: int = 48,
    shift_px_per_frame: tuple[float, float] = (2, 0),
    seed: int = 0,
) -> Path:
    """A moving texture between black bars `bar_height` pixels high at the top and the bottom.

    Known answer: the bars cover 2 * bar_height / height of every frame; the picture moves by
    shift_px_per_frame inside them."""
    picture = _moving_texture_frames(width=width, height=height - 2 * bar_height, n_frames=n_frames,
                                     shift=shift_px_per_frame, seed=seed)
    bar = np.zeros((bar_height, width, 3), np.uint8)
    frames = (np.concatenate([bar, np.asarray(rgb, np.uint8), bar]) for rgb in picture)
    return _write_video(path, frames, width=width, height=height, fps=fps)


def write_single_frame(
    path: PathLike,
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    seed: int = 0,
) -> Path:
    """A valid video with exactly one frame (no motion can be measured)."""
    return write_moving_pattern(path, width=width, height=height, fps=fps, n_frames=1, seed=seed)


def write_rotated(
    path: PathLike,
    *,
    rotation: int = 90,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    n_frames: int = 48,
    shift_px_per_frame: tuple[float, float] = (2, 0),
    seed: int = 0,
) -> Path:
    """Moving pattern whose stream carries a display-matrix rotation.

    The coded frames stay `width` x `height`; only the metadata says "rotate".
    Read it back with PyAV (18+) from a decoded frame::

        with av.open(path) as c:
            frame = next(c.decode(video=0))
            frame.rotation   # degrees counter-clockwise, FFmpeg convention

    PyAV normalises the angle into [-180, 180): rotation=90 reads back as 90,
    270 as -90, 180 as -180. `VideoStream` itself exposes no side data in
    PyAV 18, so the frame is the place to look. `ffprobe` shows the same
    matrix as "Display Matrix: rotation of 90.00 degrees".
    """
    frames = _moving_texture_frames(width=width, height=height, n_frames=n_frames, shift=shift_px_per_frame, seed=seed)
    if hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        return _write_video(path, frames, width=width, height=height, fps=fps, rotation=rotation)
    # Older PyAV cannot write the matrix: encode plainly, then let the ffmpeg
    # binary add it while stream-copying (no re-encode, so pixels are unchanged).
    path = Path(path)
    plain = path.with_name(path.stem + ".norot" + path.suffix)
    _write_video(plain, frames, width=width, height=height, fps=fps)
    try:
        _run_ffmpeg(["-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(path)])
    finally:
        plain.unlink(missing_ok=True)
    return path


def text_overlay_box(width: int, height: int, *, box_fraction: float = 0.3) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the white text box that :func:`write_text_overlay` draws.

    The box is centred, 90% of the frame width, and tall enough to cover
    `box_fraction` of the frame area (rounded to whole pixels). x1/y1 are
    exclusive, so the area is (x1 - x0) * (y1 - y0).
    """
    if not 0.0 < box_fraction <= 0.9:
        raise ValueError("box_fraction must be in (0, 0.9] so the box fits in the frame")
    box_w = round(0.9 * width)
    box_h = min(height, round(box_fraction * width * height / box_w))
    x0 = (width - box_w) // 2
    y0 = (height - box_h) // 2
    return x0, y0, x0 + box_w, y0 + box_h


def text_box_fraction(width: int, height: int, *, box_fraction: float = 0.3) -> float:
    """Actual fraction of the frame area covered by the white text box."""
    x0, y0, x1, y1 = text_overlay_box(width, height, box_fraction=box_fraction)
    return (x1 - x0) * (y1 - y0) / float(width * height)


def _draw_text_box(rgb: np.ndarray, text: str, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    rgb = rgb.copy()
    cv2.rectangle(rgb, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), thickness=-1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    # Pick the largest scale that fits 90% of the box width and 70% of its
    # height, so OCR sees big, thick glyphs whatever the frame size.
    box_w, box_h = x1 - x0, y1 - y0
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = min(0.9 * box_w / tw, 0.7 * box_h / th)
    thickness = max(2, round(scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    org = (x0 + (box_w - tw) // 2, y0 + (box_h + th) // 2)
    cv2.putText(rgb, text, org, font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return rgb


def write_text_overlay(
    path: PathLike,
    *,
    text: str = "SALE 50% OFF",
    box_fraction: float = 0.3,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    n_frames: int = 48,
    background_shift_px_per_frame: tuple[float, float] = (0, 0),
    seed: int = 0,
) -> Path:
    """Large black text in a white box over a low-texture background.

    The box is exactly :func:`text_overlay_box` (area fraction from
    :func:`text_box_fraction`, 0.3 of the frame by default) and is static. The
    background is a low-contrast version of the texture; give it a shift to
    make the clip move (the flow inside the box stays 0).
    """
    box = text_overlay_box(width, height, box_fraction=box_fraction)
    background = _moving_texture_frames(
        width=width,
        height=height,
        n_frames=n_frames,
        shift=background_shift_px_per_frame,
        seed=seed,
        contrast=0.35,
    )
    frames = (_draw_text_box(bg, text, box) for bg in background)
    return _write_video(path, frames, width=width, height=height, fps=fps)


# --------------------------------------------------------------------------- broken inputs


def write_zero_byte(path: PathLike) -> Path:
    """An empty file (0 bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_text_as_mp4(path: PathLike) -> Path:
    """A plain text file that only pretends to be a video by its name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("This is not a video file.\nIt is plain text with an .mp4 extension.\n")
    return path


def write_truncated(path: PathLike, src: PathLike, *, keep_fraction: float = 0.4) -> Path:
    """The first `keep_fraction` of `src`'s bytes.

    PyAV writes the mp4 index (moov) at the end, so the cut file usually has no
    index at all and av.open() raises; either way not all frames decode.
    """
    data = Path(src).read_bytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def write_audio_only(
    path: PathLike,
    *,
    seconds: float = 1.0,
    sample_rate: int = 44100,
    tone_hz: float = 440.0,
) -> Path:
    """An mp4/m4a holding one AAC audio stream (a sine tone) and no video stream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "aac" not in av.codecs_available:
        _run_ffmpeg(
            ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate={sample_rate}:duration={seconds}", str(path)]
        )
        return path
    n = int(seconds * sample_rate)
    t = np.arange(n, dtype=np.float32) / sample_rate
    samples = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        # AAC consumes fixed 1024-sample frames; feed it in those chunks.
        chunk = 1024
        for start in range(0, n, chunk):
            part = samples[start : start + chunk]
            frame = av.AudioFrame.from_ndarray(part[None, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _run_ffmpeg(args: list[str]) -> None:
    import imageio_ffmpeg  # only needed on the fallback paths

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args]
    subprocess.run(cmd, check=True, capture_output=True)


# --------------------------------------------------------------------------- demo corpus


def _dj_text(caption: str) -> str:
    # data-juicer marks where the video sits in the text and where its chunk ends.
    return f"<__dj__video> {caption} <|__dj__eoc|>"


def write_demo_set(folder: PathLike) -> Path:
    """Write a ~12-file demo corpus plus `folder/manifest.jsonl`; return the manifest path.

    Each file is meant to trip one curation rule (see DEMO_EXPECTED). Valid clips
    except low_res are 320x256 (short side 256), 24 fps, 72 frames (3 s):

    * good_pan_right (0.25, 0), good_tilt_down (0, 0.35), good_diagonal (0.3, 0.2) px/frame:
      data-juicer's motion score compares frames ~fps/2 apart, so these score ~3-5
    * static (0, 0); too_fast (1.5, 0) (~18 px between sampled frames); slow_motion (0.04, 0)
    * uncaptioned (0.2, 0.2) with no caption at all
    * low_res 64x48 moving (1, 0)
    * text_overlay: "SALE 50% OFF" box covering 0.3 of the frame, background
      moving (0.3, 0) outside the box
    * zero_byte, not_a_video (text), truncated (40% of good_pan_right)
    * good_pan_right_copy: byte-identical duplicate of good_pan_right

    The manifest uses data-juicer's layout, one object per line:
    {"videos": ["name.mp4"], "text": "<__dj__video> caption <|__dj__eoc|>"},
    paths relative to `folder`. Captions: most are descriptive; static.mp4 has
    a highly repetitive one; low_res has text "" and uncaptioned has no "text"
    key, to exercise the missing-caption path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = {"width": 320, "height": 256, "fps": 24, "n_frames": 72}

    write_moving_pattern(folder / "good_pan_right.mp4", shift_px_per_frame=(0.25, 0), seed=1, **size)
    write_moving_pattern(folder / "good_tilt_down.mp4", shift_px_per_frame=(0, 0.35), seed=2, **size)
    write_moving_pattern(folder / "good_diagonal.mp4", shift_px_per_frame=(0.3, 0.2), seed=3, **size)
    write_static(folder / "static.mp4", seed=4, **size)
    write_moving_pattern(folder / "too_fast.mp4", shift_px_per_frame=(1.5, 0), seed=5, **size)
    write_low_res(folder / "low_res.mp4", seed=6)
    write_text_overlay(folder / "text_overlay.mp4", background_shift_px_per_frame=(0.3, 0), seed=7, **size)
    write_slow_motion(folder / "slow_motion.mp4", shift_px_per_frame=(0.04, 0), seed=8,
                      **{**size, "n_frames": 192})  # 8 s: long enough to be sped up 4x
    write_moving_pattern(folder / "uncaptioned.mp4", shift_px_per_frame=(0.2, 0.2), seed=9, **size)
    write_zero_byte(folder / "zero_byte.mp4")
    write_text_as_mp4(folder / "not_a_video.mp4")
    write_truncated(folder / "truncated.mp4", folder / "good_pan_right.mp4")
    shutil.copyfile(folder / "good_pan_right.mp4", folder / "good_pan_right_copy.mp4")

    captions: dict[str, str | None] = {
        "good_pan_right.mp4": "a colorful mottled texture slides smoothly to the right",
        "good_tilt_down.mp4": "the camera tilts down across a soft abstract pattern of blotches",
        "good_diagonal.mp4": "an abstract cloudy pattern drifts diagonally toward the lower right",
        "static.mp4": " ".join(["a red square"] * 12),
        "too_fast.mp4": "a blurry pattern rushes past the camera at high speed",
        "low_res.mp4": "",
        "text_overlay.mp4": "a banner advertising a sale over a moving background",
        "slow_motion.mp4": "a mottled texture creeps very slowly to the right",
        "uncaptioned.mp4": None,
        "zero_byte.mp4": "an empty file",
        "not_a_video.mp4": "a text document",
        "truncated.mp4": "a colorful texture slides right but the file is cut short",
        "good_pan_right_copy.mp4": "a colorful mottled texture slides smoothly to the right",
    }
    manifest = folder / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8") as f:
        for name, caption in captions.items():
            row: dict[str, object] = {"videos": [name]}
            if caption is not None:
                row["text"] = _dj_text(caption) if caption else ""
            f.write(json.dumps(row) + "\n")
    return manifest


# --------------------------------------------------------------------------- long videos


def write_scene_sequence(
    path: PathLike,
    scene_frames: list[int],
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    seed: int = 100,
    shift_px_per_frame: float = 0.5,
) -> tuple[Path, list[int]]:
    """A 'long video' of len(scene_frames) different scenes, each a differently seeded and
    tinted texture panning in its own direction, joined by hard cuts.

    Known answer: the returned cut frames (the first frame of every scene after the first).
    Frames are generated lazily, so an hour-long video costs no more memory than one scene.
    """
    directions = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1)]
    cuts = [int(c) for c in np.cumsum(scene_frames)[:-1]]

    def frames() -> Iterator[np.ndarray]:
        for i, n in enumerate(scene_frames):
            dx, dy = directions[i % len(directions)]
            yield from _moving_texture_frames(width=width, height=height, n_frames=n, seed=seed + i,
                                              shift=(dx * shift_px_per_frame, dy * shift_px_per_frame))

    return _write_video(path, frames(), width=width, height=height, fps=fps), cuts


def write_scene_sequence_failing(
    path: PathLike,
    scene_frames: list[int],
    fail_at: int,
    *,
    width: int = 160,
    height: int = 128,
    fps: int = 24,
    seed: int = 100,
) -> tuple[Path, list[int]]:
    """Like write_scene_sequence, but as Matroska/MJPEG whose JPEG headers from frame
    `fail_at` on claim 60000x60000: the header and the first frames decode, and decoding
    fails (InvalidDataError) at frame `fail_at`. Known answer: the cuts before `fail_at`.
    """
    import struct

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cuts = [int(c) for c in np.cumsum(scene_frames)[:-1]]
    with av.open(str(path), mode="w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        index = 0
        for i, n in enumerate(scene_frames):
            for rgb in _moving_texture_frames(width=width, height=height, n_frames=n, seed=seed + i,
                                              shift=(0.5 * (i % 2), 0.5 * (1 - i % 2))):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = index
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = bytearray(path.read_bytes())
    sof, at, k = b"\xff\xc0\x00\x11\x08", 0, 0  # SOF0, length 17, 8-bit: then height, width
    while (at := data.find(sof, at)) >= 0:
        if k >= fail_at:
            struct.pack_into(">HH", data, at + len(sof), 60000, 60000)
        at += len(sof)
        k += 1
    path.write_bytes(bytes(data))
    return path, [c for c in cuts if c < fail_at]


def concatenate_clips(
    clips: list[PathLike], path: PathLike, *, width: int = 480, height: int = 360, fps: int = 24
) -> tuple[Path, list[int]]:
    """Join clips of any size and rate into one long video (each re-encoded letterboxed to
    width x height at `fps`, then joined), returning it and the frames where each join falls.

    Known answer: the joins (cumulative frame counts of the re-encoded parts).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts, joins, total = [], [], 0
    for i, clip in enumerate(clips):
        part = path.with_name(f"{path.stem}.part{i}.mp4")
        vf = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
              f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}")
        _run_ffmpeg(["-i", f"file:{Path(clip).resolve()}", "-vf", vf, "-an", "-c:v", "libx264", "-preset", "veryfast",
                     "-crf", "20", "-pix_fmt", "yuv420p", f"file:{part}"])
        with av.open(str(part)) as container:
            n = sum(1 for p in container.demux(video=0) if p.size)
        if i:
            joins.append(total)
        total += n
        parts.append(part)
    listing = path.with_name(f"{path.stem}.parts.txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    _run_ffmpeg(["-f", "concat", "-safe", "0", "-i", f"file:{listing}", "-c", "copy", f"file:{path}"])
    for p in parts + [listing]:
        p.unlink()
    return path, joins
