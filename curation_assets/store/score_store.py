"""The score store: immutable Parquet objects per (table, shard) under a store location, and the
one owner of reading and writing them.

Layout (names and versions: layout.py; a table's state and winners: table_state.py):

    tables/<table>/<shard>@<version>@<rows>@<code version>.parquet   one write of one shard ("loose")
    tables/<table>/<shard>.parquet                                    written by earlier code (version "")
    tables/<table>/_seg-*.parquet, _index/*.parquet                   the compactor's segments and shard index
    frames/..., accelerated/..., clips/...                           files the steps write (frames/files.py)

A write publishes one new, uniquely named object (temp name + rename locally, one PUT on an
object store), so any number of processes on any number of machines write shards at once with
no lock and no shared database file; a re-run is a newer version of its shard, readers never
see half an object, and the newest version wins (a writer whose clock lags still wins: its
version is made newer than the newest it can see). Nothing a writer does reads or rewrites
other shards: the compactor (compaction.py, head node only) later merges loose objects into
segments and deletes what lost, each file only after a grace period.

Bookkeeping travels with the data: the object's name and footer carry its shard, rows, code
version and write time; the index carries them for compacted shards. `shard_writes` is made
from these, so it can never describe rows that are not there, nor miss rows that are.

Reads: `read_shard` = one prefix listing + the cached index -> that shard's object or its row
range in a segment; cross-shard reads (`query`) name every winning file explicitly (no glob),
and re-list once when a file they named was removed by a concurrent GC. An unreadable object
(a truncated upload) is named in a warning and left out of cross-shard reads; `read_shard`
of its shard fails naming it. DuckDB is the query engine (memory-limited: the head node's
budget); `DIR/curation.duckdb` is the user's catalog of the same tables (catalog.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import polars as pl
from filelock import FileLock, Timeout

from curation_assets.store import layout, sql, table_state
from curation_assets.store.layout import LOOSE, META_PREFIX, TABLES_PREFIX, LayoutError
from curation_assets.store.location import StoreLocation, StoreLocationError
from curation_assets.store.table_state import TableState

# Read from the names, footers and index; one row per (asset, shard) that has a write.
SHARD_WRITES = "shard_writes"
MEMORY_ENV = "CURATION_DUCKDB_MEMORY"  # DuckDB's memory limit for the project's own queries
# 512 MB, spilling past it: at a million clips rebuilding the outputs peaked at 1.78 GB with 1 GB
# and at 1.48 GB with 512 MB, no slower (56 s against 60; docs/measurements.md)
DEFAULT_MEMORY = "512MB"
log = logging.getLogger(__name__)

_SCHEMA_CACHE: dict[tuple[str, str], object] = {}  # (location, table) -> a pyarrow schema of the table
_FOOTER_CACHE: dict[tuple[str, str], object] = {}  # (location, key) -> FileMetaData of a segment
# beside the catalog: object-store keys whose Parquet footer was seen (ScoreStore.unreadable)
KNOWN_WHOLE_FILE = ".store_whole_objects"
_BAD_FILES: dict[tuple[str, str], str] = {}  # (location, key) -> why it cannot be read (this process)
_CACHE_LOCK = threading.Lock()


class StoreError(RuntimeError):
    pass


class UnreadableObject(StoreError):
    """A store object that exists but cannot be read (truncated, not Parquet)."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"unreadable store object {key}: {reason}")
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Written:
    rows: int
    key: str  # the object's key under the location
    version: str


@dataclass(frozen=True)
class Unreadable:
    table: str
    key: str
    shards: tuple[str, ...]
    reason: str


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

    # ---- state ---------------------------------------------------------------------------
    def tables(self) -> set[str]:
        found = set()
        for name in self.location.list(TABLES_PREFIX):
            if name.replace("_", "").isalnum() and self._has_objects(name):
                found.add(name)
        return found | {SHARD_WRITES} if found else found

    def _has_objects(self, table: str) -> bool:
        return any(n.endswith(layout.PARQUET) or n == layout.INDEX_DIR
                   for n in self.location.list(layout.table_dir(table)))

    def state(self, table: str, detail: bool = False) -> TableState:
        self._check(table)
        return table_state.read_state(self.location, table, detail=detail)

    def winners(self, table: str, state: TableState | None = None) -> pl.DataFrame:
        """Per shard, the file that holds its current rows (shard, version, source, file, rows,
        code_version, written_at, first_row); objects of earlier code get these from their footers."""
        state = state or self.state(table)
        winners = state.winners()
        legacy = [o.name for o in state.loose if o.legacy]
        if legacy and winners.filter(pl.col("version") == "").height:
            footers = table_state.legacy_footers(self.location, table, legacy)
            meta = pl.DataFrame({"file": list(footers), "l_rows": [v[0] for v in footers.values()],
                                 "l_cv": [v[1] for v in footers.values()], "l_at": [v[2] for v in footers.values()],
                                 "append": [v[3] for v in footers.values()]},
                                schema={"file": pl.Utf8, "l_rows": pl.Int64, "l_cv": pl.Utf8, "l_at": pl.Datetime("us"),
                                        "append": pl.Boolean})
            winners = winners.join(meta, on="file", how="left").with_columns(
                pl.coalesce("rows", "l_rows").alias("rows"), pl.coalesce("code_version", "l_cv").alias("code_version"),
                pl.coalesce("written_at", "l_at").alias("written_at"),
                pl.col("append").fill_null(False)).drop("l_rows", "l_cv", "l_at")
        else:
            winners = winners.with_columns(pl.lit(False).alias("append"))
        return winners

    def shards(self, table: str) -> list[str]:
        return sorted(self.state(table).winners()["shard"].to_list())

    def shard_writes(self, tables: Sequence[str] | None = None) -> pl.DataFrame:
        """(asset, shard, rows, code_version, written_at) of every shard's current write."""
        names = sorted(set(tables) if tables is not None else self.tables() - {SHARD_WRITES})
        parts = []
        for table in names:
            w = self.winners(table).filter(~pl.col("append"))
            parts.append(w.select(pl.lit(table).alias("asset"), "shard", "rows", "code_version", "written_at"))
        schema = {"asset": pl.Utf8, "shard": pl.Utf8, "rows": pl.Int64, "code_version": pl.Utf8,
                  "written_at": pl.Datetime("us")}
        return pl.concat(parts).cast(schema) if parts else pl.DataFrame(schema=schema)

    # ---- reads ---------------------------------------------------------------------------
    def read_shard(self, table: str, shard: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """A shard's current rows: its newest loose object, or its row range in a segment."""
        self._check(table)
        for attempt in (0, 1):
            loose, entry, index_exists = self._candidates(table, shard)
            best = max(loose, key=lambda o: o.version) if loose else None
            try:
                if best is not None and (entry is None or best.version > entry["version"]):
                    return self._read_object(table, best.name, columns)
                if entry is not None:
                    return self._read_segment_rows(table, entry["segment"], entry["first_row"], entry["rows"],
                                                   shard, columns)
            except FileNotFoundError:
                if attempt == 0:  # removed by a concurrent GC after our listing: list again
                    table_state.clear_caches()
                    continue
                raise
            if not index_exists and not self._has_objects(table):
                raise StoreError(f"table {table!r} does not exist in {self.location.url}: materialize the upstream "
                                 f"asset for shard {shard!r} first")
            # a shard not written yet reads as no rows, with the table's columns
            schema = self._reference_schema(table)
            empty = pl.from_arrow(schema.empty_table()) if schema is not None else pl.DataFrame()
            return empty.select(list(columns)) if columns else empty
        raise AssertionError("unreachable")

    def _candidates(self, table: str, shard: str):
        folder = layout.table_dir(table)
        names = self.location.list_starting(folder, layout.shard_prefix(shard))
        loose = [p for n in names if (p := layout.parse_object_name(n)) is not None and p.shard == shard]
        index, _ = self._index(table)
        entry = None
        if index is not None and index.height:
            hit = index.filter((pl.col("shard") == shard) & pl.col("live"))
            if hit.height:
                entry = hit.row(0, named=True)
        return loose, entry, index is not None

    def _index(self, table: str) -> tuple[pl.DataFrame | None, dict]:
        folder = f"{layout.table_dir(table)}/{layout.INDEX_DIR}"
        names = sorted((n for n in self.location.list(folder) if layout.index_gen(n) is not None),
                       key=lambda n: (layout.index_gen(n), n))
        if not names:
            return None, {}
        try:
            return table_state.load_index(self.location, table, names[-1])
        except FileNotFoundError:
            return None, {}

    def _read_object(self, table: str, name: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        import pyarrow.parquet as pq

        key = f"{layout.table_dir(table)}/{name}"
        data = self.location.read_bytes(key)  # one read of one whole object
        try:
            arrow = pq.read_table(io.BytesIO(data), columns=list(columns) if columns else None)
        except Exception as exc:
            if isinstance(exc, (FileNotFoundError, KeyError)):
                raise
            raise UnreadableObject(self.location.resolve(key), _one_line(exc)) from None
        return pl.from_arrow(arrow.replace_schema_metadata(None))

    def _read_segment_rows(self, table: str, segment: str, first: int, rows: int, shard: str,
                           columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The row range [first, first + rows) of a segment: only the row groups it spans."""
        import pyarrow.parquet as pq

        key = f"{layout.table_dir(table)}/{segment}"
        try:
            md = self._segment_footer(key)
            pf = pq.ParquetFile(self.location.open_input(key), metadata=md)
            starts, at = [], 0
            for i in range(md.num_row_groups):
                starts.append(at)
                at += md.row_group(i).num_rows
            groups = [i for i, s in enumerate(starts) if s < first + rows and s + md.row_group(i).num_rows > first] or [0]
            arrow = pf.read_row_groups(groups, columns=list(dict.fromkeys([*(columns or []), "shard"])) if columns else None)
            arrow = arrow.slice(first - starts[groups[0]], rows)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise UnreadableObject(self.location.resolve(key), _one_line(exc)) from None
        frame = pl.from_arrow(arrow.replace_schema_metadata(None))
        if frame.height != rows or (rows and frame["shard"].n_unique() != 1):
            raise UnreadableObject(self.location.resolve(key), f"rows of {shard!r} are not where the index says")
        return frame.select(list(columns)) if columns else frame

    def _segment_footer(self, key: str):
        import pyarrow.parquet as pq

        cache_key = (self.location.url, key)
        md = _FOOTER_CACHE.get(cache_key)
        if md is None:
            md = pq.read_metadata(self.location.open_input(key))
            with _CACHE_LOCK:
                if len(_FOOTER_CACHE) > 64:
                    _FOOTER_CACHE.clear()
                _FOOTER_CACHE[cache_key] = md
        return md

    def query(self, sql_text: str, params: Sequence | None = None, frames: dict | None = None) -> pl.DataFrame:
        """Run SQL over the store's tables (only the tables the SQL names are bound), each read
        from an explicit list of its winning files; `frames`: name -> a polars/arrow table the
        SQL may join with (e.g. a million paths to look up: no Python list in a parameter)."""
        return self._query([sql_text], params, frames)[0]

    def columns(self, tables: Sequence[str]) -> dict[str, list[str]]:
        """Each table's columns as the catalog's views have them (every object's, by name), read
        on one connection: a connection per table paid for binding its view each time."""
        tables = list(tables)
        results = self._query([f'select * from "{t}" limit 0' for t in tables], None, None) if tables else []
        return {t: r.columns for t, r in zip(tables, results)}

    def query_steps(self, statements: Sequence[str], frames: dict | None = None) -> list[pl.DataFrame]:
        """`query` for several statements on one connection, in order, each one's result (empty
        for a statement that returns none): a `create temp table` early on is computed once and
        read by the later ones, within DuckDB's memory limit, spilling past it. A step may be a
        Python one (`run_steps`)."""
        return self._query(statements, None, frames)

    def _query(self, statements: Sequence, params: Sequence | None, frames: dict | None) -> list[pl.DataFrame]:
        text = "\n".join(s for s in statements if isinstance(s, str))
        named = sorted(t for t in self.tables() if re.search(rf"\b{t}\b", text))
        attempts = 3 + len(named)
        for attempt in range(attempts):
            con = duckdb_connection()
            try:
                states = {t: self.state(t) for t in named if t != SHARD_WRITES}
                for name, frame in (frames or {}).items():
                    con.register(name, frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame)
                with self.readable(named, states) as where:
                    for table in named:
                        if table == SHARD_WRITES:
                            con.register("_shard_writes_frame", self.shard_writes().to_arrow())
                            con.execute(f'create view "{SHARD_WRITES}" as select * from _shard_writes_frame')
                        else:
                            con.execute(f'create view "{table}" as {self.select_sql(table, where, states[table])}')
                    return run_steps(con, statements, params)
            except duckdb.Error as exc:
                if attempt == attempts - 1 or not self._recover(exc, attempt):
                    raise
            finally:
                con.close()
        raise AssertionError("unreachable")

    def _recover(self, exc: Exception, attempt: int) -> bool:
        """A read error worth one more try: a file a concurrent GC removed (list again, once),
        or an unreadable object (named in a warning, then left out)."""
        text = str(exc)
        paths = [p for p in _QUOTED.findall(text) if self._key_of(p) is not None]
        if not paths:
            return False
        if _MISSING.search(text):
            if attempt > 0:
                return False
            log.info("store object gone while reading (compaction's GC): listing again")
            table_state.clear_caches()
            return True
        if _CORRUPT.search(text):
            for path in paths:
                _BAD_FILES[(self.location.url, self._key_of(path))] = _one_line(exc)
                log.warning("unreadable store object %s (%s): left out of this read", path, _one_line(exc))
            return True
        return False

    def _key_of(self, path: str) -> str | None:
        marker = f"/{TABLES_PREFIX}/"
        if marker not in path:
            return None
        return TABLES_PREFIX + "/" + path.split(marker, 1)[1]

    def select_sql(self, table: str, where: StoreLocation | None = None, state: TableState | None = None) -> str:
        """The SELECT that reads `table`'s current rows from an explicit list of files; `where`:
        a local copy of them (see `readable`)."""
        self._check(table)
        where = where or self.location
        state = state or self.state(table)
        winners = state.winners()
        folder = layout.table_dir(table)
        bad = {k for (url, k) in _BAD_FILES if url == self.location.url}
        files = [f for f in dict.fromkeys(winners["file"].to_list()) if f"{folder}/{f}" not in bad]
        losers: dict[str, list[str]] = {}
        kept = set(files)
        for segment, shard in state.losers_in_segments(winners).iter_rows():
            if segment in kept:
                losers.setdefault(where.path(f"{folder}/{segment}"), []).append(shard)
        return sql.explicit_select([where.path(f"{folder}/{f}") for f in files], losers)

    @contextlib.contextmanager
    def readable(self, tables: Sequence[str], states: dict[str, TableState] | None = None) -> Iterator[StoreLocation]:
        """Where DuckDB reads `tables` from: the location itself when it is a folder; for an
        object store, a temporary local copy of those tables' winning files, fetched with
        concurrent GETs. DuckDB reading each object through fsspec costs several sequential
        requests per object (~125 ms per shard against a local S3 server; see
        benchmarks/s3_store_benchmark.py); the copy reads the same objects, so the answer is
        the same."""
        if self.location.is_local:
            yield self.location
            return
        import tempfile

        keys = []
        for table in (t for t in tables if t != SHARD_WRITES):
            state = (states or {}).get(table) or self.state(table)
            keys += [f"{layout.table_dir(table)}/{f}" for f in dict.fromkeys(state.winners()["file"].to_list())]
        with tempfile.TemporaryDirectory(prefix="curation-store-read-") as tmp:
            fs = self.location.fs
            by_path = {fs._strip_protocol(self.location.path(k)): k for k in keys}  # as fs.cat spells paths
            got = fs.cat(list(by_path), on_error="omit") if keys else {}
            for path, data in got.items():
                key = by_path.get(path)
                if key is None:
                    continue
                target = Path(tmp, key)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            yield StoreLocation(tmp)

    def unreadable(self, tables: Sequence[str] | None = None) -> list[Unreadable]:
        """Objects that cannot be read among the current winners (a truncated upload): each
        file's tail must be a Parquet footer's ('PAR1'), plus what reads in this process and the
        compactor found. One ranged read per loose winner and segment (concurrent remotely)."""
        out = []
        checked = sorted(set(tables) if tables is not None else self.tables() - {SHARD_WRITES})
        # On an object store an object never changes under its name (every write is a new,
        # versioned key), so one whose footer was seen once is whole for good: the head node
        # remembers those and checks only new ones (3,751 ranged GETs a `status` at 16k clips
        # otherwise). A local folder is checked every time: a file there can be cut in place.
        known = self._known_whole() if not self.location.is_local else set()
        whole: set[str] = set()
        for table in checked:
            state = self.state(table)
            winners = state.winners()
            folder = layout.table_dir(table)
            by_file: dict[str, list[str]] = {}
            for file, shard in winners.select("file", "shard").iter_rows():
                by_file.setdefault(file, []).append(shard)
            reasons = {f"{folder}/{f}": r for f, r in state.meta.get("unreadable", {}).items()}
            reasons.update({k: r for (url, k), r in _BAD_FILES.items() if url == self.location.url and k.startswith(folder + "/")})
            keys = [f"{folder}/{f}" for f in by_file]
            whole.update(k for k in keys if k in known)
            for key, tail in self.location.tails([k for k in keys if k not in known]).items():
                if isinstance(tail, FileNotFoundError):
                    continue
                if isinstance(tail, Exception):
                    reasons[key] = _one_line(tail)
                elif len(tail) < 8 or tail[-4:] != b"PAR1":
                    reasons[key] = "not a whole Parquet file (no footer at its end: truncated?)"
                else:
                    whole.add(key)
            for key, reason in sorted(reasons.items()):
                name = key.rsplit("/", 1)[-1]
                if name in by_file:
                    out.append(Unreadable(table, self.location.resolve(key), tuple(sorted(by_file[name])), reason))
        if not self.location.is_local:
            folders = tuple(layout.table_dir(t) + "/" for t in checked)
            # kept: what other tables' checks found, and this check's whole winners (replaced
            # objects drop out, so the list stays the size of the store's winners)
            self._remember_whole({k for k in known if not k.startswith(folders)} | whole, known)
        return out

    def _known_whole_path(self) -> Path:
        return self.db_path.parent / KNOWN_WHOLE_FILE

    def _known_whole(self) -> set[str]:
        """Object keys seen whole at this location (only on object stores: see unreadable)."""
        try:
            lines = self._known_whole_path().read_text().splitlines()
        except OSError:
            return set()
        if not lines or lines[0] != self.location.url:  # another location's list: not ours
            return set()
        return set(lines[1:])

    def _remember_whole(self, keys: set[str], before: set[str]) -> None:
        if keys == before:
            return
        path = self._known_whole_path()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:  # a cache: a failed write only costs the next check its GETs
            tmp.write_text("\n".join([self.location.url, *sorted(keys)]) + "\n")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    # ---- writes --------------------------------------------------------------------------
    def replace_shard(self, table: str, shard: str, rows: pl.DataFrame, code_version: str = "") -> int:
        """Replace every row of `shard` in `table` by `rows`: one atomic object publish."""
        return self.publish_shard(table, shard, rows, code_version).rows

    def publish_shard(self, table: str, shard: str, rows: pl.DataFrame, code_version: str = "") -> Written:
        if "shard" not in rows.columns:
            rows = rows.with_columns(pl.lit(shard).alias("shard"))
        if rows.height and set(rows["shard"].unique().to_list()) != {shard}:
            raise StoreError(f"rows for {table} carry shards other than {shard!r}")
        return self.publish(table, shard, rows, code_version)

    def replace_partition(self, table: str, key: str, rows: pl.DataFrame, code_version: str = "",
                          written_at: dt.datetime | None = None, new_key: bool = False) -> int:
        """Replace the rows of `table`/`key` by `rows` as they are (no shard column added): for
        tables partitioned by something else, e.g. the training set by preset.
        `written_at` is only given by the migration, which keeps the original write times;
        `new_key`: the caller knows no version of `key` exists (registration opening a shard)."""
        return self.publish(table, key, rows, code_version, written_at, new_key).rows

    def publish(self, table: str, key: str, rows: pl.DataFrame, code_version: str = "",
                written_at: dt.datetime | None = None, new_key: bool = False) -> Written:
        """One new version of `table`/`key`, newer than any this process can see (a writer
        whose clock lags behind still wins), published in one atomic step."""
        self._check(table)
        rows = self._conform(table, rows)
        newest = None
        if not new_key:  # one prefix listing + the cached index: the newest version there is
            loose, entry, _ = self._candidates(table, key)
            newest = max([o.version for o in loose] + ([entry["version"]] if entry else []), default="") or None
        version = layout.new_version(written_at, after=newest)
        when = layout.version_time(version)
        meta = {"table": table, "shard": key, "rows": str(rows.height), "code_version": code_version or "",
                "written_at": when.isoformat(), "version": version}
        name = layout.object_name(key, version, rows.height, code_version or "")
        object_key = f"{layout.table_dir(table)}/{name}"
        self.location.write_bytes(object_key, parquet_bytes(rows, meta))
        return Written(rows.height, object_key, version)

    def append(self, table: str, rows: pl.DataFrame) -> int:
        """Add rows as an object of their own (not a shard: no bookkeeping)."""
        import uuid

        self._check(table)
        if not rows.height:
            return 0
        name = f"append-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        self.location.write_bytes(f"{layout.table_dir(table)}/{name}", parquet_bytes(rows, {"table": table, "kind": "append"}))
        return rows.height

    def _conform(self, table: str, rows: pl.DataFrame) -> pl.DataFrame:
        """Cast columns the table already has to the table's types, refusing what cannot be
        converted: one shard of a different type would make the whole table unreadable."""
        schema = self._reference_schema(table)
        if schema is None:
            return rows
        existing = pl.from_arrow(schema.empty_table()).schema
        casts = [pl.col(c).cast(existing[c], strict=True) for c in rows.columns
                 if c in existing and existing[c] != pl.Null and rows.schema[c] != existing[c]]
        if not casts:
            return rows
        try:
            return rows.with_columns(casts)
        except Exception as exc:
            raise StoreError(f"{table}: cannot convert the rows to the table's column types: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None

    def _reference_schema(self, table: str):
        """The table's column types, from one of its objects (cached: a column's type is fixed
        once written, later writes are cast to it)."""
        import pyarrow.parquet as pq

        cache_key = (self.location.url, table)
        if cache_key in _SCHEMA_CACHE:
            return _SCHEMA_CACHE[cache_key]
        state = self.state(table)
        folder = layout.table_dir(table)
        candidates = sorted(state.segments) + [o.name for o in sorted(state.loose, key=lambda o: o.version)]
        for name in reversed(candidates):
            try:
                schema = pq.read_schema(self.location.open_input(f"{folder}/{name}"))
            except Exception:  # gone, or unreadable: try another
                continue
            schema = schema.remove_metadata()
            _SCHEMA_CACHE[cache_key] = schema
            return schema
        return None

    # ---- locks ---------------------------------------------------------------------------
    def _lock_path(self, name: str) -> Path:
        """Locks live at the location when it is a folder (every process there sees them), else
        next to the catalog: registration and compaction only run where the catalog is (the
        CLI, the Dagster daemon: the head node)."""
        if self.location.is_local:
            Path(self.location.root).mkdir(parents=True, exist_ok=True)
            return Path(self.location.root) / f".{name}.lock"
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        return self.db_path.parent / f"{name}.lock"

    @contextlib.contextmanager
    def registry_lock(self, timeout_s: float = 600.0) -> Iterator[None]:
        """Registration is single-writer: this lock serializes registering processes."""
        with FileLock(str(self._lock_path("registry")), timeout=timeout_s):
            yield

    @contextlib.contextmanager
    def compaction_lock(self) -> Iterator[bool]:
        """One compactor at a time; yields False (without waiting) when another one runs."""
        lock = FileLock(str(self._lock_path("compaction")), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # ---- the catalog file (DIR/curation.duckdb) ------------------------------------------
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

    def _check(self, table: str) -> None:
        try:
            layout.check_identifier(table)
        except LayoutError as exc:
            raise StoreError(str(exc)) from None


def run_steps(con, statements: Sequence, params: Sequence | None = None) -> list[pl.DataFrame]:
    """Each statement's result, in order, on one connection (empty for one that returns none).
    A step that is not SQL is a function of the previous result returning (name, frame): the
    frame is registered on the connection under that name for the steps after it (what polars
    does faster than DuckDB, in the middle of a query's temp tables); the result it consumed is
    not kept (at ten million clips, the ranks' keys: 270 MB held to the end)."""
    results: list[pl.DataFrame] = []
    for statement in statements:
        if callable(statement):
            name, frame = statement(results[-1] if results else pl.DataFrame())
            if results:
                results[-1] = pl.DataFrame()
            con.register(name, frame.to_arrow())
            results.append(frame)
            continue
        cursor = con.execute(statement, params or [])
        results.append(cursor.pl() if cursor.description else pl.DataFrame())
    return results


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for the project's reads, within the head node's memory budget
    (spilling to the temp folder past it)."""
    import tempfile

    con = duckdb.connect()
    con.execute(f"set memory_limit = '{os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY}'")
    con.execute(f"set temp_directory = '{Path(tempfile.gettempdir()) / 'curation_duckdb_spill'}'")
    # a query over millions of rows would draw DuckDB's progress bar into every run's log
    con.execute("set enable_progress_bar = false")
    return con


_MISSING = re.compile(r"No such file|No files found that match|Cannot open file", re.I)
_CORRUPT = re.compile(r"magic bytes|too small to be a Parquet|Invalid Input|corrupt|Invalid Error|Parquet file", re.I)
_QUOTED = re.compile(r"[\"']([^\"']+\.parquet)[\"']")


def parquet_bytes(rows: pl.DataFrame, meta: dict[str, str]) -> bytes:
    import pyarrow.parquet as pq

    table = rows.to_arrow()
    merged = dict(table.schema.metadata or {})
    merged.update({f"{META_PREFIX}{k}".encode(): str(v).encode() for k, v in meta.items()})
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(merged), buffer, compression="zstd")
    return buffer.getvalue()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


__all__ = ["SHARD_WRITES", "ScoreStore", "StoreError", "StoreLocation", "StoreLocationError", "Unreadable",
           "UnreadableObject", "Written", "duckdb_connection", "parquet_bytes"]
