"""Which frames the image scorers see, and keeping them during the single decode pass."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

SamplingMethod = Literal["uniform", "keyframes"]


@dataclass(frozen=True)
class FrameSamplingParams:
    method: SamplingMethod = "uniform"
    num_frames: int = 3  # uniform: exactly this many (first, ..., last); keyframes: at most this many

    def as_dict(self) -> dict:
        return asdict(self)


def uniform_indices(total_frames: int, k: int) -> list[int]:
    """k indices spread evenly from the first to the last frame (k=3: first, middle, last)."""
    if total_frames <= 0 or k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({int(round(i * (total_frames - 1) / (k - 1))) for i in range(k)})


def thin_evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    return [items[i] for i in uniform_indices(len(items), k)]


class FrameCollector:
    """Keeps the sampled frames (RGB uint8) while frames stream past in decode order.

    Uniform indices come from the header's frame count; when the stream ends early (a
    header that over-counts, a truncated tail) the missing tail indices take the last frame
    that did decode, so a video still yields its first/middle/last view.
    """

    def __init__(self, total_frames: int, params: FrameSamplingParams):
        self.params = params
        self.frames: dict[int, np.ndarray] = {}
        self.timestamps: dict[int, float | None] = {}
        self._wanted = set(uniform_indices(total_frames, params.num_frames)) if params.method == "uniform" else set()
        self.last_index = max(self._wanted) if self._wanted else -1
        self._keyframes: list[int] = []

    def wants(self, index: int, frame) -> bool:
        if self.params.method == "keyframes":
            return bool(frame.key_frame)
        return index in self._wanted

    def done(self, index: int) -> bool:
        return self.params.method == "uniform" and index >= self.last_index

    def add(self, index: int, frame, rgb: np.ndarray) -> None:
        self.frames[index] = rgb
        self.timestamps[index] = float(frame.time) if frame.time is not None else None
        if self.params.method == "keyframes":
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
        """Fill tail indices past the end of the stream; return the final, ordered indices."""
        if self.params.method == "keyframes":
            indices = thin_evenly(sorted(self.frames), self.params.num_frames)
            for i in list(self.frames):
                if i not in indices:
                    self.frames.pop(i)
                    self.timestamps.pop(i)
            return indices
        missing = [i for i in self._wanted if i not in self.frames and i > last_index]
        if missing and last_rgb is not None and last_index not in self.frames:
            self.frames[last_index] = last_rgb
            self.timestamps[last_index] = float(last_frame.time) if last_frame.time is not None else None
        return sorted(self.frames)
