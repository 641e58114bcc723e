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


def ineligible_reason_sql(shape: Shape) -> str:
    """SQL: why a candidate (width, height, frame_count, has_caption) cannot be used at this
    shape, the first reason that applies; null when it can."""
    return (f"case when width < {shape.width} then 'width<{shape.width}' "
            f"when height < {shape.height} then 'height<{shape.height}' "
            f"when frame_count < {shape.frames} then 'frames<{shape.frames}' "
            "when not has_caption then 'no caption' end")


def composite_keys(weights: dict[str, float], columns: list[str]) -> tuple[str, list[tuple[str, float]], float]:
    """(keys, terms, weight sum) of the weighted mean of per-score percentile ranks (0..1, best =
    1) among the rows of one query. `keys` is the SQL select list that puts each weighted score
    on a common direction (`_k0`, `_k1`, ...); `terms` pairs each key with its weight, in the
    weights' order; `composite_frame` ranks them.

    Ranks make scores on different scales comparable and ignore outliers; tied values share
    their average rank (so ties are decided by video_id, not input order); a missing score counts
    as the worst rank. Terms are added in the weights' order, each `weight * (rank / (n - 1))`,
    so the composite is the same double whatever ran it. A weighted score absent from `columns`
    is left out.
    """
    directions = score_directions()
    unknown = set(weights) - set(directions)
    if unknown:
        raise ValueError(f"unknown score weights {sorted(unknown)} (known: {sorted(directions)})")
    weight_sum = float(sum(abs(w) for w in weights.values()) or 1.0)
    keys, terms = [], []
    for column, weight in weights.items():
        if not weight or column not in columns:
            continue
        key, value = f"_k{len(keys)}", f'"{column}"::double'
        # + 0.0: a -0.0 (a zero turned by a negative direction) ties with 0.0 under any sort
        keys.append(f"case when {value} is null or isnan({value}) then '-inf'::double "
                    f"else {directions[column]} * {value} + 0.0 end as {key}")
        terms.append((key, float(weight)))
    return ", ".join(keys) or "null as _k0", terms, weight_sum


def composite_frame(keyed: pl.DataFrame, terms: list[tuple[str, float]], weight_sum: float) -> pl.DataFrame:
    """(_row, composite) of the rows of `keyed` (_row and the keys of `composite_keys`).

    Polars ranks: each key's average rank is one (parallel) sort; DuckDB's window functions took
    8 s of the 20 s choice over 5.7M kept clips at ten million (polars: ~3 s).
    An average rank is (first position + last position of its ties) / 2: exact in doubles, as
    the reference definition's `below + (ties - 1) / 2` is. The arithmetic after is numpy's:
    polars divides by a constant as a multiplication by its inverse (a last-bit difference)."""
    n = keyed.height
    total = None
    for key, weight in terms:  # one key at a time: the head node holds one rank, not six
        rank = keyed.get_column(key).rank("average").cast(pl.Float64).to_numpy() - 1.0
        part = weight * (rank / float(n - 1)) if n > 1 else np.full(n, weight * 1.0)
        total = part if total is None else total + part
    composite = total / weight_sum if total is not None else np.zeros(n)
    return keyed.select("_row").with_columns(pl.Series("composite", composite, dtype=pl.Float64))


def selection_steps(candidates: str, columns: list[str], shape: Shape, epochs: int, budget: float,
                    weights: dict[str, float]) -> list:
    """Steps over the table `candidates` (video_id, the eligibility columns, the scores): SQL
    statements, and one Python step (`ScoreStore.query_steps`) that ranks the eligible rows'
    keys in polars and registers `_composite`. The last step returns the eligible clips best
    first, ties broken by video_id, as many as fit the budget (the next clip would exceed it),
    with `rank` (1..) and `composite`.

    Only the row ids and the keys come out of DuckDB for ranking (eight bytes a score), and the
    candidates' other columns are read back in DuckDB for the chosen rows."""
    keys, terms, weight_sum = composite_keys(weights, columns)
    n_fit = int(budget // float(epochs * shape.pixels)) if epochs * shape.pixels > 0 else 0
    return [
        f"select rowid as _row, {keys} from {candidates} where ({ineligible_reason_sql(shape)}) is null",
        lambda keyed: ("_composite", at_or_above_nth_best(composite_frame(keyed, terms, weight_sum), n_fit)),
        # then their columns (joining every ranked clip to its columns before the cut took most
        # of the choice), best first, ties by video_id, the first n
        f"select row_number() over (order by composite desc, video_id) as rank, * from ("
        f"select c.*, r.composite from _composite r join {candidates} c on c.rowid = r._row "
        f"order by r.composite desc, c.video_id limit {n_fit})",
    ]


def at_or_above_nth_best(composites: pl.DataFrame, n: int) -> pl.DataFrame:
    """The rows whose composite is at least the n-th best: n, and any tied with the n-th (the
    tie is broken by video_id, which these rows do not carry). One partial sort in numpy: a
    top-n in DuckDB over the 5.7M composites at ten million clips took a second and a half."""
    if n <= 0:
        return composites.head(0)
    if n >= composites.height:
        return composites
    values = composites.get_column("composite").to_numpy()
    nth_best = np.partition(values, values.size - n)[values.size - n]
    return composites.filter(pl.col("composite") >= nth_best)
