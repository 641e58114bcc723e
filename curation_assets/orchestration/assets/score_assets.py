"""One Dagster asset per declared PROBE or CAPTION score, built from its declaration.

What every score asset does around its scorer lives here once: read the shard's inputs,
call the scorer per clip (an exception becomes that clip's error row), write the shard's
table, check the values against the declared valid range, and write an empty shard when a
recipe switched the score off. FRAMES scores are built by image_scores.py (one frame
decode for all of them) and motion by video_pass.py (the decode pass).
"""


import time

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, Config, asset
from pydantic import create_model

from curation_assets.orchestration.assets.shard_io import (
    RAW_VIDEOS, primary_videos, to_frame, write_shard, write_switched_off,
)
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, scorer_enabled
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scores import CAPTION, PROBE, ScoreDeclaration, all_scores

CAPTIONS = "captions"
STORED_AS = {"parquet", "duckdb"}  # what every score table is: Parquet objects, queried with DuckDB


def score_kinds(decl: ScoreDeclaration) -> set[str]:
    """The asset's kind badges: how it is stored, then what computes it."""
    return STORED_AS | set(decl.kinds)


def off_note(decl: ScoreDeclaration, recipe: Recipe) -> str:
    if scorer_enabled(recipe, decl.name):
        return ""
    return f" SWITCHED OFF by the recipe (scorers: {{{decl.name}: false}}): writes no rows."


def params_config(decl: ScoreDeclaration, recipe: Recipe) -> type[Config]:
    """The asset's config class: the declared one with the recipe's values as defaults, or an
    empty one for a score without parameters."""
    if decl.config is None:
        return create_model(f"{decl.name.title().replace('_', '')}Config", __base__=Config)
    return config_class(decl.name, recipe)


def range_check(decl: ScoreDeclaration, frame: pl.DataFrame) -> AssetCheckResult:
    """Scored rows whose values fall outside the declared valid range (or are NaN)."""
    low, high = decl.valid_range
    scored = frame.filter(pl.col("error").is_null()) if "error" in frame.columns else frame
    bad = pl.lit(False)
    for column in decl.value_columns.values():
        value = pl.col(column)
        bad = bad | (value.is_nan() if scored.schema[column].is_float() else pl.lit(False))
        if low is not None:
            bad = bad | (value < low)
        if high is not None:
            bad = bad | (value > high)
    out = scored.filter(bad).height if scored.height else 0
    return AssetCheckResult(asset_key=decl.name, check_name=decl.range_check, passed=out == 0,
                            metadata={"out_of_range": out, "range": f"[{low}, {high}]"})


def score_rows(decl: ScoreDeclaration, items, config, extra=lambda item: {}) -> list[dict]:
    """compute(input, config) per clip: (video_id, input) items -> the table's rows."""
    params = decl.params_json(config)
    base = {"params": params} if params is not None else {}
    rows = []
    for video_id, value, item in items:
        row = {"video_id": video_id, **extra(item), **base}
        try:
            row.update(decl.compute(value, config), error=None)
        except Exception as exc:  # one bad clip must not cost the shard
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        rows.append(row)
    return rows


def build_score_asset(decl: ScoreDeclaration, recipe: Recipe):
    """The asset of one PROBE or CAPTION score."""
    if decl.reads not in (PROBE, CAPTION):
        raise ValueError(f"{decl.name}: build_score_asset makes PROBE and CAPTION scores, not {decl.reads}")
    ScoreParams = params_config(decl, recipe)
    schema = decl.table_schema()
    enabled = scorer_enabled(recipe, decl.name)

    @asset(
        name=decl.name,
        deps=[RAW_VIDEOS] if decl.reads == PROBE else [CAPTIONS],
        partitions_def=shard_partitions,
        code_version=code_version(decl.name, recipe),
        group_name="scores",
        kinds=score_kinds(decl),
        check_specs=[AssetCheckSpec(decl.range_check, asset=decl.name)],
        description=decl.description + off_note(decl, recipe),
    )
    def score_asset(context: AssetExecutionContext, config: ScoreParams, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        shard = context.partition_key
        if not enabled:
            return write_switched_off(context, store, decl.name, schema, started,
                                      [range_check(decl, to_frame([], schema))])
        config = config if decl.config is not None else None
        if decl.reads == PROBE:
            items = [(r["video_id"], r, r) for r in primary_videos(store, shard).iter_rows(named=True)]
            rows = score_rows(decl, items, config)
        else:  # clips without a caption have no row: curated_videos applies require_caption
            items = [(r["video_id"], r["caption"], r) for r in store.read_shard(CAPTIONS, shard).iter_rows(named=True)
                     if r["caption"] is not None]
            rows = score_rows(decl, items, config, extra=lambda r: {"caption_source": r["source"]})
        frame = to_frame(rows, schema)
        return write_shard(context, store, decl.name, frame, started, check_results=[range_check(decl, frame)])

    return score_asset


def build_score_assets(recipe: Recipe) -> list:
    """Every declared PROBE and CAPTION score's asset."""
    return [build_score_asset(decl, recipe) for decl in all_scores() if decl.reads in (PROBE, CAPTION)]
