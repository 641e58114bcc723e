"""The spike's input at sizes where building today's layout first would take hours: the same
rows (store_scale_synthetic, same seeds, same code versions) generated straight into one
file per table, plus writes.parquet (what each object's footer would say).

    python rows_synth.py --work /work/scale/16000shards --shards 16000 [--procs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
CHUNK = 500


def chunk(args) -> str:
    work, start, end = args
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import polars as pl

    from curation_assets.orchestration.recipe import shard_code_versions
    from store_scale_synthetic import registry_rows, shard_tables

    versions = shard_code_versions({}, "real")
    when = dt.datetime(2026, 12, 1)
    parts: dict[str, list] = {}
    writes = []
    for n in range(start, end):
        shard = f"shard-{n:05d}"
        tables = {"video_registry": registry_rows(shard, n, f"{work}/videos", when),
                  **shard_tables(shard, n, f"{work}/videos", versions)}
        for t, f in tables.items():
            parts.setdefault(t, []).append(f)
            writes.append({"asset": t, "shard": shard, "rows": f.height, "code_version": versions.get(t, ""),
                           "written_at": when.isoformat()})
    out = Path(work) / "rows" / "chunks"
    out.mkdir(parents=True, exist_ok=True)
    for t, frames in parts.items():
        pl.concat(frames, how="diagonal_relaxed").write_parquet(out / f"{t}-{start:06d}.parquet", compression="zstd")
    pl.DataFrame(writes).write_parquet(out / f"_writes-{start:06d}.parquet")
    return f"{start}-{end}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--procs", type=int, default=2)
    a = p.parse_args()
    work = Path(a.work)
    t0 = time.perf_counter()
    done = {f.name.split("-")[-1][:-8] for f in (work / "rows" / "chunks").glob("_writes-*.parquet")} \
        if (work / "rows" / "chunks").exists() else set()
    todo = [(str(work), s, min(s + CHUNK, a.shards)) for s in range(0, a.shards, CHUNK) if f"{s:06d}" not in done]
    with ProcessPoolExecutor(a.procs, mp_context=get_context("spawn")) as pool:
        for r in pool.map(chunk, todo):
            print("chunk", r, f"{time.perf_counter() - t0:.0f} s", flush=True)
    import duckdb

    con = duckdb.connect()
    chunks = work / "rows" / "chunks"
    names = sorted({f.name.rsplit("-", 1)[0] for f in chunks.glob("*.parquet")})
    for name in names:
        target = work / "rows" / ("writes.parquet" if name == "_writes" else f"{name}.parquet")
        con.execute(f"copy (select * from read_parquet('{chunks}/{name}-*.parquet', union_by_name = true) order by "
                    f"{'asset, shard' if name == '_writes' else 'shard'}) to '{target}' (format parquet, compression zstd)")
        print(target.name, f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
