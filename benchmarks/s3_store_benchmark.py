"""The store on an S3 API vs a local folder: what each store operation costs through s3fs.

A moto S3 server on a local port stands in for S3 (same protocol and requests as AWS, MinIO
or R2, but no network latency: real object stores add ~10-50 ms per request, so read the
request counts' effect, not the absolute times). Back to back in one process on the same
rows (64 per shard, the raw_videos-like table of store_benchmark.py):

    python benchmarks/s3_store_benchmark.py --shards 50 [--out benchmarks/results/s3_store_benchmark.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import duckdb  # noqa: E402
from store_benchmark import catalog_query, shard_rows, timed  # noqa: E402

from curation_assets.store import SHARD_WRITES, ScoreStore  # noqa: E402
from curation_assets.store.catalog import refresh_catalog  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=50)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_EC2_METADATA_DISABLED="true")
    n = args.shards
    result: dict = {"shards": n, "rows_per_shard": 64, "cpu_count": os.cpu_count(), "load_before": os.getloadavg(),
                    "s3_server": "moto 5.2.5 ThreadedMotoServer on 127.0.0.1 (in this process)"}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            local = ScoreStore(tmp / "local" / "curation.duckdb")
            s3 = ScoreStore(tmp / "s3" / "curation.duckdb", location="s3://bench/store")
            s3.location.fs.mkdir("bench")
            s3.location.check()
            stores = {"local_folder": local, "s3_moto": s3}
            lat: dict = {k: [] for k in stores}
            for s in range(n):  # interleaved, so load drifts hit both alike
                frame = shard_rows(f"shard-{s:05d}")
                for name, store in stores.items():
                    t0 = time.perf_counter()
                    store.replace_shard("raw_videos", f"shard-{s:05d}", frame, code_version="v1")
                    lat[name].append(time.perf_counter() - t0)
            result["write_ms"] = {k: {"median": round(statistics.median(v) * 1e3, 2),
                                      "p90": round(sorted(v)[int(0.9 * len(v))] * 1e3, 2)} for k, v in lat.items()}
            agg = "select count(*), round(avg(duration_s), 6), sum(file_size) from raw_videos where has_audio"
            q: dict = {}
            rows = {}
            for name, store in stores.items():
                q[f"read_shard_{name}"], _ = timed(lambda: store.read_shard("raw_videos", "shard-00007"), 10)
                q[f"query_all_shards_{name}"], rows[name] = timed(lambda: store.query(agg).rows(), 3)
                q[f"shard_writes_{name}"], writes = timed(lambda: store.query(f"select count(*) from {SHARD_WRITES}").rows(), 3)
                assert writes == [(n,)], writes
                q[f"refresh_catalog_{name}"], _ = timed(lambda: refresh_catalog(store), 1)
                q[f"catalog_query_{name}"] = catalog_query(store.db_path, agg)
            assert rows["local_folder"] == rows["s3_moto"], rows

            def duckdb_through_fsspec(sql_of):  # the earlier read path: DuckDB opens each object via fsspec
                con = duckdb.connect()
                try:
                    s3.location.register(con)
                    return con.execute(sql_of).fetchall()
                finally:
                    con.close()

            q["query_all_shards_s3_duckdb_via_fsspec"], direct = timed(
                lambda: duckdb_through_fsspec(agg.replace("raw_videos", f"({s3.select_sql('raw_videos')})")), 3)
            assert direct == rows["s3_moto"], direct
            # (shard_writes is no longer SQL over the objects: names, footers and the shard index)
            result["op_ms"] = {k: round(v * 1e3, 2) for k, v in q.items()}
    finally:
        server.stop()
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
