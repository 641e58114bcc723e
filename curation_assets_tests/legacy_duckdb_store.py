"""The DuckDB-table store of earlier versions (verbatim from before the Parquet store),
kept only so tests can build a data dir exactly as those versions wrote it and migrate it."""


from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import polars as pl
from filelock import FileLock

from curation_assets.ingest.discover import InputEntry
from curation_assets.ingest.registry import REGISTRY_SCHEMA, REGISTRY_TABLE, shard_key, shard_number

# Bookkeeping table: one row per (asset, shard) written in the same transaction as the
# shard's rows, so "which shards are missing or stale" is one exact query.
SHARD_WRITES = "shard_writes"


class StoreError(RuntimeError):
    pass


class ScoreStore:
    def __init__(self, db_path: str | Path, lock_timeout_s: float = 600.0):
        self.db_path = Path(db_path)
        self.lock = FileLock(str(self.db_path) + ".lock", timeout=lock_timeout_s)

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            con = duckdb.connect(str(self.db_path))
            try:
                yield con
            finally:
                con.close()

    # ---- reads -------------------------------------------------------------------------
    def tables(self) -> set[str]:
        if not self.db_path.exists():
            return set()
        with self.connect() as con:
            return {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}

    def query(self, sql: str, params: Sequence | None = None) -> pl.DataFrame:
        with self.connect() as con:
            return con.execute(sql, params or []).pl()

    def read_shard(self, table: str, shard: str) -> pl.DataFrame:
        _check_identifier(table)
        if table not in self.tables():
            raise StoreError(
                f"table {table!r} does not exist in {self.db_path}: materialize the upstream asset "
                f"for shard {shard!r} first"
            )
        return self.query(f'select * from "{table}" where shard = ?', [shard])

    # ---- writes ------------------------------------------------------------------------
    def replace_shard(self, table: str, shard: str, rows: pl.DataFrame, code_version: str = "") -> int:
        """Replace every row of `shard` in `table` by `rows`, atomically."""
        _check_identifier(table)
        if "shard" not in rows.columns:
            rows = rows.with_columns(pl.lit(shard).alias("shard"))
        if rows.height and set(rows["shard"].unique().to_list()) != {shard}:
            raise StoreError(f"rows for {table} carry shards other than {shard!r}")
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                _ensure_table(con, table, rows)
                con.execute(f'delete from "{table}" where shard = ?', [shard])
                if rows.height:
                    con.register("incoming_rows", rows.to_arrow())
                    con.execute(f'insert into "{table}" by name select * from incoming_rows')
                    con.unregister("incoming_rows")
                _record_write(con, table, shard, rows.height, code_version)
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise
        return rows.height

    def append(self, table: str, rows: pl.DataFrame) -> int:
        _check_identifier(table)
        if not rows.height:
            return 0
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                _ensure_table(con, table, rows)
                con.register("incoming_rows", rows.to_arrow())
                con.execute(f'insert into "{table}" by name select * from incoming_rows')
                con.unregister("incoming_rows")
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise
        return rows.height

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """For the rare read-then-write that must be atomic (shard registration)."""
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise


def _check_identifier(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise StoreError(f"invalid table name {name!r}")


def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    con.register("schema_rows", rows.head(0).to_arrow())
    con.execute(f'create table if not exists "{table}" as select * from schema_rows')
    existing = {r[0] for r in con.execute("select column_name from information_schema.columns where table_name = ?", [table]).fetchall()}
    # A newer scorer version may add columns; old rows keep NULL there.
    for col in rows.columns:
        if col not in existing:
            duck_type = _duck_type(con, col)
            con.execute(f'alter table "{table}" add column "{col}" {duck_type}')
    con.unregister("schema_rows")


def _duck_type(con: duckdb.DuckDBPyConnection, col: str) -> str:
    # DESCRIBE gives DuckDB's own type name for a registered Arrow column.
    for name, col_type, *_ in con.execute("describe schema_rows").fetchall():
        if name == col:
            return col_type
    raise StoreError(f"column {col!r} not found")


def _record_write(con: duckdb.DuckDBPyConnection, table: str, shard: str, n_rows: int, code_version: str) -> None:
    con.execute(
        f"create table if not exists {SHARD_WRITES} (asset varchar, shard varchar, rows bigint, "
        "code_version varchar, written_at timestamp)"
    )
    con.execute(f"delete from {SHARD_WRITES} where asset = ? and shard = ?", [table, shard])
    con.execute(
        f"insert into {SHARD_WRITES} values (?, ?, ?, ?, ?)",
        [table, shard, n_rows, code_version, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)],
    )


# ---- the registry of earlier versions (its register(), same rows, one DuckDB table)
def register(store: ScoreStore, entries: list[InputEntry], shard_size: int) -> list[str]:
    """Add entries not registered yet; return the new shard keys (possibly none)."""
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    with store.transaction() as con:
        con.execute(_create_sql())
        known = {r[0] for r in con.execute(f"select path from {REGISTRY_TABLE}").fetchall()}
        seq0 = con.execute(f"select coalesce(max(seq), -1) from {REGISTRY_TABLE}").fetchone()[0]
        # numeric, not string, max: 'shard-100000' sorts before 'shard-99999'
        numbers = [shard_number(r[0]) for r in con.execute(f"select distinct shard from {REGISTRY_TABLE}").fetchall()]
        fresh, seen = [], set()
        for entry in entries:
            if entry.path in known:
                continue  # registered by an earlier call: re-running an input is idempotent
            if entry.path in seen:
                if entry.locator and entry.locator not in known and entry.locator not in seen:
                    # a second manifest line naming the same file is recorded, not silently dropped
                    seen.add(entry.locator)
                    fresh.append(InputEntry(entry.locator, entry.text, entry.origin,
                                            f"same file as an earlier manifest entry ({entry.path})"))
                continue
            seen.add(entry.path)
            fresh.append(entry)
        if not fresh:
            return []
        first_shard = max(numbers) + 1 if numbers else 0
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = []
        for i, entry in enumerate(fresh):
            rows.append({
                "seq": seq0 + 1 + i,
                "path": entry.path,
                "shard": shard_key(first_shard + i // shard_size),
                "manifest_text": entry.text,
                "origin": entry.origin,
                "registration_error": entry.error,
                "registered_at": now,
            })
        # the old format's columns only (the registry gained shard_size later)
        frame = pl.DataFrame(rows, schema={k: v for k, v in REGISTRY_SCHEMA.items() if k != "shard_size"})
        con.register("new_registrations", frame.to_arrow())
        con.execute(f"insert into {REGISTRY_TABLE} by name select * from new_registrations")
        con.unregister("new_registrations")
    return sorted(set(frame["shard"].to_list()))


def _create_sql() -> str:
    return (
        f"create table if not exists {REGISTRY_TABLE} (seq bigint primary key, path varchar unique, "
        "shard varchar, manifest_text varchar, origin varchar, registration_error varchar, "
        "registered_at timestamp)"
    )
