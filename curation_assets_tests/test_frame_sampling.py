"""Which frames the image scorers read: data-juicer's uniform picks by default.

The expected picks are computed here from data-juicer 1.6.1's documented arithmetic
(extract_video_frames_uniformly: targets j * duration / (k - 1), the first frame at or
after each, the last frame when none), written independently of the code under test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import pytest

from curation_assets.samples import synthetic
from curation_assets.scorers.frame_sampling import (
    FrameCollector,
    FrameSamplingParams,
    datajuicer_uniform_indices,
    pick_uniform,
    uniform_indices,
)
from curation_assets.scorers.motion import MotionParams
from curation_assets.scorers.video_pass import video_pass

# (time base, frame duration in it): mp4 at 24 fps, NTSC 29.97 fps in a 90 kHz base, 30 fps
TIMINGS = [(Fraction(1, 12288), 512), (Fraction(1, 90000), 3003), (Fraction(1, 15360), 512)]
MAX_FRAMES = 400
PIXEL = np.zeros((2, 2, 3), np.uint8)


def expected_dj_picks(n: int, k: int) -> list[int]:
    """data-juicer's picks on a constant-frame-rate stream of n frames (pts i, duration n).

    frame_num is lowered to n; frame_num 1 -> the middle target n/2, else targets
    j*n/(k-1); a target lands on frame ceil(target) if that frame exists, and targets past
    the last frame's pts (only the final one, n) take the last frame.
    """
    k = min(k, n)
    targets = [Fraction(n, 2)] if k == 1 else [Fraction(j * n, k - 1) for j in range(k)]
    return [math.ceil(t) if math.ceil(t) <= n - 1 else n - 1 for t in targets]


def real_frames(time_base: Fraction, frame_duration: int) -> list[av.VideoFrame]:
    """PyAV frames carrying only timestamps, as a decoder hands them over."""
    frames = []
    for i in range(MAX_FRAMES):
        frame = av.VideoFrame(2, 2, "rgb24")
        frame.pts = i * frame_duration
        frame.time_base = time_base
        frames.append(frame)
    return frames


def stream_through_collector(frames, n: int, k: int, duration_pts: int | None) -> list[int]:
    """Feed n frames to FrameCollector the way video_pass does; return its picks."""
    collector = FrameCollector(n, FrameSamplingParams(method="uniform", num_frames=k), duration_pts=duration_pts)
    last_index = -1
    for index, frame in enumerate(frames[:n]):
        last_index = index
        if collector.wants(index, frame):
            collector.add(index, frame, PIXEL)
        if collector.done(index):
            break
    return collector.finish(last_index, frames[last_index], PIXEL)


@pytest.mark.parametrize("time_base,frame_duration", TIMINGS)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_uniform_is_data_juicer_rule_for_every_frame_count(time_base, frame_duration, k):
    frames = real_frames(time_base, frame_duration)
    for n in range(1, MAX_FRAMES + 1):
        expected = expected_dj_picks(n, k)
        assert datajuicer_uniform_indices(n, k) == expected, n
        pts = [f.pts for f in frames[:n]]
        assert pick_uniform(pts, k, duration_pts=n * frame_duration) == expected, n
        assert stream_through_collector(frames, n, k, n * frame_duration) == expected, n
        # a container without a declared duration: frame counts stand in for time
        assert stream_through_collector(frames, n, k, None) == expected, n


def test_known_picks_and_where_the_rounded_rule_differs():
    assert datajuicer_uniform_indices(3, 3) == [0, 2, 2]  # the last frame counts twice, as in data-juicer
    assert datajuicer_uniform_indices(10, 3) == [0, 5, 9]
    assert uniform_indices(10, 3) == [0, 4, 9]  # uniform_round: half to even
    # the five real sample clips' frame counts: the rounded middle is one early on three of them
    for n, dj_middle, rounded_middle in [(282, 141, 140), (556, 278, 278), (1190, 595, 594), (673, 337, 336),
                                         (284, 142, 142)]:
        assert datajuicer_uniform_indices(n, 3) == [0, dj_middle, n - 1]
        assert uniform_indices(n, 3) == [0, rounded_middle, n - 1]


def test_picks_follow_timestamps_not_decode_order_counts():
    """A stream whose first pts is not 0 (an edit list, a cut): data-juicer compares pts
    against j * duration / (k-1) as they are, so the middle pick moves with the offset."""
    offset = 3
    pts = [offset + i for i in range(10)]
    # targets 0, 5, 10 on pts 3..12: frame 0 (pts 3), frame 2 (pts 5), frame 7 (pts 10)
    assert pick_uniform(pts, 3, duration_pts=10) == [0, 2, 7]
    # variable frame rate: the middle target 50 falls after a long gap (pts 10 -> 90)
    assert pick_uniform([0, 10, 90, 95, 99], 3, duration_pts=100) == [0, 2, 4]


@pytest.mark.parametrize("n", [3, 10, 11, 27])
def test_graph_decode_pass_reads_data_juicer_frames(tmp_path, n):
    """Real encoded mp4s through the graph's single decode pass."""
    path = synthetic.write_moving_pattern(tmp_path / f"n{n}.mp4", width=64, height=48, n_frames=n)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.frames == n
    uniform = video_pass(path, MotionParams(), FrameSamplingParams())
    assert uniform.frame_indices == expected_dj_picks(n, 3)
    assert len(uniform.frames) == len(uniform.frame_indices)
    # each pick carries the pixels of its own frame (frames differ: the texture moves)
    if n > 3:
        assert not np.array_equal(uniform.frames[0], uniform.frames[1])
    rounded = video_pass(path, MotionParams(), FrameSamplingParams(method="uniform_round"))
    assert rounded.frame_indices == uniform_indices(n, 3)


def test_truncated_stream_takes_the_last_decoded_frame(tmp_path):
    """A header that over-counts frames: the unreached last target takes the last frame decoded."""
    frames = real_frames(Fraction(1, 24), 1)
    # header says 20 frames, only 12 decode: targets 0, 10, 20 -> frames 0, 10, then frame 11
    collector = FrameCollector(20, FrameSamplingParams(), duration_pts=20)
    for index, frame in enumerate(frames[:12]):
        if collector.wants(index, frame):
            collector.add(index, frame, PIXEL)
    assert collector.finish(11, frames[11], PIXEL) == [0, 10, 11]


def test_unknown_method_fails_clearly():
    with pytest.raises(ValueError, match="unknown frame sampling method 'middle'"):
        FrameCollector(10, FrameSamplingParams(method="middle"))  # type: ignore[arg-type]
