"""Fast-mode calibration: the power-law map, its use in the motion score, and the
`calibrate-motion` command writing it into a recipe. Generated clips exercise the
mechanics only; the README's agreement numbers come from real footage
(benchmarks/fast_motion_study.py)."""

from __future__ import annotations

import math

import pytest
import yaml

from curation_assets.cli import main
from curation_assets.orchestration.recipe import effective_config, load_recipe
from curation_assets.samples import synthetic
from curation_assets.scorers.motion import MotionParams
from curation_assets.scorers.motion_calibration import calibrated, compare_clip, fit_power_map, window_means
from curation_assets.scorers.video_pass import motion_score


@pytest.fixture(scope="module")
def moving_clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration_clips")
    for shift in (1, 2, 4):
        synthetic.write_moving_pattern(folder / f"shift{shift}.mp4", width=128, height=96, fps=24, n_frames=48,
                                       shift_px_per_frame=(shift, 0), seed=shift)
    return folder


def test_fit_recovers_a_power_law():
    fast = [0.5, 1.0, 2.0, 3.0, 8.0]
    pairs = [(1.7 * f ** 0.8, f) for f in fast] + [(0.0, 0.3), (0.4, 0.0)]  # zeros carry no scale: ignored
    scale, power = fit_power_map(pairs)
    assert scale == pytest.approx(1.7) and power == pytest.approx(0.8)
    with pytest.raises(ValueError, match="at least 3 windows"):
        fit_power_map([(1.0, 1.0), (2.0, 2.0)])
    with pytest.raises(ValueError, match="not positive"):
        fit_power_map([(3.0, 1.0), (2.0, 2.0), (1.0, 3.0)])


def test_scale_fit_is_the_median_ratio():
    from curation_assets.scorers.motion_calibration import fit_scale

    assert fit_scale([(2.0, 1.0), (3.0, 2.0), (8.0, 2.0), (0.0, 1.0)]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 3 windows"):
        fit_scale([(1.0, 1.0)])


def test_calibrated_keeps_no_score_and_zero():
    assert calibrated(-1.0, 2.0, 0.5) == -1.0
    assert calibrated(0.0, 2.0, 0.5) == 0.0
    assert calibrated(4.0, 2.0, 0.5) == pytest.approx(4.0)


def test_window_means_group_by_the_pairs_second_frame():
    # pairs ending at frames 1 (the 0->1 pair), 12, 24, 36, 48 at 24 fps; 1 s windows
    means = window_means([9.0, 1.0, 3.0, 5.0, 7.0], [1, 12, 24, 36, 48], 24.0, 1.0, skip_first=True)
    assert means == {0: 1.0, 1: 4.0, 2: 7.0}


def test_motion_score_applies_the_map(moving_clips):
    path = moving_clips / "shift2.mp4"
    raw = motion_score(path, MotionParams(size=48, scale_to_source=True), flow_threads=1)
    mapped = motion_score(path, MotionParams(size=48, scale_to_source=True, calibration_scale=1.5,
                                             calibration_power=0.9), flow_threads=1)
    assert raw.motion_score > 0
    assert mapped.motion_score == pytest.approx(1.5 * raw.motion_score ** 0.9)
    assert mapped.pair_scores == raw.pair_scores  # pairs stay raw; the map is on the video's score


def test_compare_clip_scores_both_modes_from_one_decode(moving_clips):
    path = moving_clips / "shift4.mp4"
    comparison = compare_clip(path, MotionParams(size=48, scale_to_source=True), window_s=1.0)
    assert comparison.error is None
    assert comparison.exact == pytest.approx(motion_score(path, MotionParams(), flow_threads=1).motion_score)
    assert comparison.fast == pytest.approx(
        motion_score(path, MotionParams(size=48, scale_to_source=True), flow_threads=1).motion_score)
    assert len(comparison.windows) == 2


def test_calibrate_motion_writes_the_recipe(moving_clips, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("motion:\n  sampling_fps: 2.0\ncurated_videos:\n  motion_min: 0.25\n")
    assert main(["calibrate-motion", "--input", str(moving_clips), "--window", "1", "--config", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "skip_levels 1" in out and "shift1.mp4: exact" in out and "map from 6 windows" in out
    written = yaml.safe_load(recipe.read_text())
    assert written["curated_videos"] == {"motion_min": 0.25}  # the rest of the recipe is kept
    motion = effective_config("motion", load_recipe(recipe))
    assert motion.skip_levels == 1 and motion.size is None and motion.sampling_fps == 2.0
    assert motion.calibration_power == 1.0 and math.isfinite(motion.calibration_scale)
    # the calibrated fast score of a sampled clip lands near its exact score
    path = moving_clips / "shift2.mp4"
    exact = motion_score(path, MotionParams(), flow_threads=1).motion_score
    fast = motion_score(path, motion.params(), flow_threads=1).motion_score
    assert fast == pytest.approx(exact, rel=0.25)


def test_calibrate_motion_errors_are_one_line(tmp_path, capsys):
    assert main(["calibrate-motion", "--input", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["calibrate-motion", "--input", str(tmp_path / "empty")]) == 2
    assert "no readable videos" in capsys.readouterr().err


def test_calibrate_motion_with_a_resize_mode(moving_clips, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    assert main(["calibrate-motion", "--input", str(moving_clips), "--size", "48", "--window", "1",
                 "--fit", "power", "--config", str(recipe)]) == 0
    motion = effective_config("motion", load_recipe(recipe))
    assert motion.size == 48 and motion.scale_to_source and motion.skip_levels == 0
    assert motion.calibration_power != 1.0


def test_skip_levels_is_exact_mode_without_its_finest_level(moving_clips):
    from curation_assets.scorers.motion import pyramid_level, to_gray

    import numpy as np

    frame = np.zeros((96, 128, 3), np.uint8)
    assert to_gray(frame, MotionParams(skip_levels=1)).shape == (48, 64)
    assert pyramid_level(frame[..., 0], 2, 0.5).shape == (24, 32)
    with pytest.raises(ValueError, match="between 0 and levels - 1"):
        MotionParams(skip_levels=3)
    with pytest.raises(ValueError, match="two fast modes"):
        MotionParams(skip_levels=1, size=64)
    path = moving_clips / "shift2.mp4"
    exact = motion_score(path, MotionParams(), flow_threads=1).motion_score
    fast = motion_score(path, MotionParams(skip_levels=1), flow_threads=1).motion_score
    assert fast == pytest.approx(exact, rel=0.3)  # reported in source pixels


REAL_VIDEOS = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_VIDEOS.is_dir(), reason=f"{REAL_VIDEOS} absent")
def test_skip_levels_ranks_the_real_clips_like_exact():
    """The README's claim on the five real clips: same order as exact, 1.2-1.7x high
    before calibration, and a scale fitted on four clips' windows brings the fifth within 30%."""
    from curation_assets.scorers.motion_calibration import fit_scale

    paths = sorted(REAL_VIDEOS.glob("video*.mp4"))
    comparisons = {p.stem: compare_clip(p, MotionParams(skip_levels=1)) for p in paths}
    assert all(c.error is None for c in comparisons.values())
    by_exact = sorted(comparisons, key=lambda n: comparisons[n].exact)
    by_fast = sorted(comparisons, key=lambda n: comparisons[n].fast)
    assert by_exact == by_fast
    for name, c in comparisons.items():
        assert 1.1 < c.fast / c.exact < 1.8, name
        scale = fit_scale([w for other, o in comparisons.items() if other != name for w in o.windows])
        assert 0.7 < scale * c.fast / c.exact < 1.3, name
