"""Keep / reject / fail: the verdict on one video from its scores and the thresholds.

Every video ends in exactly one state. A score that is missing or errored makes the video
`failed` (never silently kept); a rule it breaks is named in `reasons` as `<score><op><bound>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEPT, REJECTED, FAILED = "kept", "rejected", "failed"
# A long source cut into clips: not judged itself, its clips are (each has its own verdict).
SPLIT = "split"

# (score column, threshold key, comparison that FAILS the rule)
_BOUNDS = [
    ("motion_score", "motion_min", "<"),
    ("motion_score", "motion_max", ">"),
    ("width", "width_min", "<"),
    ("width", "width_max", ">"),
    ("height", "height_min", "<"),
    ("height", "height_max", ">"),
    ("char_rep_ratio", "char_rep_ratio_max", ">"),
    ("clip_similarity", "clip_similarity_min", "<"),
    ("aesthetics_score", "aesthetics_score_min", "<"),
    ("ocr_area_ratio", "ocr_area_ratio_max", ">"),
]

# Score assets every readable video needs for a verdict, and those only captioned ones need.
REQUIRED_SCORES = ("resolution", "motion", "aesthetics", "ocr_area")
CAPTION_SCORES = ("caption_repetition", "clip_similarity")
# Threshold keys that need a scorer: when a recipe switches the scorer off they are not applied.
SCORER_BOUNDS = {
    "clip_similarity": ("clip_similarity_min",),
    "aesthetics": ("aesthetics_score_min",),
    "ocr_area": ("ocr_area_ratio_max",),
    "captions": (),  # the captioner: manifest captions and their text bounds still apply
}


def without_scorers(thresholds: dict, off: list[str] | tuple[str, ...]) -> dict:
    """The thresholds with every bound on a switched-off scorer set to None (not checked)."""
    return {**thresholds, **{key: None for name in off for key in SCORER_BOUNDS.get(name, ())}}


def required_scores(off: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(scores every readable video needs, scores captioned videos need) when `off` are switched off."""
    return (tuple(a for a in REQUIRED_SCORES if a not in off), tuple(a for a in CAPTION_SCORES if a not in off))


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)


def judge(video: dict, thresholds: dict, required=REQUIRED_SCORES, caption_scores=CAPTION_SCORES) -> Verdict:
    """`video` holds the raw_videos fields plus, per score asset, `<asset>_present`,
    `<asset>_error` and the score columns."""
    if video.get("error"):
        return Verdict(FAILED, [f"unreadable: {video['error']}"])
    if video.get("duplicate_of"):
        return Verdict(REJECTED, [f"duplicate_of:{video['duplicate_of']}"])
    if video.get("split_into") is not None:
        reasons = [f"split_into:{video['split_into']}"]
        if video.get("split_error"):
            reasons.append(f"split_error: {video['split_error']}")
        return Verdict(SPLIT, reasons)

    has_caption = bool(video.get("caption"))
    failures = []
    if video.get("captions_error"):  # a caption was due (generation) but could not be made
        failures.append(f"captions: {video['captions_error']}")
    for asset in list(required) + (list(caption_scores) if has_caption else []):
        if not video.get(f"{asset}_present"):
            failures.append(f"{asset}: no score recorded")
        elif video.get(f"{asset}_error"):
            failures.append(f"{asset}: {video[f'{asset}_error']}")
    if failures:
        return Verdict(FAILED, failures)

    reasons = []
    if video.get("near_duplicate_of"):
        reasons.append(f"near_duplicate_of:{video['near_duplicate_of']}")
    for column, key, op in _BOUNDS:
        bound = thresholds.get(key)
        value = video.get(column)
        if bound is None or value is None:
            continue
        if (op == "<" and value < bound) or (op == ">" and value > bound):
            reasons.append(f"{column}{op}{_fmt(bound)}")
    if thresholds.get("require_caption") and not has_caption:
        reasons.append("caption_missing")
    return Verdict(REJECTED if reasons else KEPT, reasons)


def rule_name(reason: str) -> str:
    """'duplicate_of:/a/b.mp4' -> 'duplicate', 'near_duplicate_of:<id>' -> 'near_duplicate';
    bounds keep their full name."""
    if reason.startswith("near_duplicate_of:"):
        return "near_duplicate"
    return "duplicate" if reason.startswith("duplicate_of:") else reason


def _fmt(bound: float) -> str:
    return f"{bound:g}"
