"""The duplicate lookup's index for design (b): content hash -> (seq, path, shard) of every
compacted raw_videos row, one file sorted by video_id in small row groups, rebuilt by the
compactor when it absorbs raw_videos; a lookup reads the footer and only the row groups
whose [min, max] can hold one of the ids, plus the loose raw_videos objects (not absorbed yet).

    python idindex.py build  --seg /work/scale/16000shards/seg
    python idindex.py lookup --seg /work/scale/16000shards/seg     (64 ids of the last shard, 5 runs)
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from segstore import LOOSE_SRC, SegStore  # noqa: E402

ROW_GROUP = 1024


def index_path(store: SegStore) -> Path:
    return Path(store.root) / "index" / "video_ids.parquet"


def build(store: SegStore) -> dict:
    t0 = time.perf_counter()
    con = duckdb.connect()
    for sql in store.view_sqls("raw_videos"):
        con.execute(sql)
    target = index_path(store)
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute("set preserve_insertion_order = true")
    con.execute(f"copy (select video_id, seq, path, shard from raw_videos where error is null and video_id is not null "
                f"order by video_id) to '{target}.tmp' (format parquet, compression zstd, row_group_size {ROW_GROUP})")
    os.replace(f"{target}.tmp", target)
    return {"seconds": round(time.perf_counter() - t0, 2), "rows": pq.read_metadata(target).num_rows,
            "bytes": target.stat().st_size}


def lookup(store: SegStore, ids: list[str], shard: str) -> dict[str, tuple[int, str]]:
    """video_id -> (seq, path) of its earliest copy in another shard."""
    found: dict[str, tuple[int, str]] = {}

    def take(vid, seq, path, s):
        if s != shard and (vid not in found or seq < found[vid][0]):
            found[vid] = (seq, path)

    pf = pq.ParquetFile(index_path(store))
    md = pf.metadata
    col = md.schema.to_arrow_schema().get_field_index("video_id")
    mins = [md.row_group(i).column(col).statistics.min for i in range(md.num_row_groups)]
    wanted = sorted(set(ids))
    groups = sorted({max(0, bisect.bisect_right(mins, v) - 1) for v in wanted})
    if groups:
        t = pf.read_row_groups(groups, columns=["video_id", "seq", "path", "shard"])
        t = t.filter(pc.is_in(t.column("video_id"), pa.array(wanted)))
        for r in t.to_pylist():
            take(r["video_id"], r["seq"], r["path"], r["shard"])
    # the loose raw_videos objects: newer than the index
    loose = [e for e in store.winners("raw_videos").values() if e.src == LOOSE_SRC]
    for e in loose:
        t = pq.read_table(f"{store.folder('raw_videos')}/{e.file}", columns=["video_id", "seq", "path", "shard", "error"])
        t = t.filter(pc.and_(pc.is_in(t.column("video_id"), pa.array(wanted)), pc.is_null(t.column("error"))))
        for r in t.to_pylist():
            take(r["video_id"], r["seq"], r["path"], r["shard"])
    return found


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["build", "lookup"])
    p.add_argument("--seg", required=True)
    a = p.parse_args()
    store = SegStore(a.seg)
    if a.command == "build":
        print(json.dumps(build(store)))
        return
    last = max(store.winners("raw_videos"))
    ids = [v for v in store.read_shard("raw_videos", last).column("video_id").to_pylist() if v]
    # a few known ids from an early shard too, so the lookup finds something
    ids += [v for v in store.read_shard("raw_videos", min(store.winners("raw_videos"))).column("video_id").to_pylist()[:3] if v]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = lookup(store, ids, last)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"ids": len(ids), "found": len(out), "median_ms": round(1000 * statistics.median(times), 1),
                      "first_ms": round(1000 * times[0], 1), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
