"""Speed-up of slow clips: factor choice (plain logic) and the real ffmpeg re-encode."""

import pytest

from curation_assets.samples.synthetic import write_slow_motion
from curation_assets.scorers.acceleration import AccelerationParams, choose_factor, output_path, speed_up
from curation_assets.scorers.motion import MotionParams
from curation_assets.scorers.video_pass import motion_score
from curation_assets.scorers.probe import probe_video

PARAMS = AccelerationParams()  # band [1, 4], target 2 (geometric middle), cap 4x, >= 32 frames out


@pytest.mark.parametrize(
    "motion, frames, expected",
    [
        (0.5, 1000, 4.0),  # wants 4x, allowed
        (0.8, 1000, 2.5),  # 2 / 0.8
        (0.3, 1000, 4.0),  # wants 6.7x, capped at 4x: 1.2 is still in the band
        (0.2, 1000, None),  # capped at 4x: 0.8 cannot reach the band
        (0.5, 64, None),  # 64 frames allow only 2x: 1.0 is the band's edge -> 0.5*2 = 1.0 reaches it
        (1.5, 1000, None),  # not slow
        (0.0, 1000, None),  # static: nothing to scale
        (0.95, 1000, 2.105),
    ],
)
def test_choose_factor(motion, frames, expected):
    choice = choose_factor(motion, frames, PARAMS)
    if motion == 0.5 and frames == 64:
        assert choice.factor == 2.0  # exactly at target_min is in the band
        return
    assert choice.factor == (pytest.approx(expected, abs=1e-3) if expected else None), choice.reason


def test_choose_factor_respects_frames_needed():
    choice = choose_factor(0.5, 40, PARAMS)  # 40 / 32 = 1.25x at most: 0.625 < 1
    assert choice.factor is None and "cannot reach the band" in choice.reason
    assert choose_factor(0.9, 34, PARAMS).factor is None  # 34/32 < min_factor 1.1


def test_speed_up_doubles_motion_and_halves_duration(tmp_path):
    src = write_slow_motion(tmp_path / "slow.mp4", width=192, height=160, n_frames=96, shift_px_per_frame=(0.05, 0))
    before = probe_video(src)
    stride = MotionParams(frame_selection="stride")  # exactly linear in speed (no 0->1 pair)
    m0 = motion_score(src, stride).motion_score
    out = speed_up(src, output_path(tmp_path / "acc", "abcdef", 2.0), 2.0, before.fps)
    after = probe_video(out)
    assert after.error is None and after.fps == before.fps
    assert abs(after.duration_s - before.duration_s / 2) <= 1 / before.fps
    assert abs(after.frame_count - before.frame_count / 2) <= 1
    m1 = motion_score(out, stride).motion_score
    assert m1 == pytest.approx(2 * m0, rel=0.1), (m0, m1)
    assert src.read_bytes() == (tmp_path / "slow.mp4").read_bytes()  # input untouched


def test_speed_up_refuses_to_overwrite_input_and_handles_dash_names(tmp_path):
    src = write_slow_motion(tmp_path / "-weird name 'q'.mp4", width=128, height=96, n_frames=48)
    with pytest.raises(ValueError):
        speed_up(src, src, 2.0, 24.0)
    out = speed_up(src, tmp_path / "out" / "-x2.mp4", 2.0, 24.0)
    assert probe_video(out).error is None


def test_speed_up_reports_ffmpeg_errors(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        speed_up(bad, tmp_path / "out.mp4", 2.0, 24.0)
    assert not (tmp_path / "out.mp4").exists()
