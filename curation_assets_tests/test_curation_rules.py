"""judge(): every video ends kept, rejected (each broken rule named) or failed (the reason)."""

from __future__ import annotations

import pytest

from curation_assets.curation.rules import FAILED, KEPT, REJECTED, Verdict, judge, rule_name

THRESHOLDS = {
    "motion_min": 0.25,
    "motion_max": 10.0,
    "width_min": 256,
    "width_max": 4096,
    "height_min": 144,
    "height_max": 4096,
    "char_rep_ratio_max": 0.3,
}


def clean_video(**overrides) -> dict:
    video = {
        "path": "/videos/clean.mp4",
        "error": None,
        "duplicate_of": None,
        "resolution_present": True,
        "resolution_error": None,
        "motion_present": True,
        "motion_error": None,
        "motion_score": 3.0,
        "width": 640,
        "height": 360,
        "caption": "a dog runs on the beach",
        "caption_repetition_present": True,
        "caption_repetition_error": None,
        "char_rep_ratio": 0.05,
        "clip_similarity_present": True,
        "clip_similarity": 0.3,
        "aesthetics_present": True,
        "aesthetics_score": 0.5,
        "ocr_area_present": True,
        "ocr_area_ratio": 0.0,
    }
    video.update(overrides)
    return video


def test_clean_video_is_kept_without_reasons():
    assert judge(clean_video(), THRESHOLDS) == Verdict(KEPT, [])


def test_unreadable_video_fails():
    verdict = judge(clean_video(error="empty file (0 bytes)"), THRESHOLDS)
    assert verdict == Verdict(FAILED, ["unreadable: empty file (0 bytes)"])


def test_error_wins_over_duplicate():
    verdict = judge(clean_video(error="file not found", duplicate_of="/videos/a.mp4"), THRESHOLDS)
    assert verdict.status == FAILED


def test_duplicate_is_rejected():
    verdict = judge(clean_video(duplicate_of="/videos/original.mp4", motion_score=0.0), THRESHOLDS)
    assert verdict == Verdict(REJECTED, ["duplicate_of:/videos/original.mp4"])
    assert rule_name(verdict.reasons[0]) == "duplicate"


@pytest.mark.parametrize("asset", ["resolution", "motion"])
def test_missing_score_row_fails_naming_the_asset(asset):
    verdict = judge(clean_video(**{f"{asset}_present": False}), THRESHOLDS)
    assert verdict == Verdict(FAILED, [f"{asset}: no score recorded"])


def test_missing_score_keys_fail_too():
    video = clean_video()
    del video["motion_present"], video["resolution_present"]
    verdict = judge(video, THRESHOLDS)
    assert verdict == Verdict(FAILED, ["resolution: no score recorded", "motion: no score recorded"])


@pytest.mark.parametrize("asset", ["resolution", "motion"])
def test_score_error_fails(asset):
    verdict = judge(clean_video(**{f"{asset}_error": "decode failed after 3 frames"}), THRESHOLDS)
    assert verdict == Verdict(FAILED, [f"{asset}: decode failed after 3 frames"])


def test_caption_repetition_required_only_with_a_caption():
    missing = judge(clean_video(caption_repetition_present=False), THRESHOLDS)
    assert missing == Verdict(FAILED, ["caption_repetition: no score recorded"])
    errored = judge(clean_video(caption_repetition_error="boom"), THRESHOLDS)
    assert errored == Verdict(FAILED, ["caption_repetition: boom"])
    # Without a caption the repetition score is not needed.
    uncaptioned = clean_video(caption=None, caption_repetition_present=False, char_rep_ratio=None,
                              clip_similarity_present=False)
    assert judge(uncaptioned, THRESHOLDS) == Verdict(KEPT, [])


def test_all_failures_listed():
    verdict = judge(
        clean_video(resolution_present=False, motion_error="fewer than two decodable frames", caption_repetition_present=False),
        THRESHOLDS,
    )
    assert verdict == Verdict(
        FAILED,
        ["resolution: no score recorded", "motion: fewer than two decodable frames", "caption_repetition: no score recorded"],
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"motion_score": 0.1}, "motion_score<0.25"),
        ({"motion_score": 12.5}, "motion_score>10"),
        ({"width": 200}, "width<256"),
        ({"width": 8000}, "width>4096"),
        ({"height": 100}, "height<144"),
        ({"height": 5000}, "height>4096"),
        ({"char_rep_ratio": 0.5}, "char_rep_ratio>0.3"),
    ],
)
def test_each_bound_names_its_rule(overrides, reason):
    verdict = judge(clean_video(**overrides), THRESHOLDS)
    assert verdict == Verdict(REJECTED, [reason])
    assert rule_name(reason) == reason


@pytest.mark.parametrize(
    "overrides",
    [{"motion_score": 0.25}, {"motion_score": 10.0}, {"width": 256}, {"height": 4096}, {"char_rep_ratio": 0.3}],
)
def test_bounds_are_inclusive(overrides):
    assert judge(clean_video(**overrides), THRESHOLDS).status == KEPT


def test_none_bounds_are_ignored():
    lax = {key: None for key in THRESHOLDS}
    extreme = clean_video(motion_score=0.0, width=1, height=1, char_rep_ratio=1.0)
    assert judge(extreme, lax) == Verdict(KEPT, [])
    assert judge(extreme, {}) == Verdict(KEPT, [])
    only_motion = {**lax, "motion_min": 0.5}
    assert judge(extreme, only_motion) == Verdict(REJECTED, ["motion_score<0.5"])


def test_several_broken_rules_all_listed_in_order():
    video = clean_video(motion_score=0.01, width=100, height=50, char_rep_ratio=0.9)
    verdict = judge(video, THRESHOLDS)
    assert verdict == Verdict(REJECTED, ["motion_score<0.25", "width<256", "height<144", "char_rep_ratio>0.3"])


def test_require_caption():
    uncaptioned = clean_video(caption=None, char_rep_ratio=None)
    assert judge(uncaptioned, {**THRESHOLDS, "require_caption": True}) == Verdict(REJECTED, ["caption_missing"])
    assert judge(clean_video(caption=""), {**THRESHOLDS, "require_caption": True}).reasons == ["caption_missing"]
    assert judge(uncaptioned, {**THRESHOLDS, "require_caption": False}) == Verdict(KEPT, [])
    assert judge(clean_video(), {**THRESHOLDS, "require_caption": True}) == Verdict(KEPT, [])


def test_require_caption_listed_after_bound_failures():
    video = clean_video(caption=None, motion_score=0.0)
    assert judge(video, {**THRESHOLDS, "require_caption": True}).reasons == ["motion_score<0.25", "caption_missing"]


def test_bound_formatting_uses_g():
    assert judge(clean_video(motion_score=0.1), {"motion_min": 0.125}).reasons == ["motion_score<0.125"]
    assert judge(clean_video(width=100), {"width_min": 256.0}).reasons == ["width<256"]
    assert judge(clean_video(motion_score=0.0), {"motion_min": 1e-7}).reasons == ["motion_score<1e-07"]
