"""A content-hash index for one table (the duplicate lookup: "has this video been registered in
another shard?"), kept by the compactor next to the table's segments.

    tables/<t>/_ids/<gen>-<token>.parquet   runs: (key, carried columns, shard, version) sorted by
                                            key, small row groups, statistics on the key only

Each compaction pass that absorbs new versions adds one run with their rows; runs are merged
LSM-style (the newest two whenever the newer one has reached a quarter of the older one's size,
so there are O(log n) runs and each row is rewritten O(log n) times: never an O(store)
rebuild per pass). The current runs are listed in the shard index's footer, so they switch
atomically with it. A lookup reads each run's footer (cached: runs are immutable) and only the
row groups whose key range can hold a wanted key, keeps the hits whose (shard, version) still
wins, and adds the loose objects not absorbed yet, read directly.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
from dataclasses import dataclass, field

import polars as pl

from curation_assets.store import layout
from curation_assets.store.layout import LOOSE, SEGMENT

IDS_DIR = "_ids"
ROW_GROUP = 2048
MERGE_RATIO = 4
MAX_RUNS = 8
_RUN_CACHE: dict[tuple[str, str], tuple[object, list]] = {}


@dataclass(frozen=True)
class IdIndexSpec:
    key: str = "video_id"
    columns: tuple[str, ...] = ("seq", "path")  # carried with each key
    # which rows count (e.g. only files that probed fine); a polars expression
    keep: object = field(default=None, compare=False)


def update(store, table: str, spec: IdIndexSpec, fresh: list[tuple[dict, pl.DataFrame]], index: pl.DataFrame,
           meta: dict, stamp: dt.datetime) -> None:
    """Add a run for the `fresh` (entry, rows) the pass absorbed; merge runs; record in `meta`."""
    runs = list(meta.get("id_runs", []))
    retired = dict(meta.get("retired", {}))
    frames = [_id_rows(spec, entry, frame) for entry, frame in fresh]
    frames = [f for f in frames if f.height]
    if frames:
        runs.append(_write_run(store, table, spec, pl.concat(frames, how="vertical_relaxed"), meta))
    live = index.filter(pl.col("live")).select("shard", "version")
    while len(runs) >= 2 and (runs[-2]["rows"] <= MERGE_RATIO * runs[-1]["rows"] or len(runs) > MAX_RUNS):
        older, newer = runs[-2], runs[-1]
        merged = pl.concat([_read_run(store, table, older["name"]), _read_run(store, table, newer["name"])])
        merged = merged.join(live, on=["shard", "version"], how="semi")  # entries of versions that lost: dropped
        run = _write_run(store, table, spec, merged, meta)
        runs[-2:] = [run]
        for old in (older, newer):
            retired[old["name"]] = stamp.isoformat()
    meta["id_runs"], meta["retired"] = runs, retired


def _id_rows(spec: IdIndexSpec, entry: dict, frame: pl.DataFrame) -> pl.DataFrame:
    if not frame.height or spec.key not in frame.columns:
        return pl.DataFrame()
    rows = frame.filter(pl.col(spec.key).is_not_null())
    if spec.keep is not None:
        rows = rows.filter(spec.keep)
    return rows.select(spec.key, *spec.columns, "shard").with_columns(pl.lit(entry["version"]).alias("version"))


def _write_run(store, table: str, spec: IdIndexSpec, rows: pl.DataFrame, meta: dict) -> dict:
    import pyarrow.parquet as pq

    gen = int(meta.get("id_gen", 0)) + 1
    meta["id_gen"] = gen
    name = f"{IDS_DIR}/{layout.index_name(gen)}"
    arrow = rows.sort(spec.key).to_arrow()
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd", row_group_size=ROW_GROUP, write_statistics=[spec.key])
    store.location.write_bytes(f"{layout.table_dir(table)}/{name}", buffer.getvalue())
    return {"name": name, "rows": rows.height}


def _read_run(store, table: str, name: str) -> pl.DataFrame:
    import pyarrow.parquet as pq

    return pl.from_arrow(pq.read_table(io.BytesIO(store.location.read_bytes(f"{layout.table_dir(table)}/{name}"))))


def _run_groups(store, table: str, name: str, key: str):
    """A run's footer and the first key of each row group (cached: runs never change)."""
    import pyarrow.parquet as pq

    cache_key = (store.location.url, f"{table}/{name}")
    if cache_key not in _RUN_CACHE:
        md = pq.read_metadata(store.location.open_input(f"{layout.table_dir(table)}/{name}"))
        col = md.schema.to_arrow_schema().get_field_index(key)
        mins = [md.row_group(i).column(col).statistics.min for i in range(md.num_row_groups)]
        if len(_RUN_CACHE) > 32:
            _RUN_CACHE.clear()
        _RUN_CACHE[cache_key] = (md, mins)
    return _RUN_CACHE[cache_key]


def lookup(store, table: str, spec: IdIndexSpec, keys: list[str], exclude_shard: str | None = None) -> pl.DataFrame:
    """Rows (key, carried columns, shard) of the current winners whose key is in `keys`, from
    every shard but `exclude_shard`: the runs for compacted shards, the loose objects directly."""
    import pyarrow as pa
    import pyarrow.compute as pc
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
            md, mins = _run_groups(store, table, run["name"], spec.key)
        except FileNotFoundError:
            continue  # retired and deleted after its grace: a newer index lists its successor
        groups = sorted({max(0, bisect.bisect_right(mins, k) - 1) for k in wanted}) if mins else []
        if not groups:
            continue
        pf = pq.ParquetFile(store.location.open_input(f"{layout.table_dir(table)}/{run['name']}"), metadata=md)
        got = pf.read_row_groups(groups, columns=[*schema_cols, "version"])
        got = got.filter(pc.is_in(got.column(spec.key), pa.array(wanted)))
        if got.num_rows:
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
