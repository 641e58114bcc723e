"""Counts of the curation outcome, read back from the store (for the CLI and reports)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curation_assets.curation_rules import FAILED, KEPT, REJECTED, SPLIT, rule_name
from curation_assets.store import ScoreStore

CURATED_TABLE = "curated_videos"


@dataclass
class Funnel:
    videos_in: int = 0
    status: Counter = field(default_factory=Counter)
    rejected_by_rule: Counter = field(default_factory=Counter)
    failed_by_stage: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    not_curated: int = 0  # registered but no verdict yet (a shard that has not run)
    model_profiles: Counter = field(default_factory=Counter)
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
        if self.not_curated:
            out.append(f"not curated {self.not_curated} (shard not run yet)")
        if self.model_profiles.get("tiny"):
            out.append(f"NOTE: {self.model_profiles['tiny']} videos were scored by the tiny random-weight models "
                       "(CURATION_MODEL_PROFILE=tiny): their CLIP/aesthetics/captions are noise and those bounds were skipped")
        if self.by_source:
            out.append("by caption source: " + ", ".join(
                f"{src} {st} {n}" for (src, st), n in sorted(self.by_source.items())))
        return out


def funnel(store: ScoreStore, paths: list[str] | None = None, shards: list[str] | None = None) -> Funnel:
    result = Funnel()
    if CURATED_TABLE not in store.tables():
        result.videos_in = len(paths or [])
        result.not_curated = result.videos_in
        return result
    rows = store.query(f"select * from {CURATED_TABLE}")
    if "model_profile" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Utf8).alias("model_profile"))
    if shards is not None:
        rows = rows.filter(pl.col("shard").is_in(shards))
    if "source_path" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.Utf8).alias("source_path"))
    if paths is not None:
        rows = rows.filter(pl.col("path").is_in(paths) | pl.col("source_path").is_in(paths))
        clips = int(rows["source_path"].is_not_null().sum())
        result.videos_in = len(set(paths)) + clips
        result.not_curated = result.videos_in - rows.height
    else:
        result.videos_in = rows.height
    result.clips = int(rows["source_path"].is_not_null().sum())
    for row in rows.iter_rows(named=True):
        result.status[row["status"]] += 1
        if row["model_profile"]:
            result.model_profiles[row["model_profile"]] += 1
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
