"""Run config of each tunable asset: scorer parameters and curation thresholds.

These are the keys of a recipe file (see recipe.py) and of the Dagster launchpad.
Defaults follow data-juicer where it has one, so published recipes transfer.
"""

from __future__ import annotations

from typing import Dict, Literal, Optional

from dagster import Config
from pydantic import Field, model_validator

from curation_assets.scorers.frame_sampling import FrameSamplingParams
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
    scale_to_source: bool = Field(
        False, description="With size/max_size: report flow in source-frame pixels (x and y scaled back). On real "
        "footage that alone does not put fast scores on the exact scale: add a calibration.",
    )
    skip_levels: int = Field(
        0, ge=0, le=2, description="Fast mode: flow on the frame halved this many times the way Farneback builds its "
        "pyramid, with as many fewer pyramid levels (exact mode without its finest level); 1 = 1/4 of the pixels. "
        "Not with size/max_size.",
    )
    calibration_scale: float = Field(
        1.0, gt=0, description="Fast mode: score = calibration_scale * score ** calibration_power, a map to the "
        "exact (data-juicer) scale fitted on your clips by `curation-assets calibrate-motion`.",
    )
    calibration_power: float = Field(1.0, gt=0, description="See calibration_scale.")

    @model_validator(mode="after")
    def _one_fast_mode(self):
        if self.skip_levels and (self.size is not None or self.max_size is not None):
            raise ValueError("skip_levels and size/max_size are two fast modes: use one")
        return self

    backend: Literal["auto", "cpu", "opencl", "torch"] = Field(
        "cpu",
        description="Where Farneback runs: 'cpu' (data-juicer's exact path), 'torch' (the same algorithm in torch, "
        "pairs of many videos per call, on CUDA when torch sees a GPU; CURATION_DEVICE overrides), 'opencl' "
        "(OpenCV's OpenCL kernels on its default device, e.g. a GPU with OPENCV_OPENCL_DEVICE=':GPU:'; no device "
        "fails at start-up) or 'auto' (torch on CUDA, else OpenCL on a GPU device, else cpu). OpenCL scores are "
        "close to, not equal to, the CPU's: see README and docs/gpu.md.",
    )
    decoder: Literal["auto", "pyav", "nvdec"] = Field(
        "auto",
        description="How the torch backend's decode pass reads videos: 'pyav' (the CPU), 'nvdec' (the GPU's "
        "decoder through PyNvVideoCodec, frames stay on the GPU; a video it cannot take falls back to PyAV, "
        "recorded in its row) or 'auto' (nvdec when the flow runs on CUDA and PyNvVideoCodec loads, else pyav). "
        "The cpu and opencl backends always decode with PyAV.",
    )

    def params(self) -> MotionParams:
        return MotionParams(
            sampling_fps=self.sampling_fps, frame_selection=self.frame_selection,
            size=self.size, max_size=self.max_size, relative=self.relative, scale_to_source=self.scale_to_source,
            skip_levels=self.skip_levels, calibration_scale=self.calibration_scale,
            calibration_power=self.calibration_power,
        )


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


class ClipSimilarityConfig(Config):
    model_name: str = Field("ViT-B-32", description="open_clip architecture.")
    pretrained: str = Field("openai", description="open_clip pretrained tag (ViT-B-32/openai = openai/clip-vit-base-patch32).")
    reduce_mode: Literal["avg", "max", "min"] = Field("avg", description="How per-frame similarities become one score.")


class AestheticsConfig(Config):
    reduce_mode: Literal["avg", "max", "min"] = Field("avg")


class OcrAreaConfig(Config):
    languages: list[str] = Field(default_factory=lambda: ["en"], description="EasyOCR languages (detector only).")
    max_side: Optional[int] = Field(
        None, gt=0, description="Detect on frames downscaled to this long side (faster; see README for the tolerance)."
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Detector arithmetic: auto = bfloat16 on CPUs with native bfloat16 (about 2x, ratios "
        "within 0.002 of float32), else float32; float32 = data-juicer's exact path.",
    )


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
        default_factory=lambda: {"aesthetics_score": 0.4, "clip_similarity": 0.3, "motion_score": 0.2, "ocr_area_ratio": 0.1},
        description="Composite = weighted mean of percentile ranks (lower-is-better scores inverted).",
    )


class ScoreReportConfig(Config):
    suggest_method: Literal["sigma", "percentile"] = Field(
        "sigma", description="sigma: mean +/- 3 std (data-juicer recipes); percentile: keep the middle `keep_middle`."
    )
    keep_middle: float = Field(0.9, gt=0, lt=1)


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
    clip_similarity_min: Optional[float] = Field(
        0.2, description="CLIP ViT-B/32 cosine; matching frame/caption pairs score ~0.25-0.35, unrelated ~0.1-0.18."
    )
    aesthetics_score_min: Optional[float] = Field(0.4, description="LAION aesthetic score / 10 (data-juicer's default 0.4).")
    ocr_area_ratio_max: Optional[float] = Field(
        0.1, description="Share of the frame covered by text boxes; burnt-in titles and subtitles score 0.05-0.3."
    )
    require_caption: bool = Field(True, description="Reject clips with no usable caption.")


class CurationConfig(Config):
    thresholds: RuleThresholds = Field(default_factory=RuleThresholds)
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
            skipped = list(TINY_MODEL_BOUNDS) + (list(CAPTION_TEXT_BOUNDS) if source == "generated" else [])
            merged.update({key: None for key in skipped})
        return merged


# Bounds on scores a model computes (OCR's detector is real in every profile, so it is not here).
TINY_MODEL_BOUNDS = ("clip_similarity_min", "aesthetics_score_min")
CAPTION_TEXT_BOUNDS = ("char_rep_ratio_max",)


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


# asset name -> its Config class: the recipe's top-level keys.
ASSET_CONFIGS: dict[str, type[Config]] = {
    "shots": ShotsConfig,
    "near_duplicates": NearDuplicatesConfig,
    "motion": MotionConfig,
    "sampled_frames": FrameSamplingConfig,
    "captions": CaptionsConfig,
    "caption_repetition": CaptionRepetitionConfig,
    "clip_similarity": ClipSimilarityConfig,
    "aesthetics": AestheticsConfig,
    "ocr_area": OcrAreaConfig,
    "curated_videos": CurationConfig,
    "accelerated_videos": AccelerationConfig,
    "lora_training_set": TrainingSetConfig,
    "score_report": ScoreReportConfig,
}

# Assets computed together by one op (one decode pass): recipe section -> (op, key in op config)
SHARED_OPS = {"motion": ("video_pass", "motion"), "sampled_frames": ("video_pass", "sampled_frames"),
              # one step reads the frames once for the three image scorers (image_scores.py)
              "clip_similarity": ("image_scores", "clip_similarity"), "aesthetics": ("image_scores", "aesthetics"),
              "ocr_area": ("image_scores", "ocr_area")}
