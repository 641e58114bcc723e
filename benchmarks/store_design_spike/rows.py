"""The spike's input: every table's rows of a store built by store_scale_benchmark.py, one
Parquet file per table sorted by shard, plus each object's footer bookkeeping (code version,
rows, written_at, empty shards included). Every candidate layout is loaded from the same rows.

    python rows.py /work/scale/1000shards   ->  /work/scale/1000shards/rows/<table>.parquet, writes.parquet
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb

TABLES = ("video_registry", "shots", "raw_videos", "resolution", "motion", "sampled_frames", "captions",
          "caption_repetition", "clip_similarity", "aesthetics", "ocr_area", "video_hashes", "near_duplicates",
          "curated_videos", "accelerated_videos")


def consolidate(work: Path) -> None:
    out = work / "rows"
    out.mkdir(exist_ok=True)
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = false")
    for table in TABLES:
        target = out / f"{table}.parquet"
        if target.exists():
            continue
        t0 = time.perf_counter()
        glob = f"{work}/data/tables/{table}/*.parquet"
        con.execute(f"copy (select * from read_parquet('{glob}', union_by_name = true) order by shard) "
                    f"to '{target}.tmp' (format parquet, compression zstd)")
        Path(f"{target}.tmp").rename(target)
        print(table, round(time.perf_counter() - t0, 1), "s", flush=True)
    target = out / "writes.parquet"
    if not target.exists():
        p = "curation:"
        con.execute(f"""copy (select max(v) filter (where k = '{p}table') as asset, max(v) filter (where k = '{p}shard') as shard,
            cast(max(v) filter (where k = '{p}rows') as bigint) as rows, max(v) filter (where k = '{p}code_version') as code_version,
            max(v) filter (where k = '{p}written_at') as written_at
            from (select file_name, decode(key) as k, decode(value) as v from parquet_kv_metadata('{work}/data/tables/*/*.parquet')
                  where decode(key) like '{p}%') group by file_name
            having asset in ({', '.join(repr(t) for t in TABLES)}) order by asset, shard) to '{target}' (format parquet)""")


if __name__ == "__main__":
    consolidate(Path(sys.argv[1]))
