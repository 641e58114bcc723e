"""The score report: histograms with threshold lines, the funnel, percentiles, suggestions.

What a curator reads before choosing thresholds; rendered to PNG/Markdown files and to
Dagster metadata by the score_report asset.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

# score column -> (table, threshold keys drawn as lines)
REPORTED_SCORES = {
    "motion_score": ("motion", ["motion_min", "motion_max"]),
    "char_rep_ratio": ("caption_repetition", ["char_rep_ratio_max"]),
    "clip_similarity": ("clip_similarity", ["clip_similarity_min"]),
    "aesthetics_score": ("aesthetics", ["aesthetics_score_min"]),
    "ocr_area_ratio": ("ocr_area", ["ocr_area_ratio_max"]),
    "width": ("resolution", ["width_min", "width_max"]),
    "height": ("resolution", ["height_min", "height_max"]),
}
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
# where a suggested bound may lie: mean - 3 sigma of a skewed score can fall below its floor
VALID_RANGES = {"motion_score": (0.0, None), "char_rep_ratio": (0.0, 1.0), "clip_similarity": (-1.0, 1.0),
                "aesthetics_score": (0.0, 1.0), "ocr_area_ratio": (0.0, 1.0)}


@dataclass
class ScoreSummary:
    column: str
    count: int
    mean: float
    std: float
    percentiles: dict[int, float]


def summarize(column: str, values: np.ndarray) -> ScoreSummary:
    values = values[~np.isnan(values)]
    if not values.size:
        return ScoreSummary(column, 0, math.nan, math.nan, {p: math.nan for p in PERCENTILES})
    return ScoreSummary(column, int(values.size), float(values.mean()), float(values.std()),
                        {p: float(np.percentile(values, p)) for p in PERCENTILES})


def histogram_png(column: str, values: np.ndarray, thresholds: dict[str, float | None], title_note: str = "") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = values[~np.isnan(values)]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if values.size:
        ax.hist(values, bins=min(50, max(10, int(values.size ** 0.5) * 2)), color="#4C72B0", alpha=0.85)
    for key, bound in thresholds.items():
        if bound is not None:
            ax.axvline(bound, color="#C44E52", linestyle="--", linewidth=1.5)
            ax.text(bound, ax.get_ylim()[1] * 0.92, f" {key}={bound:g}", color="#C44E52", fontsize=8)
    ax.set_title(f"{column} (n={values.size}){title_note}", fontsize=10)
    ax.set_xlabel(column)
    ax.set_ylabel("videos")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def percentile_table(summaries: list[ScoreSummary]) -> str:
    head = "| score | n | mean | std | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |"
    sep = "|---" * (4 + len(PERCENTILES)) + "|"
    rows = [
        f"| {s.column} | {s.count} | {s.mean:.4g} | {s.std:.4g} | " + " | ".join(f"{s.percentiles[p]:.4g}" for p in PERCENTILES) + " |"
        for s in summaries
    ]
    return "\n".join([head, sep, *rows])


def suggest_thresholds(summaries: dict[str, ScoreSummary], method: str = "sigma", keep_middle: float = 0.9) -> dict:
    """Thresholds from the observed distribution, as a recipe's `thresholds` block.

    sigma: mean +/- 3 std (data-juicer recipes' rule); percentile: keep the middle `keep_middle`.
    Only the side a rule bounds is suggested (e.g. aesthetics gets a minimum only).
    """
    out = {}
    tail = (1 - keep_middle) / 2 * 100
    for column, (_, keys) in REPORTED_SCORES.items():
        s = summaries.get(column)
        if s is None or not s.count or column in ("width", "height"):
            continue
        if method == "sigma":
            low, high = s.mean - 3 * s.std, s.mean + 3 * s.std
        else:
            values = [s.percentiles[p] for p in PERCENTILES]
            low = float(np.interp(tail, PERCENTILES, values))
            high = float(np.interp(100 - tail, PERCENTILES, values))
        floor, ceiling = VALID_RANGES.get(column, (None, None))
        low = max(low, floor) if floor is not None else low
        high = min(high, ceiling) if ceiling is not None else high
        for key in keys:
            if key.endswith("_min"):
                out[key] = round(low, 4)
            elif key.endswith("_max"):
                out[key] = round(high, 4)
    return out


def funnel_markdown(rows: list[tuple[str, int]]) -> str:
    width = max((n for _, n in rows), default=1) or 1
    lines = ["| stage | videos | |", "|---|---|---|"]
    lines += [f"| {stage} | {n} | {'█' * max(1, round(20 * n / width)) if n else ''} |" for stage, n in rows]
    return "\n".join(lines)


def values_of(frame: pl.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.array([], dtype=float)
    return frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()
