"""The funnel: how many videos came in, were kept, rejected (by which rule) or failed (why).

One count for everyone: the CLI's progress line and final funnel, `status`, curated_videos'
materialization metadata and the score report all read a `Funnel`, made from curated_videos
rows (`count_rows`) and, for the store, from the registry too (`funnel`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curation_assets.curation.rules import FAILED, KEPT, REJECTED, SPLIT
from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.store import ScoreStore

CURATED_TABLE = "curated_videos"
# the curated_videos columns a funnel reads
COLUMNS = {"path": pl.Utf8, "shard": pl.Utf8, "status": pl.Utf8, "reasons": pl.List(pl.Utf8),
           "caption_source": pl.Utf8, "model_profile": pl.Utf8, "scorers_off": pl.List(pl.Utf8),
           "source_path": pl.Utf8}


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

    @property
    def registered(self) -> int:
        """Files that came in (videos_in without the clips cut from split sources)."""
        return self.videos_in - self.clips

    def lines(self) -> list[str]:
        """The funnel as the CLI prints it (`run`, `status`)."""
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

    def stages(self) -> list[tuple[str, int]]:
        """(stage, videos) from the files that came in to the kept ones: the report's funnel chart
        and table (rule rows are indented)."""
        rows = [("in", self.registered)]
        if self.status[SPLIT]:  # long sources cut into shots: their clips are judged below
            rows.append((f"split into shots (+{self.clips} clips)", self.status[SPLIT]))
        if self.not_curated:
            rows.append(("not curated yet", self.not_curated))
        rows.append(("failed", self.status[FAILED]))
        rows.append(("rejected", self.status[REJECTED]))
        rows += [(f"  rejected by {rule}", n) for rule, n in self.rejected_by_rule.most_common()]
        rows.append(("kept", self.status[KEPT]))
        return rows

    def counts(self) -> dict[str, int]:
        """The counts curated_videos records in its materialization metadata."""
        meta = {"videos_in": self.videos_in, KEPT: self.status[KEPT], REJECTED: self.status[REJECTED],
                FAILED: self.status[FAILED]}
        if self.status[SPLIT]:
            # videos_in counts both the split sources and their clips; each clip has its own verdict
            meta.update(sources_split=self.status[SPLIT], clips=self.clips)
        return meta

    def markdown(self) -> str:
        """The rules and the caption sources as Markdown tables."""
        lines = ["| rule | rejected videos |", "|---|---|"]
        lines += [f"| `{rule}` | {n} |" for rule, n in self.rejected_by_rule.most_common()]
        lines += ["", "| caption source | status | videos |", "|---|---|---|"]
        lines += [f"| {source} | {status} | {n} |" for (source, status), n in sorted(self.by_source.items())]
        return "\n".join(lines)


def count_rows(rows: pl.DataFrame, result: Funnel | None = None) -> Funnel:
    """Add the verdicts of curated_videos `rows` to `result` (a new Funnel by default).
    Rules and failure stages keep the order they first appear in, so ties read in row order."""
    result = result or Funnel()
    rows = _with_columns(rows)
    result.clips += int(rows["source_path"].is_not_null().sum())
    result.status.update(_counts(rows["status"]))
    result.model_profiles.update(_counts(rows["model_profile"].drop_nulls()))
    result.scorers_off.update(_counts(rows["scorers_off"].explode().drop_nulls()))
    sources = rows.select(pl.col("caption_source").fill_null("none"), "status")
    result.by_source.update({(s, st): n for s, st, n in sources.group_by(["caption_source", "status"]).len().iter_rows()})
    rejected = rows.filter(pl.col("status") == REJECTED)["reasons"].explode().drop_nulls()
    result.rejected_by_rule.update(_counts(rejected.map_elements(_rule, return_dtype=pl.Utf8)) if rejected.len() else {})
    failed = rows.filter(pl.col("status") == FAILED)["reasons"].list.first().fill_null("unknown")
    result.failed_by_stage.update(_counts(failed.map_elements(_stage, return_dtype=pl.Utf8)) if failed.len() else {})
    return result


def funnel(store: ScoreStore, paths: list[str] | None = None, shards: list[str] | None = None,
           shard_failures: dict[str, str] | None = None) -> Funnel:
    """Counts over the registered files (all, or those `paths` / `shards`); `shard_failures`
    (shard -> reason) names shards whose run failed, so their videos are not "not run yet".
    With `shards`, only those shards' objects are read."""
    result = Funnel(shard_failures=dict(shard_failures or {}))
    registered = _registered(store, shards)
    rows = _curated(store, shards)
    if paths is not None:
        wanted = list(paths)
        registered = registered.filter(pl.col("path").is_in(wanted))
        rows = rows.filter(pl.col("path").is_in(wanted) | pl.col("source_path").is_in(wanted))
    count_rows(rows, result)
    # "videos in" counts the registry, so a data dir whose runs failed still says how many came in
    registered_in = len(set(paths)) if paths is not None else max(registered.height, rows.height - result.clips)
    result.videos_in = registered_in + result.clips
    missing = registered.join(rows.select("path").unique(), on="path", how="anti")
    result.not_curated_by_shard = Counter(dict(missing.group_by("shard", maintain_order=True).len().iter_rows()))
    result.not_curated = max(result.videos_in - rows.height, 0)
    if paths is not None and result.not_curated > missing.height:  # inputs not even registered
        result.not_curated_by_shard["(not registered)"] += result.not_curated - missing.height
    return result


def _registered(store: ScoreStore, shards: list[str] | None) -> pl.DataFrame:
    empty = pl.DataFrame(schema={"path": pl.Utf8, "shard": pl.Utf8})
    if REGISTRY_TABLE not in store.tables():
        return empty
    if shards is not None:  # one object per shard: nothing else is opened
        parts = [store.read_shard(REGISTRY_TABLE, s).select("path", "shard") for s in shards]
        return pl.concat(parts) if parts else empty
    return store.query(f"select path, shard from {REGISTRY_TABLE}")


def _curated(store: ScoreStore, shards: list[str] | None) -> pl.DataFrame:
    if CURATED_TABLE not in store.tables():
        return pl.DataFrame(schema=COLUMNS)
    if shards is not None:  # one object per shard: nothing else is opened
        parts = [_with_columns(store.read_shard(CURATED_TABLE, s)) for s in shards]
        return pl.concat(parts) if parts else pl.DataFrame(schema=COLUMNS)
    present = store.query(f"select * from {CURATED_TABLE} limit 0").columns
    return _with_columns(store.query(f"select {', '.join(c for c in COLUMNS if c in present)} from {CURATED_TABLE}"))


def _with_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """The funnel's columns, null where an older shard lacks one."""
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in COLUMNS.items() if name not in rows.columns]
    return rows.with_columns(missing).select(list(COLUMNS)) if missing or set(rows.columns) != set(COLUMNS) else rows


def _counts(series: pl.Series) -> dict:
    """value -> count, in the order values first appear (a dict keeps it for Counter)."""
    if not series.len():
        return {}
    frame = series.to_frame("value").group_by("value", maintain_order=True).len()
    return dict(frame.iter_rows())


def _rule(reason: str) -> str:
    from curation_assets.curation.rules import rule_name

    return rule_name(reason)


def _stage(reason: str) -> str:
    # "unreadable: empty file (0 bytes)" -> "unreadable: empty file"; keep it short for grouping
    head, _, detail = reason.partition(": ")
    return f"{head}: {detail.split(':')[0].split('(')[0].strip()}" if detail else head
