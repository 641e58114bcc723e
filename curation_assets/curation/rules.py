"""Keep / reject / fail: the verdict on one video from its scores and the thresholds.

Every video ends in exactly one state. A score that is missing or errored makes the video
`failed` (never silently kept); a rule it breaks is named in `reasons` as `<score><op><bound>`.
The rules are the scores' declared bounds (curation_assets/scores/), in declaration order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from curation_assets.scores import READS, all_scores

KEPT, REJECTED, FAILED = "kept", "rejected", "failed"
# A long source cut into clips: not judged itself, its clips are (each has its own verdict).
SPLIT = "split"
# The captioner switched off leaves manifest captions and their text bounds in force.
CAPTIONER = "captions"


@functools.cache
def bounds() -> tuple[tuple[str, str, str], ...]:
    """(curated_videos column, threshold key, comparison that FAILS the rule) of every score."""
    return tuple((decl.bound_column(b), b.key, b.fails) for decl in all_scores() for b in decl.bounds)


def _in_pipeline_order(names) -> tuple[str, ...]:
    order = {decl.name: (READS.index(decl.reads), i) for i, decl in enumerate(all_scores())}
    return tuple(sorted(names, key=order.__getitem__))


def required_scores(off: list[str] | tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(scores every readable video needs, scores captioned videos need) when the scorers in
    `off` are switched off; each in pipeline order, the order a failure names them."""
    on = [decl for decl in all_scores() if decl.name not in off]
    return (_in_pipeline_order(d.name for d in on if not d.needs_caption),
            _in_pipeline_order(d.name for d in on if d.needs_caption))


def scorer_bounds(name: str) -> tuple[str, ...]:
    """Threshold keys that need scorer `name`: not applied when a recipe switches it off."""
    if name == CAPTIONER:
        return ()  # manifest captions and their text bounds still apply
    return next((decl.bound_keys for decl in all_scores() if decl.name == name), ())


def without_scorers(thresholds: dict, off: list[str] | tuple[str, ...]) -> dict:
    """The thresholds with every bound on a switched-off scorer set to None (not checked)."""
    return {**thresholds, **{key: None for name in off for key in scorer_bounds(name)}}


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)


def judge(video: dict, thresholds: dict, required=None, caption_scores=None) -> Verdict:
    """`video` holds the raw_videos fields plus, per score asset, `<asset>_present`,
    `<asset>_error` and the score columns. `required` / `caption_scores`: the scores a verdict
    needs (default: every declared score, see required_scores)."""
    if required is None or caption_scores is None:
        default_required, default_caption = required_scores()
        required = default_required if required is None else required
        caption_scores = default_caption if caption_scores is None else caption_scores
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
    for column, key, op in bounds():
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
