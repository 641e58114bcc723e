"""Counts of the curation outcome, read back from the store (for the CLI and reports)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curation_assets.curation.rules import FAILED, KEPT, REJECTED, SPLIT, rule_name
from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.store import ScoreStore

CURATED_TABLE = "curated_videos"


@dataclass
class Funnel:
    videos_in: int = 0
    status: Counter = field(default_factory=Counter)
    rejected_by_rule: Counter = field(default_factory=Counter)
    failed_by_stage: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    not_curated: int = 0  # registered but no verdict yet
    not_curated_by_shard: Counter = field(default_factory=Counter)
    # shard -> why its last run failed (from the run history): those videos are not "not run yet"
    shard_failures: dict = field(default_factory=dict)
    model_profiles: Counter = field(default_factory=Counter)
    scorers_off: Counter = field(default_factory=Counter)  # scorer -> videos judged without it
    clips: int = 0  # rows cut from a split source (counted in videos_in too)

    def lines(self) -> list[str]:
        out = [f"videos in   {self.videos_in}", f"kept        {self.status[KEPT]}",
               f"rejected    {self.status[REJECTED]}"]
        out += [f"  {rule:<28} {n}" for rule, n in self.rejected_by_rule.most_common()]
        out.append(f"failed      {self.status[FAILED]}")
        out += [f"  {stage:<28} {n}" for stage, n in self.failed_by_stage.most_common()]
        if self.status[SPLIT] or self.clips:
            out.append(f"split       {self.status[SPLIT]} long sources, cut into {self.clips} clips "
                       "(each clip judged above)")
        failed_shards = {s: n for s, n in self.not_curated_by_shard.items() if s in self.shard_failures}
        not_run = self.not_curated - sum(failed_shards.values())
        if failed_shards:
            out.append(f"not curated {sum(failed_shards.values())} (their shard's run FAILED)")
            for shard, n in sorted(failed_shards.items()):
                out.append(f"  {shard} ({n} videos): {self.shard_failures[shard]}")
        if not_run > 0:
            out.append(f"not curated {not_run} (shard not run yet)")
        if self.scorers_off:
            judged = sum(self.status.values())
            out.append("scorers off (switched off by the recipe; their thresholds not applied): " + ", ".join(
                name if n == judged else f"{name} ({n} of {judged} videos)" for name, n in sorted(self.scorers_off.items())))
        if self.model_profiles.get("tiny"):
            out.append(f"NOTE: {self.model_profiles['tiny']} videos were scored by the tiny random-weight models "
                       "(CURATION_MODEL_PROFILE=tiny): their CLIP/aesthetics/captions are noise and those bounds were skipped")
        if self.by_source:
            out.append("by caption source: " + ", ".join(
                f"{src} {st} {n}" for (src, st), n in sorted(self.by_source.items())))
        return out


def funnel(store: ScoreStore, paths: list[str] | None = None, shards: list[str] | None = None,
           shard_failures: dict[str, str] | None = None) -> Funnel:
    """Counts over the registered files (all, or those `paths` / `shards`); `shard_failures`
    (shard -> reason) names shards whose run failed, so their videos are not "not run yet"."""
    result = Funnel(shard_failures=dict(shard_failures or {}))
    tables = store.tables()
    registered = (store.query(f"select path, shard from {REGISTRY_TABLE}") if REGISTRY_TABLE in tables
                  else pl.DataFrame(schema={"path": pl.Utf8, "shard": pl.Utf8}))
    if shards is not None:
        registered = registered.filter(pl.col("shard").is_in(shards))
    if paths is not None:
        registered = registered.filter(pl.col("path").is_in(paths))
    rows = store.query(f"select * from {CURATED_TABLE}") if CURATED_TABLE in tables else pl.DataFrame(
        schema={"path": pl.Utf8, "shard": pl.Utf8, "status": pl.Utf8})
    for column in ("model_profile", "caption_source"):
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.Utf8).alias(column))
    if "scorers_off" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.List(pl.Utf8)).alias("scorers_off"))
    if shards is not None:
        rows = rows.filter(pl.col("shard").is_in(shards))
    if "source_path" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Utf8).alias("source_path"))
    if paths is not None:
        rows = rows.filter(pl.col("path").is_in(paths) | pl.col("source_path").is_in(paths))
    # clips cut from split sources are rows of their own, not registered files
    result.clips = int(rows["source_path"].is_not_null().sum())
    # "videos in" counts the registry, so a data dir whose runs failed still says how many came in
    registered_in = len(set(paths)) if paths is not None else max(registered.height, rows.height - result.clips)
    result.videos_in = registered_in + result.clips
    curated = set(rows["path"].to_list())
    missing = registered.filter(~pl.col("path").is_in(list(curated)))
    result.not_curated_by_shard = Counter(missing["shard"].to_list())
    result.not_curated = max(result.videos_in - rows.height, 0)
    if paths is not None and result.not_curated > missing.height:  # inputs not even registered
        result.not_curated_by_shard["(not registered)"] += result.not_curated - missing.height
    for row in rows.iter_rows(named=True):
        result.status[row["status"]] += 1
        if row["model_profile"]:
            result.model_profiles[row["model_profile"]] += 1
        for name in row["scorers_off"] or []:
            result.scorers_off[name] += 1
        result.by_source[(row["caption_source"] or "none", row["status"])] += 1
        if row["status"] == REJECTED:
            for reason in row["reasons"]:
                result.rejected_by_rule[rule_name(reason)] += 1
        elif row["status"] == FAILED:
            result.failed_by_stage[_stage(row["reasons"][0] if row["reasons"] else "unknown")] += 1
    return result


def _stage(reason: str) -> str:
    # "unreadable: empty file (0 bytes)" -> "unreadable: empty file"; keep it short for grouping
    head, _, detail = reason.partition(": ")
    return f"{head}: {detail.split(':')[0].split('(')[0].strip()}" if detail else head
