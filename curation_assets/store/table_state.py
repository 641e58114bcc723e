"""One table's state as a reader sees it: the loose objects listed now, the current shard index,
and from the two, the file that wins each shard.

The shard index (`tables/<t>/_index/<gen>-<token>.parquet`, written only by the compactor) has
one row per (segment, shard) the table's live segments hold:

    shard, version, rows, code_version, written_at   as the writer published them
    segment, first_row                               where the rows are (sorted by shard in it)
    live                                             false: a later segment holds a newer version
    indexed_at                                       when the compactor added the entry (GC's clock)
    summary                                          per-shard counts some tables keep (JSON), else null

and its footer a JSON document (`curation:index`): the generation, segments retired with the
time they were retired, the duplicate-lookup runs (raw_videos), per-segment summary totals, and
objects found unreadable. Index files are immutable and uniquely named, and readers take the
highest generation, so an index is cached by name for the life of the process.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import polars as pl

from curation_assets.store import layout
from curation_assets.store.layout import INDEX_DIR, LOOSE, META_PREFIX, SEGMENT, ObjectName
from curation_assets.store.location import StoreLocation

INDEX_META_KEY = f"{META_PREFIX}index"
INDEX_SCHEMA = {
    "shard": pl.Utf8, "version": pl.Utf8, "rows": pl.Int64, "code_version": pl.Utf8,
    "written_at": pl.Datetime("us"), "segment": pl.Utf8, "first_row": pl.Int64, "live": pl.Boolean,
    "indexed_at": pl.Datetime("us"), "summary": pl.Utf8,
}
# a winner: the file that holds a shard's current rows
WINNER_SCHEMA = {
    "shard": pl.Utf8, "version": pl.Utf8, "source": pl.Int8, "file": pl.Utf8, "rows": pl.Int64,
    "code_version": pl.Utf8, "written_at": pl.Datetime("us"), "first_row": pl.Int64,
}

_CACHE_LOCK = threading.Lock()
_INDEX_CACHE: OrderedDict[tuple[str, str], tuple[pl.DataFrame, dict]] = OrderedDict()
_LEGACY_CACHE: dict[tuple[str, str], tuple[int, str, dt.datetime | None, bool]] = {}
_CACHE_SIZE = 48


@dataclass
class TableState:
    table: str
    loose: list[ObjectName] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)
    index_file: str | None = None  # name under _index/
    index: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=INDEX_SCHEMA))
    meta: dict = field(default_factory=dict)
    detail: dict[str, tuple[float, int, bool]] | None = None  # name -> (mtime, size, dir) when listed with detail
    index_files: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.loose or self.segments or self.index_file)

    def loose_frame(self) -> pl.DataFrame:
        return pl.DataFrame({
            "shard": [o.shard for o in self.loose], "version": [o.version for o in self.loose],
            "source": [LOOSE] * len(self.loose), "file": [o.name for o in self.loose],
            "rows": [o.rows for o in self.loose], "code_version": [o.code_version for o in self.loose],
            "written_at": [o.written_at for o in self.loose], "first_row": [None] * len(self.loose),
        }, schema=WINNER_SCHEMA)

    def winners(self) -> pl.DataFrame:
        """One row per shard: the candidate with the highest (version, source)."""
        live = self.index.filter(pl.col("live")).select(
            "shard", "version", pl.lit(SEGMENT, pl.Int8).alias("source"), pl.col("segment").alias("file"),
            "rows", "code_version", "written_at", "first_row")
        cands = pl.concat([live, self.loose_frame()]) if self.loose else live
        if not self.loose:  # the index has one live entry per shard: already the winners
            return cands
        return cands.sort("shard", "version", "source").unique(subset="shard", keep="last", maintain_order=True)

    def losers_in_segments(self, winners: pl.DataFrame | None = None) -> pl.DataFrame:
        """(segment, shard) pairs whose rows a segment still holds but that do not win: entries
        a later segment replaced, and compacted shards a newer loose object overrides."""
        winners = self.winners() if winners is None else winners
        dead = self.index.filter(~pl.col("live")).select("segment", "shard")
        if not self.loose:
            return dead
        overridden = self.index.filter(pl.col("live")).join(
            winners.filter(pl.col("source") == LOOSE).select("shard"), on="shard", how="semi").select("segment", "shard")
        return pl.concat([dead, overridden])

    def has_legacy(self) -> bool:
        return any(o.legacy for o in self.loose)


def read_state(location: StoreLocation, table: str, detail: bool = False) -> TableState:
    """List the table's folder (and its index folder) and load the current index."""
    folder = layout.table_dir(table)
    state = TableState(table)
    if detail:
        listed = location.list_detail(folder)
        state.detail = listed
        names = list(listed)
    else:
        names = location.list(folder)
    has_index_dir = False
    for name in names:
        if name == INDEX_DIR:
            has_index_dir = True
            continue
        if layout.segment_gen(name) is not None:
            state.segments.add(name)
            continue
        parsed = layout.parse_object_name(name)
        if parsed is not None:
            state.loose.append(parsed)
    if has_index_dir or not location.is_local:
        index_names = sorted((n for n in location.list(f"{folder}/{INDEX_DIR}") if layout.index_gen(n) is not None),
                             key=lambda n: (layout.index_gen(n), n))
        state.index_files = index_names
        if index_names:
            state.index_file = index_names[-1]
            state.index, state.meta = load_index(location, table, state.index_file)
    return state


def load_index(location: StoreLocation, table: str, name: str) -> tuple[pl.DataFrame, dict]:
    key = (location.url, f"{table}/{name}")
    with _CACHE_LOCK:
        if key in _INDEX_CACHE:
            _INDEX_CACHE.move_to_end(key)
            return _INDEX_CACHE[key]
    import pyarrow.parquet as pq

    data = location.read_bytes(f"{layout.table_dir(table)}/{INDEX_DIR}/{name}")
    arrow = pq.read_table(io.BytesIO(data))
    meta = json.loads((arrow.schema.metadata or {}).get(INDEX_META_KEY.encode(), b"{}"))
    frame = pl.from_arrow(arrow.replace_schema_metadata(None))
    frame = frame.with_columns([pl.lit(None, t).alias(c) for c, t in INDEX_SCHEMA.items() if c not in frame.columns])
    frame = frame.select(list(INDEX_SCHEMA)).cast(INDEX_SCHEMA)
    with _CACHE_LOCK:
        _INDEX_CACHE[key] = (frame, meta)
        while len(_INDEX_CACHE) > _CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return frame, meta


def index_bytes(frame: pl.DataFrame, meta: dict) -> bytes:
    import pyarrow.parquet as pq

    arrow = frame.select(list(INDEX_SCHEMA)).cast(INDEX_SCHEMA).to_arrow()
    arrow = arrow.replace_schema_metadata({INDEX_META_KEY.encode(): json.dumps(meta, sort_keys=True).encode()})
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


def legacy_footers(location: StoreLocation, table: str, names: list[str]) -> dict[str, tuple[int, str, dt.datetime | None, bool]]:
    """name -> (rows, code_version, written_at, is_append) from the footers of objects written by
    earlier code (their names do not carry these). Cached: those files are never rewritten."""
    out, todo = {}, []
    for name in names:
        hit = _LEGACY_CACHE.get((location.url, f"{table}/{name}"))
        if hit is not None:
            out[name] = hit
        else:
            todo.append(name)
    if not todo:
        return out
    import pyarrow.parquet as pq
    from concurrent.futures import ThreadPoolExecutor

    folder = layout.table_dir(table)

    def footer(name: str):
        try:
            md = pq.read_metadata(location.open_input(f"{folder}/{name}")).metadata or {}
        except FileNotFoundError:
            return name, None
        except Exception as exc:  # unreadable: counted by the integrity check, not here
            return name, exc
        get = lambda k: md.get(f"{META_PREFIX}{k}".encode(), b"").decode()  # noqa: E731
        when = get("written_at")
        return name, (int(get("rows") or 0), get("code_version"), dt.datetime.fromisoformat(when) if when else None,
                      get("kind") == "append")

    workers = 1 if location.is_local else 16
    with ThreadPoolExecutor(workers) as pool:
        for name, value in pool.map(footer, todo):
            if value is None or isinstance(value, Exception):
                continue
            _LEGACY_CACHE[(location.url, f"{table}/{name}")] = value
            out[name] = value
    return out


def clear_caches() -> None:
    from curation_assets.store.location import forget_listings

    with _CACHE_LOCK:
        _INDEX_CACHE.clear()
    _LEGACY_CACHE.clear()
    forget_listings()
