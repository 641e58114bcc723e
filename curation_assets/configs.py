"""Run config of each tunable asset: scorer parameters and curation thresholds.

These are the keys of a recipe file (see recipe.py) and of the Dagster launchpad.
Defaults follow data-juicer where it has one, so published recipes transfer.
"""

from __future__ import annotations

from typing import Dict, Literal, Optional

from dagster import Config
from pydantic import Field

from curation_assets.scorers.motion import MotionParams

CAPTION_SOURCES = ("original", "generated")


class MotionConfig(Config):
    sampling_fps: float = Field(2.0, gt=0, description="Frames per second compared by optical flow.")
    frame_selection: Literal["datajuicer", "stride"] = Field(
        "datajuicer",
        description="'datajuicer' reads frames 0, 1, s, 2s, ... exactly like data-juicer 1.6.1 "
        "(its thresholds transfer unchanged); 'stride' reads 0, s, 2s, ...",
    )
    size: Optional[int] = Field(None, gt=0, description="Resize so the short side has this many pixels before flow.")
    max_size: Optional[int] = Field(None, gt=0, description="Cap the long side after `size`.")
    relative: bool = Field(False, description="Divide each pair's mean flow by the frame diagonal.")

    def params(self) -> MotionParams:
        return MotionParams(
            sampling_fps=self.sampling_fps, frame_selection=self.frame_selection,
            size=self.size, max_size=self.max_size, relative=self.relative,
        )


class CaptionRepetitionConfig(Config):
    rep_len: int = Field(10, ge=1, description="Character n-gram length (data-juicer's rep_len).")


class RuleThresholds(Config):
    """A bound set to null is not checked."""

    motion_min: Optional[float] = Field(0.25, description="data-juicer's default min_score.")
    motion_max: Optional[float] = Field(None, description="Upper bound on motion_score (shaky or cut-heavy clips).")
    width_min: Optional[int] = Field(256, description="Display width (after rotation); 256 = the smallest LoRA preset.")
    width_max: Optional[int] = Field(None)
    height_min: Optional[int] = Field(256)
    height_max: Optional[int] = Field(None)
    char_rep_ratio_max: Optional[float] = Field(
        0.2,
        description="Captions that repeat a phrase of up to ~15 characters score >= 0.2; ordinary captions score 0-0.15.",
    )
    require_caption: bool = Field(True, description="Reject clips with no usable caption.")


class CurationConfig(Config):
    thresholds: RuleThresholds = Field(default_factory=RuleThresholds)
    per_source: Dict[str, Dict[str, float]] = Field(
        default_factory=dict,
        description="Overrides by caption source ('original' / 'generated'), e.g. "
        "{generated: {char_rep_ratio_max: 0.1}}; a bound not named keeps the shared value.",
    )

    def thresholds_for(self, source: str | None) -> dict:
        merged = self.thresholds.model_dump()
        for key, value in self.per_source.get(source or "", {}).items():
            if key not in merged:
                raise ValueError(f"per_source.{source}: unknown threshold {key!r} (known: {sorted(merged)})")
            merged[key] = value
        return merged


# asset name -> its Config class: the recipe's top-level keys.
ASSET_CONFIGS: dict[str, type[Config]] = {
    "motion": MotionConfig,
    "caption_repetition": CaptionRepetitionConfig,
    "curated_videos": CurationConfig,
}
