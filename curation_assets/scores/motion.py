"""motion: Farneback optical-flow motion, data-juicer compatible (its thresholds transfer).

Computed inside the one sequential decode of each video (the video_pass step, which also
stores the sampled frames); the flow itself is in scorers/motion.py.
"""

from __future__ import annotations

from typing import Literal, Optional

import polars as pl
from dagster import Config
from pydantic import Field, model_validator

from curation_assets.scorers.motion import MotionParams
from curation_assets.scores.declaration import DECODE_PASS, Bound, ScoreDeclaration


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
        "close to, not equal to, the CPU's: see docs/gpu.md.",
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


MOTION = ScoreDeclaration(
    name="motion",
    description="Mean optical-flow magnitude (Farneback) over frame pairs sampled at 2 fps. data-juicer's "
    "video_motion_score: grayscale frames, mean flow magnitude per pair, averaged over the pairs.",
    reads=DECODE_PASS,
    columns={"motion_score": pl.Float64, "pair_scores": pl.List(pl.Float64), "frame_indices": pl.List(pl.Int64),
             "frames_decoded": pl.Int64, "seconds": pl.Float64},
    bounds=(
        Bound("motion_min", "min", 0.25, "data-juicer's default min_score."),
        Bound("motion_max", "max", None, "Upper bound on motion_score (shaky or cut-heavy clips)."),
    ),
    valid_range=(0.0, None),
    config=MotionConfig,
    revision="2",
    rank_weight=0.2,
    check_name="motion_in_range",
    kinds=frozenset({"opencv"}),
)
