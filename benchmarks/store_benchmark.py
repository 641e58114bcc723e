"""Store benchmark: write latency per shard and query time over many shards.

Compares, back to back in one process on the same synthetic rows (64 videos per shard, a
raw_videos-like table of 17 columns):
  - writes: the Parquet object store (local folder, fsspec memory://) vs the earlier DuckDB-table
    store (one file behind a file lock; kept in curation_assets_tests/legacy_duckdb_store.py);
  - queries over every shard: ScoreStore.query (in-memory DuckDB, views bound per query), the
    catalog file's views (curation.duckdb), tables refreshed into a DuckDB file (and what the
    refresh costs), and the earlier DuckDB table; plus shard_writes (footers) and read_shard.

    python benchmarks/store_benchmark.py --shards 200 [--out benchmarks/results/store_benchmark.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "curation_assets_tests"))

from curation_assets.store import SHARD_WRITES, ScoreStore  # noqa: E402
from curation_assets.store.catalog import refresh_catalog  # noqa: E402


def shard_rows(shard: str, n: int = 64) -> pl.DataFrame:
    i = list(range(n))
    return pl.DataFrame({
        "video_id": [f"{shard}-{k:04d}{'ab' * 28}" for k in i], "path": [f"/videos/{shard}/{k}.mp4" for k in i],
        "seq": i, "source_caption": [f"a caption of clip {k} in {shard}" for k in i], "duplicate_of": [None] * n,
        "width": [1280] * n, "height": [720] * n, "rotation": [0] * n, "display_width": [1280] * n,
        "display_height": [720] * n, "fps": [29.97] * n, "frame_count": [300 + k for k in i],
        "duration_s": [10.0 + k / 10 for k in i], "codec": ["h264"] * n, "has_audio": [k % 2 == 0 for k in i],
        "file_size": [10_000_000 + k for k in i], "error": [None] * n,
        "code_version": ["v1"] * n,
    }, schema_overrides={"duplicate_of": pl.Utf8, "error": pl.Utf8})


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def catalog_query(db: Path, sql: str, repeat: int = 5) -> float:
    def run():
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    return timed(run, repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=200)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import legacy_duckdb_store as legacy

    n = args.shards
    result: dict = {"shards": n, "rows_per_shard": 64, "cpu_count": os.cpu_count(),
                    "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = {f"shard-{s:05d}": shard_rows(f"shard-{s:05d}") for s in range(n)}

        # ---- writes, interleaved so load drifts hit every variant alike
        objects = ScoreStore(tmp / "obj" / "curation.duckdb")
        memory = ScoreStore(tmp / "mem" / "curation.duckdb", location="memory://store-benchmark")
        old = legacy.ScoreStore(tmp / "old" / "curation.duckdb")
        lat = {"parquet_local": [], "parquet_memory_fsspec": [], "duckdb_file_legacy": []}
        for shard, frame in frames.items():
            for name, store in (("parquet_local", objects), ("parquet_memory_fsspec", memory), ("duckdb_file_legacy", old)):
                t0 = time.perf_counter()
                store.replace_shard("raw_videos", shard, frame, code_version="v1")
                lat[name].append(time.perf_counter() - t0)
        result["write_ms"] = {k: {"median": round(statistics.median(v) * 1e3, 2),
                                  "p90": round(sorted(v)[int(0.9 * len(v))] * 1e3, 2),
                                  "last_20_median": round(statistics.median(v[-20:]) * 1e3, 2)} for k, v in lat.items()}

        # ---- queries over every shard
        agg = "select count(*), round(avg(duration_s), 6), sum(file_size) from raw_videos where has_audio"
        q: dict = {}
        q["scorestore_query_parquet_local"], rows_a = timed(lambda: objects.query(agg).rows(), 5)
        q["scorestore_query_memory_fsspec"], rows_m = timed(lambda: memory.query(agg).rows(), 3)
        q["legacy_duckdb_table"], rows_b = timed(lambda: old.query(agg).rows(), 5)
        assert rows_a == rows_b == rows_m, (rows_a, rows_b, rows_m)
        refresh_catalog(objects)
        q["catalog_views_local"] = catalog_query(objects.db_path, agg)
        refreshed = tmp / "refreshed.duckdb"
        t0 = time.perf_counter()
        con = duckdb.connect(str(refreshed))
        con.execute(f"create table raw_videos as {objects.select_sql('raw_videos')}")
        con.close()
        q["refresh_to_table_once"] = time.perf_counter() - t0
        q["refreshed_table"] = catalog_query(refreshed, agg)
        t0 = time.perf_counter()
        refresh_catalog(memory)
        q["refresh_memory_catalog_once"] = time.perf_counter() - t0
        q["shard_writes_footers_local"], writes = timed(
            lambda: objects.query(f"select count(*) from {SHARD_WRITES}").rows(), 3)
        assert writes == [(n,)]
        q["legacy_shard_writes"], _ = timed(lambda: old.query(f"select count(*) from {SHARD_WRITES}").rows(), 3)
        q["read_shard_local"], _ = timed(lambda: objects.read_shard("raw_videos", "shard-00007"), 20)
        q["read_shard_legacy"], _ = timed(lambda: old.read_shard("raw_videos", "shard-00007"), 20)
        result["query_ms"] = {k: round(v * 1e3, 2) for k, v in q.items()}
        memory.location.fs.rm(memory.location.root, recursive=True)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
