import json
import time
from collections import Counter

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, MetadataValue, asset

from curation_assets.orchestration.assets.caption_repetition import CAPTION_REPETITION
from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.image_scores import AESTHETICS, CLIP_SIMILARITY, OCR_AREA
from curation_assets.orchestration.assets.video_pass import MOTION, SAMPLED_FRAMES
from curation_assets.orchestration.assets.near_duplicates import NEAR_DUPLICATES
from curation_assets.orchestration.assets.resolution import RESOLUTION
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS, to_frame, write_shard
from curation_assets.curation.rules import FAILED, KEPT, REJECTED, SPLIT, judge, required_scores, rule_name, without_scorers
from curation_assets.ingest.registry import shard_members
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, scorers_off
from curation_assets.orchestration.resources import CurationStore

CURATED_VIDEOS = "curated_videos"
SCHEMA = {
    "path": pl.Utf8,
    "video_id": pl.Utf8,
    "status": pl.Utf8,
    "reasons": pl.List(pl.Utf8),
    "caption_source": pl.Utf8,
    "caption": pl.Utf8,
    "motion_score": pl.Float64,
    "width": pl.Int64,
    "height": pl.Int64,
    "char_rep_ratio": pl.Float64,
    "clip_similarity": pl.Float64,
    "aesthetics_score": pl.Float64,
    "ocr_area_ratio": pl.Float64,
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
        deps=[RAW_VIDEOS, RESOLUTION, MOTION, SAMPLED_FRAMES, CAPTIONS, CAPTION_REPETITION, CLIP_SIMILARITY,
              AESTHETICS, OCR_AREA, NEAR_DUPLICATES],
        partitions_def=shard_partitions,
        code_version=code_version(CURATED_VIDEOS, recipe),
        group_name="curation",
        kinds={"duckdb"},
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
        rows = []
        for video in videos:
            source = video.get("caption_source")
            thresholds = without_scorers(config.thresholds_for(source, video.get("model_profile")), off)
            verdict = judge(video, thresholds, required, caption_scores)
            rows.append({
                "path": video["path"], "video_id": video.get("video_id"), "status": verdict.status,
                "reasons": verdict.reasons, "caption_source": source, "caption": video.get("caption"),
                "motion_score": video.get("motion_score"), "width": video.get("display_width"),
                "height": video.get("display_height"), "char_rep_ratio": video.get("char_rep_ratio"),
                "clip_similarity": video.get("clip_similarity"), "aesthetics_score": video.get("aesthetics_score"),
                "ocr_area_ratio": video.get("ocr_area_ratio"), "model_profile": video.get("model_profile"),
                "scorers_off": off, "thresholds": json.dumps(thresholds, sort_keys=True),
                "error": None, "source_video_id": video.get("source_video_id"),
                "near_duplicate_of": video.get("near_duplicate_of"),
                "source_path": video.get("source_path"), "start_s": video.get("start_s"), "end_s": video.get("end_s"),
            })
        frame = to_frame(rows, SCHEMA)
        # the registered files, plus the clips cut from the split ones
        registered = shard_members(store, shard)["path"].to_list() + [v["path"] for v in videos if v.get("source_path")]
        checks = [_accounted_check(registered, frame), _reasons_check(frame)]
        meta = {**funnel_metadata(frame), "scorers_off": ", ".join(off) or "none"}
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

    attach(RESOLUTION, [])
    attach(MOTION, ["motion_score"])
    attach(CAPTIONS, ["caption", "source", "profile"], {"source": "caption_source", "profile": "captions_profile"})
    attach(CAPTION_REPETITION, ["char_rep_ratio"])
    attach(CLIP_SIMILARITY, ["clip_similarity", "profile"], {"profile": "clip_profile"})
    attach(AESTHETICS, ["aesthetics_score", "profile"], {"profile": "model_profile"})
    attach(OCR_AREA, ["ocr_area_ratio"])
    attach(NEAR_DUPLICATES, ["near_duplicate_of"])
    for entry in by_id.values():
        # the learned models' profile, from whichever of them ran (a scorer may be switched off)
        entry["model_profile"] = (entry.get("model_profile") or entry.get("clip_profile")
                                  or entry.get("captions_profile"))
    videos = []
    for row in raw.iter_rows(named=True):
        video = dict(row)
        # duplicates and failures share no score rows with their primary on purpose
        if row["video_id"] and not row["duplicate_of"] and not row["error"] and row.get("split_into") is None:
            video.update(by_id.get(row["video_id"], {}))
        video["width"], video["height"] = row["display_width"], row["display_height"]
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


def funnel_metadata(frame: pl.DataFrame) -> dict:
    status = Counter(frame["status"].to_list())
    rules = Counter(rule_name(r) for reasons in frame.filter(pl.col("status") == REJECTED)["reasons"].to_list() for r in reasons)
    meta = {"videos_in": frame.height, KEPT: status[KEPT], REJECTED: status[REJECTED], FAILED: status[FAILED]}
    if status[SPLIT]:
        # videos_in counts both the split sources and their clips; each clip has its own verdict
        meta.update(sources_split=status[SPLIT], clips=int(frame["source_path"].is_not_null().sum()))
    lines = ["| rule | rejected videos |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in rules.most_common()]
    by_source = Counter((s or "none", st) for s, st in zip(frame["caption_source"].to_list(), frame["status"].to_list()))
    lines += ["", "| caption source | status | videos |", "|---|---|---|"]
    lines += [f"| {s} | {st} | {n} |" for (s, st), n in sorted(by_source.items())]
    meta["funnel"] = MetadataValue.md("\n".join(lines))
    return meta
