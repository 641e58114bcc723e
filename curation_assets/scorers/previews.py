"""A small animated preview per clip, made from frames the decode pass decodes anyway.

The review gallery shows one card per clip; opening the clip itself would mean a second
decode (and a source video outside the store). Instead, while `video_pass()` streams a
video's frames, a `PreviewCollector` keeps a handful of them (on the motion score's 2 fps
grid, so the early stop after motion's last pair never waits for the preview), scaled down
in the decoder's own converter, and `write_preview` encodes them as one animated WebP
under the store location:

    previews/<video_id[:2]>/<video_id>.webp      (keyed like the sampled frames)

Its cost against the decode pass is measured by benchmarks/preview_cost.py (docs/review.md).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

PREVIEW_PREFIX = "previews"
PREVIEW_FORMAT = "webp"


@dataclass(frozen=True)
class PreviewParams:
    max_side: int = 192  # the card's size: the long side, in pixels
    sampling_fps: float = 2.0  # the motion score's grid: those frames are decoded anyway
    max_frames: int = 24  # a longer clip's grid is thinned evenly (the loop plays faster)
    loop_ms: int = 8000  # the whole loop lasts at most this long ...
    frame_ms: tuple[int, int] = (120, 500)  # ... each frame shown between these bounds
    quality: int = 60  # WebP quality: previews are for recognising a clip, not for scoring


def preview_key(video_id: str) -> str:
    return f"{PREVIEW_PREFIX}/{video_id[:2]}/{video_id}.{PREVIEW_FORMAT}"


def preview_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) with the long side at most max_side, both even (what the decoder's
    scaler handles best) and at least 2."""
    scale = min(1.0, max_side / max(height, width))
    return max(2, int(round(height * scale / 2)) * 2), max(2, int(round(width * scale / 2)) * 2)


class PreviewCollector:
    """Consumes decoded frames in order (like MotionAccumulator and FrameCollector) and keeps
    the preview's frames, already scaled down (RGB uint8)."""

    def __init__(self, fps: float, total_frames: int, params: PreviewParams = PreviewParams()):
        from curation_assets.scorers.frame_sampling import uniform_indices
        from curation_assets.scorers.motion import sampling_step

        self.params = params
        self.fps = fps if fps and fps > 0 else 25.0
        self.known_length = total_frames > 0
        self.step = sampling_step(self.fps, total_frames, params.sampling_fps) if self.known_length \
            else max(1, round(self.fps / params.sampling_fps))
        if self.known_length:
            grid = list(range(0, total_frames, self.step))
            self._wanted = {grid[i] for i in uniform_indices(len(grid), params.max_frames)}
            self.last_index = max(self._wanted)
        else:  # no frame count in the header: every step-th frame, thinned at the end
            self._wanted, self.last_index = set(), -1
        self.frames: dict[int, np.ndarray] = {}

    def wants(self, index: int) -> bool:
        if self.known_length:
            return index in self._wanted
        return index % self.step == 0

    def done(self, index: int) -> bool:
        # unknown length: never the reason to keep decoding (the other consumers decide)
        return index >= self.last_index

    def add(self, index: int, frame, convert=None) -> None:
        """`frame`: a PyAV VideoFrame; scaled and converted in one libswscale call, far cheaper
        than converting the full frame and resizing it here. `convert`: the video's
        FrameConverter (frame_convert.py: one swscale context for all its previews)."""
        height, width = preview_size(frame.height, frame.width, self.params.max_side)
        if convert is not None:
            self.frames[index] = convert.to_ndarray(frame, "rgb24", width=width, height=height, interpolation="AREA")
        else:
            self.frames[index] = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
        if not self.known_length and len(self.frames) > 2 * self.params.max_frames:
            self._thin()

    def _thin(self) -> None:
        from curation_assets.scorers.frame_sampling import thin_evenly

        keep = set(thin_evenly(sorted(self.frames), self.params.max_frames))
        self.frames = {i: f for i, f in self.frames.items() if i in keep}

    def result(self) -> list[tuple[int, np.ndarray]]:
        """(frame index, RGB frame) in order, at most max_frames."""
        if len(self.frames) > self.params.max_frames:
            self._thin()
        return sorted(self.frames.items())


def encode_webp(frames: list[tuple[int, np.ndarray]], fps: float, params: PreviewParams = PreviewParams()) -> bytes:
    """An animated WebP looping over the frames; each shown for its real span, squeezed into
    the loop's length and the per-frame bounds."""
    from PIL import Image

    if not frames:
        raise ValueError("no frame to make a preview from")
    images = [Image.fromarray(rgb) for _, rgb in frames]
    indices = [i for i, _ in frames]
    spans = [(b - a) / fps * 1000 for a, b in zip(indices, indices[1:])] or [params.frame_ms[1]]
    spans.append(spans[-1])
    squeeze = min(1.0, params.loop_ms / sum(spans))
    low, high = params.frame_ms
    durations = [int(min(high, max(low, s * squeeze))) for s in spans]
    out = io.BytesIO()
    images[0].save(out, format="WEBP", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   quality=params.quality, method=0)  # method 0: the fastest encoder setting
    return out.getvalue()


def write_preview(location, video_id: str, frames: list[tuple[int, np.ndarray]], fps: float,
                  params: PreviewParams = PreviewParams()) -> str:
    """Encode and publish the preview (atomically); return its key relative to the location."""
    from curation_assets.store.location import StoreLocation

    loc = location if isinstance(location, StoreLocation) else StoreLocation(location)
    key = preview_key(video_id)
    loc.write_bytes(key, encode_webp(frames, fps, params))
    return key
