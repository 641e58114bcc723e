"""DIR/curation.duckdb: the user's database, exposing every store table under its documented name.

Local location: each table is a *view* over its folder (sql.py: the files are globbed, the
winners worked out from the file names and the newest shard index), so a new shard or a
re-run shows up in the next query with no refresh; a new table, a table's first compaction
(its index joins the view) or a store moved elsewhere (the views hold absolute globs) needs
`refresh_catalog`, which every head-node command runs (`run`, `status`, `compact`, the sensor).
Remote location (s3://, gs://, ...): a plain `duckdb` session cannot use the fsspec
filesystem, so the catalog holds *tables refreshed* from the objects (fetched through fsspec),
each re-copied only when its winners changed. The catalog is written under its local file
lock; writing scores never touches it (score_store.py does not import this module).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from filelock import FileLock, Timeout

from curation_assets.store import layout, sql
from curation_assets.store.score_store import SHARD_WRITES, StoreError

if TYPE_CHECKING:
    from curation_assets.store.score_store import ScoreStore

log = logging.getLogger(__name__)
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


_CATALOGED: dict[tuple[str, str], set[str]] = {}  # (catalog, location) -> tables this process saw in it


def ensure_in_catalog(store: "ScoreStore", table: str) -> None:
    """A folder location's writer (a shard's step, on the head node or a UI run worker): the
    first write of a table this process has not seen in the catalog refreshes it, so the catalog
    file shows a new table at once (its views then follow every later write by themselves).
    Best effort: a catalog held by another process is left for the next head-node command."""
    if not store.location.is_local:
        return
    key = (str(store.db_path), store.location.url)
    if table in _CATALOGED.get(key, set()):
        return
    try:
        _CATALOGED[key] = set(refresh_catalog(store, lock_timeout_s=10))
    except (Timeout, duckdb.Error, StoreError) as exc:
        log.warning("catalog %s not updated now (%s); `curation-assets status` refreshes it", store.db_path, exc)


def refresh_catalog(store: "ScoreStore", lock_timeout_s: float = 600) -> list[str]:
    """Bring the catalog's views (or refreshed tables) in line with the store: only what changed
    is rewritten, so a refresh with nothing new opens the catalog and writes nothing."""
    tables = sorted(store.tables())
    wanted = _wanted(store, tables)
    store.db_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.db_path) + ".lock", timeout=lock_timeout_s):
        con = duckdb.connect(str(store.db_path))
        try:
            existing = dict(con.execute("select table_name, table_type from information_schema.tables "
                                        "where table_schema = 'main'").fetchall())
            if INFO_TABLE not in existing and set(existing) & _LEGACY_MARKERS and any(
                    existing[t] == "BASE TABLE" for t in set(existing) & _LEGACY_MARKERS):
                raise StoreError(f"{store.db_path} is in the old DuckDB-table format: run "
                                 f"`curation-assets migrate-store --data-dir {store.db_path.parent}`")
            managed = _managed(con)
            mode = "views" if store.location.is_local else "tables"
            changed = {name: text for name, text in wanted.items() if managed.get(name) != text or name not in existing}
            gone = set(managed) - set(wanted)
            if changed or gone or _info_location(con) != (store.location.url, mode):
                _apply(con, store, changed, gone, existing, wanted, mode)
        finally:
            con.close()
    return tables


def _wanted(store: "ScoreStore", tables: list[str]) -> dict[str, str]:
    """name -> what it should be: a view's SQL (local), or the fingerprint of a table's winners
    (remote: the copy is redone when it changes)."""
    out: dict[str, str] = {}
    parts = []
    for table in tables:
        if table == SHARD_WRITES:
            continue
        state = store.state(table)
        folder = store.location.path(layout.table_dir(table))
        has_index = state.index_file is not None
        if store.location.is_local:
            winners = f"_{table}_winners"
            out[winners] = sql.winners_view(folder, has_index)
            out[table] = sql.rows_view(folder, winners, has_index)
            legacy = [f"{folder}/{o.name}" for o in state.loose if o.legacy]
            parts.append(sql.shard_writes_part(table, folder, has_index, legacy))
        else:
            out[table] = "copy:" + _fingerprint(state)
    if SHARD_WRITES in tables:
        out[SHARD_WRITES] = (sql.shard_writes_view(parts) if store.location.is_local
                             else "copy:" + hashlib.sha256("".join(sorted(v for k, v in out.items())).encode()).hexdigest())
    return out


def _fingerprint(state) -> str:
    names = sorted(o.name for o in state.loose)
    return hashlib.sha256("\n".join([state.index_file or "", *names]).encode()).hexdigest()


def _apply(con, store: "ScoreStore", changed: dict[str, str], gone: set[str], existing: dict, wanted: dict,
           mode: str) -> None:
    """Statement by statement, not one transaction: a view that fails to bind (an unreadable
    object) is retried with another definition, which an aborted transaction would not allow.
    Other processes cannot open the file while this connection writes it, so no one sees a
    half-done refresh."""
    for name in [*gone, *changed]:
        if name in existing:
            con.execute(f'drop {"view" if existing[name] == "VIEW" else "table"} if exists "{name}"')
    if store.location.is_local:
        for name in sorted(changed, key=lambda n: (not n.startswith("_"), n)):  # winners views first
            _create_view(con, store, name, changed[name], wanted)
    else:
        _copy_tables(con, store, list(changed))
    _write_info(con, store, mode, wanted)


def _create_view(con, store: "ScoreStore", name: str, text: str, wanted: dict[str, str]) -> None:
    """A view over the folder; when an object in it cannot be read (a truncated file: binding the
    view reads every footer), the table's view names the readable files instead until the next
    refresh, and the bad object is named in a warning (`status` lists it)."""
    for attempt in range(4):
        try:
            con.execute(f'create or replace view "{name}" as {text}')
            return
        except duckdb.Error as exc:
            if name.startswith("_") or name == SHARD_WRITES or not store._recover(exc, 1):
                raise
            text = store.select_sql(name)  # leaves out what _recover recorded as unreadable
            wanted[name] = text
    raise StoreError(f"catalog view {name}: too many unreadable objects")


def _copy_tables(con, store: "ScoreStore", names: list[str]) -> None:
    """Remote: each changed table refreshed from a local copy of its winning files (an
    unreadable object is named in a warning and left out)."""
    tables = [n for n in names if n != SHARD_WRITES]
    for table in tables:
        for attempt in range(4):
            state = store.state(table)
            try:
                with store.readable([table], {table: state}) as where:
                    con.execute(f'create or replace table "{table}" as {store.select_sql(table, where, state)}')
                break
            except duckdb.Error as exc:
                if attempt == 3 or not store._recover(exc, attempt):
                    raise
    if SHARD_WRITES in names:
        con.register("_shard_writes_frame", store.shard_writes().to_arrow())
        con.execute(f'create or replace table "{SHARD_WRITES}" as select * from _shard_writes_frame')
        con.unregister("_shard_writes_frame")


def _managed(con) -> dict[str, str]:
    try:
        return dict(con.execute(f"select name, definition from {INFO_TABLE}_tables").fetchall())
    except duckdb.CatalogException:
        return {}
    except duckdb.BinderException:  # a catalog of the previous version: names only
        return {r[0]: "" for r in con.execute(f"select name from {INFO_TABLE}_tables").fetchall()}


def _info_location(con) -> tuple[str, str] | None:
    try:
        row = con.execute(f"select location, mode from {INFO_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return tuple(row) if row else None


def _write_info(con, store: "ScoreStore", mode: str, wanted: dict[str, str]) -> None:
    con.execute(f"create table if not exists {INFO_TABLE} (location varchar, mode varchar)")
    con.execute(f"delete from {INFO_TABLE}")
    con.execute(f"insert into {INFO_TABLE} values (?, ?)", [store.location.url, mode])
    con.execute(f"drop table if exists {INFO_TABLE}_tables")
    con.execute(f"create table {INFO_TABLE}_tables (name varchar, definition varchar)")
    if wanted:
        con.executemany(f"insert into {INFO_TABLE}_tables values (?, ?)", [[k, v] for k, v in sorted(wanted.items())])
