"""`curation-assets migrate-store`: a data dir of the DuckDB-table format -> Parquet objects.

The earlier store kept every table inside DIR/curation.duckdb (one table per asset, a
`shard` column, `shard_writes` bookkeeping) and wrote absolute frame and clip paths. This
converts it without re-scoring: each (table, shard) becomes one object carrying the shard's
original code version and write time (so nothing turns stale), paths under the data dir
become keys relative to the store location, and the catalog's tables become views. The old
file is kept as curation.duckdb.pre-migration; tables it does not know stay as they are.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from curation_assets.store.catalog import legacy_tables, refresh_catalog
from curation_assets.store.location import StoreLocation
from curation_assets.store.score_store import SHARD_WRITES, ScoreStore, StoreError

# Columns holding files the store wrote (absolute before; keys relative to the location now).
PATH_COLUMNS = {"sampled_frames": ["frame_paths"], "accelerated_videos": ["output_path"]}
# Unpartitioned tables and the column that splits them into objects.
PARTITION_COLUMNS = {"lora_training_set": "preset"}
STORE_FOLDERS = ("frames", "accelerated")


@dataclass
class MigrationReport:
    db_path: Path
    location: str
    objects: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    files_copied: int = 0
    backup: Path | None = None
    left_alone: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.objects:
            return [f"{self.db_path}: nothing to migrate (already Parquet objects at {self.location}, or empty)"]
        out = [f"migrated {self.db_path} -> {self.location} (no re-scoring; old file kept as {self.backup})"]
        out += [f"  {t}: {self.rows[t]} rows in {n} objects" for t, n in sorted(self.objects.items())]
        if self.files_copied:
            out.append(f"  {self.files_copied} frame/clip files copied to the store location")
        if self.left_alone:
            out.append(f"  left as they are (not store tables): {', '.join(self.left_alone)}")
        return out


def migrate_data_dir(data_dir: str | Path, location: str | Path | None = None) -> MigrationReport:
    data_dir = Path(data_dir).resolve()
    db_path = data_dir / "curation.duckdb"
    loc = StoreLocation(location or data_dir)
    report = MigrationReport(db_path, loc.url)
    old = legacy_tables(db_path)
    if not old:
        return report
    store = ScoreStore(db_path, location=loc)
    backup = db_path.with_name(db_path.name + ".pre-migration")
    if not backup.exists():
        shutil.copy2(db_path, backup)
    report.backup = backup

    con = duckdb.connect(str(backup), read_only=True)
    try:
        columns = {t: [r[0] for r in con.execute("select column_name from information_schema.columns "
                                                 "where table_name = ? order by ordinal_position", [t]).fetchall()]
                   for t in old}
        writes = {}
        if SHARD_WRITES in old:
            for asset, shard, rows, version, at in con.execute(
                    f"select asset, shard, rows, code_version, written_at from {SHARD_WRITES}").fetchall():
                writes[(asset, shard)] = (rows, version or "", at)
        migrated = []
        for table in sorted(old - {SHARD_WRITES}):
            key_col = "shard" if "shard" in columns[table] else PARTITION_COLUMNS.get(table)
            if key_col is None or key_col not in columns[table]:
                report.left_alone.append(table)
                continue
            frame = _relative_paths(con.execute(f'select * from "{table}"').pl(), PATH_COLUMNS.get(table, []), data_dir)
            keys = set(frame[key_col].drop_nulls().unique().to_list())
            keys |= {s for (a, s) in writes if a == table}  # shards written empty have no rows but count
            for key in sorted(keys):
                part = frame.filter(pl.col(key_col) == key)
                _, version, at = writes.get((table, key), (None, _code_version(part), None))
                store.replace_partition(table, key, part, code_version=version, written_at=at)
            report.objects[table], report.rows[table] = len(keys), frame.height
            migrated.append(table)
    finally:
        con.close()

    for table in migrated:  # verify before the old tables go
        got = store.query(f'select count(*) n from "{table}"')["n"][0]
        if got != report.rows[table]:
            raise StoreError(f"migration check failed for {table}: {report.rows[table]} rows before, {got} after; "
                             f"{db_path} is unchanged")
    if not loc.is_local or loc.root != str(data_dir):
        report.files_copied = _copy_store_files(data_dir, loc)
    with store.connect() as con:
        con.execute("begin transaction")
        for table in [*migrated, *([SHARD_WRITES] if SHARD_WRITES in old else [])]:
            con.execute(f'drop table "{table}"')
        con.execute("commit")
    refresh_catalog(store)
    return report


def _relative_paths(frame: pl.DataFrame, cols: list[str], data_dir: Path) -> pl.DataFrame:
    prefix = str(data_dir) + "/"
    exprs = []
    for col in cols:
        if col not in frame.columns:
            continue
        if frame.schema[col] == pl.List(pl.Utf8):
            exprs.append(pl.col(col).list.eval(pl.element().str.strip_prefix(prefix)))
        else:
            exprs.append(pl.col(col).str.strip_prefix(prefix))
    return frame.with_columns(exprs) if exprs else frame


def _code_version(part: pl.DataFrame) -> str:
    if "code_version" in part.columns and part.height:
        return part["code_version"][0] or ""
    return ""


def _copy_store_files(data_dir: Path, loc: StoreLocation) -> int:
    copied = 0
    for folder in STORE_FOLDERS:
        for path in sorted((data_dir / folder).rglob("*")) if (data_dir / folder).is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                loc.put_file(path, path.relative_to(data_dir).as_posix())
                copied += 1
    return copied
