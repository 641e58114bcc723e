"""Caption cleaning and data-juicer's character repetition ratio, on known answers."""

from __future__ import annotations

import pytest

from curation_assets.scorers.caption_text import char_repetition_ratio, clean_caption


# --------------------------------------------------------------------------- char_repetition_ratio


def test_datajuicer_reference_example():
    # The example data-juicer's own character_repetition_filter tests use (rep_len 5).
    text = "Today is Sund Sund Sund Sund Sund Sunda and it's a happy day!"
    assert char_repetition_ratio(text, 5) == pytest.approx(0.456, abs=0.001)


@pytest.mark.parametrize("text", [None, "", "abcd"])
def test_empty_or_shorter_than_one_ngram_is_zero(text):
    assert char_repetition_ratio(text, 5) == 0.0


def test_text_exactly_one_ngram_long_is_zero():
    # One 5-gram, a singleton: k = min(1, 1 - 1) = 0, so nothing counts as repeated.
    assert char_repetition_ratio("abcde", 5) == 0.0


@pytest.mark.parametrize("text", ["abcdefghijklmnopqrstuvwxyz", "the quick brown fox jumps"])
def test_all_distinct_ngrams_is_zero(text):
    grams = [text[i : i + 3] for i in range(len(text) - 2)]
    assert len(set(grams)) == len(grams)  # precondition: every 3-gram distinct
    assert char_repetition_ratio(text, 3) == 0.0


@pytest.mark.parametrize(
    ("text", "rep_len", "expected"),
    [
        # ab:2 ba:1 -> distinct 2, singletons 1, k=min(1, 1)=1 -> 2/3
        ("abab", 2, 2 / 3),
        # ab:3 ba:2 -> distinct 2, singletons 0, k=min(1, 2)=1 -> 3/5
        ("ababab", 2, 3 / 5),
        # abc:2 bca:1 cab:1 bcx:1 -> distinct 4, singletons 3, k=min(2, 1)=1 -> 2/5
        ("abcabcx", 3, 2 / 5),
        # aa:2 ab:1 bb:2 bc:1 cc:2 cd:1 dd:2 -> distinct 7, singletons 3, k=min(2, 4)=2 -> 4/11
        ("aaabbbcccddd", 2, 4 / 11),
        # a single repeated character: one distinct n-gram covering everything
        ("aaaa", 2, 1.0),
        # rep_len 1 counts characters: a:3 b:2 c:1 -> distinct 3, singletons 1, k=min(1, 2)=1 -> 3/6
        ("aaabbc", 1, 0.5),
    ],
)
def test_hand_computed_examples(text, rep_len, expected):
    assert char_repetition_ratio(text, rep_len) == pytest.approx(expected, abs=1e-12)


def test_default_rep_len_is_ten():
    text = "0123456789" * 3 + "x"
    assert char_repetition_ratio(text) == char_repetition_ratio(text, 10)
    assert char_repetition_ratio(text) != char_repetition_ratio(text, 5)


@pytest.mark.parametrize("rep_len", [0, -1])
def test_rep_len_below_one_raises(rep_len):
    with pytest.raises(ValueError, match="rep_len"):
        char_repetition_ratio("some text here", rep_len)


def test_periodic_text_known_answer():
    # "a red square " has period 13, so its 146 10-grams are 13 distinct ones; offsets 0-2 of
    # the period occur 12 times, the rest 11. k = min(floor(sqrt(13)), 13 - 0) = 3 -> 36/146.
    repetitive = " ".join(["a red square"] * 12)
    assert len(repetitive) == 155
    assert char_repetition_ratio(repetitive, 10) == pytest.approx(36 / 146, abs=1e-12)
    plain = "a colorful mottled texture slides smoothly to the right"
    assert char_repetition_ratio(plain, 10) == 0.0


# --------------------------------------------------------------------------- clean_caption


def test_strips_datajuicer_tokens_and_collapses_whitespace():
    raw = "<__dj__video>  a dog\trunning \n on  the beach <|__dj__eoc|>"
    assert clean_caption(raw) == "a dog running on the beach"


@pytest.mark.parametrize("token", ["<__dj__video>", "<__dj__image>", "<__dj__audio>", "<|__dj__eoc|>"])
def test_each_special_token_is_removed(token):
    assert clean_caption(f"left{token}right") == "left right"


def test_tokens_in_the_middle_do_not_glue_words():
    assert clean_caption("one<__dj__video>two<|__dj__eoc|>three") == "one two three"


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "\n\t \r\n", "<__dj__video>", "<__dj__video> <|__dj__eoc|>", " <|__dj__eoc|>\n<__dj__video> "],
)
def test_empty_whitespace_or_only_tokens_is_none(raw):
    assert clean_caption(raw) is None


def test_lookalike_tokens_are_kept():
    # Only the exact data-juicer tokens are special.
    assert clean_caption("<__dj__videos> <dj__video> <__dj__eoc__>") == "<__dj__videos> <dj__video> <__dj__eoc__>"


def test_very_long_caption():
    words = ("word " * 20_000) + "<|__dj__eoc|>"  # 100k chars of text plus a token
    cleaned = clean_caption("<__dj__video> " + words)
    assert cleaned == " ".join(["word"] * 20_000)
    assert len(cleaned) == 20_000 * 5 - 1


def test_odd_unicode_survives():
    raw = "<__dj__video> caf\u00e9 \u65e5\u672c\u8a9e \U0001F600 e\u0301 \ufffd<|__dj__eoc|>"
    assert clean_caption(raw) == "caf\u00e9 \u65e5\u672c\u8a9e \U0001F600 e\u0301 \ufffd"


def test_unicode_whitespace_is_collapsed():
    # \u00a0 (no-break space), \u2003 (em space), \u3000 (ideographic space) are whitespace to `\s`.
    assert clean_caption("a\u00a0\u00a0b\u2003c\u3000d") == "a b c d"


def test_non_string_input_is_stringified():
    assert clean_caption(123) == "123"
