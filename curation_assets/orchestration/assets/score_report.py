import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets.orchestration.assets.accelerated_videos import ACCELERATED_VIDEOS
from curation_assets.orchestration.assets.curated_videos import CURATED_VIDEOS
from curation_assets.orchestration.assets.training_set import LORA_TRAINING_SET
from curation_assets.curation.funnel import funnel as count_funnel
from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.outputs.report import (
    REPORT_PAGE, TINY_PROFILE, funnel_png, histogram_png, percentile_table, report_html, report_markdown,
    report_summary_markdown, reported_scores, suggest_thresholds, suggested_recipe_text, summarize, tiny_banner,
)
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, effective_config
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scores import CAPTION, score

SCORE_REPORT = "score_report"


def build_score_report(recipe: Recipe):
    ReportConfig = config_class(SCORE_REPORT, recipe)
    thresholds = effective_config(CURATED_VIDEOS, recipe).thresholds.model_dump()

    @asset(
        name=SCORE_REPORT, deps=[CURATED_VIDEOS, ACCELERATED_VIDEOS, LORA_TRAINING_SET],
        code_version=code_version(SCORE_REPORT, recipe), group_name="outputs", kinds={"parquet", "duckdb", "matplotlib"},
        description="Histogram of every score over all videos with the active thresholds drawn, the filter "
        "funnel, percentiles, and suggested thresholds: one page (metadata `report_page`, served beside the review "
        "gallery; `report`: its first screen), and under <data_dir>/reports/ (score_report.html, .md, each chart as "
        "PNG). Says so when built on tiny-profile scores.",
    )
    def score_report(context: AssetExecutionContext, config: ReportConfig, curation_store: CurationStore):
        started, store = time.perf_counter(), curation_store.store()
        out_dir = Path(curation_store.data_dir) / "reports"
        out_dir.mkdir(parents=True, exist_ok=True)
        tables = store.tables()
        summaries, noise, tiny_ids, pngs, charts = {}, {}, set(), {}, []
        reported = {c: r for c, r in reported_scores().items() if r[0] in tables}
        by_table: dict[str, dict[str, str]] = {}
        for column, (table, table_column, _) in reported.items():
            by_table.setdefault(table, {})[column] = table_column
        present = store.columns(list(by_table))
        # One table's values at a time (ten million clips: 80 MB a score), the next table's read
        # (DuckDB) and this score's percentiles (numpy's partial sort) on worker threads while its
        # histogram is drawn: both let go of the GIL (ten million clips: the report 10.9 -> 6.7 s).
        order = [table for table, _, _ in reported.values()]
        runs = [table for i, table in enumerate(order) if i == 0 or table != order[i - 1]]  # a read per run
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="score_report") as workers:
            def read(run: int):
                table = runs[run]
                return workers.submit(_score_values, store, tables, table, by_table[table], present[table])

            pending, run = (read(0) if runs else None), 0
            read_values: dict = {}
            for column, (table, table_column, keys) in reported.items():
                if column not in read_values:
                    read_values = pending.result()
                    run += 1
                    pending = read(run) if run < len(runs) else None
                values, tiny = read_values.pop(column)
                summary = workers.submit(summarize, column, values)
                pngs[column] = histogram_png(column, values, {k: thresholds.get(k) for k in keys}, noise=len(tiny))
                summaries[column] = summary.result()
                noise[column] = len(tiny)
                tiny_ids.update(tiny)
                note = "" if not tiny else (" (tiny models: noise)" if len(tiny) >= summaries[column].count
                                            else f" ({len(tiny)} from tiny models: noise)")
                charts.append((column, note))
        funnel = _funnel_rows(store, tables)
        videos = funnel[0][1]
        banner = tiny_banner(noise, len(tiny_ids), videos)
        skipped = [c for c, n in noise.items() if n]
        suggestion = suggest_thresholds(summaries, config.suggest_method, config.keep_middle, skip=set(skipped))
        suggested = suggested_recipe_text(suggestion, sum(s.count for s in summaries.values()), config.suggest_method,
                                          banner, skipped)
        (out_dir / "suggested_recipe.yaml").write_text(suggested, encoding="utf-8")
        pngs["funnel"] = funnel_png(funnel, noise=bool(banner))
        for name, png in pngs.items():
            (out_dir / f"{name}.png").write_bytes(png)
        percentiles = percentile_table(list(summaries.values()), noise)
        gallery_meta, gallery_text = _gallery(context, store, recipe, Path(curation_store.data_dir), out_dir)
        document = dict(banner=banner, funnel_rows=funnel, percentiles=percentiles, suggested_yaml=suggested,
                        charts=charts, location=str(out_dir / "score_report.md"), gallery=gallery_text)
        on_disk = report_markdown(**document, image=lambda name: f"![{name}]({name}.png)")
        (out_dir / "score_report.md").write_text(on_disk, encoding="utf-8")
        (out_dir / REPORT_PAGE).write_text(report_html(on_disk), encoding="utf-8")
        # The whole report opens as a page (a new tab, at its top), served beside the gallery;
        # the UI's dialog holds its first screen, short enough not to open scrolled to the end.
        from curation_assets.review.server import review_url

        page_url = urljoin(review_url(), "report/")
        meta = {"WARNING": MetadataValue.text(banner)} if banner else {}
        meta.update({"report_page": MetadataValue.url(page_url),
                     "report": MetadataValue.md(report_summary_markdown(funnel_rows=funnel, page_url=page_url))})
        meta.update({
            "scores_profile": "tiny" if banner else "real",
            "suggested_thresholds": MetadataValue.json(suggestion),
            "seconds": round(time.perf_counter() - started, 3),
        })
        meta.update({f"funnel_{stage}": n for stage, n in funnel if " " not in stage})
        meta.update(gallery_meta)
        return MaterializeResult(metadata=meta)

    return score_report


def _score_values(store, tables, table: str, columns: dict[str, str], present: list[str]) -> dict[str, tuple[np.ndarray, list]]:
    """For each reported column (-> its column in `table`): its values over the rows without an
    error (NaN for a missing one), and the video ids of those whose value came from a tiny
    random-weight model (the row's own profile; for a score of the caption, a caption generated
    by a tiny captioner). Only the value columns come out of DuckDB (and the ids of tiny rows):
    ten million rows with their ids held 600 MB per score. One connection per table (`present`:
    its columns), its values held one table at a time."""
    valid = ["error is null"] if "error" in present else []
    values = {c: f'"{tc}"::double' for c, tc in columns.items()}
    selected = ", ".join(f'{v} as "{c}"' for c, v in values.items())
    steps = [f'select {selected} from "{table}" t' + (f" where {valid[0]}" if valid else "")]
    source = f'"{table}" t'
    if "profile" in present:
        tiny = f"t.profile = '{TINY_PROFILE}'"
    elif score(table).reads == CAPTION and CAPTIONS in tables and {"video_id", "shard"} <= set(present):
        # joined with the few tiny captions, filtered first (none in a real run): a correlated
        # `exists` over every caption took 5 s at ten million clips
        source += (f" join (select distinct video_id, shard from {CAPTIONS} where profile = '{TINY_PROFILE}') k "
                   "on k.video_id = t.video_id and k.shard = t.shard")
        tiny = "true"
    else:
        tiny = None
    video_id = "t.video_id" if "video_id" in present else "null"
    if tiny:
        steps += [f"select {video_id} as video_id from {source} where " + " and ".join([*valid, f"{v} is not null", tiny])
                  for v in values.values()]
    results = store.query_steps(steps)
    out = {}
    for i, column in enumerate(columns):
        tiny_ids = results[1 + i]["video_id"].to_list() if tiny else []
        out[column] = (results[0][column].fill_null(float("nan")).to_numpy(), tiny_ids)
    return out


def _funnel_rows(store, tables) -> list[tuple[str, int]]:
    """The funnel's stages (one count for the CLI, status and this report), then what the
    outputs made of the kept clips."""
    rows = count_funnel(store).stages()
    if ACCELERATED_VIDEOS in tables:
        rows.append(("accelerated", int(store.query(
            f"select count(*) n from {ACCELERATED_VIDEOS} where status = 'accelerated'")["n"][0])))
    if LORA_TRAINING_SET in tables:
        for preset, n in store.query(f"select preset, count(*) n from {LORA_TRAINING_SET} group by preset").iter_rows():
            rows.append((f"selected {preset}", int(n)))
    return rows


def _gallery(context, store, recipe: Recipe, data_dir: Path, out_dir: Path) -> tuple[dict, str]:
    """The review gallery's static, self-contained copy beside the report; the metadata linking
    the live one (`curation-assets review`, also started by `curation-assets ui`) and the
    report's paragraph naming both (paths in the document, not in the metadata table: a long
    path would widen it)."""
    from curation_assets.curation.funnel import funnel
    from curation_assets.orchestration.recipe import recipe_path_from_env
    from curation_assets.orchestration.run_history import failed_shards
    from curation_assets.orchestration.stored_recipe import resolve_profile
    from curation_assets.review.clip_detail import shown_details
    from curation_assets.review.context import ReviewContext
    from curation_assets.review.page import STATIC_CLIPS, STATIC_NAME, write_static_gallery
    from curation_assets.review.server import review_url

    started = time.perf_counter()
    missing = sorted(funnel(store).not_curated_by_shard)
    review = ReviewContext(data_dir, store, recipe, recipe_path_from_env(), resolve_profile(data_dir)[0],
                           failed_shards(context.instance, missing) if missing else {})
    data = review.data(limit=STATIC_CLIPS)
    details = shown_details(store, data)
    path = write_static_gallery(store, data, details, out_dir / STATIC_NAME, str(data_dir))
    meta = {"gallery": MetadataValue.url(review_url()), "gallery_clips": data["count"],
            **({"gallery_sampled_from": data["total"]} if data["sampled"] else {}),
            "gallery_seconds": round(time.perf_counter() - started, 3)}
    text = (f"Every clip, to look at and to move thresholds on: the review gallery at [{review_url()}]({review_url()}) "
            f"(served by `curation-assets review --data-dir {data_dir}`, and by `curation-assets ui`), or its "
            f"self-contained copy `{path}`, which opens without a server.")
    return meta, text
