"""Training-set selection and report logic, on hand-made score tables."""

import numpy as np
import polars as pl
import pytest

from curation_assets.outputs.report import summarize, suggest_thresholds
from curation_assets.outputs.selection import (
    DEFAULT_PIXEL_BUDGET, composite_scores, eligible, resolve_budget, resolve_shape, select,
)


def candidates(n=6, width=320, height=256):
    rng = np.random.default_rng(0)
    return pl.DataFrame({
        "video_id": [f"v{i}" for i in range(n)],
        "width": [width] * n, "height": [height] * n, "frame_count": [100] * n,
        "caption": [f"clip {i}" for i in range(n)],
        "aesthetics_score": [0.1 * i for i in range(n)],  # v5 best
        "clip_similarity": rng.uniform(0.2, 0.3, n).tolist(),
        "motion_score": [2.0] * n,
        "ocr_area_ratio": [0.0] * n,
    })


def test_presets_and_budget():
    shape = resolve_shape("16x512x512")
    assert shape.pixels == 16 * 512 * 512
    assert resolve_budget(shape, 1, None, None) == DEFAULT_PIXEL_BUDGET == 125_000 * shape.pixels
    assert resolve_budget(shape, 2, None, 10) == 10 * 2 * shape.pixels
    assert resolve_shape("custom", 8, 128, 96).pixels == 8 * 128 * 96
    with pytest.raises(ValueError):
        resolve_shape("custom", 8, None, 96)
    with pytest.raises(ValueError):
        resolve_budget(shape, 1, 1e9, 3)


def test_budget_that_fits_exactly_k_selects_the_best_k():
    shape = resolve_shape("16x256x256")
    frame = candidates()
    k = 3
    chosen = select(frame, shape, epochs=2, budget=k * 2 * shape.pixels, weights={"aesthetics_score": 1.0})
    assert chosen["video_id"].to_list() == ["v5", "v4", "v3"]
    assert chosen["rank"].to_list() == [1, 2, 3]
    assert chosen["pixels"].sum() <= k * 2 * shape.pixels
    # one pixel short of K clips: K-1
    short = select(frame, shape, epochs=2, budget=k * 2 * shape.pixels - 1, weights={"aesthetics_score": 1.0})
    assert short.height == k - 1


def test_ties_are_broken_by_video_id_deterministically():
    shape = resolve_shape("16x256x256")
    frame = candidates().with_columns(pl.lit(0.5).alias("aesthetics_score"))
    a = select(frame, shape, 1, 2 * shape.pixels, {"aesthetics_score": 1.0})
    b = select(frame.reverse(), shape, 1, 2 * shape.pixels, {"aesthetics_score": 1.0})
    assert a["video_id"].to_list() == b["video_id"].to_list() == ["v0", "v1"]


def test_lower_is_better_scores_are_inverted_and_missing_scores_rank_last():
    frame = pl.DataFrame({"video_id": ["a", "b", "c"], "ocr_area_ratio": [0.3, 0.0, None]})
    scores = composite_scores(frame, {"ocr_area_ratio": 1.0})
    assert scores.tolist() == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError):
        composite_scores(frame, {"bogus": 1.0})


def test_preset_changes_eligibility():
    frame = candidates(width=640, height=360)
    ok256, _ = eligible(frame, resolve_shape("16x256x256"))
    ok512, bad512 = eligible(frame, resolve_shape("16x512x512"))
    assert ok256.height == 6 and ok512.height == 0
    assert set(bad512["ineligible_reason"]) == {"height<512"}
    short = frame.with_columns(pl.lit(10).alias("frame_count"))
    assert set(eligible(short, resolve_shape("16x256x256"))[1]["ineligible_reason"]) == {"frames<16"}


def test_suggested_thresholds_stay_in_valid_ranges():
    summaries = {
        "motion_score": summarize("motion_score", np.array([0.1, 0.2, 5.0, 9.0])),
        "aesthetics_score": summarize("aesthetics_score", np.array([0.4, 0.5, 0.6])),
        "ocr_area_ratio": summarize("ocr_area_ratio", np.array([0.0, 0.0, 0.5])),
    }
    sigma = suggest_thresholds(summaries, "sigma")
    assert sigma["motion_min"] == 0.0 and sigma["motion_max"] > 9.0
    assert 0.0 <= sigma["aesthetics_score_min"] < 0.4
    assert sigma["ocr_area_ratio_max"] <= 1.0
    wide = {"ocr_area_ratio": summarize("ocr_area_ratio", np.array([0.0, 0.0, 0.0, 0.9]))}
    assert suggest_thresholds(wide, "sigma")["ocr_area_ratio_max"] == 1.0  # clamped to the valid range
    middle = suggest_thresholds(summaries, "percentile", keep_middle=0.5)
    assert 0.1 < middle["motion_min"] < middle["motion_max"] < 9.0
