"""DIR/curation.duckdb: the user's database, exposing every store table under its documented name.

Local location: each table is a *view* over its objects (`read_parquet` on a glob), so a new
shard shows up in the next query with no refresh; only a new table, or a store moved to
another folder (the views hold absolute globs), needs `refresh_catalog`, which every CLI
command runs. Remote location (s3://, gs://, ...): DuckDB's httpfs extension is not assumed,
and a plain `duckdb` session cannot use the fsspec filesystem, so the catalog holds *tables
refreshed* from the objects (fetched through fsspec) by `refresh_catalog`; queries through the
project itself always read the objects directly. The catalog is written under its local file
lock; writing scores never touches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import duckdb
from filelock import FileLock

if TYPE_CHECKING:
    from curation_assets.store.score_store import ScoreStore

INFO_TABLE = "store_catalog_info"  # (location, mode): marks a catalog this version built
# Tables a pre-Parquet version kept inside curation.duckdb (shard tables + bookkeeping).
_LEGACY_MARKERS = {"shard_writes", "video_registry"}


def legacy_tables(db_path: Path) -> set[str]:
    """Base tables of the old DuckDB-table format, if `db_path` is such a catalog (else empty)."""
    if not Path(db_path).exists():
        return set()
    with FileLock(str(db_path) + ".lock", timeout=600):
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            rows = con.execute("select table_name, table_type from information_schema.tables").fetchall()
        finally:
            con.close()
    names = {name for name, _ in rows}
    base = {name for name, kind in rows if kind == "BASE TABLE"}
    if INFO_TABLE in names or not (base & _LEGACY_MARKERS):
        return set()
    return base - {INFO_TABLE}


def ensure_views(store: "ScoreStore", tables: Iterable[str], lock_timeout_s: float = 600) -> set[str]:
    """Create the views for `tables` that the (local) catalog lacks; return the ones present."""
    wanted = list(tables)
    store.db_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.db_path) + ".lock", timeout=lock_timeout_s):
        con = duckdb.connect(str(store.db_path))
        try:
            present = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
            _write_info(con, store, "views")
            for table in wanted:
                if table not in present:
                    con.execute(store.view_sql(table))
                    con.execute(f"insert into {INFO_TABLE}_tables values (?)", [table])
        finally:
            con.close()
    return set(wanted)


def refresh_catalog(store: "ScoreStore") -> list[str]:
    """(Re)build the catalog's views or tables from what is at the store location now."""
    tables = sorted(store.tables())
    store.db_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.db_path) + ".lock", timeout=600):
        con = duckdb.connect(str(store.db_path))
        try:
            existing = dict(con.execute("select table_name, table_type from information_schema.tables "
                                        "where table_schema = 'main'").fetchall())
            if INFO_TABLE not in existing and set(existing) & _LEGACY_MARKERS and any(
                    existing[t] == "BASE TABLE" for t in set(existing) & _LEGACY_MARKERS):
                from curation_assets.store.score_store import StoreError

                raise StoreError(f"{store.db_path} is in the old DuckDB-table format: run "
                                 f"`curation-assets migrate-store --data-dir {store.db_path.parent}`")
            managed = _managed(con)
            # remote: one concurrent fetch of every object, read locally (see ScoreStore.readable)
            with store.readable(tables) as where:
                con.execute("begin transaction")
                for table in tables:
                    if table in existing:  # a view or a refreshed table of an earlier refresh
                        con.execute(f'drop {"view" if existing[table] == "VIEW" else "table"} "{table}"')
                    if store.location.is_local:
                        con.execute(store.view_sql(table))
                    else:
                        con.execute(f'create table "{table}" as {store.select_sql(table, where)}')
                for gone in managed - set(tables):  # a table whose objects were all removed
                    if gone in existing:
                        con.execute(f'drop {"view" if existing[gone] == "VIEW" else "table"} if exists "{gone}"')
                _write_info(con, store, "views" if store.location.is_local else "tables", tables)
                con.execute("commit")
        finally:
            con.close()
    store._catalog_views = set(tables) if store.location.is_local else set()
    return tables


def _managed(con) -> set[str]:
    try:
        return {r[0] for r in con.execute(f"select name from {INFO_TABLE}_tables").fetchall()}
    except duckdb.CatalogException:
        return set()


def _write_info(con, store: "ScoreStore", mode: str, tables: list[str] | None = None) -> None:
    con.execute(f"create table if not exists {INFO_TABLE} (location varchar, mode varchar)")
    con.execute(f"delete from {INFO_TABLE}")
    con.execute(f"insert into {INFO_TABLE} values (?, ?)", [store.location.url, mode])
    con.execute(f"create table if not exists {INFO_TABLE}_tables (name varchar)")
    if tables is not None:
        con.execute(f"delete from {INFO_TABLE}_tables")
        if tables:
            con.executemany(f"insert into {INFO_TABLE}_tables values (?)", [[t] for t in tables])
