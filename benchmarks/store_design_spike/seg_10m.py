"""The 10M-clip point for design (b): the 16,000-shard rows replicated x10 into 160,000 shards
(shard keys, seq, paths and content hashes made unique per replica), written as segments of
`--per-segment` shards with the last 100 shards loose, plus the duplicate-lookup index.

    python seg_10m.py --rows /work/scale/16000shards/rows --out /work/scale/160000shards --replicas 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from layouts import TABLES  # noqa: E402
from segstore import SegStore  # noqa: E402

BASE = 16000


def replica_sql(path: Path, k: int, columns: list[str]) -> str:
    rep = [f"printf('shard-%06d', {k * BASE} + cast(substr(shard, 7) as integer)) as shard"]
    if "video_id" in columns:
        rep.append(f"case when video_id is null then null else substr(md5(video_id || '{k}'), 1, 32) || substr(video_id, 33) end as video_id")
    for c in ("path", "duplicate_of"):
        if c in columns:
            rep.append(f"case when {c} is null then null else {c} || '#{k}' end as {c}")
    if "seq" in columns:
        rep.append(f"seq + {k * BASE * 64} as seq")
    return f"select * replace ({', '.join(rep)}) from read_parquet('{path}')"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--replicas", type=int, default=10)
    p.add_argument("--per-segment", type=int, default=4000)
    p.add_argument("--loose", type=int, default=100)
    a = p.parse_args()
    rows, out = Path(a.rows), Path(a.out)
    store = SegStore(out / "seg")
    con = duckdb.connect()
    t_all = time.perf_counter()
    writes = pq.read_table(rows / "writes.parquet").to_pylist()
    by_table: dict[str, dict[str, dict]] = {}
    for w in writes:
        by_table.setdefault(w["asset"], {})[w["shard"]] = w
    total = a.replicas * BASE
    version = "20261201T000000000000Z-00000000"
    for table in TABLES:
        folder = Path(store.folder(table))
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            continue
        t0 = time.perf_counter()
        cols = pq.read_schema(rows / f"{table}.parquet").names
        gen, pending, pending_entries = 0, [], []
        for k in range(a.replicas):
            data = con.execute(replica_sql(rows / f"{table}.parquet", k, cols)).arrow()
            if hasattr(data, "read_all"):
                data = data.read_all()
            import numpy as np

            shard_col = data.column("shard").to_numpy(zero_copy_only=False)
            for n in range(BASE):
                number = k * BASE + n
                shard = f"shard-{number:06d}"
                w = by_table[table][f"shard-{n:05d}"]
                lo, hi = np.searchsorted(shard_col, [shard, shard + "~"])
                part = data.slice(lo, hi - lo)
                if number >= total - a.loose:
                    store.write(table, shard, part.replace_schema_metadata(None), w["code_version"], version)
                    continue
                pending.append(part)
                pending_entries.append({"shard": shard, "version": version, "rows": int(hi - lo),
                                        "code_version": w["code_version"], "written_at": w["written_at"]})
                if len(pending_entries) == a.per_segment:
                    gen += 1
                    _write_segment(folder, gen, table, pending, pending_entries)
                    pending, pending_entries = [], []
        if pending_entries:
            gen += 1
            _write_segment(folder, gen, table, pending, pending_entries)
        print(table, gen, "segments", round(time.perf_counter() - t0, 1), "s", flush=True)
    print("built", round(time.perf_counter() - t_all, 1), "s")


def _write_segment(folder: Path, gen: int, table: str, parts, entries) -> None:
    data = pa.concat_tables(parts).replace_schema_metadata(None)
    meta = {b"curation:table": table.encode(), b"curation:kind": b"segment",
            b"curation:writes": json.dumps(entries).encode(), b"curation:created": str(time.time() - 3600).encode()}
    pq.write_table(data.replace_schema_metadata(meta), folder / f"_seg-{gen:08d}.parquet", compression="zstd",
                   row_group_size=1024)


if __name__ == "__main__":
    main()
