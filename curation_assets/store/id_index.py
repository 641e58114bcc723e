"""A content-hash index for one table (the duplicate lookup: "has this video been registered in
another shard?"), kept by the compactor next to the table's segments.

    tables/<t>/_ids/<gen>-<token>.parquet   runs: (hash, key, carried columns, shard, version)
                                            sorted by (hash, key), small row groups, statistics on
                                            the hash only

Each compaction pass that absorbs new versions adds one run with their rows; runs are merged
LSM-style (the newest two whenever the newer one has reached a quarter of the older one's size,
so there are O(log n) runs and each row is rewritten O(log n) times: never an O(store)
rebuild per pass). The current runs are listed in the shard index's footer, so they switch
atomically with it. A lookup reads each run's footer (cached: runs are immutable), then only the
hash column of the row groups whose hash range can hold a wanted key, and every column only of
the few groups where a wanted hash is (a lookup's cost follows the keys it asks for, not the
run: the hash is 8 bytes a row where the key is a 64-character digest, and the rows carry a
path; at 10M clips a shard of 512 keys read 1M rows of every column before, 0.75 s). It keeps
the hits whose (shard, version) still wins, and adds the loose objects not absorbed yet, read
directly. The hash is blake2b's first 8 bytes (stable across versions and machines, unlike
polars' or DuckDB's hash); runs written before it have none and are read by the key's range.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field

import polars as pl

from curation_assets.store import layout
from curation_assets.store.layout import LOOSE, SEGMENT

IDS_DIR = "_ids"
ROW_GROUP = 2048
HASH = "_key_hash"
MERGE_RATIO = 4
MAX_RUNS = 8
_RUN_CACHE: dict[tuple[str, str], _RunFooter] = {}


@dataclass(frozen=True)
class IdIndexSpec:
    key: str = "video_id"
    columns: tuple[str, ...] = ("seq", "path")  # carried with each key
    # which rows count (e.g. only files that probed fine); a polars expression
    keep: object = field(default=None, compare=False)


def update(store, table: str, spec: IdIndexSpec, fresh: list[tuple[dict, pl.DataFrame]], index: pl.DataFrame,
           meta: dict, stamp: dt.datetime, rehash: bool = False) -> list[str]:
    """Add a run for the `fresh` (entry, rows) the pass absorbed; merge runs; record in `meta`.
    `rehash`: also rewrite the first run written without the hash column (`compact --repack`).
    Returns the runs rewritten that way."""
    runs = list(meta.get("id_runs", []))
    retired = dict(meta.get("retired", {}))
    frames = [_id_rows(spec, entry, frame) for entry, frame in fresh]
    frames = [f for f in frames if f.height]
    if frames:
        runs.append(_write_run(store, table, spec, pl.concat(frames, how="vertical_relaxed"), meta))
    live = index.filter(pl.col("live")).select("shard", "version")
    rehashed = unhashed_runs(store, table, {"id_runs": runs}, spec.key)[:1] if rehash else []
    for name in rehashed:
        at = next(i for i, run in enumerate(runs) if run["name"] == name)
        runs[at] = _rewrite_sorted(store, table, spec, [name], live, meta)
        retired[name] = stamp.isoformat()
    while len(runs) >= 2 and (runs[-2]["rows"] <= MERGE_RATIO * runs[-1]["rows"] or len(runs) > MAX_RUNS):
        older, newer = runs[-2], runs[-1]
        # entries of versions that lost since are dropped
        runs[-2:] = [_rewrite_sorted(store, table, spec, [older["name"], newer["name"]], live, meta)]
        for old in (older, newer):
            retired[old["name"]] = stamp.isoformat()
    meta["id_runs"], meta["retired"] = runs, retired
    return rehashed


def unhashed_runs(store, table: str, meta: dict, key: str) -> list[str]:
    """The runs written before the hash column (read by the key's range: every column of a row
    group per key, 0.86 s against 0.15-0.22 s for a 496-key shard at ten million clips)."""
    out = []
    for run in meta.get("id_runs", []):
        try:
            if not _run_footer(store, table, run["name"], key).hashed:
                out.append(run["name"])
        except FileNotFoundError:
            continue
    return out


def _id_rows(spec: IdIndexSpec, entry: dict, frame: pl.DataFrame) -> pl.DataFrame:
    if not frame.height or spec.key not in frame.columns:
        return pl.DataFrame()
    rows = frame.filter(pl.col(spec.key).is_not_null())
    if spec.keep is not None:
        rows = rows.filter(spec.keep)
    return rows.select(spec.key, *spec.columns, "shard").with_columns(pl.lit(entry["version"]).alias("version"))


def key_hashes(keys) -> list[int]:
    """Each key's 64-bit hash (signed, as Parquet's int64 statistics order it)."""
    return [int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8).digest(), "big", signed=True)
            for k in keys]


def _write_run(store, table: str, spec: IdIndexSpec, rows: pl.DataFrame, meta: dict) -> dict:
    import pyarrow.parquet as pq

    name = _next_run_name(meta)
    arrow = _with_hash(rows, spec.key).sort(HASH, spec.key).to_arrow()
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd", row_group_size=ROW_GROUP, write_statistics=[HASH])
    store.location.write_bytes(f"{layout.table_dir(table)}/{name}", buffer.getvalue())
    return {"name": name, "rows": rows.height}


def _next_run_name(meta: dict) -> str:
    gen = int(meta.get("id_gen", 0)) + 1
    meta["id_gen"] = gen
    return f"{IDS_DIR}/{layout.index_name(gen)}"


def _with_hash(rows: pl.DataFrame, key: str) -> pl.DataFrame:
    """Fresh rows, or a run written before the hash column (given one when it is next merged)."""
    if HASH not in rows.columns:  # a million keys at a time: ten million Python strings held gigabytes
        keys = rows[key]
        hashes = [pl.Series(HASH, key_hashes(keys.slice(at, 1 << 20).to_list()), dtype=pl.Int64)
                  for at in range(0, len(keys), 1 << 20)]
        rows = rows.with_columns(pl.concat(hashes) if hashes else pl.Series(HASH, [], dtype=pl.Int64))
    return rows.select(HASH, pl.exclude(HASH))  # first, in every run: runs are concatenated to merge


def _rewrite_sorted(store, table: str, spec: IdIndexSpec, names: list[str], live: pl.DataFrame, meta: dict) -> dict:
    """One new run of the rows of the runs `names` whose (shard, version) is in `live`, sorted
    by (hash, key). DuckDB merges and sorts within its memory limit, spilling to disk: the
    biggest run at ten million clips is 8.7M rows (650 MB compressed), and reading runs whole
    into polars to merge them took 5.8 GB; at a hundred million it would not fit. A run written
    before the hash column is streamed through a copy that adds it, a batch at a time."""
    import os
    import tempfile

    import pyarrow.parquet as pq

    from curation_assets.store.score_store import duckdb_connection
    from curation_assets.store.sql import sql_list, sql_str

    name = _next_run_name(meta)
    with tempfile.TemporaryDirectory(prefix="curation-id-runs-") as tmp:
        sources = []
        for n, run in enumerate(names):
            source = store.location.local_file(f"{layout.table_dir(table)}/{run}", cache_dir=tmp)
            if not _run_footer(store, table, run, spec.key).hashed:
                source = _with_hash_file(source, spec.key, os.path.join(tmp, f"hashed{n}.parquet"))
            sources.append(source)
        out = os.path.join(tmp, "run.parquet")
        con = duckdb_connection()
        try:
            con.register("_live", live.to_arrow())
            live_rows = (f"select r.{HASH}, r.* exclude ({HASH}) from read_parquet({sql_list(sources)}, "
                         "union_by_name = true) r semi join _live l on r.shard = l.shard and r.version = l.version")
            con.execute(f"copy ({live_rows} order by r.{HASH}, r.\"{spec.key}\") "
                        f"to {sql_str(out)} (format parquet, compression zstd, row_group_size {ROW_GROUP})")
        finally:
            con.close()
        rows = pq.read_metadata(out).num_rows
        store.location.put_file(out, f"{layout.table_dir(table)}/{name}")
    return {"name": name, "rows": rows}


def _with_hash_file(source: str, key: str, target: str) -> str:
    """`source` (a run without the hash column) copied with it, a batch at a time."""
    import pyarrow.parquet as pq

    run = pq.ParquetFile(source)
    schema = _with_hash(pl.from_arrow(run.schema_arrow.empty_table()), key).to_arrow().schema
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for batch in run.iter_batches(batch_size=1 << 20):
            writer.write_table(_with_hash(pl.from_arrow(batch), key).to_arrow())
    return target


@dataclass(frozen=True)
class _RunFooter:
    metadata: object
    hashed: bool  # sorted by HASH (else by the key: a run written before the hash)
    mins: list  # the first HASH (or key) of each row group


def _run_footer(store, table: str, name: str, key: str) -> _RunFooter:
    """A run's footer, cached: runs never change."""
    import pyarrow.parquet as pq

    cache_key = (store.location.url, f"{table}/{name}")
    if cache_key not in _RUN_CACHE:
        md = pq.read_metadata(store.location.open_input(f"{layout.table_dir(table)}/{name}"))
        names = md.schema.to_arrow_schema().names
        hashed = HASH in names
        col = names.index(HASH if hashed else key)
        mins = [md.row_group(i).column(col).statistics.min for i in range(md.num_row_groups)]
        if len(_RUN_CACHE) > 32:
            _RUN_CACHE.clear()
        _RUN_CACHE[cache_key] = _RunFooter(md, hashed, mins)
    return _RUN_CACHE[cache_key]


def _groups_holding(mins: list, values) -> list[int]:
    """The row groups of a sorted run that can hold each value: from the group before the first
    that starts with it (a value's rows can run over a group boundary) to the last that starts
    at or below it."""
    groups = set()
    for v in values:
        last = bisect.bisect_right(mins, v) - 1
        if last < 0:
            continue
        groups.update(range(max(0, bisect.bisect_left(mins, v) - 1), last + 1))
    return sorted(groups)


def _run_hits(pf, footer: _RunFooter, spec: IdIndexSpec, wanted: list[str], columns: list[str]):
    """The rows of one run whose key is wanted (a pyarrow table), reading the hash column of the
    groups that can hold them, then every column of the groups that do."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if footer.hashed:
        hashes = key_hashes(wanted)
        groups = _groups_holding(footer.mins, hashes)
        if not groups:
            return None
        found = pc.is_in(pf.read_row_groups(groups, columns=[HASH]).column(HASH), pa.array(hashes, pa.int64()))
        rows = np.flatnonzero(found.to_numpy(zero_copy_only=False))
        if not len(rows):
            return None
        # each hit row's group: the groups were read one after another
        sizes = [pf.metadata.row_group(g).num_rows for g in groups]
        groups = sorted({groups[i] for i in np.searchsorted(np.cumsum(sizes), rows, side="right")})
    else:
        groups = _groups_holding(footer.mins, wanted)
        if not groups:
            return None
    got = pf.read_row_groups(groups, columns=columns)
    got = got.filter(pc.is_in(got.column(spec.key), pa.array(wanted)))
    return got if got.num_rows else None


def lookup(store, table: str, spec: IdIndexSpec, keys: list[str], exclude_shard: str | None = None) -> pl.DataFrame:
    """Rows (key, carried columns, shard) of the current winners whose key is in `keys`, from
    every shard but `exclude_shard`: the runs for compacted shards, the loose objects directly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema_cols = [spec.key, *spec.columns, "shard"]
    wanted = sorted(set(k for k in keys if k))
    if not wanted:
        return pl.DataFrame()
    state = store.state(table)
    if not state.exists:
        return pl.DataFrame()
    winners = store.winners(table, state)
    hits = []
    for run in state.meta.get("id_runs", []):
        try:
            footer = _run_footer(store, table, run["name"], spec.key)
        except FileNotFoundError:
            continue  # retired and deleted after its grace: a newer index lists its successor
        pf = pq.ParquetFile(store.location.open_input(f"{layout.table_dir(table)}/{run['name']}"),
                            metadata=footer.metadata)
        got = _run_hits(pf, footer, spec, wanted, [*schema_cols, "version"])
        if got is not None:
            hits.append(pl.from_arrow(got))
    found = pl.concat(hits) if hits else None
    if found is not None:
        compacted = winners.filter(pl.col("source") == SEGMENT).select("shard", "version")
        found = found.join(compacted, on=["shard", "version"], how="semi").drop("version")
    loose = winners.filter(pl.col("source") == LOOSE)
    if loose.height:
        from curation_assets.store.score_store import duckdb_connection

        folder = layout.table_dir(table)
        with store.readable([table], {table: _only_loose(state, loose)}) as where:
            files = [where.path(f"{folder}/{f}") for f in loose["file"].to_list()]
            con = duckdb_connection()
            try:
                con.register("_wanted", pa.table({"k": wanted}))
                frame = con.execute(
                    f"select * from read_parquet({_sql_list(files)}, union_by_name = true) "
                    f"where \"{spec.key}\" in (select k from _wanted)").pl()
            finally:
                con.close()
        if frame.height and spec.keep is not None:
            frame = frame.filter(spec.keep)
        if frame.height:
            part = frame.select(schema_cols)
            found = part if found is None else pl.concat([found, part], how="vertical_relaxed")
    if found is None:
        return pl.DataFrame()
    return found.filter(pl.col("shard") != exclude_shard) if exclude_shard is not None else found


def _only_loose(state, loose: pl.DataFrame):
    """A state whose winners are just these loose objects (for `readable`'s copy)."""
    from curation_assets.store.table_state import TableState

    names = set(loose["file"].to_list())
    return TableState(state.table, loose=[o for o in state.loose if o.name in names])


def _sql_list(items) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"
