"""The candidate layouts, loaded from the same rows (rows.py), behind one small interface:

    write(table, shard, rows, code_version)   a shard's (re)run of one table
    read_shard(table, shard)                  its rows
    connect()                                 a DuckDB connection with every table as a view
                                              (named as in the catalog) and `shard_writes`
    compact(table)                            the layout's own compaction

- seg:   design (b), segstore.py: loose versioned objects + self-indexing segments
- delta: design (a), one Delta table per store table (delta-rs), `_shard_writes` a Delta table
         of its own (a write = data commit + bookkeeping commit), read by DuckDB's delta_scan
- today: the current layout (one object per (table, shard), views over a glob), for reference
"""

from __future__ import annotations

import datetime as dt
import glob as globmod
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from segstore import SegStore, new_version

TABLES = ("video_registry", "shots", "raw_videos", "resolution", "motion", "sampled_frames", "captions",
          "caption_repetition", "clip_similarity", "aesthetics", "ocr_area", "video_hashes", "near_duplicates",
          "curated_videos", "accelerated_videos")
DELTA_EXT = globmod.glob(os.path.join(os.path.dirname(duckdb.__file__), "..", "duckdb_extension_delta", "extensions",
                                      "*", "delta.duckdb_extension"))


def shard_key(n: int) -> str:
    return f"shard-{n:05d}"


class Seg:
    name = "seg"

    def __init__(self, root: Path):
        self.root = root / "seg"
        self.store = SegStore(self.root)

    def build(self, rows: Path, shards_per_segment: int = 1000, loose_tail: int = 100, rows_per_group: int = 1024) -> None:
        """Segments of `shards_per_segment` shards (a finished compaction), the last
        `loose_tail` shards as loose objects (not compacted yet): the steady state."""
        import json

        writes = pq.read_table(rows / "writes.parquet").to_pylist()
        by_table: dict[str, list[dict]] = {}
        for w in writes:
            by_table.setdefault(w["asset"], []).append(w)
        for table in TABLES:
            data = pq.read_table(rows / f"{table}.parquet")
            ws = sorted(by_table[table], key=lambda w: w["shard"])
            shards = [w["shard"] for w in ws]
            cut = len(shards) - loose_tail
            shard_col = data.column("shard").to_numpy(zero_copy_only=False)
            import numpy as np

            bounds = np.searchsorted(shard_col, shards + ["~"], side="left")
            folder = Path(self.store.folder(table))
            folder.mkdir(parents=True, exist_ok=True)
            version = "20261201T000000000000Z-00000000"
            gen = 0
            for start in range(0, cut, shards_per_segment):
                end = min(start + shards_per_segment, cut)
                part = data.slice(bounds[start], bounds[end] - bounds[start])
                gen += 1
                entries = [{"shard": w["shard"], "version": version, "rows": w["rows"], "code_version": w["code_version"],
                            "written_at": w["written_at"]} for w in ws[start:end]]
                meta = {b"curation:table": table.encode(), b"curation:kind": b"segment",
                        b"curation:writes": json.dumps(entries).encode(), b"curation:created": str(time.time() - 3600).encode()}
                pq.write_table(part.replace_schema_metadata(meta), folder / f"_seg-{gen:08d}.parquet", compression="zstd",
                               row_group_size=rows_per_group)
            for i in range(cut, len(shards)):
                part = data.slice(bounds[i], bounds[i + 1] - bounds[i]).replace_schema_metadata(None)
                if part.num_rows == 0:
                    part = data.schema.empty_table().replace_schema_metadata(None)
                self.store.write(table, shards[i], part, ws[i]["code_version"], version)

    def write(self, table, shard, rows, code_version=""):
        self.store.write(table, shard, rows, code_version)

    def read_shard(self, table, shard):
        return self.store.read_shard(table, shard)

    def connect(self, tables=TABLES):
        con = duckdb.connect()
        for t in tables:
            for sql in self.store.view_sqls(t):
                con.execute(sql)
        for sql in self.store.shard_writes_sql():
            con.execute(sql)
        return con

    def compact(self, table, **kw):
        return self.store.compact(table, **kw)


class Delta:
    name = "delta"

    def __init__(self, root: Path, storage_options: dict | None = None, uri: str | None = None):
        self.root = root / "delta"
        self.uri = uri or str(self.root)
        self.opts = storage_options

    def path(self, table):
        return f"{self.uri}/{table}"

    def build(self, rows: Path, shards_per_file: int = 1000) -> None:
        """Each table in one commit, files of `shards_per_file` shards (as after optimize)."""
        from deltalake import WriterProperties, write_deltalake

        for table in TABLES:
            data = pq.read_table(rows / f"{table}.parquet").replace_schema_metadata(None)
            write_deltalake(self.path(table), data, mode="overwrite", storage_options=self.opts,
                            target_file_size=max(1, int(data.nbytes / max(1, data.num_rows) * 64 * shards_per_file)),
                            writer_properties=WriterProperties(compression="ZSTD", max_row_group_size=1024))
        writes = pq.read_table(rows / "writes.parquet")
        writes = writes.set_column(writes.schema.get_field_index("written_at"), "written_at",
                                   pa.compute.cast(writes.column("written_at"), pa.timestamp("us")))
        write_deltalake(self.path("_shard_writes"), writes, mode="overwrite", storage_options=self.opts)

    def write(self, table, shard, rows, code_version=""):
        from deltalake import write_deltalake

        # rows of the shard replaced in one commit (a predicate overwrite: files holding the
        # shard rewritten without it, the new file added); then the bookkeeping commit
        write_deltalake(self.path(table), rows.replace_schema_metadata(None), mode="overwrite",
                        predicate=f"shard = '{shard}'", storage_options=self.opts)
        rec = pa.table({"asset": [table], "shard": [shard], "rows": pa.array([rows.num_rows], pa.int64()),
                        "code_version": [code_version],
                        "written_at": pa.array([dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)], pa.timestamp("us"))})
        write_deltalake(self.path("_shard_writes"), rec, mode="overwrite",
                        predicate=f"asset = '{table}' and shard = '{shard}'", storage_options=self.opts)

    def read_shard(self, table, shard):
        from deltalake import DeltaTable

        dt_ = DeltaTable(self.path(table), storage_options=self.opts)
        return dt_.to_pyarrow_table(filters=[("shard", "=", shard)])

    def connect(self, tables=TABLES):
        con = duckdb.connect()
        con.execute(f"load '{DELTA_EXT[0]}'")
        for t in tables:
            con.execute(f"create or replace view \"{t}\" as select * from delta_scan('{self.path(t)}')")
        con.execute(f"create or replace view shard_writes as select * from delta_scan('{self.path('_shard_writes')}')")
        return con

    def compact(self, table, **kw):
        from deltalake import DeltaTable

        return DeltaTable(self.path(table), storage_options=self.opts).optimize.compact(**kw)


class Today:
    """The current layout: one object per (table, shard), views over the table's glob."""
    name = "today"

    def __init__(self, root: Path):
        self.root = root / "data"

    def write(self, table, shard, rows, code_version=""):
        from curation_assets.store import ScoreStore

        ScoreStore(self.root / "curation.duckdb", location=self.root).replace_shard(table, shard, pl_from(rows), code_version)

    def read_shard(self, table, shard):
        return pq.read_table(self.root / "tables" / table / f"{shard}.parquet")

    def connect(self, tables=TABLES):
        from curation_assets.store.score_store import shard_writes_select

        con = duckdb.connect()
        for t in tables:
            con.execute(f"create or replace view \"{t}\" as select * from read_parquet('{self.root}/tables/{t}/*.parquet', union_by_name = true)")
        con.execute("create or replace view shard_writes as " + shard_writes_select(f"{self.root}/tables/*/*.parquet"))
        return con


def pl_from(rows):
    import polars as pl

    return pl.from_arrow(rows)


LAYOUTS = {"seg": Seg, "delta": Delta, "today": Today}
