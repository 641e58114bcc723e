"""Design (b), home-made: loose versioned objects + compacted segments that index themselves.

Per table, one folder (a prefix on an object store):

    tables/<table>/<shard>@<version>.parquet   a shard's rows, written by any process (one PUT / rename);
                                               never overwritten: a re-run is a new version
    tables/<table>/<shard>.parquet             today's objects: read as version '' (oldest), so an
                                               existing store needs no migration
    tables/<table>/_seg-<gen>.parquet          a compacted segment: rows of many shards sorted by
                                               shard; its footer lists every (shard, version, rows,
                                               code_version, written_at) it holds, empty shards too

The newest version of a shard wins; at equal versions a loose object beats a segment, a later
segment beats an earlier one. Every file is immutable and uniquely named, so the compactor
deletes exactly what it absorbed (a re-run published meanwhile has another name): no lock,
no conditional write, no rename-if-absent on any store. Deletes wait `grace_s` after the
file stopped being the winner, so a reader that listed before can still open it.

Readers: plain DuckDB SQL over one glob per table (view_sql): winners from the footers
(parquet_kv_metadata), rows semi-joined on (filename, shard). Always fresh: a new loose
object or segment shows up in the next query.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

META = "curation:"
SEG_PREFIX = "_seg-"
_LOOSE = re.compile(r"^([^@/]+?)(?:@([^/]+))?\.parquet$")


def new_version() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def version_time(version: str) -> float:
    if not version:
        return 0.0
    return dt.datetime.strptime(version[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


@dataclass(frozen=True)
class Entry:
    shard: str
    version: str
    file: str  # file name in the table folder
    src: int  # 1 << 40 for a loose object; the segment's generation otherwise (higher wins ties)
    rows: int = -1
    code_version: str = ""
    written_at: str = ""


LOOSE_SRC = 1 << 40


class SegStore:
    def __init__(self, root: str | Path):
        self.root = str(root)
        self._seg_cache: dict[str, tuple[list[Entry], float]] = {}

    def folder(self, table: str) -> str:
        return f"{self.root}/tables/{table}"

    # ---- writes: any process, no lock --------------------------------------------------
    def write(self, table: str, shard: str, rows: pa.Table, code_version: str = "", version: str | None = None) -> str:
        version = version or new_version()
        meta = {"table": table, "shard": shard, "rows": str(rows.num_rows), "code_version": code_version,
                "written_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(), "version": version}
        name = f"{quote(shard, safe='')}@{version}.parquet"
        _publish(f"{self.folder(table)}/{name}", _parquet_bytes(rows, meta))
        return name

    # ---- state -------------------------------------------------------------------------
    def entries(self, table: str) -> tuple[list[Entry], list[str]]:
        """Every candidate (loose objects from their names, segment contents from their
        footers, cached: segments never change) and the segment files."""
        try:
            names = os.listdir(self.folder(table))
        except FileNotFoundError:
            return [], []
        out, segs = [], []
        for name in names:
            if name.startswith("."):
                continue
            if name.startswith(SEG_PREFIX):
                segs.append(name)
                out.extend(self._segment_entries(table, name))
                continue
            m = _LOOSE.match(name)
            if m:
                out.append(Entry(unquote(m.group(1)), m.group(2) or "", name, LOOSE_SRC))
        return out, sorted(segs)

    def _segment_entries(self, table: str, name: str) -> list[Entry]:
        if name not in self._seg_cache:
            meta = pq.read_metadata(f"{self.folder(table)}/{name}").metadata
            gen = int(name[len(SEG_PREFIX):-len(".parquet")])
            writes = json.loads(meta[f"{META}writes".encode()])
            created = float(meta[f"{META}created".encode()].decode()) if f"{META}created".encode() in meta else 0.0
            self._seg_cache[name] = ([Entry(w["shard"], w["version"], name, gen, w["rows"], w["code_version"],
                                            w["written_at"]) for w in writes], created)
        return self._seg_cache[name][0]

    def winners(self, table: str) -> dict[str, Entry]:
        best: dict[str, Entry] = {}
        for e in self.entries(table)[0]:
            cur = best.get(e.shard)
            if cur is None or (e.version, e.src) > (cur.version, cur.src):
                best[e.shard] = e
        return best

    def read_shard(self, table: str, shard: str) -> pa.Table:
        """A shard's rows: its loose object, or its row groups in the segment that holds it."""
        names = [n for n in _list_prefix(self.folder(table), quote(shard, safe=""))]
        loose = [Entry(shard, m.group(2) or "", n, LOOSE_SRC) for n in names if (m := _LOOSE.match(n))
                 and unquote(m.group(1)) == shard]
        cands = loose + [e for seg in self._segments(table) for e in self._segment_entries(table, seg) if e.shard == shard]
        if not cands:
            return pa.table({})
        win = max(cands, key=lambda e: (e.version, e.src))
        path = f"{self.folder(table)}/{win.file}"
        if win.src == LOOSE_SRC:
            return pq.read_table(path)
        return pq.read_table(path, filters=[("shard", "=", shard)])

    def _segments(self, table: str) -> list[str]:
        return sorted(n for n in os.listdir(self.folder(table)) if n.startswith(SEG_PREFIX))

    # ---- compaction: one compactor at a time (head node) --------------------------------
    def compact(self, table: str, min_loose: int = 1, rows_per_group: int = 1024, max_rows: int = 2_000_000,
                grace_s: float = 300.0) -> dict:
        """Absorb the winning loose objects into a new segment; then delete what lost (GC)."""
        t0 = time.perf_counter()
        entries, segs = self.entries(table)
        best = _best(entries)
        in_segments = {(e.shard, e.version) for e in entries if e.src != LOOSE_SRC}
        # the newest version of a shard, held by a loose object only: not absorbed yet
        loose = sorted((e for e in best.values() if e.src == LOOSE_SRC and (e.shard, e.version) not in in_segments),
                       key=lambda e: e.shard)
        stats = {"table": table, "absorbed": 0, "deleted": 0, "segment": None}
        if len(loose) >= max(min_loose, 1):
            loose = loose[: max(1, max_rows // 64)]
            parts, writes = [], []
            for e in loose:
                path = f"{self.folder(table)}/{e.file}"
                pf = pq.ParquetFile(path)
                meta = {k.decode(): v.decode() for k, v in (pf.metadata.metadata or {}).items() if k.startswith(META.encode())}
                t = pf.read()
                parts.append(t.replace_schema_metadata(None))
                writes.append({"shard": e.shard, "version": e.version, "rows": t.num_rows,
                               "code_version": meta.get(f"{META}code_version", ""),
                               "written_at": meta.get(f"{META}written_at", ""), "from": e.file})
            data = pa.concat_tables(parts, promote_options="permissive")
            if data.num_rows:
                data = data.sort_by("shard")
            gen = 1 + max((int(s[len(SEG_PREFIX):-8]) for s in segs), default=0)
            name = f"{SEG_PREFIX}{gen:08d}.parquet"
            meta = {f"{META}table": table, f"{META}kind": "segment", f"{META}writes": json.dumps(writes),
                    f"{META}created": str(time.time())}
            buf = io.BytesIO()
            pq.write_table(data.replace_schema_metadata({**(data.schema.metadata or {}), **meta}), buf,
                           compression="zstd", row_group_size=rows_per_group)
            _publish(f"{self.folder(table)}/{name}", buf.getvalue())
            stats.update(absorbed=len(loose), segment=name, rows=data.num_rows, bytes=buf.tell())
        stats["deleted"] = self.gc(table, grace_s)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        return stats

    def gc(self, table: str, grace_s: float) -> int:
        """Delete loose objects and whole segments nobody needs, once what replaced them has been
        visible for `grace_s` (a reader that listed before can still open them):
        - a loose object of an older version than the shard's newest, or whose version a segment holds;
        - a segment each of whose shards has a newer version elsewhere, or the same version in a
          later segment."""
        entries, segs = self.entries(table)
        now = time.time()

        def visible(e: Entry) -> float:
            return version_time(e.version) if e.src == LOOSE_SRC else self._seg_cache[e.file][1]

        newest: dict[str, str] = {}
        holders: dict[tuple[str, str], list[Entry]] = {}
        for e in entries:
            newest[e.shard] = max(newest.get(e.shard, ""), e.version)
            holders.setdefault((e.shard, e.version), []).append(e)

        def replaced_since(e: Entry) -> float | None:
            """When something that makes `e` unnecessary became visible (None: still needed)."""
            if e.version < newest[e.shard]:
                return min(visible(h) for h in holders[(e.shard, newest[e.shard])])
            later = [h for h in holders[(e.shard, e.version)] if h.src != LOOSE_SRC and h.src > (e.src if e.src != LOOSE_SRC else 0)]
            return min(visible(h) for h in later) if later else None

        deleted = 0
        for e in entries:
            if e.src == LOOSE_SRC:
                since = replaced_since(e)
                if since is not None and now - since >= grace_s:
                    os.unlink(f"{self.folder(table)}/{e.file}")
                    deleted += 1
        for seg in segs:
            sinces = [replaced_since(e) for e in self._seg_cache[seg][0]]
            if all(x is not None and now - x >= grace_s for x in sinces):
                os.unlink(f"{self.folder(table)}/{seg}")
                self._seg_cache.pop(seg, None)
                deleted += 1
        return deleted

    # ---- SQL ---------------------------------------------------------------------------
    def view_sqls(self, table: str) -> list[str]:
        """Two views: `_<table>_versions` (every candidate file, the winner flagged) and the
        table itself. The rows view anti-joins the losers (usually none or a few): in one
        query with the CTE DuckDB stops pruning columns (a count read every column, 8x slower)."""
        glob = f"{self.folder(table)}/*.parquet"
        return [f'create or replace view "_{table}_versions" as ' + versions_select(glob),
                f'create or replace view "{table}" as ' + rows_select(glob, f"_{table}_versions")]

    def shard_writes_sql(self) -> list[str]:
        glob = f"{self.root}/tables/*/*.parquet"
        return ['create or replace view "_shard_writes_versions" as ' + versions_select(glob),
                "create or replace view shard_writes as select asset, shard, rows, code_version, written_at "
                "from _shard_writes_versions where winner"]


def versions_select(glob: str) -> str:
    """Every (asset, shard, version) a file under `glob` holds, `winner` = the one readers use:
    loose objects from their own footer, segments from the list in theirs."""
    g = glob.replace("'", "''")
    return f"""
with kv as (select file_name, decode(key) as k, decode(value) as v from parquet_kv_metadata('{g}')
            where decode(key) in ('{META}table', '{META}shard', '{META}version', '{META}writes', '{META}rows',
                                  '{META}code_version', '{META}written_at', '{META}kind')),
files as (select file_name, max(v) filter (where k = '{META}table') as asset, max(v) filter (where k = '{META}shard') as shard,
                 coalesce(max(v) filter (where k = '{META}version'), '') as version,
                 max(v) filter (where k = '{META}writes') as writes, max(v) filter (where k = '{META}kind') as kind,
                 cast(max(v) filter (where k = '{META}rows') as bigint) as rows,
                 max(v) filter (where k = '{META}code_version') as code_version,
                 max(v) filter (where k = '{META}written_at') as written_at from kv group by file_name),
cands as (select file_name, asset, shard, version, {LOOSE_SRC} as src, rows, code_version, written_at from files
          where writes is null and kind is null
          union all
          select file_name, asset, w.shard, w.version, cast(regexp_extract(file_name, '_seg-(\\d+)\\.parquet$', 1) as bigint),
                 w.rows, w.code_version, w.written_at
          from (select file_name, asset, unnest(from_json(writes, '[{{"shard":"VARCHAR","version":"VARCHAR","rows":"BIGINT","code_version":"VARCHAR","written_at":"VARCHAR"}}]')) as w
                from files where writes is not null))
select file_name, asset, shard, version, rows, code_version, cast(written_at as timestamp) as written_at,
       row_number() over (partition by asset, shard order by version desc, src desc) = 1 as winner
from cands"""


def rows_select(glob: str, versions_view: str) -> str:
    g = glob.replace("'", "''")
    return (f"select d.* exclude (filename) from read_parquet('{g}', union_by_name = true, filename = true) d "
            f"anti join (select file_name, shard from \"{versions_view}\" where not winner) l "
            "on d.filename = l.file_name and d.shard = l.shard")


def _best(entries: list[Entry]) -> dict[str, Entry]:
    best: dict[str, Entry] = {}
    for e in entries:
        cur = best.get(e.shard)
        if cur is None or (e.version, e.src) > (cur.version, cur.src):
            best[e.shard] = e
    return best


def _list_prefix(folder: str, prefix: str) -> list[str]:
    # local stand-in for an object store's prefix LIST (one request); os.scandir of the folder
    try:
        return [e.name for e in os.scandir(folder) if e.name.startswith(prefix)]
    except FileNotFoundError:
        return []


def _parquet_bytes(rows: pa.Table, meta: dict[str, str]) -> bytes:
    merged = dict(rows.schema.metadata or {})
    merged.update({f"{META}{k}".encode(): str(v).encode() for k, v in meta.items()})
    buf = io.BytesIO()
    pq.write_table(rows.replace_schema_metadata(merged), buf, compression="zstd")
    return buf.getvalue()


def _publish(path: str, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def explicit_select(store: SegStore, table: str) -> str:
    """The project's own reads: the winning files named one by one (no glob, so a file the
    compactor deletes after its grace can only be missed by a read older than the grace), and
    the few superseded shards a segment still holds filtered out by constant lists."""
    entries, _ = store.entries(table)
    best = _best(entries)
    files = sorted({e.file for e in best.values()})
    if not files:
        return "select null where false"
    folder = store.folder(table)
    # segment rows whose shard is won elsewhere
    losers: dict[str, list[str]] = {}
    for e in entries:
        if e.src != LOOSE_SRC and best[e.shard].file != e.file and e.file in files:
            losers.setdefault(e.file, []).append(e.shard)
    lst = ", ".join("'" + f"{folder}/{f}".replace("'", "''") + "'" for f in files)
    sql = f"select * exclude (filename) from read_parquet([{lst}], union_by_name = true, filename = true)"
    if losers:
        cond = " or ".join(f"(filename = '{folder}/{f}' and shard in ({', '.join(repr(s) for s in ss)}))"
                           for f, ss in losers.items())
        sql += f" where not ({cond})"
    return sql
