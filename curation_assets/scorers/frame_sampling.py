"""Which frames the image scorers see, and keeping them during the single decode pass.

``uniform`` (the default) picks exactly the frames data-juicer 1.6.1's
``extract_video_frames_uniformly(video, k)`` picks, so the OCR, CLIP and aesthetics scores
read the same pixels as data-juicer's video_ocr_area_ratio_filter,
video_frames_text_similarity_filter and video_aesthetics_filter (all frame_num=3 by
default). Its rule, in stream time: k is lowered to the header's frame count; the targets
are t_j = j * D / (k - 1) for j = 0..k-1 (k = 1: D / 2), D the video stream's duration;
walking the frames in presentation order, each target takes the first frame whose pts is
>= it (one target per frame), and when the stream ends with targets left, the last frame
is taken once more. On a constant-frame-rate stream starting at pts 0 with D = n frames
that is frame ceil(j * n / (k - 1)), capped at n - 1 (:func:`datajuicer_uniform_indices`):
n=10 -> [0, 5, 9], n=673 -> [0, 337, 672], n=3 -> [0, 2, 2] (the last frame counts twice,
as data-juicer averages over it twice). The last target, t = D, lies past the last frame's
pts, so the last frame is always the last pick.

``uniform_round`` is this project's earlier rule, kept as an option: round(j * (n-1) / (k-1))
with Python's half-to-even rounding and duplicates merged (n=10 -> [0, 4, 9]); its middle
frame is one before data-juicer's for odd n and for n = 2 (mod 4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

SamplingMethod = Literal["uniform", "uniform_round", "keyframes"]
SAMPLING_METHODS = ("uniform", "uniform_round", "keyframes")


@dataclass(frozen=True)
class FrameSamplingParams:
    # uniform: data-juicer's picks (first, ..., last); uniform_round: the rounded spread;
    # keyframes: at most num_frames of the stream's keyframes
    method: SamplingMethod = "uniform"
    num_frames: int = 3

    def as_dict(self) -> dict:
        return asdict(self)


def uniform_indices(total_frames: int, k: int) -> list[int]:
    """k indices spread evenly from the first to the last frame, rounded half to even and
    merged when equal (the ``uniform_round`` method; also used to thin keyframe lists)."""
    if total_frames <= 0 or k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({int(round(i * (total_frames - 1) / (k - 1))) for i in range(k)})


def datajuicer_uniform_indices(total_frames: int, k: int) -> list[int]:
    """data-juicer's uniform picks on a constant-frame-rate stream of total_frames frames
    (pts i * frame duration, stream duration total_frames frames), in order, duplicates kept.

    The streaming rule in :class:`UniformPicker` gives these indices on such streams; this
    closed form predicts them without decoding.
    """
    if total_frames <= 0 or k <= 0:
        return []
    k = min(k, total_frames)
    if k == 1:
        return [min(-(-total_frames // 2), total_frames - 1)]
    return [min(-(-j * total_frames // (k - 1)), total_frames - 1) for j in range(k)]


class UniformPicker:
    """data-juicer's uniform rule applied while frames stream past (see the module docstring).

    Positions are frame pts against the stream duration (both in the stream's time base)
    when the container declares a duration; otherwise the decode index against the frame
    count, which is the same thing on a constant-frame-rate stream.
    """

    def __init__(self, total_frames: int, k: int, duration_pts: int | None = None):
        self.total_frames = total_frames
        self.duration_pts = duration_pts if duration_pts and duration_pts > 0 else None
        if total_frames > 0:
            k = min(k, total_frames)  # data-juicer lowers frame_num to the header's frame count
        # (a header without a frame count makes data-juicer extract nothing; k is kept here)
        span = self.duration_pts or (total_frames if total_frames > 0 else 0)
        if k <= 0 or span <= 0:
            self.targets: list[Fraction] = []
        elif k == 1:
            self.targets = [Fraction(span, 2)]
        else:
            self.targets = [Fraction(j * span, k - 1) for j in range(k)]
        self.next = 0  # the target the next frame is compared against

    def position(self, index: int, pts: int | None) -> Fraction | int:
        if self.duration_pts is None:
            return index
        if pts is None:  # no timestamp on this frame: assume a constant frame rate
            return Fraction(index * self.duration_pts, max(self.total_frames, 1))
        return pts

    def wants(self, index: int, pts: int | None) -> bool:
        return self.next < len(self.targets) and self.position(index, pts) >= self.targets[self.next]

    def take(self) -> None:
        self.next += 1

    @property
    def complete(self) -> bool:
        return self.next >= len(self.targets)


def pick_uniform(pts: list[int | None], k: int, duration_pts: int | None = None,
                 total_frames: int | None = None) -> list[int]:
    """The indices data-juicer's rule picks from a whole stream's frame pts (decode order)."""
    picker = UniformPicker(len(pts) if total_frames is None else total_frames, k, duration_pts)
    picks = []
    for index, value in enumerate(pts):
        if picker.complete:
            break
        if picker.wants(index, value):
            picks.append(index)
            picker.take()
    if not picker.complete and pts:
        picks.append(len(pts) - 1)
    return picks


def thin_evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    return [items[i] for i in uniform_indices(len(items), k)]


class FrameCollector:
    """Keeps the sampled frames (RGB uint8) while frames stream past in decode order.

    ``uniform``: data-juicer's picks (:class:`UniformPicker`); when the stream ends with
    targets left, the last decoded frame is taken once, as data-juicer does (and as a
    header that over-counts frames, or a truncated tail, still yields a last view).
    ``uniform_round``: indices from the header's frame count; missing tail indices take
    the last frame that did decode. The returned indices are in pick order and may repeat
    a frame (``uniform`` on very short clips); scorers average over them as data-juicer does.
    """

    def __init__(self, total_frames: int, params: FrameSamplingParams, duration_pts: int | None = None):
        if params.method not in SAMPLING_METHODS:
            raise ValueError(f"unknown frame sampling method {params.method!r} (known: {', '.join(SAMPLING_METHODS)})")
        self.params = params
        self.frames: dict[int, np.ndarray] = {}
        self.timestamps: dict[int, float | None] = {}
        self._picker = UniformPicker(total_frames, params.num_frames, duration_pts) if params.method == "uniform" else None
        self._picks: list[int] = []
        self._wanted = set(uniform_indices(total_frames, params.num_frames)) if params.method == "uniform_round" else set()
        self.last_index = max(self._wanted) if self._wanted else -1
        self._keyframes: list[int] = []

    def wants(self, index: int, frame) -> bool:
        if self._picker is not None:
            return self._picker.wants(index, frame.pts)
        if self.params.method == "keyframes":
            return bool(frame.key_frame)
        return index in self._wanted

    def done(self, index: int) -> bool:
        if self._picker is not None:
            return self._picker.complete
        return self.params.method == "uniform_round" and index >= self.last_index

    def _keep(self, index: int, frame, rgb: np.ndarray) -> None:
        self.frames[index] = rgb
        self.timestamps[index] = float(frame.time) if frame.time is not None else None

    def add(self, index: int, frame, rgb: np.ndarray) -> None:
        self._keep(index, frame, rgb)
        if self._picker is not None:
            self._picker.take()
            self._picks.append(index)
        elif self.params.method == "keyframes":
            self._keyframes.append(index)
            # bound memory on long videos: keep at most 2k keyframes, thinned evenly
            if len(self._keyframes) > 2 * self.params.num_frames:
                keep = set(thin_evenly(self._keyframes, self.params.num_frames))
                for i in self._keyframes:
                    if i not in keep:
                        self.frames.pop(i, None)
                        self.timestamps.pop(i, None)
                self._keyframes = sorted(keep)

    def finish(self, last_index: int, last_frame, last_rgb: np.ndarray | None) -> list[int]:
        """Fill the tail past the end of the stream; return the final indices in pick order."""
        if self._picker is not None:
            if not self._picker.complete and last_rgb is not None:
                self._keep(last_index, last_frame, last_rgb)
                self._picks.append(last_index)
            return list(self._picks)
        if self.params.method == "keyframes":
            indices = thin_evenly(sorted(self.frames), self.params.num_frames)
            for i in list(self.frames):
                if i not in indices:
                    self.frames.pop(i)
                    self.timestamps.pop(i)
            return indices
        missing = [i for i in self._wanted if i not in self.frames and i > last_index]
        if missing and last_rgb is not None and last_index not in self.frames:
            self._keep(last_index, last_frame, last_rgb)
        return sorted(self.frames)
