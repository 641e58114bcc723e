"""Caption cleaning and data-juicer's character repetition ratio."""

from __future__ import annotations

import math
import re
from collections import Counter

# data-juicer's special tokens (video/image/audio placeholders and end of chunk).
_SPECIAL_TOKENS = re.compile(r"<__dj__(?:video|image|audio)>|<\|__dj__eoc\|>")
_WHITESPACE = re.compile(r"\s+")


def clean_caption(text: str | None) -> str | None:
    """The caption without special tokens and with whitespace collapsed; None when empty."""
    if text is None:
        return None
    cleaned = _WHITESPACE.sub(" ", _SPECIAL_TOKENS.sub(" ", str(text))).strip()
    return cleaned or None


def char_repetition_ratio(text: str | None, rep_len: int = 10) -> float:
    """Share of character n-grams covered by the most repeated ones (data-juicer definition).

    k = min(floor(sqrt(#distinct)), #distinct - #singletons); ratio = sum of the k largest
    counts / number of n-grams; 0 when the text is shorter than one n-gram.
    """
    if rep_len < 1:
        raise ValueError("rep_len must be >= 1")
    if not text or len(text) < rep_len:
        return 0.0
    counts = Counter(text[i : i + rep_len] for i in range(len(text) - rep_len + 1))
    distinct = len(counts)
    singletons = sum(1 for c in counts.values() if c == 1)
    k = min(int(math.sqrt(distinct)), distinct - singletons)
    total = sum(counts.values())
    top = sorted(counts.values(), reverse=True)[:k]
    return sum(top) / total if total else 0.0
