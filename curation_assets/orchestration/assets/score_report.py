import time
from collections import Counter
from pathlib import Path

import polars as pl
import yaml
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets.orchestration.assets.accelerated_videos import ACCELERATED_VIDEOS
from curation_assets.orchestration.assets.curated_videos import CURATED_VIDEOS
from curation_assets.orchestration.assets.training_set import LORA_TRAINING_SET
from curation_assets.curation_rules import rule_name
from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.outputs.report import (
    REPORTED_SCORES, funnel_markdown, histogram_png, percentile_table, png_markdown, suggest_thresholds, summarize,
    values_of,
)
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, effective_config
from curation_assets.orchestration.resources import CurationStore

SCORE_REPORT = "score_report"


def build_score_report(recipe: Recipe):
    ReportConfig = config_class(SCORE_REPORT, recipe)
    thresholds = effective_config(CURATED_VIDEOS, recipe).thresholds.model_dump()

    @asset(
        name=SCORE_REPORT, deps=[CURATED_VIDEOS, ACCELERATED_VIDEOS, LORA_TRAINING_SET],
        code_version=code_version(SCORE_REPORT, recipe), group_name="outputs", kinds={"duckdb", "matplotlib"},
        description="Histogram of every score over all videos with the active thresholds drawn, the filter "
        "funnel, percentiles, and suggested thresholds; in the UI as metadata and under <data_dir>/reports/.",
    )
    def score_report(context: AssetExecutionContext, config: ReportConfig, curation_store: CurationStore):
        started, store = time.perf_counter(), curation_store.store()
        out_dir = Path(curation_store.data_dir) / "reports"
        out_dir.mkdir(parents=True, exist_ok=True)
        tables = store.tables()
        summaries, sections, meta = {}, [], {}
        for column, (table, keys) in REPORTED_SCORES.items():
            if table not in tables:
                continue
            frame = store.query(f'select * from "{table}"')
            if "error" in frame.columns:
                frame = frame.filter(pl.col("error").is_null())
            values = values_of(frame, column)
            summaries[column] = summarize(column, values)
            png = histogram_png(column, values, {k: thresholds.get(k) for k in keys})
            (out_dir / f"{column}.png").write_bytes(png)
            sections.append(f"### {column}\n\n![{column}]({column}.png)\n")
            meta[f"histogram_{column}"] = MetadataValue.md(png_markdown(png, column))
        funnel = _funnel_rows(store, tables)
        suggestion = suggest_thresholds(summaries, config.suggest_method, config.keep_middle)
        suggested_recipe = {"curated_videos": {"thresholds": suggestion}}
        (out_dir / "suggested_recipe.yaml").write_text(
            f"# Suggested from {sum(s.count for s in summaries.values())} scores ({config.suggest_method}); "
            "review before use:\n# curation-assets run --config suggested_recipe.yaml ...\n" + yaml.safe_dump(suggested_recipe))
        percentiles = percentile_table(list(summaries.values()))
        report = "\n\n".join([
            "# Score report", "## Funnel", funnel_markdown(funnel), "## Score distribution", percentiles,
            "## Suggested thresholds", f"```yaml\n{yaml.safe_dump(suggested_recipe)}```", "## Histograms", *sections,
        ])
        (out_dir / "score_report.md").write_text(report, encoding="utf-8")
        meta.update({
            "funnel": MetadataValue.md(funnel_markdown(funnel)),
            "percentiles": MetadataValue.md(percentiles),
            "suggested_thresholds": MetadataValue.json(suggestion),
            "report_path": MetadataValue.path(str(out_dir / "score_report.md")),
            "seconds": round(time.perf_counter() - started, 3),
        })
        meta.update({f"funnel_{stage}": n for stage, n in funnel if " " not in stage})
        return MaterializeResult(metadata=meta)

    return score_report


def _funnel_rows(store, tables) -> list[tuple[str, int]]:
    rows = []
    registered = store.query(f"select count(*) n from {REGISTRY_TABLE}")["n"][0] if REGISTRY_TABLE in tables else 0
    rows.append(("in", int(registered)))
    if CURATED_VIDEOS in tables:
        curated = store.query(f"select status, reasons from {CURATED_VIDEOS}")
        status = Counter(curated["status"].to_list())
        if status["split"]:  # long sources cut into shots: their clips are judged below
            clips = len(curated) - int(registered)
            rows.append((f"split into shots (+{clips} clips)", status["split"]))
        rows.append(("failed", status["failed"]))
        rules = Counter(rule_name(r) for s, rs in zip(curated["status"].to_list(), curated["reasons"].to_list())
                        if s == "rejected" for r in rs)
        rows.append(("rejected", status["rejected"]))
        rows += [(f"  rejected by {rule}", n) for rule, n in rules.most_common()]
        rows.append(("kept", status["kept"]))
    if ACCELERATED_VIDEOS in tables:
        rows.append(("accelerated", int(store.query(
            f"select count(*) n from {ACCELERATED_VIDEOS} where status = 'accelerated'")["n"][0])))
    if LORA_TRAINING_SET in tables:
        for preset, n in store.query(f"select preset, count(*) n from {LORA_TRAINING_SET} group by preset").iter_rows():
            rows.append((f"selected {preset}", int(n)))
    return rows
