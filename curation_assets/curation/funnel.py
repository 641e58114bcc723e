"""The funnel: how many videos came in, were kept, rejected (by which rule) or failed (why).

One count for everyone: the CLI's progress line and final funnel, `status`, curated_videos'
materialization metadata and the score report all read a `Funnel`, made from curated_videos
rows (`count_rows`) and, for the store, from the registry too (`funnel`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curation_assets.curation.rules import FAILED, KEPT, REJECTED, SPLIT
from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.store import ScoreStore
from curation_assets.store.layout import LOOSE, SEGMENT

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
    result.by_source.update({(s, st): n for s, st, n in sources.group_by(["caption_source", "status"], maintain_order=True)
                            .len().iter_rows()})
    rejected = rows.filter(pl.col("status") == REJECTED)["reasons"].explode().drop_nulls()
    result.rejected_by_rule.update(_counts(_rules(rejected)))
    failed = rows.filter(pl.col("status") == FAILED)["reasons"].list.first().fill_null("unknown")
    result.failed_by_stage.update(_counts(_stages(failed)))
    return result


def funnel(store: ScoreStore, paths: list[str] | None = None, shards: list[str] | None = None,
           shard_failures: dict[str, str] | None = None) -> Funnel:
    """Counts over the registered files: all, those of `shards`, or those `paths` (reading only
    `shards`' rows when both are given). `shard_failures` (shard -> reason) names shards whose
    run failed, so their videos are not "not run yet".

    Without `paths` no row is read for compacted shards: their counts come from the per-shard
    summaries the compactor keeps in curated_videos' index (`SUMMARY`), the registry's from its
    index; only the shards written since the last compaction are read."""
    result = Funnel(shard_failures=dict(shard_failures or {}))
    if paths is None and (shards is None or len(shards) > _READ_FEW):
        return _summarized(store, shards, result)
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


_READ_FEW = 8  # up to this many shards, their rows are read directly (the per-shard progress line)


def _summarized(store: ScoreStore, shards: list[str] | None, result: Funnel) -> Funnel:
    """The whole store's (or many shards') funnel from summaries and the few loose objects."""
    tables = store.tables()
    if REGISTRY_TABLE not in tables:
        return result
    registered = store.winners(REGISTRY_TABLE).select("shard", pl.col("rows").alias("registered"))
    if shards is not None:
        registered = registered.filter(pl.col("shard").is_in(list(shards)))
    per_shard = pl.DataFrame(schema={"shard": pl.Utf8, "curated": pl.Int64})
    if CURATED_TABLE in tables:
        state = store.state(CURATED_TABLE)
        winners = store.winners(CURATED_TABLE, state)
        if shards is not None:
            winners = winners.filter(pl.col("shard").is_in(list(shards)))
        compacted, loose = winners.filter(pl.col("source") == SEGMENT), winners.filter(pl.col("source") == LOOSE)
        summaries = _compacted_summary(state, compacted, whole=shards is None)
        if summaries is None:  # an index without summaries (made without them): read those rows
            loose = winners
        else:
            SUMMARY.apply(result, summaries)
            counts = compacted.join(state.index.filter(pl.col("live")).select("shard", "summary"), on="shard", how="left")
            clips = counts["summary"].str.json_path_match("$.clips").cast(pl.Int64).fill_null(0)
            per_shard = counts.select("shard", (pl.col("rows") - clips).alias("curated"))
        if loose.height:
            rows = _read_curated(store, loose["shard"].to_list())
            count_rows(rows, result)
            loose_counts = rows.filter(pl.col("source_path").is_null()).group_by("shard").len().select(
                "shard", pl.col("len").cast(pl.Int64).alias("curated"))
            per_shard = pl.concat([per_shard, loose_counts])
    curated_rows = sum(result.status.values())
    result.videos_in = max(int(registered["registered"].sum() or 0), curated_rows - result.clips) + result.clips
    missing = registered.join(per_shard, on="shard", how="left").with_columns(
        (pl.col("registered") - pl.col("curated").fill_null(0)).alias("missing")).filter(pl.col("missing") > 0)
    result.not_curated_by_shard = Counter(dict(missing.sort("shard").select("shard", "missing").iter_rows()))
    result.not_curated = max(result.videos_in - curated_rows, 0)
    return result


def _compacted_summary(state, compacted: pl.DataFrame, whole: bool) -> dict | None:
    """The summed summaries of the compacted winners: for the whole table, the segments' totals
    less the entries in them that do not win (re-run since); else the winners' own summaries."""
    if not compacted.height:
        return {}
    index = state.index
    if whole and state.meta.get("seg_totals"):
        segments = set(compacted["file"].to_list())
        totals = state.meta["seg_totals"]
        if not segments <= set(totals):
            return None
        in_segments = index.filter(pl.col("segment").is_in(list(segments)))
        losers = in_segments.join(compacted.select("shard", pl.col("file").alias("segment")), on=["shard", "segment"],
                                  how="anti")
        if losers["summary"].null_count():
            return None
        total = None
        for segment in sorted(segments):
            total = SUMMARY.add(total, totals[segment])
        for text in losers["summary"].to_list():
            total = SUMMARY.add(total, json.loads(text), sign=-1)
        return total or {}
    own = index.filter(pl.col("live")).join(compacted.select("shard"), on="shard", how="semi")["summary"]
    if own.null_count():
        return None
    total = None
    for text in own.to_list():
        total = SUMMARY.add(total, json.loads(text))
    return total or {}


class _FunnelSummary:
    """The compactor's per-shard counts for curated_videos (store/compaction.py `Summarizer`):
    a Funnel's counters as ordered [key, n] pairs, summed shard by shard."""

    FIELDS = ("status", "rejected_by_rule", "failed_by_stage", "model_profiles", "scorers_off")

    def shard(self, rows: pl.DataFrame) -> dict:
        counted = count_rows(rows)
        out = {name: [[k, n] for k, n in getattr(counted, name).items()] for name in self.FIELDS}
        out["by_source"] = [[s, st, n] for (s, st), n in counted.by_source.items()]
        out["clips"], out["rows"] = counted.clips, rows.height
        return out

    def add(self, total: dict | None, summary: dict, sign: int = 1) -> dict:
        total = total or {name: [] for name in (*self.FIELDS, "by_source")} | {"clips": 0, "rows": 0}
        for name in self.FIELDS:
            merged = dict((k, n) for k, n in total.get(name, []))
            for k, n in summary.get(name, []):
                merged[k] = merged.get(k, 0) + sign * n
            total[name] = [[k, n] for k, n in merged.items() if n]
        merged = {(s, st): n for s, st, n in total.get("by_source", [])}
        for s, st, n in summary.get("by_source", []):
            merged[(s, st)] = merged.get((s, st), 0) + sign * n
        total["by_source"] = [[s, st, n] for (s, st), n in merged.items() if n]
        total["clips"] = total.get("clips", 0) + sign * summary.get("clips", 0)
        total["rows"] = total.get("rows", 0) + sign * summary.get("rows", 0)
        return total

    def apply(self, result: Funnel, total: dict) -> None:
        for name in self.FIELDS:
            getattr(result, name).update({k: n for k, n in total.get(name, []) if n > 0})
        result.by_source.update({(s, st): n for s, st, n in total.get("by_source", []) if n > 0})
        result.clips += total.get("clips", 0)


SUMMARY = _FunnelSummary()


def _registered(store: ScoreStore, shards: list[str] | None) -> pl.DataFrame:
    empty = pl.DataFrame(schema={"path": pl.Utf8, "shard": pl.Utf8})
    if REGISTRY_TABLE not in store.tables():
        return empty
    if shards is not None:  # one object (or row range) per shard: nothing else is opened
        parts = [store.read_shard(REGISTRY_TABLE, s, columns=["path", "shard"]) for s in shards]
        return pl.concat(parts) if parts else empty
    return store.query(f"select path, shard from {REGISTRY_TABLE}")


def _curated(store: ScoreStore, shards: list[str] | None) -> pl.DataFrame:
    if CURATED_TABLE not in store.tables():
        return pl.DataFrame(schema=COLUMNS)
    if shards is not None and len(shards) <= _READ_FEW:  # one object (or row range) per shard
        parts = [_with_columns(store.read_shard(CURATED_TABLE, s)) for s in shards]
        return pl.concat(parts) if parts else pl.DataFrame(schema=COLUMNS)
    return _read_curated(store, shards)


def _read_curated(store: ScoreStore, shards: list[str] | None) -> pl.DataFrame:
    present = store.query(f"select * from {CURATED_TABLE} limit 0").columns
    sql = f"select {', '.join(c for c in COLUMNS if c in present)} from {CURATED_TABLE}"
    if shards is None:
        return _with_columns(store.query(sql))
    return _with_columns(store.query(sql + " where shard in (select unnest(?::varchar[]))", [list(shards)]))


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


def _rules(reasons: pl.Series) -> pl.Series:
    """A rejection reason -> its rule (curation.rules.rule_name, vectorized): 'duplicate_of:/a.mp4'
    -> 'duplicate', 'near_duplicate_of:<id>' -> 'near_duplicate', bounds keep their full name."""
    frame = reasons.to_frame("r").select(
        pl.when(pl.col("r").str.starts_with("near_duplicate_of:")).then(pl.lit("near_duplicate"))
        .when(pl.col("r").str.starts_with("duplicate_of:")).then(pl.lit("duplicate"))
        .otherwise(pl.col("r")).alias("r"))
    return frame["r"]


def _stages(reasons: pl.Series) -> pl.Series:
    """A failure reason -> its stage, short for grouping (vectorized):
    "unreadable: empty file (0 bytes)" -> "unreadable: empty file"."""
    parts = reasons.to_frame("r").select(pl.col("r").str.splitn(": ", 2).alias("p")).unnest("p")
    head, detail = parts.columns[0], parts.columns[1]
    short = pl.col(detail).str.split(":").list.first().str.split("(").list.first().str.strip_chars()
    return parts.select(pl.when(pl.col(detail).is_null() | (pl.col(detail) == "")).then(pl.col(head))
                        .otherwise(pl.col(head) + ": " + short).alias("s"))["s"]
