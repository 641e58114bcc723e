"""Delta: does a shard write get slower as the table's log grows? One process commits N
single-shard writes (one file each, 64 rows of curated_videos), timing every write; the
default checkpoint interval (100) applies. Prints the median per block of 250 commits.

    python delta_log_growth.py --rows /work/scale/1000shards/rows --commits 2000
"""
import argparse, json, os, shutil, statistics, time
import pyarrow as pa, pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

p = argparse.ArgumentParser(); p.add_argument("--rows", required=True); p.add_argument("--commits", type=int, default=2000)
p.add_argument("--root", default="/work/scale/delta_log_growth"); a = p.parse_args()
shutil.rmtree(a.root, ignore_errors=True)
base = pq.read_table(f"{a.rows}/curated_videos.parquet", filters=[("shard", "=", "shard-00000")]).replace_schema_metadata(None)
times, rerun = [], []
for i in range(a.commits):
    s = f"shard-{i:05d}"
    rows = base.set_column(base.schema.get_field_index("shard"), "shard", pa.array([s] * base.num_rows, pa.string()))
    t0 = time.perf_counter()
    if i == 0:
        write_deltalake(a.root, rows)
    else:
        write_deltalake(a.root, rows, mode="overwrite", predicate=f"shard = '{s}'")
    times.append(time.perf_counter() - t0)
    if i and i % 250 == 0:  # a re-run of an early shard at this table size
        t0 = time.perf_counter()
        write_deltalake(a.root, rows.set_column(rows.schema.get_field_index("shard"), "shard", pa.array(["shard-00001"] * rows.num_rows, pa.string())),
                        mode="overwrite", predicate="shard = 'shard-00001'")
        rerun.append(round(1000 * (time.perf_counter() - t0), 1))
blocks = [round(1000 * statistics.median(times[i:i + 250]), 1) for i in range(0, len(times), 250)]
log = os.listdir(f"{a.root}/_delta_log")
print(json.dumps({"commits": a.commits, "median_ms_per_250": blocks, "rerun_ms_every_250": rerun,
                  "log_files": len(log), "checkpoints": sum(1 for f in log if "checkpoint" in f),
                  "load": os.getloadavg()[0]}))
