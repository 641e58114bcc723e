import json
import time
from collections import Counter

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MetadataValue, asset

from curation_assets.curation.funnel import count_rows
from curation_assets.curation.rules import KEPT, judge, required_scores, without_scorers
from curation_assets.ingest.registry import shard_members
from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.near_duplicates import NEAR_DUPLICATES
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, SAMPLED_FRAMES, to_frame, write_shard
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, scorers_off
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scores import PROBE, all_scores

CURATED_VIDEOS = "curated_videos"


def schema() -> dict:
    """curated_videos' columns: the verdict, then every declared score's values (in declaration
    order), then what the verdict was made with and the clip's lineage."""
    score_columns = {curated: decl.columns[column] for decl in all_scores()
                     for curated, column in decl.value_columns.items()}
    return {
        "path": pl.Utf8,
        "video_id": pl.Utf8,
        "status": pl.Utf8,
        "reasons": pl.List(pl.Utf8),
        "caption_source": pl.Utf8,
        "caption": pl.Utf8,
        **score_columns,
        "model_profile": pl.Utf8,
        "scorers_off": pl.List(pl.Utf8),  # learned scorers the recipe switched off: their bounds not applied
        "thresholds": pl.Utf8,
        "error": pl.Utf8,
        # lineage of a clip cut from a long source (null for a video scored whole)
        "source_video_id": pl.Utf8,
        "source_path": pl.Utf8,
        "near_duplicate_of": pl.Utf8,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
    }


def build_curated_videos(recipe: Recipe):
    CurationConfig = config_class(CURATED_VIDEOS, recipe)
    off = scorers_off(recipe)
    required, caption_scores = required_scores(off)

    @asset(
        name=CURATED_VIDEOS,
        deps=[RAW_VIDEOS, SAMPLED_FRAMES, CAPTIONS, *(decl.name for decl in all_scores()), NEAR_DUPLICATES],
        partitions_def=shard_partitions,
        code_version=code_version(CURATED_VIDEOS, recipe),
        group_name="curation",
        kinds={"parquet", "duckdb"},
        check_specs=[
            AssetCheckSpec("every_video_accounted", asset=CURATED_VIDEOS, blocking=True,
                           description="Every registered file of the shard (and every clip cut from one) appears exactly once."),
            AssetCheckSpec("reasons_match_status", asset=CURATED_VIDEOS,
                           description="Kept rows have no reason; rejected and failed rows have at least one."),
        ],
        description="One verdict per registered file and per clip cut from one: kept, rejected (every failed rule "
        "named), failed (the error), or split (a long source whose clips are judged instead)."
        + (f" Scorers switched off by the recipe (their bounds not applied): {', '.join(off)}." if off else ""),
    )
    def curated_videos(context: AssetExecutionContext, config: CurationConfig, curation_store: CurationStore):
        started = time.perf_counter()
        store = curation_store.store()
        shard = context.partition_key
        videos = _joined_inputs(store, shard)
        columns = schema()
        rows = []
        for video in videos:
            source = video.get("caption_source")
            thresholds = without_scorers(config.thresholds_for(source, video.get("model_profile")), off)
            verdict = judge(video, thresholds, required, caption_scores)
            row = {column: video.get(column) for column in columns}
            row.update(path=video["path"], status=verdict.status, reasons=verdict.reasons, caption_source=source,
                       scorers_off=off, thresholds=json.dumps(thresholds, sort_keys=True), error=None)
            rows.append(row)
        frame = to_frame(rows, columns)
        # the registered files, plus the clips cut from the split ones
        registered = shard_members(store, shard)["path"].to_list() + [v["path"] for v in videos if v.get("source_path")]
        checks = [_accounted_check(registered, frame), _reasons_check(frame)]
        counted = count_rows(frame)
        counted.videos_in = frame.height
        meta = {**counted.counts(), "funnel": MetadataValue.md(counted.markdown()), "scorers_off": ", ".join(off) or "none"}
        return write_shard(context, store, CURATED_VIDEOS, frame, started, meta, check_results=checks)

    return curated_videos


def _joined_inputs(store, shard: str) -> list[dict]:
    raw = store.read_shard(RAW_VIDEOS, shard)
    raw = raw.sort("seq", *(["clip_index"] if "clip_index" in raw.columns else []), nulls_last=False)
    by_id: dict[str, dict] = {}

    def attach(table: str, columns: list[str], rename: dict[str, str] | None = None):
        for row in store.read_shard(table, shard).iter_rows(named=True):
            entry = by_id.setdefault(row["video_id"], {})
            entry[f"{table}_present"] = True
            entry[f"{table}_error"] = row.get("error")
            for col in columns:
                entry[(rename or {}).get(col, col)] = row[col]

    attach(CAPTIONS, ["caption", "source", "profile"], {"source": "caption_source", "profile": "captions_profile"})
    profiles = []
    for decl in all_scores():
        renames = {column: curated for curated, column in decl.value_columns.items()}
        if decl.model and not decl.weights_in_every_profile:
            renames["profile"] = f"{decl.name}_profile"
            profiles.append(renames["profile"])
        attach(decl.name, list(renames), renames)
    attach(NEAR_DUPLICATES, ["near_duplicate_of"])
    for entry in by_id.values():
        # the learned models' profile, from whichever of them ran (a scorer may be switched off)
        entry["model_profile"] = next((entry[p] for p in [*profiles, "captions_profile"] if entry.get(p)), None)
    # a PROBE score's values are the raw row's own fields: shown for every row, duplicates included
    probed = {curated: column for decl in all_scores() if decl.reads == PROBE
              for curated, column in decl.value_columns.items()}
    videos = []
    for row in raw.iter_rows(named=True):
        video = dict(row)
        video.update({curated: row.get(column) for curated, column in probed.items()})
        # duplicates and failures share no score rows with their primary on purpose
        if row["video_id"] and not row["duplicate_of"] and not row["error"] and row.get("split_into") is None:
            video.update(by_id.get(row["video_id"], {}))
        videos.append(video)
    return videos


def _accounted_check(registered: list[str], frame: pl.DataFrame) -> AssetCheckResult:
    counts = Counter(frame["path"].to_list())
    missing = sorted(set(registered) - set(counts))
    repeated = sorted(p for p, n in counts.items() if n > 1)
    unknown = sorted(set(counts) - set(registered))
    return AssetCheckResult(
        check_name="every_video_accounted",
        passed=not (missing or repeated or unknown),
        severity=AssetCheckSeverity.ERROR,
        metadata={"registered": len(registered), "rows": frame.height, "missing": len(missing),
                  "repeated": len(repeated), "unknown": len(unknown),
                  "examples": MetadataValue.json((missing + repeated + unknown)[:10])},
    )


def _reasons_check(frame: pl.DataFrame) -> AssetCheckResult:
    n_reasons = frame["reasons"].list.len()
    bad = frame.filter(((pl.col("status") == KEPT) & (n_reasons > 0)) | ((pl.col("status") != KEPT) & (n_reasons == 0)))
    return AssetCheckResult(check_name="reasons_match_status", passed=bad.height == 0, metadata={"inconsistent": bad.height})
