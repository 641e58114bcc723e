"""Keep / reject / fail: the verdict on one video from its scores and the thresholds.

Every video ends in exactly one state. A score that is missing or errored makes the video
`failed` (never silently kept); a rule it breaks is named in `reasons` as `<score><op><bound>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEPT, REJECTED, FAILED = "kept", "rejected", "failed"

# (score column, threshold key, comparison that FAILS the rule)
_BOUNDS = [
    ("motion_score", "motion_min", "<"),
    ("motion_score", "motion_max", ">"),
    ("width", "width_min", "<"),
    ("width", "width_max", ">"),
    ("height", "height_min", "<"),
    ("height", "height_max", ">"),
    ("char_rep_ratio", "char_rep_ratio_max", ">"),
]

# score asset -> the column it must provide for a verdict
REQUIRED_SCORES = {"resolution": "width", "motion": "motion_score"}


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)


def judge(video: dict, thresholds: dict) -> Verdict:
    """`video` holds the raw_videos fields plus, per score asset, `<asset>_present`,
    `<asset>_error` and the score columns."""
    if video.get("error"):
        return Verdict(FAILED, [f"unreadable: {video['error']}"])
    if video.get("duplicate_of"):
        return Verdict(REJECTED, [f"duplicate_of:{video['duplicate_of']}"])

    failures = []
    for asset in REQUIRED_SCORES:
        if not video.get(f"{asset}_present"):
            failures.append(f"{asset}: no score recorded")
        elif video.get(f"{asset}_error"):
            failures.append(f"{asset}: {video[f'{asset}_error']}")
    has_caption = bool(video.get("caption"))
    if has_caption:
        if not video.get("caption_repetition_present"):
            failures.append("caption_repetition: no score recorded")
        elif video.get("caption_repetition_error"):
            failures.append(f"caption_repetition: {video['caption_repetition_error']}")
    if failures:
        return Verdict(FAILED, failures)

    reasons = []
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
    """'duplicate_of:/a/b.mp4' -> 'duplicate'; bounds keep their full name."""
    return "duplicate" if reason.startswith("duplicate_of:") else reason


def _fmt(bound: float) -> str:
    return f"{bound:g}"
