"""letterbox: how much of a clip's frame is black bars (letterbox top/bottom, pillarbox left/right).

Letterboxed and pillarboxed clips teach a text-to-video model to draw bars; training sets
drop or crop them. The score is measured on the sampled frames the pipeline already stores
(no extra decode, no weights): per frame, the rows and columns at the edges whose bright
pixels are all darker than `luma_max` are bars; the frame's ratio is the area outside the
inner picture over the frame's area; the clip's score is the median over its frames, so one
fade to black does not count as bars.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field

from curation_assets.scores import FRAMES, Bound, ScoreConfig, ScoreDeclaration, per_video


class LetterboxConfig(ScoreConfig):
    luma_max: int = Field(24, ge=0, le=255, description="A row or column whose 98th-percentile luma is at most "
                          "this is black (compressed black bars sit at 16-20 in limited range).")


def dark_edges(mask: np.ndarray) -> tuple[int, int]:
    """How many entries at the start and at the end of `mask` are True, up to the first False."""
    if mask.all():
        return len(mask), 0
    return int(np.argmin(mask)), int(np.argmin(mask[::-1]))


def bar_ratio(frame: np.ndarray, luma_max: int = 24) -> float:
    """Share of the frame (an RGB uint8 array) outside its inner picture: 0 = no bars, 1 = all black."""
    rgb = np.asarray(frame, dtype=np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    height, width = luma.shape
    top, bottom = dark_edges(np.percentile(luma, 98, axis=1) <= luma_max)
    if top == height:
        return 1.0  # a black frame: nothing but "bars"
    inner = luma[top:height - bottom]
    left, right = dark_edges(np.percentile(inner, 98, axis=0) <= luma_max)
    picture = (height - top - bottom) * (width - left - right)
    return float(1.0 - picture / (height * width))


def score_clip(frames: list[np.ndarray], config: LetterboxConfig) -> dict:
    ratios = [bar_ratio(frame, config.luma_max) for frame in frames]
    return {"letterbox_ratio": float(np.median(ratios)), "frame_scores": ratios}


LETTERBOX = ScoreDeclaration(
    name="letterbox",
    description="Share of the frame covered by black bars (letterbox, pillarbox). Measured on the sampled frames, "
    "median over them (plugin: curation-letterbox-score).",
    reads=FRAMES,
    columns={"letterbox_ratio": pl.Float64, "frame_scores": pl.List(pl.Float64)},
    bounds=(Bound("letterbox_ratio_max", "max", 0.3, "Bars on more than this share of the frame reject the clip "
                  "(a 2.39:1 film in a 16:9 frame has 26% bars; 4:3 pillarboxed in 16:9, 25%)."),),
    valid_range=(0.0, 1.0),
    config=LetterboxConfig,
    revision="1",
    switchable=True,
    compute=per_video(score_clip),
    kinds=frozenset({"numpy"}),
)
