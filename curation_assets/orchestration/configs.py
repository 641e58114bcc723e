"""Run config of the pipeline's tunable assets and the curation thresholds.

These are the keys of a recipe file (see recipe.py) and of the Dagster launchpad. A score's
own parameters are declared with the score (curation_assets/scores/); its bounds join the
thresholds here. Defaults follow data-juicer where it has one, so published recipes transfer.
"""

from __future__ import annotations

import functools
from typing import Dict, Literal, Optional

from dagster import Config
from pydantic import Field, create_model, model_validator

from curation_assets.scorers.frame_sampling import FrameSamplingParams
from curation_assets.scores import CAPTION, DECODE_PASS, FRAMES, all_scores

CAPTION_SOURCES = ("original", "generated")


class FrameSamplingConfig(Config):
    method: Literal["uniform", "uniform_round", "keyframes"] = Field(
        "uniform", description="'uniform': first to last frame, exactly the frames data-juicer 1.6.1's uniform "
        "extraction picks (its OCR/CLIP/aesthetics scores transfer); 'uniform_round': evenly spread indices rounded "
        "half to even (this project's earlier rule); 'keyframes': the stream's keyframes.",
    )
    num_frames: int = Field(3, ge=1, le=64, description="Frames kept per video (keyframes: at most this many).")
    image_format: Literal["png", "jpg"] = Field("png", description="png is lossless; jpg (q95) is ~10x smaller.")

    def params(self) -> FrameSamplingParams:
        return FrameSamplingParams(method=self.method, num_frames=self.num_frames)


class CaptionsConfig(Config):
    generate_missing: bool = Field(True, description="Caption clips without a usable manifest caption.")
    recaption_all: bool = Field(False, description="Replace every manifest caption with a generated one.")
    model_id: str = Field("kpyu/video-blip-opt-2.7b-ego4d", description="A VideoBLIP / BLIP-2-style Hugging Face id.")
    prompt: Optional[str] = Field(None, description="Text prompt prepended to generation (None: unconditional).")
    max_new_tokens: int = Field(30, ge=1, le=200)
    num_beams: int = Field(4, ge=1, le=16, description="Beam search, no sampling: a re-run gives the same caption.")


class AccelerationConfig(Config):
    enabled: bool = Field(True, description="Speed up slow-motion clips that are otherwise good.")
    accelerate_below: float = Field(1.0, gt=0, description="Kept clips with motion_score below this are candidates.")
    target_min: float = Field(1.0, gt=0, description="The sped-up clip's motion must land in [target_min, target_max].")
    target_max: float = Field(4.0, gt=0)
    max_factor: float = Field(4.0, gt=1, description="Never faster than this.")
    min_factor: float = Field(1.1, ge=1, description="Smaller speed-ups are not worth a re-encode.")
    min_output_frames: int = Field(32, ge=2, description="Frames a training sample needs (16 at stride 2).")
    aesthetics_min: Optional[float] = Field(
        0.45, description="Only clips at least this good are worth accelerating (skipped for tiny-profile scores)."
    )
    audio: Literal["drop", "atempo"] = Field("drop", description="Drop audio, or speed it up with atempo.")

    def params(self):
        from curation_assets.scorers.acceleration import AccelerationParams

        return AccelerationParams(
            accelerate_below=self.accelerate_below, target_min=self.target_min, target_max=self.target_max,
            max_factor=self.max_factor, min_factor=self.min_factor, min_output_frames=self.min_output_frames,
            audio=self.audio,
        )


class TrainingSetConfig(Config):
    preset: Literal["16x256x256", "16x512x512", "custom"] = Field("16x256x256")
    frames: Optional[int] = Field(None, ge=1, description="custom preset only")
    height: Optional[int] = Field(None, ge=1, description="custom preset only")
    width: Optional[int] = Field(None, ge=1, description="custom preset only")
    epochs: int = Field(1, ge=1)
    pixel_budget: Optional[float] = Field(
        None, gt=0, description="clips x epochs x frames x height x width; default 5.24e11 (125,000 x 16x512x512)."
    )
    max_clips: Optional[int] = Field(None, ge=0, description="The budget as a clip count instead of pixels.")
    weights: Dict[str, float] = Field(
        default_factory=lambda: default_rank_weights(),
        description="Composite = weighted mean of percentile ranks (lower-is-better scores inverted); default: each "
        "score's declared weight (aesthetics 0.4, CLIP similarity 0.3, motion 0.2, OCR area 0.1).",
    )


def default_rank_weights() -> dict[str, float]:
    return {decl.value: decl.rank_weight for decl in all_scores() if decl.rank_weight}


class ScoreReportConfig(Config):
    suggest_method: Literal["sigma", "percentile"] = Field(
        "sigma", description="sigma: mean +/- 3 std (data-juicer recipes); percentile: keep the middle `keep_middle`."
    )
    keep_middle: float = Field(0.9, gt=0, lt=1)


THRESHOLDS_DOC = "A bound set to null is not checked."


def rule_thresholds_class() -> type[Config]:
    """Every score's bounds (declared with the score) plus require_caption: the recipe's
    `curated_videos.thresholds`."""
    fields = {}
    for decl in all_scores():
        for bound in decl.bounds:
            extra = {"description": bound.description} if bound.description else {}
            fields[bound.key] = (Optional[bound.kind], Field(bound.default, **extra))
    fields["require_caption"] = (bool, Field(True, description="Reject clips with no usable caption."))
    return create_model("RuleThresholds", __base__=Config, __doc__=THRESHOLDS_DOC, **fields)


class _CurationSettings(Config):
    per_source: Dict[str, Dict[str, float]] = Field(
        default_factory=dict,
        description="Overrides by caption source ('original' / 'generated'), e.g. "
        "{generated: {char_rep_ratio_max: 0.1}}; a bound not named keeps the shared value.",
    )
    tiny_profile_bounds: Literal["skip", "apply"] = Field(
        "skip",
        description="Scores from the tiny random-weight models are noise: by default their bounds (CLIP, "
        "aesthetics, and text bounds on tiny-generated captions) are not applied. 'apply' exercises them in tests.",
    )

    def thresholds_for(self, source: str | None, model_profile: str | None = None) -> dict:
        merged = self.thresholds.model_dump()
        for key, value in self.per_source.get(source or "", {}).items():
            if key not in merged:
                raise ValueError(f"per_source.{source}: unknown threshold {key!r} (known: {sorted(merged)})")
            merged[key] = value
        if model_profile == "tiny" and self.tiny_profile_bounds == "skip":
            skipped = list(tiny_model_bounds()) + (list(caption_text_bounds()) if source == "generated" else [])
            merged.update({key: None for key in skipped})
        return merged


def curation_config_class() -> type[Config]:
    thresholds = rule_thresholds_class()
    return create_model("CurationConfig", __base__=_CurationSettings,
                        thresholds=(thresholds, Field(default_factory=thresholds)))


def tiny_model_bounds() -> tuple[str, ...]:
    """Bounds on scores a tiny random-weight model computes (noise under the tiny profile)."""
    return tuple(key for decl in all_scores() if decl.noise_under_tiny for key in decl.bound_keys)


def caption_text_bounds() -> tuple[str, ...]:
    """Bounds on caption text: noise when the caption came from a tiny captioner."""
    return tuple(key for decl in all_scores() if decl.reads == CAPTION for key in decl.bound_keys)


class ShotsConfig(Config):
    """Shot splitting of long source videos (off by default: the seed's data are clips already)."""

    enabled: bool = Field(False, description="Cut long source videos into shots before scoring.")
    detector: Literal["content", "adaptive"] = Field(
        "content", description="PySceneDetect detector: 'content' (HSV + edge change between frames, hard cuts) or "
        "'adaptive' (the same score relative to its rolling average: fewer false cuts on fast camera motion).",
    )
    threshold: Optional[float] = Field(
        None, gt=0, description="Detector threshold; null = PySceneDetect's default (content 27, adaptive 3).")
    min_clip_s: float = Field(2.0, gt=0, description="Shots shorter than this are dropped.")
    max_clip_s: float = Field(20.0, gt=0, description="Longer shots are split into equal pieces no longer than this.")
    split_longer_than_s: Optional[float] = Field(
        None, ge=0, description="Only sources longer than this are split (null = max_clip_s); shorter ones are "
        "scored whole, as today.",
    )
    analysis_width: int = Field(256, ge=16, description="Frames are downscaled to this width for detection.")
    inherit_caption: bool = Field(
        False, description="Give each clip its source's manifest caption (off: a caption of a whole film rarely "
        "describes one shot, so clips are captioned on their own).",
    )
    reencode_crf: int = Field(18, ge=0, le=51, description="x264 quality of clips that cannot be stream-copied.")

    @model_validator(mode="after")
    def _lengths(self):
        if self.max_clip_s < 2 * self.min_clip_s:
            raise ValueError(f"max_clip_s ({self.max_clip_s}) must be at least twice min_clip_s ({self.min_clip_s}): "
                             "a long shot's equal pieces could otherwise fall below the minimum")
        return self

    def params(self):
        from curation_assets.scorers.shots import ShotParams

        return ShotParams(detector=self.detector, threshold=self.threshold, min_clip_s=self.min_clip_s,
                          max_clip_s=self.max_clip_s, analysis_width=self.analysis_width)

    def splits(self, duration_s: float | None) -> bool:
        limit = self.max_clip_s if self.split_longer_than_s is None else self.split_longer_than_s
        return self.enabled and duration_s is not None and duration_s > limit


class NearDuplicatesConfig(Config):
    enabled: bool = Field(False, description="Reject near-duplicate clips as near_duplicate_of:<video_id>.")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Video-hash similarity (1 - Hamming/64, frame to best frame, symmetric) at "
        "or above which two clips are near-duplicates; measured: re-encodes/crops/brightness/1-s shifts >= 0.89, "
        "different scenes and real clips <= 0.62.",
    )
    across_shards: bool = Field(True, description="Also compare with earlier shards' clips (earlier shards win).")


# The pipeline's own configurable assets (the scores bring theirs with their declarations).
PIPELINE_CONFIGS: dict[str, type[Config]] = {
    "shots": ShotsConfig,
    "near_duplicates": NearDuplicatesConfig,
    "sampled_frames": FrameSamplingConfig,
    "captions": CaptionsConfig,
    "accelerated_videos": AccelerationConfig,
    "lora_training_set": TrainingSetConfig,
    "score_report": ScoreReportConfig,
}


@functools.cache
def asset_configs() -> dict[str, type[Config]]:
    """asset name -> its Config class: the recipe's top-level keys."""
    configs = dict(PIPELINE_CONFIGS)
    configs.update({decl.name: decl.config for decl in all_scores() if decl.config is not None})
    configs["curated_videos"] = curation_config_class()
    return configs


@functools.cache
def shared_ops() -> dict[str, tuple[str, str]]:
    """Assets computed together by one op: recipe section -> (op, key in op config). The decode
    pass makes motion and the sampled frames; one step reads the frames for every FRAMES score."""
    ops = {"sampled_frames": ("video_pass", "sampled_frames")}
    for decl in all_scores():
        if decl.reads == DECODE_PASS:
            ops[decl.name] = ("video_pass", decl.name)
        elif decl.reads == FRAMES:
            ops[decl.name] = ("image_scores", decl.name)
    return ops
