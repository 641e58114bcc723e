"""The compactor: merges a table's loose objects into segments, keeps the shard index, and deletes
(GC) what no reader needs any more. Head node only (`run`, `status`, the sensor,
`curation-assets compact`), one at a time (a lock; a second compactor skips); writers on other
machines never compact.

A pass over one table:
1. list the folder (with modification times) and load the current index;
2. absorb: the loose objects that win their shard and are not in a segment yet, once there are
   `min_loose` of them (or always with `force`); unreadable ones are skipped and recorded;
3. merge: segments whose live rows fell under a quarter of the target, or that are more than 30%
   dead (their shards re-run since), are rewritten with what still lives in them;
4. publish the new segment(s) (rows sorted by shard, row groups of 1,024 rows), then the next
   index generation (readers switch on the index: until it is visible they read the loose objects);
5. GC: delete a loose object a segment or a newer version replaced, a segment no index entry
   uses, an older index, a retired duplicate-lookup run, each only once its replacement has
   been visible for the grace period (default 1 h) and the file itself is older than that, so
   a reader that listed it before can still open it.

Every file is immutable and uniquely named: a re-run published during a pass has a name the
pass never saw, stays loose, and wins (newer version); nothing is overwritten, so no lock or
conditional write is needed on any store. Tables may keep more beside their segments
(`TableExtras`): per-shard summaries in the index (the funnel's counts) and a content-hash
index for the duplicate lookup (id_index.py).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import polars as pl

from curation_assets.store import id_index, layout, table_state
from curation_assets.store.layout import INDEX_DIR, LOOSE, META_PREFIX
from curation_assets.store.table_state import INDEX_SCHEMA, TableState

MIN_LOOSE_ENV = "CURATION_COMPACT_MIN_LOOSE"
GRACE_ENV = "CURATION_GC_GRACE_S"
DEFAULT_MIN_LOOSE = 256  # loose objects that make a table worth a pass that writes a segment
DEFAULT_GRACE_S = 3600.0
TARGET_ROWS = 250_000  # rows per segment
# rows per row group. A shard read decodes one or two of them (4-7 ms, not 1 ms, at 1,024); every
# scan over a table pays per row group, so at 1,024 the whole-table queries (the outputs, the
# catalog's counts and joins) spent most of their time there: 3-6x slower. Segments written
# before keep theirs until `compact --repack`.
ROW_GROUP = 16_384
DEAD_FRACTION = 0.3
log = logging.getLogger(__name__)


class Summarizer(Protocol):
    """Per-shard counts a table keeps in its index (JSON), so a whole-store count reads the
    index instead of every row: `shard(rows)` for one shard's rows, `add(total, summary)`."""

    def shard(self, rows: pl.DataFrame) -> dict: ...

    def add(self, total: dict | None, summary: dict, sign: int = 1) -> dict: ...


@dataclass
class TableExtras:
    summarizer: Summarizer | None = None
    # (id_index.IdIndexSpec): the duplicate lookup's content-hash runs, kept with the segments
    id_index: object | None = None


@dataclass
class CompactionReport:
    table: str
    absorbed: int = 0
    merged: list[str] = field(default_factory=list)
    rehashed: list[str] = field(default_factory=list)  # id index runs given their hash column (repack)
    segments: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        if self.skipped:
            return f"{self.table}: {self.skipped}"
        parts = []
        if self.absorbed:
            parts.append(f"{self.absorbed} shards into {len(self.segments)} segment(s)")
        if self.merged:
            parts.append(f"{len(self.merged)} segment(s) merged")
        if self.rehashed:
            parts.append(f"{len(self.rehashed)} id index run(s) rewritten")
        if self.deleted:
            parts.append(f"{len(self.deleted)} files deleted")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable: " + ", ".join(sorted(self.unreadable)[:3]))
        return f"{self.table}: " + ("; ".join(parts) or "nothing to do") + f" ({self.seconds:.1f} s)"


def min_loose() -> int:
    return int(os.environ.get(MIN_LOOSE_ENV) or DEFAULT_MIN_LOOSE)


def grace_seconds() -> float:
    return float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_S)


def compact_store(store, tables: list[str] | None = None, *, force: bool = False, extras: dict[str, TableExtras] | None = None,
                  min_loose_objects: int | None = None, grace_s: float | None = None,
                  report: Callable[[str], None] | None = None, repack: bool = False) -> list[CompactionReport]:
    """A pass over `tables` (default: all), under the compaction lock; [] when another runs."""
    from curation_assets.store.score_store import SHARD_WRITES

    with store.compaction_lock() as mine:
        if not mine:
            if report:
                report("compaction: another compactor is running; skipped")
            return []
        out = []
        for table in sorted(tables if tables is not None else store.tables() - {SHARD_WRITES}):
            result = compact_table(store, table, force=force, extras=(extras or {}).get(table),
                                   min_loose_objects=min_loose_objects, grace_s=grace_s, repack=repack)
            out.append(result)
            if report and (result.absorbed or result.merged or result.deleted or result.unreadable):
                report("compaction: " + result.line())
        return out


def compact_table(store, table: str, *, force: bool = False, extras: TableExtras | None = None,
                  min_loose_objects: int | None = None, grace_s: float | None = None,
                  now: float | None = None, repack: bool = False) -> CompactionReport:
    """One pass over `table`: absorb its loose objects when due (always with `force`), rewrite
    segments too dead or too small, delete what no reader needs. `repack`: also rewrite one
    segment written with another row group size (a pass holds one segment's rows; call again
    until `merged` is empty)."""
    t0 = time.perf_counter()
    extras = extras or TableExtras()
    threshold = min_loose() if min_loose_objects is None else min_loose_objects
    grace = grace_seconds() if grace_s is None else grace_s
    result = CompactionReport(table)
    state = store.state(table, detail=True)
    if not state.exists:
        result.skipped = "no objects"
        return result
    winners = store.winners(table, state)
    index, meta = state.index, json.loads(json.dumps(state.meta))  # a copy we may change
    if not _splits_by_shard(store, table):
        # not a shard table (the training set by preset, appends): never merged, only GC'd
        result.deleted = gc(store, state, winners, grace, now)
        result.seconds = round(time.perf_counter() - t0, 3)
        return result

    live = index.filter(pl.col("live"))
    absorb = winners.filter((pl.col("source") == LOOSE) & ~pl.col("append"))
    absorb = absorb.join(live.select("shard", pl.col("version").alias("iv")), on="shard", how="left").filter(
        pl.col("iv").is_null() | (pl.col("version") > pl.col("iv"))).drop("iv")
    # loose objects alone make a pass write only past the threshold (or with `force`): a few
    # loose shards next to one small segment must not rewrite that segment at every pass
    due = bool(absorb.height >= max(threshold, 1) or (force and absorb.height))
    merge = _segments_to_merge(index, absorb if due else absorb.clear())
    if repack and not merge:
        merge = _other_layout(store, table, sorted(set(live["segment"].to_list())))[:1]
    # the id index's runs of the earlier layout, once the segments are done: one a pass
    rehash = bool(repack and not merge and extras.id_index is not None
                  and id_index.unhashed_runs(store, table, meta, extras.id_index.key))
    stamp = dt.datetime.fromtimestamp(now or time.time(), dt.timezone.utc).replace(tzinfo=None)
    wants_write = due or merge or rehash
    if wants_write:
        index, meta, new_segments = _write_segments(store, state, index, meta, absorb, merge, extras, stamp, result,
                                                    rehash)
        result.segments = new_segments
        state = store.state(table, detail=True)  # what GC sees: the new index and segments
        winners = store.winners(table, state)
    result.deleted = gc(store, state, winners, grace, now)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _splits_by_shard(store, table: str) -> bool:
    schema = store._reference_schema(table)
    return schema is not None and "shard" in schema.names


def _segments_to_merge(index: pl.DataFrame, absorb: pl.DataFrame) -> list[str]:
    """Segments worth rewriting: too dead (their shards re-ran since) or too small."""
    if not index.height:
        return []
    replaced = set(absorb["shard"].to_list())
    per = index.with_columns((pl.col("live") & ~pl.col("shard").is_in(list(replaced))).alias("alive")).group_by(
        "segment").agg(pl.col("rows").sum().alias("total"), pl.col("rows").filter(pl.col("alive")).sum().alias("alive_rows"))
    out, budget = [], TARGET_ROWS
    small = per.filter(pl.col("alive_rows") < TARGET_ROWS // 4).sort("alive_rows")
    dead = per.filter(pl.col("total") > 0).filter(1 - pl.col("alive_rows") / pl.col("total") > DEAD_FRACTION)
    # a lone small segment is merged only when something is written anyway
    candidates = dead["segment"].to_list() + (small["segment"].to_list() if small.height > 1 or absorb.height else [])
    rows = dict(zip(per["segment"].to_list(), per["alive_rows"].to_list()))
    for segment in dict.fromkeys(candidates):
        if rows[segment] <= budget:
            out.append(segment)
            budget -= rows[segment]
    return out


def _other_layout(store, table: str, segments: list[str]) -> list[str]:
    """The segments whose row groups are not ROW_GROUP rows (written before it changed)."""
    out = []
    for segment in segments:
        try:
            md = store._segment_footer(f"{layout.table_dir(table)}/{segment}")
        except Exception:  # gone or unreadable: the regular passes deal with it
            continue
        if md.num_row_groups and md.row_group(0).num_rows != min(ROW_GROUP, md.num_rows):
            out.append(segment)
    return out


def _read_loose(store, table: str, absorb: pl.DataFrame, result: CompactionReport) -> list[tuple[dict, pl.DataFrame]]:
    """The absorbed objects' rows, each checked against its name (shard, rows)."""
    folder = layout.table_dir(table)
    parts = []
    for entry in absorb.iter_rows(named=True):
        try:
            frame = store._read_object(table, entry["file"])
        except FileNotFoundError:
            continue  # superseded and deleted meanwhile: the next pass sees the newer one
        except Exception as exc:
            result.unreadable[entry["file"]] = getattr(exc, "reason", None) or str(exc)[:300]
            log.warning("compaction: %s/%s is unreadable (%s): skipped", folder, entry["file"], result.unreadable[entry["file"]])
            continue
        if frame.height != (entry["rows"] if entry["rows"] is not None else frame.height) or (
                frame.height and ("shard" not in frame.columns or frame["shard"].n_unique() != 1
                                  or frame["shard"][0] != entry["shard"])):
            result.unreadable[entry["file"]] = "its rows do not match its name (shard, row count)"
            continue
        parts.append((entry, frame))
    return parts


def _read_live_rows(store, table: str, index: pl.DataFrame, segment: str, replaced: set[str],
                    result: CompactionReport) -> list[tuple[dict, pl.DataFrame]] | None:
    """What still lives in a segment being merged: its live entries not replaced by this pass."""
    import pyarrow.parquet as pq

    key = f"{layout.table_dir(table)}/{segment}"
    try:
        arrow = pq.read_table(store.location.open_input(key))
    except FileNotFoundError:
        return None
    except Exception as exc:
        result.unreadable[segment] = str(exc)[:300]
        log.warning("compaction: segment %s is unreadable (%s): not merged", key, result.unreadable[segment])
        return None
    frame = pl.from_arrow(arrow.replace_schema_metadata(None))
    out = []
    for entry in index.filter((pl.col("segment") == segment) & pl.col("live")).iter_rows(named=True):
        if entry["shard"] in replaced:
            continue
        out.append((entry, frame.slice(entry["first_row"], entry["rows"])))
    return out


def _write_segments(store, state: TableState, index: pl.DataFrame, meta: dict, absorb: pl.DataFrame,
                    merge: list[str], extras: TableExtras, stamp: dt.datetime, result: CompactionReport,
                    rehash: bool = False):
    table = state.table
    parts = _read_loose(store, table, absorb, result)
    replaced = {entry["shard"] for entry, _ in parts}
    fresh = [(entry, frame) for entry, frame in parts]  # new versions: what the id index has not seen
    merged = []
    for segment in merge:
        rows = _read_live_rows(store, table, index, segment, replaced, result)
        if rows is None:
            continue
        merged.append(segment)
        parts += rows
    result.absorbed = len(replaced)
    result.merged = merged
    gen = max([layout.segment_gen(s) or 0 for s in state.segments] + [int(meta.get("gen", 0))]) + 1
    new_entries, new_segments, totals = [], [], dict(meta.get("seg_totals", {}))
    for chunk in _chunks(sorted(parts, key=lambda p: p[0]["shard"]), TARGET_ROWS):
        name = layout.segment_name(gen)
        gen += 1
        frames = [f for _, f in chunk]
        data = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        entries, first, total = [], 0, None
        for entry, frame in chunk:
            summary = None
            if extras.summarizer is not None:
                summary_obj = extras.summarizer.shard(frame) if "summary" not in entry or entry.get("summary") is None \
                    else json.loads(entry["summary"])
                summary = json.dumps(summary_obj, sort_keys=True)
                total = extras.summarizer.add(total, summary_obj)
            entries.append({"shard": entry["shard"], "version": entry["version"], "rows": frame.height,
                            "code_version": entry["code_version"] or "", "written_at": entry["written_at"],
                            "segment": name, "first_row": first, "live": True, "indexed_at": stamp, "summary": summary})
            first += frame.height
        _publish_segment(store, table, name, data, entries)
        if total is not None:
            totals[name] = total
        new_entries += entries
        new_segments.append(name)
    keep = index.filter(~pl.col("segment").is_in(merged))
    # entries this pass replaced stay in their old segment as dead rows (the segment has other live shards)
    keep = keep.with_columns(pl.when(pl.col("shard").is_in(list(replaced))).then(False).otherwise(pl.col("live")).alias("live"))
    new = pl.DataFrame(new_entries, schema=INDEX_SCHEMA) if new_entries else pl.DataFrame(schema=INDEX_SCHEMA)
    index = pl.concat([keep, new]).sort("shard", "live", "segment")
    retired = dict(meta.get("retired", {}))
    for segment in merged:
        retired[segment] = stamp.isoformat()
        totals.pop(segment, None)
    present = set(state.segments) | set(new_segments) | set((state.detail or {}))
    meta.update(gen=gen, retired={k: v for k, v in retired.items() if k in present or _is_run(k)}, seg_totals=totals,
                unreadable={**{k: v for k, v in meta.get("unreadable", {}).items() if k in present}, **result.unreadable})
    if extras.id_index is not None:
        result.rehashed = id_index.update(store, table, extras.id_index, fresh, index, meta, stamp, rehash)
    store.location.write_bytes(f"{layout.table_dir(table)}/{INDEX_DIR}/{layout.index_name(gen)}",
                               table_state.index_bytes(index, meta))
    return index, meta, new_segments


def _is_run(name: str) -> bool:
    return name.startswith("_ids/")


def _chunks(parts: list, target: int):
    chunk, rows = [], 0
    for part in parts:
        if chunk and rows + part[1].height > target:
            yield chunk
            chunk, rows = [], 0
        chunk.append(part)
        rows += part[1].height
    if chunk:
        yield chunk


def _publish_segment(store, table: str, name: str, data: pl.DataFrame, entries: list[dict]) -> None:
    import pyarrow.parquet as pq

    arrow = data.to_arrow()
    listing = [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in e.items()
                if k in ("shard", "version", "rows", "code_version", "written_at", "first_row")} for e in entries]
    meta = {f"{META_PREFIX}table": table, f"{META_PREFIX}kind": "segment", f"{META_PREFIX}entries": json.dumps(listing)}
    arrow = arrow.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd", row_group_size=ROW_GROUP)
    store.location.write_bytes(f"{layout.table_dir(table)}/{name}", buffer.getvalue())


# ---- GC --------------------------------------------------------------------------------------

def gc(store, state: TableState, winners: pl.DataFrame, grace_s: float, now: float | None = None) -> list[str]:
    """Delete what no reader needs once its replacement has been visible for `grace_s` and the
    file itself is that old. Never a winner, never a file younger than the grace."""
    now = now or time.time()
    folder = layout.table_dir(state.table)
    detail = state.detail or store.location.list_detail(folder)
    old_enough = lambda name: name in detail and now - detail[name][0] >= grace_s  # noqa: E731
    winning = set(winners["file"].to_list())
    live = state.index.filter(pl.col("live"))
    indexed = {s: (v, at) for s, v, at in live.select("shard", "version", "indexed_at").iter_rows()}
    bad_segments = set(state.meta.get("unreadable", {})) & state.segments
    absorbed_by = dict(live.select("shard", "segment").iter_rows())
    newer: dict[str, list[tuple[str, float]]] = {}
    for obj in state.loose:
        if obj.name in detail:
            newer.setdefault(obj.shard, []).append((obj.version, detail[obj.name][0]))
    doomed = []
    for obj in state.loose:
        if obj.name in winning or not old_enough(obj.name):
            continue
        # when something that makes this object unnecessary became visible: a segment holding
        # this version or a newer one (the index entry's time), or a newer loose object
        replaced_at = [m for v, m in newer.get(obj.shard, []) if v > obj.version]
        hit = indexed.get(obj.shard)
        if hit is not None and hit[0] >= obj.version and hit[1] is not None and absorbed_by.get(obj.shard) not in bad_segments:
            replaced_at.append(hit[1].replace(tzinfo=dt.timezone.utc).timestamp())
        if replaced_at and now - min(replaced_at) >= grace_s:
            doomed.append(obj.name)
    used = set(state.index["segment"].to_list())
    retired = {k: dt.datetime.fromisoformat(v).replace(tzinfo=dt.timezone.utc).timestamp()
               for k, v in state.meta.get("retired", {}).items()}
    for segment in state.segments:
        if segment in used or not old_enough(segment):
            continue
        since = retired.get(segment, detail[segment][0])  # never indexed: a pass that did not finish
        if now - since >= grace_s:
            doomed.append(segment)
    index_detail = store.location.list_detail(f"{folder}/{INDEX_DIR}") if state.index_files else {}
    names = sorted((n for n in index_detail if layout.index_gen(n) is not None), key=lambda n: (layout.index_gen(n), n))
    for i, name in enumerate(names[:-1]):
        newer_visible = min(index_detail[n][0] for n in names[i + 1:])
        if now - newer_visible >= grace_s and now - index_detail[name][0] >= grace_s:
            doomed.append(f"{INDEX_DIR}/{name}")
    for key, since in retired.items():
        if _is_run(key) and now - since >= grace_s:
            doomed.append(key)
    deleted = []
    for name in doomed:
        if store.location.delete(f"{folder}/{name}"):
            deleted.append(name)
    return deleted
