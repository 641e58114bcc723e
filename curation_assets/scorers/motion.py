"""Optical-flow motion score, compatible with data-juicer's video_motion_score_filter.

Frames are decoded once, sequentially; only the sampled ones are converted and compared.
data-juicer seeks (CAP_PROP_POS_FRAMES) before every sample, which costs it a re-decode
from the previous keyframe per sample; the scores are the same.

Once decoding is sequential, Farneback is the floor, and it runs on one core. With
``flow_threads`` > 1 each frame pair's flow goes to a thread pool (OpenCV releases the
GIL) while the decoder moves on, so one process keeps several cores busy; scores are
bit-identical, pairs are averaged in order, and at most 2 * flow_threads pairs wait at
once so memory stays flat for any clip length. Worker processes that already fill the
cores use 1 (the default): threads there would only contend.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

FrameSelection = Literal["datajuicer", "stride"]


@dataclass(frozen=True)
class MotionParams:
    sampling_fps: float = 2.0
    # "datajuicer" reads frames 0, 1, s, 2s, ... exactly as data-juicer 1.6.1 does (its seek
    # loop adds a 0->1 pair), so its published thresholds transfer; "stride" is 0, s, 2s, ...
    frame_selection: FrameSelection = "datajuicer"
    size: int | None = None  # resize so the short side is this many pixels
    max_size: int | None = None  # ... and the long side at most this
    relative: bool = False  # divide by the (resized) frame diagonal
    # flow measured on resized frames, reported in source-frame pixels (x and y scaled back
    # separately): fast mode's scores then sit on exact mode's scale and thresholds transfer
    scale_to_source: bool = False
    # fast mode: flow on the source halved this many times the way Farneback builds its own
    # pyramid, with that many fewer pyramid levels, reported in source pixels: exact mode's
    # computation without its finest level(s) (1: 1/4 of the pixels, 2: 1/16)
    skip_levels: int = 0
    # fast mode on the exact scale: the video's score becomes scale * score ** power, a map
    # fitted on real clips by `curation-assets calibrate-motion` (identity by default)
    calibration_scale: float = 1.0
    calibration_power: float = 1.0
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    def __post_init__(self):
        if self.skip_levels:
            if not 0 < self.skip_levels < self.levels:
                raise ValueError(f"skip_levels must be between 0 and levels - 1 ({self.levels - 1}), "
                                 f"got {self.skip_levels}")
            if self.size is not None or self.max_size is not None:
                raise ValueError("skip_levels and size/max_size are two fast modes: use one")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MotionResult:
    motion_score: float  # -1 when no frame pair could be scored (data-juicer's convention)
    pair_scores: list[float] = field(default_factory=list)
    frame_indices: list[int] = field(default_factory=list)
    frames_decoded: int = 0
    error: str | None = None


def sampling_step(fps: float, total_frames: int, sampling_fps: float) -> int:
    sampling_fps = min(sampling_fps, fps)
    step = round(fps / sampling_fps)
    # data-juicer: at least two frames, and never a zero step
    return max(min(step, total_frames - 1), 1)


def sample_indices(total_frames: int, step: int, selection: FrameSelection) -> list[int]:
    if total_frames <= 0:
        return []
    strided = list(range(0, total_frames, step))
    if selection == "stride":
        return strided
    if selection == "datajuicer":
        # frame 0, then the next frame read without a seek (1), then every seek target s, 2s...
        return [0] + ([1] if total_frames > 1 else []) + strided[1:]
    raise ValueError(f"unknown frame_selection {selection!r}")


def resized_size(height: int, width: int, size: int | None, max_size: int | None) -> tuple[int, int]:
    """(h, w) after a short-side resize capped by max_size, as torchvision/data-juicer compute it."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short, long
    if size is not None:
        new_short, new_long = size, int(size * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_h, new_w


def frame_motion(prev_gray: np.ndarray, gray: np.ndarray, params: MotionParams,
                 source_hw: tuple[int, int] | None = None) -> float:
    """Mean flow magnitude of one pair; source_hw (the frames' size before resizing) is
    needed only for scale_to_source."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(prev_gray, gray, None, *farneback_args(params))
    return flow_score(flow, params, source_hw)


def farneback_args(params: MotionParams) -> tuple:
    """calcOpticalFlowFarneback's arguments after the output flow, for every backend. skip_levels
    starts at a coarser level of the same pyramid (to_gray hands over that level)."""
    return (params.pyr_scale, params.levels - params.skip_levels, params.winsize, params.iterations,
            params.poly_n, params.poly_sigma, 0)


def flow_score(flow: np.ndarray, params: MotionParams, source_hw: tuple[int, int] | None = None) -> float:
    """One pair's score from its flow (H x W x 2, float32, on the host); every flow backend
    ends here, so the backend never changes the reduction."""
    import cv2

    height, width = flow.shape[:2]
    to_source = params.scale_to_source or params.skip_levels > 0
    if to_source and source_hw is not None and tuple(source_hw) != (height, width):
        flow[..., 0] *= source_hw[1] / width
        flow[..., 1] *= source_hw[0] / height
        height, width = source_hw
    mag, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    score = float(np.mean(mag))
    if params.relative:
        score /= float(np.hypot(height, width))
    return score


def pyramid_level(gray: np.ndarray, level: int, pyr_scale: float) -> np.ndarray:
    """Farneback's own pyramid level `level` of a gray frame: the source blurred with sigma
    (1/scale - 1) / 2 (kernel round(5 sigma) | 1, at least 3), then resized linearly to
    scale = pyr_scale ** level, as OpenCV's calcOpticalFlowFarneback builds it."""
    import cv2

    scale = pyr_scale ** level
    sigma = (1 / scale - 1) * 0.5
    ksize = max(3, int(round(sigma * 5)) | 1)
    blurred = cv2.GaussianBlur(gray, (ksize, ksize), sigma, sigmaY=sigma)
    h, w = gray.shape[:2]
    return cv2.resize(blurred, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_LINEAR)


def to_gray(bgr: np.ndarray, params: MotionParams) -> np.ndarray:
    import cv2

    if params.skip_levels:
        return pyramid_level(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), params.skip_levels, params.pyr_scale)
    h, w = bgr.shape[:2]
    new_h, new_w = resized_size(h, w, params.size, params.max_size)
    if (new_h, new_w) != (h, w):
        bgr = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)  # cv2 wants (w, h)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def flow_pool(threads: int) -> ThreadPoolExecutor:
    """One long-lived pool per size and process: threads are reused across videos."""
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="farneback")
        return _pools[threads]


def default_flow_threads() -> int:
    """For a process scoring on its own: every core, up to 4 (beyond that decoding is the limit)."""
    return max(1, min(4, os.cpu_count() or 1))


class SampledIndices:
    """Which decoded frames motion reads (data-juicer's 2 fps picks), shared by every way of scoring them."""

    def __init__(self, fps: float, total_frames: int, params: MotionParams):
        self.params = params
        step = sampling_step(fps, total_frames, params.sampling_fps)
        self.indices = sample_indices(total_frames, step, params.frame_selection)
        self._wanted: dict[int, int] = {}
        for i in self.indices:
            self._wanted[i] = self._wanted.get(i, 0) + 1
        self.last_index = self.indices[-1] if self.indices else -1
        self.used_indices: list[int] = []

    def wants(self, index: int) -> bool:
        return index in self._wanted

    def done(self, index: int) -> bool:
        return index >= self.last_index

    def repeats(self, index: int) -> int:
        """How many times frame `index` enters the sequence (data-juicer reads frame 1 twice at step 1)."""
        return self._wanted[index]


def motion_result(pair_scores: list[float], used_indices: list[int], frames_decoded: int, params: MotionParams,
                  error: str | None = None) -> MotionResult:
    """A video's result from its pair scores in order: their mean (then the fast-mode
    calibration), or -1 with a reason when no pair could be scored."""
    score = float(np.mean(pair_scores)) if pair_scores else -1.0
    if score > 0 and (params.calibration_scale, params.calibration_power) != (1.0, 1.0):
        score = float(params.calibration_scale * score ** params.calibration_power)
    if error is None and not pair_scores:
        error = f"fewer than two decodable frames ({len(used_indices)}): no frame pair to score"
    return MotionResult(score, list(pair_scores), list(used_indices), frames_decoded, error)


class MotionFrames(SampledIndices):
    """The sampled gray frames of one video in pair order (pair i is frames i and i + 1), for a
    backend that scores pairs in batches across videos (torch): the same frames and grays
    MotionAccumulator would score one pair at a time."""

    def __init__(self, fps: float, total_frames: int, params: MotionParams):
        super().__init__(fps, total_frames, params)
        self.grays: list[np.ndarray] = []
        self.source_hw: tuple[int, int] | None = None

    def add(self, index: int, bgr: np.ndarray) -> None:
        gray = to_gray(bgr, self.params)
        self.source_hw = bgr.shape[:2]
        for _ in range(self.repeats(index)):
            self.grays.append(gray)
            self.used_indices.append(index)


class MotionAccumulator(SampledIndices):
    """Consumes decoded frames in order and scores the sampled pairs.

    Separate from the decoder so one decode pass can feed motion and other consumers.
    flow_threads > 1 computes pairs on a shared thread pool (see the module docstring).
    """

    def __init__(self, fps: float, total_frames: int, params: MotionParams, flow_threads: int = 1,
                 backend: str = "cpu"):
        if flow_threads < 1:
            raise ValueError(f"flow_threads must be >= 1, got {flow_threads}")
        super().__init__(fps, total_frames, params)
        # backend "opencl": frames go to the device, pairs run there (scorers/flow_backends.py)
        self._opencl = None
        if backend == "opencl":
            from curation_assets.scorers import flow_backends

            flow_backends.resolve_backend("opencl")  # no device: BackendError now, never a CPU run
            self._opencl = flow_backends
            flow_threads = flow_backends.pair_threads(backend, flow_threads)
        elif backend != "cpu":
            raise ValueError(f"backend must be 'cpu' or 'opencl' once resolved (torch scores pairs in batches: "
                             f"MotionFrames), got {backend!r}")
        self._pool = flow_pool(flow_threads) if flow_threads > 1 else None
        self._pending: deque[Future] = deque()
        self.max_pending = 2 * flow_threads
        self.peak_pending = 0
        self._prev: np.ndarray | None = None
        self.pair_scores: list[float] = []

    def add(self, index: int, bgr: np.ndarray) -> None:
        gray = to_gray(bgr, self.params)
        if self._opencl is not None:
            gray = self._opencl.upload(gray)
        source_hw = bgr.shape[:2]
        for _ in range(self.repeats(index)):
            if self._prev is not None:
                self._score_pair(self._prev, gray, source_hw)
            self._prev = gray
            self.used_indices.append(index)

    def _pair_motion(self, prev, gray, source_hw: tuple[int, int]) -> float:
        if self._opencl is not None:
            return flow_score(self._opencl.opencl_flow(prev, gray, farneback_args(self.params)), self.params, source_hw)
        return frame_motion(prev, gray, self.params, source_hw)

    def _score_pair(self, prev: np.ndarray, gray: np.ndarray, source_hw: tuple[int, int]) -> None:
        if self._pool is None:
            self.pair_scores.append(self._pair_motion(prev, gray, source_hw))
            return
        self._pending.append(self._pool.submit(self._pair_motion, prev, gray, source_hw))
        self.peak_pending = max(self.peak_pending, len(self._pending))
        while len(self._pending) >= self.max_pending:
            self.pair_scores.append(self._pending.popleft().result())

    def _drain(self) -> None:
        while self._pending:
            self.pair_scores.append(self._pending.popleft().result())

    def result(self, frames_decoded: int, error: str | None = None) -> MotionResult:
        self._drain()
        return motion_result(self.pair_scores, self.used_indices, frames_decoded, self.params, error)
