"""caption_repetition: data-juicer's character repetition ratio of each caption."""

from __future__ import annotations

import polars as pl
from dagster import Config
from pydantic import Field

from curation_assets.scorers.caption_text import char_repetition_ratio
from curation_assets.scores.declaration import CAPTION, Bound, ScoreDeclaration


class CaptionRepetitionConfig(Config):
    rep_len: int = Field(10, ge=1, description="Character n-gram length (data-juicer's rep_len).")


def repetition(caption: str, config: CaptionRepetitionConfig) -> dict:
    return {"char_rep_ratio": char_repetition_ratio(caption, config.rep_len)}


CAPTION_REPETITION = ScoreDeclaration(
    name="caption_repetition",
    description="Share of repeated character n-grams in the caption (rep_len 10). data-juicer's character "
    "repetition ratio: the share of n-grams taken by the most repeated ones. Clips without a caption have no row.",
    reads=CAPTION,
    columns={"char_rep_ratio": pl.Float64},
    bounds=(Bound("char_rep_ratio_max", "max", 0.2, "Captions that repeat a phrase of up to ~15 characters score "
                  ">= 0.2; ordinary captions score 0-0.15."),),
    valid_range=(0.0, 1.0),
    config=CaptionRepetitionConfig,
    revision="1",
    needs_caption=True,
    compute=repetition,
    check_name="ratio_in_unit_interval",
)
