"""The score store: one immutable Parquet object per (table, shard) under a store location.

Layout under the location (a local folder by default, or an fsspec URL such as s3://bucket/prefix):

    tables/<table>/<shard>.parquet     a shard's rows for one table, replaced whole
    frames/..., accelerated/...        sampled frames and sped-up clips (see frames/files.py)

A write is one atomic publish of a whole object (temp name + rename locally, one PUT on an
object store), so any number of processes on any number of machines write shards at once
with no lock and no shared database file: two writers of the same shard leave one complete
version (the last to publish), and readers never see half an object. Re-running a shard
replaces its object, so writes are idempotent.

Bookkeeping travels inside the object: its Parquet key-value metadata carries the table,
the shard, the row count, the code version and the write time. `shard_writes` is read from
those footers, so it can never describe rows that are not there, nor miss rows that are.

DuckDB stays the query engine: `query()` runs on an in-memory DuckDB whose views read the
objects (`read_parquet` over a glob; on an object store, over a temporary local copy fetched
concurrently through fsspec, see `readable`).
`DIR/curation.duckdb` is the user's catalog of the same tables (see catalog.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import re
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import quote, unquote

import duckdb
import polars as pl
from filelock import FileLock, Timeout

from curation_assets.store.location import StoreLocation, StoreLocationError

# Read from the objects' footers; one row per (asset, shard) object.
SHARD_WRITES = "shard_writes"
TABLES_PREFIX = "tables"
META_PREFIX = "curation:"
_KEY_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    pass


class ScoreStore:
    """`db_path`: the DuckDB catalog file (DIR/curation.duckdb); `location`: where the objects
    live (default: $CURATION_STORE, else the catalog's folder)."""

    def __init__(self, db_path: str | Path, lock_timeout_s: float = 600.0, location: str | Path | StoreLocation | None = None):
        from curation_assets import settings

        self.db_path = Path(db_path)
        if location is None:
            location = settings.store_location() or self.db_path.parent
        self.location = location if isinstance(location, StoreLocation) else StoreLocation(location)
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=lock_timeout_s)
        self._catalog_views: set[str] = set()
        self._catalog_checked = False

    # ---- naming ------------------------------------------------------------------------
    @staticmethod
    def object_key(table: str, shard: str) -> str:
        _check_identifier(table)
        name = shard if _KEY_SAFE.match(shard) else quote(shard, safe="")
        return f"{TABLES_PREFIX}/{table}/{name}.parquet"

    def object_url(self, table: str, shard: str) -> str:
        return self.location.resolve(self.object_key(table, shard))

    # ---- reads -------------------------------------------------------------------------
    def tables(self) -> set[str]:
        found = {t for t in self.location.list(TABLES_PREFIX)
                 if t.replace("_", "").isalnum() and any(n.endswith(".parquet") for n in self.location.list(f"{TABLES_PREFIX}/{t}"))}
        return found | {SHARD_WRITES} if found else found

    def shards(self, table: str) -> list[str]:
        _check_identifier(table)
        return [unquote(n[: -len(".parquet")]) for n in self.location.list(f"{TABLES_PREFIX}/{table}") if n.endswith(".parquet")]

    def query(self, sql: str, params: Sequence | None = None) -> pl.DataFrame:
        """Run SQL over the store's tables (only the tables the SQL names are bound)."""
        con = duckdb.connect()
        try:
            named = sorted(t for t in self.tables() if re.search(rf"\b{t}\b", sql))
            with self.readable(named) as where:
                for table in named:
                    con.execute(self.view_sql(table, where=where))
                return con.execute(sql, params or []).pl()
        finally:
            con.close()

    @contextlib.contextmanager
    def readable(self, tables: Sequence[str]) -> Iterator[StoreLocation]:
        """Where DuckDB reads `tables` from: the location itself when it is a folder; for an
        object store, a temporary local copy of those tables' objects, fetched with one
        listing and concurrent GETs. DuckDB reading each object through fsspec costs several
        sequential requests per object (~125 ms per shard against a local S3 server; see
        benchmarks/s3_store_benchmark.py), which a query over thousands of shards cannot
        afford; the copy reads the same objects, so the answer is the same."""
        if self.location.is_local:
            yield self.location
            return
        import tempfile

        wanted = {t for t in tables if t != SHARD_WRITES}
        if SHARD_WRITES in tables:  # read from every table's footers
            wanted = set(self.tables()) - {SHARD_WRITES}
        fs = self.location.fs
        prefix = fs._strip_protocol(self.location.path(TABLES_PREFIX)).rstrip("/")  # as find() spells paths
        remote = [p for t in sorted(wanted) for p in fs.find(f"{prefix}/{t}")
                  if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith(".")]
        with tempfile.TemporaryDirectory(prefix="curation-store-read-") as tmp:
            for path, data in (fs.cat(remote) if remote else {}).items():
                target = Path(tmp, TABLES_PREFIX, path[len(prefix) + 1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            yield StoreLocation(tmp)

    def select_sql(self, table: str, where: StoreLocation | None = None) -> str:
        """The SELECT that reads `table` from its objects (also used for the catalog file);
        `where`: a local copy of them (see `readable`)."""
        where = where or self.location
        if table == SHARD_WRITES:
            return shard_writes_select(where.glob_url(f"{TABLES_PREFIX}/*/*.parquet"))
        _check_identifier(table)
        glob = _sql_str(where.glob_url(f"{TABLES_PREFIX}/{table}/*.parquet"))
        # union_by_name: a newer scorer version may add columns; older shards read NULL there
        return f"select * from read_parquet({glob}, union_by_name = true)"

    def view_sql(self, table: str, replace: bool = False, where: StoreLocation | None = None) -> str:
        create = "create or replace view" if replace else "create view"
        return f'{create} "{table}" as {self.select_sql(table, where)}'

    def read_shard(self, table: str, shard: str) -> pl.DataFrame:
        import pyarrow.parquet as pq

        key = self.object_key(table, shard)
        try:  # one read of one whole object: a concurrent replace publishes a new one beside it
            return pl.from_arrow(pq.read_table(io.BytesIO(self.location.read_bytes(key))))
        except FileNotFoundError:
            pass
        shards = self.shards(table)
        if not shards:
            raise StoreError(
                f"table {table!r} does not exist in {self.location.url}: materialize the upstream asset "
                f"for shard {shard!r} first"
            )
        # a shard not written yet reads as no rows, with the table's columns
        schema = pq.read_schema(io.BytesIO(self.location.read_bytes(self.object_key(table, shards[-1]))))
        return pl.from_arrow(schema.empty_table())

    # ---- writes ------------------------------------------------------------------------
    def replace_shard(self, table: str, shard: str, rows: pl.DataFrame, code_version: str = "") -> int:
        """Replace every row of `shard` in `table` by `rows`: one atomic object publish."""
        if "shard" not in rows.columns:
            rows = rows.with_columns(pl.lit(shard).alias("shard"))
        if rows.height and set(rows["shard"].unique().to_list()) != {shard}:
            raise StoreError(f"rows for {table} carry shards other than {shard!r}")
        return self.replace_partition(table, shard, rows, code_version)

    def replace_partition(self, table: str, key: str, rows: pl.DataFrame, code_version: str = "",
                          written_at: dt.datetime | None = None) -> int:
        """Replace the object `table`/`key` by `rows` as they are (no shard column added):
        for tables partitioned by something else, e.g. the training set by preset.
        `written_at` is only given by the migration, which keeps the original write times."""
        _check_identifier(table)
        self._refuse_unmigrated()
        rows = self._conform(table, key, rows)
        when = written_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        meta = {"table": table, "shard": key, "rows": str(rows.height), "code_version": code_version or "",
                "written_at": when.isoformat()}
        self.location.write_bytes(self.object_key(table, key), _parquet_bytes(rows, meta))
        self._ensure_catalog_view(table)
        return rows.height

    def append(self, table: str, rows: pl.DataFrame) -> int:
        """Add rows as a new object of their own (no bookkeeping: not a shard)."""
        import uuid

        _check_identifier(table)
        if not rows.height:
            return 0
        self._refuse_unmigrated()
        name = f"append-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        self.location.write_bytes(self.object_key(table, name), _parquet_bytes(rows, {"table": table, "kind": "append"}))
        self._ensure_catalog_view(table)
        return rows.height

    def _conform(self, table: str, key: str, rows: pl.DataFrame) -> pl.DataFrame:
        """Cast columns the table already has to the table's types, refusing what cannot be
        converted: one shard of a different type would make the whole table unreadable."""
        import pyarrow.parquet as pq

        others = [s for s in self.shards(table) if s != key] or self.shards(table)
        if not others:
            return rows
        try:
            existing = pl.from_arrow(pq.read_schema(io.BytesIO(
                self.location.read_bytes(self.object_key(table, others[-1])))).empty_table()).schema
        except FileNotFoundError:  # replaced under us: nothing to conform to
            return rows
        casts = [pl.col(c).cast(existing[c], strict=True) for c in rows.columns
                 if c in existing and existing[c] != pl.Null and rows.schema[c] != existing[c]]
        if not casts:
            return rows
        try:
            return rows.with_columns(casts)
        except Exception as exc:
            raise StoreError(f"{table}[{key}]: cannot convert the rows to the table's column types: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None

    @contextlib.contextmanager
    def registry_lock(self, timeout_s: float = 600.0) -> Iterator[None]:
        """Registration is single-writer: this lock serializes registering processes on the
        head node (local location: a lock file at the location itself; remote: next to the
        catalog, because registration runs only where the catalog is, the CLI or the daemon)."""
        if self.location.is_local:
            Path(self.location.root).mkdir(parents=True, exist_ok=True)
            lock_path = Path(self.location.root) / ".registry.lock"
        else:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.db_path.parent / "registry.lock"
        with FileLock(str(lock_path), timeout=timeout_s):
            yield

    # ---- the catalog file (DIR/curation.duckdb) ----------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The catalog database, under its local file lock (never needed to write scores)."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            con = duckdb.connect(str(self.db_path))
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on the catalog file, for the user's own tables next to the store's
        views. Store tables are written with replace_shard/replace_partition only."""
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def refresh_catalog(self) -> list[str]:
        from curation_assets.store.catalog import refresh_catalog

        return refresh_catalog(self)

    def _refuse_unmigrated(self) -> None:
        if self._catalog_checked:
            return
        from curation_assets.store.catalog import legacy_tables

        old = legacy_tables(self.db_path)
        if old:
            raise StoreError(f"{self.db_path} holds scores in the old DuckDB-table format ({', '.join(sorted(old)[:3])}, ...): "
                             f"run `curation-assets migrate-store --data-dir {self.db_path.parent}` first")
        self._catalog_checked = True

    def _ensure_catalog_view(self, table: str) -> None:
        """Local locations: a new table gets its catalog view at once, so the catalog file shows
        what any local run wrote. Best effort: another process holding the catalog must not fail
        a write (the next `refresh_catalog` adds it); remote locations are refreshed explicitly."""
        if not self.location.is_local or table in self._catalog_views:
            return
        from curation_assets.store.catalog import ensure_views

        try:
            self._catalog_views |= ensure_views(self, [table, SHARD_WRITES], lock_timeout_s=10)
        except (Timeout, duckdb.IOException, duckdb.Error) as exc:
            log.warning("catalog %s not updated now (%s); `curation-assets status` refreshes it", self.db_path, exc)


def shard_writes_select(glob: str) -> str:
    """shard_writes from the objects' Parquet footers: rows, code_version and written_at of
    each (asset, shard) object, exactly as published with the data."""
    g = _sql_str(glob)
    p = META_PREFIX
    return (
        f"select max(v) filter (where k = '{p}table') as asset, max(v) filter (where k = '{p}shard') as shard, "
        f"cast(max(v) filter (where k = '{p}rows') as bigint) as rows, "
        f"max(v) filter (where k = '{p}code_version') as code_version, "
        f"cast(max(v) filter (where k = '{p}written_at') as timestamp) as written_at "
        f"from (select file_name, decode(key) as k, decode(value) as v from parquet_kv_metadata({g}) "
        f"where decode(key) like '{p}%') group by file_name having max(v) filter (where k = '{p}kind') is null"
    )


def _parquet_bytes(rows: pl.DataFrame, meta: dict[str, str]) -> bytes:
    import pyarrow.parquet as pq

    table = rows.to_arrow()
    merged = dict(table.schema.metadata or {})
    merged.update({f"{META_PREFIX}{k}".encode(): str(v).encode() for k, v in meta.items()})
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(merged), buffer, compression="zstd")
    return buffer.getvalue()


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_identifier(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise StoreError(f"invalid table name {name!r}")


__all__ = ["SHARD_WRITES", "ScoreStore", "StoreError", "StoreLocation", "StoreLocationError", "shard_writes_select"]
