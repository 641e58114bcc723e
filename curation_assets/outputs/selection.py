"""Picking the training set: eligible kept clips, ranked by a composite score, under a pixel budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curation_assets.scores import all_scores

PRESETS = {"16x256x256": (16, 256, 256), "16x512x512": (16, 512, 512)}
# The Modelscope-Sora challenge cap: 125,000 clips x 16 x 512 x 512.
DEFAULT_PIXEL_BUDGET = 125_000 * 16 * 512 * 512

def score_directions() -> dict[str, int]:
    """curated_videos score column -> +1 when higher is better, -1 when lower is (declared)."""
    return {curated: decl.direction for decl in all_scores() for curated in decl.value_columns}


@dataclass(frozen=True)
class Shape:
    frames: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.frames * self.height * self.width


def resolve_shape(preset: str, frames: int | None = None, height: int | None = None, width: int | None = None) -> Shape:
    if preset == "custom":
        if not (frames and height and width):
            raise ValueError("preset 'custom' needs frames, height and width")
        return Shape(frames, height, width)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: use one of {sorted(PRESETS)} or 'custom'")
    return Shape(*PRESETS[preset])


def resolve_budget(shape: Shape, epochs: int, pixel_budget: float | None, max_clips: int | None) -> float:
    if pixel_budget is not None and max_clips is not None:
        raise ValueError("give pixel_budget or max_clips, not both")
    if max_clips is not None:
        return float(max_clips) * epochs * shape.pixels
    return float(pixel_budget if pixel_budget is not None else DEFAULT_PIXEL_BUDGET)


def eligible(candidates: pl.DataFrame, shape: Shape) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(eligible, ineligible with a reason): kept, large enough, long enough, with a caption."""
    reason = (
        pl.when(pl.col("width") < shape.width).then(pl.lit(f"width<{shape.width}"))
        .when(pl.col("height") < shape.height).then(pl.lit(f"height<{shape.height}"))
        .when(pl.col("frame_count") < shape.frames).then(pl.lit(f"frames<{shape.frames}"))
        .when(pl.col("caption").is_null()).then(pl.lit("no caption"))
        .otherwise(None)
    )
    tagged = candidates.with_columns(reason.alias("ineligible_reason"))
    return tagged.filter(pl.col("ineligible_reason").is_null()), tagged.filter(pl.col("ineligible_reason").is_not_null())


def composite_scores(frame: pl.DataFrame, weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of per-score percentile ranks (0..1, best = 1) among the candidates.

    Ranks make scores on different scales comparable and ignore outliers; a missing score
    counts as the worst rank.
    """
    directions = score_directions()
    unknown = set(weights) - set(directions)
    if unknown:
        raise ValueError(f"unknown score weights {sorted(unknown)} (known: {sorted(directions)})")
    n = frame.height
    total = np.zeros(n)
    weight_sum = sum(abs(w) for w in weights.values()) or 1.0
    for column, weight in weights.items():
        if not weight or column not in frame.columns:
            continue
        values = frame[column].cast(pl.Float64).to_numpy().copy()
        values = directions[column] * values
        values[np.isnan(values)] = -np.inf
        # tied values share their average rank, so ties are decided by video_id, not input order
        ranks = pl.Series(values).rank("average").to_numpy() - 1
        total += weight * (ranks / (n - 1) if n > 1 else np.ones(n))
    return total / weight_sum


def select(frame: pl.DataFrame, shape: Shape, epochs: int, budget: float, weights: dict[str, float]) -> pl.DataFrame:
    """Best first, ties broken by video_id; stop when the next clip would exceed the budget."""
    cost = float(epochs * shape.pixels)
    ranked = frame.with_columns(pl.Series("composite", composite_scores(frame, weights)))
    ranked = ranked.sort(["composite", "video_id"], descending=[True, False])
    n_fit = int(budget // cost) if cost > 0 else 0
    chosen = ranked.head(n_fit)
    return chosen.with_columns(
        pl.Series("rank", np.arange(1, chosen.height + 1)),
        pl.lit(cost).alias("pixels"),
    )
