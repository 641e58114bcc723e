"""Phase-2 refinement of design (b), measured: a per-table index of compacted shards kept as
Parquet columns (not JSON in segment footers), with per-shard verdict counts for curated_videos,
so `status` (staleness + funnel counts) reads a few small files instead of every row or every
segment's entry list.

    tables/<t>/_index/<gen>.parquet   shard, version, rows, code_version, written_at, segment
                                      (+ kept/rejected/failed/... counts for curated_videos)

The compactor (single writer) writes a new generation with each segment; readers take the
highest generation. Here the index is derived once from an existing seg store, then:
  staleness: every table's index (shard, code_version) + the loose objects' footers
  funnel:    curated_videos' per-shard counts for the winning compacted shards + loose rows

    python shard_index.py build   --seg /work/scale/160000shards/seg
    python shard_index.py measure --seg /work/scale/160000shards/seg
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from layouts import TABLES  # noqa: E402
from segstore import LOOSE_SRC, SegStore  # noqa: E402


def build(store: SegStore) -> dict:
    t0 = time.perf_counter()
    con = duckdb.connect()
    for table in TABLES:
        entries, segs = store.entries(table)
        from segstore import _best
        seg_entries = sorted(_best([e for e in entries if e.src != LOOSE_SRC]).values(), key=lambda e: e.shard)
        idx = pa.table({"shard": [e.shard for e in seg_entries], "version": [e.version for e in seg_entries],
                        "rows": pa.array([e.rows for e in seg_entries], pa.int64()),
                        "code_version": [e.code_version for e in seg_entries],
                        "written_at": [e.written_at for e in seg_entries], "segment": [e.file for e in seg_entries]})
        if table == "curated_videos":
            counts = con.execute(f"""select shard, count(*) filter (where status = 'kept') as kept,
                count(*) filter (where status = 'rejected') as rejected, count(*) filter (where status = 'failed') as failed
                from read_parquet('{store.folder(table)}/_seg-*.parquet', filename = true)
                where (filename, shard) in (select ('{store.folder(table)}/' || segment, shard) from idx) group by shard""").arrow()
            if hasattr(counts, "read_all"):
                counts = counts.read_all()
            idx = con.execute("select i.*, c.kept, c.rejected, c.failed from idx i left join counts c using (shard) "
                              "order by shard").arrow()
            if hasattr(idx, "read_all"):
                idx = idx.read_all()
        else:
            idx = idx.sort_by("shard")
        folder = Path(store.folder(table)) / "_index"
        folder.mkdir(exist_ok=True)
        pq.write_table(idx, folder / f"{len(segs):08d}.parquet", compression="zstd")
    return {"seconds": round(time.perf_counter() - t0, 1)}


def staleness(store: SegStore, expected: dict[str, str]) -> int:
    """Stale (table, shard) pairs: compacted ones from the index, loose ones from their footers."""
    con = duckdb.connect()
    stale = 0
    for table in TABLES:
        folder = Path(store.folder(table))
        newest = max((folder / "_index").iterdir())
        want = expected[table]
        newest_loose = {}
        for name in os.listdir(folder):
            if name.startswith("_") or not name.endswith(".parquet"):
                continue
            md = pq.read_metadata(folder / name).metadata
            shard, version = md[b"curation:shard"].decode(), md.get(b"curation:version", b"").decode()
            if version >= newest_loose.get(shard, ("", ""))[0]:
                newest_loose[shard] = (version, md[b"curation:code_version"].decode())
        stale += sum(1 for v, cv in newest_loose.values() if cv != want)
        # compacted shards not overridden by a loose version; counted in SQL, nothing per row in Python
        skip = list(newest_loose)
        stale += con.execute(f"select count(*) from read_parquet('{newest}') where code_version <> ? "
                             f"and shard not in (select unnest(?::varchar[]))", [want, skip]).fetchone()[0]
    return stale


def funnel(store: SegStore) -> dict:
    folder = Path(store.folder("curated_videos"))
    newest = max((folder / "_index").iterdir())
    con = duckdb.connect()
    loose_files = [str(folder / n) for n in os.listdir(folder) if not n.startswith("_") and n.endswith(".parquet")]
    loose_shards = sorted({pq.read_metadata(f).metadata[b"curation:shard"].decode() for f in loose_files})
    row = con.execute(f"select sum(kept), sum(rejected), sum(failed) from read_parquet('{newest}') "
                      f"where shard not in (select unnest(?::varchar[]))", [loose_shards]).fetchone()
    out = {"kept": row[0], "rejected": row[1], "failed": row[2]}
    if loose_files:
        lst = ", ".join(f"'{f}'" for f in loose_files)
        for status, n in con.execute(f"select status, count(*) from read_parquet([{lst}], union_by_name = true) "
                                     "group by 1").fetchall():
            out[status] = (out.get(status) or 0) + n
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["build", "measure"])
    p.add_argument("--seg", required=True)
    a = p.parse_args()
    store = SegStore(a.seg)
    if a.command == "build":
        print(json.dumps(build(store)))
        return
    writes = {}
    for table in TABLES:  # the expected code version: the one the segments hold
        idx = max((Path(store.folder(table)) / "_index").iterdir())
        writes[table] = pq.read_table(idx, columns=["code_version"]).column("code_version")[0].as_py()
    res = {}
    for name, fn in (("staleness", lambda: staleness(store, writes)), ("funnel_counts", lambda: funnel(store))):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        res[name] = {"median_ms": round(1000 * statistics.median(times), 1), "first_ms": round(1000 * times[0], 1),
                     "answer": out}
    import resource

    res["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    res["load"] = os.getloadavg()[0]
    print(json.dumps(res, default=str))


if __name__ == "__main__":
    main()
