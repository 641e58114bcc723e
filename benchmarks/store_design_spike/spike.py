"""Measure the candidate layouts on the same rows: each probe in a child process (peak RSS).

    python spike.py build   --work /work/scale/1000shards --layout seg|delta
    python spike.py measure --work /work/scale/1000shards --layout seg|delta|today [--probes a,b]

Results: <work>/spike_<layout>.json (and printed). Probes that write add new shards
(numbers from 90000 up), so read probes run first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

READ_PROBES = ("read_shard", "funnel_one_shard", "dup_lookup", "staleness", "count_by_status", "funnel", "join3")
WRITE_PROBES = ("write_new", "write_all_tables", "rewrite", "compact_100")
JOIN = """select c.status, count(*), avg(r.duration_s), avg(a.aesthetics_score)
    from curated_videos c join raw_videos r on r.path = c.path and r.shard = c.shard
    left join aesthetics a on a.video_id = c.video_id and a.shard = c.shard group by 1 order by 1"""


def timed(fn, n=1):
    times = []
    out = None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def run_probe(layout, probe: str, work: Path) -> dict:
    import pyarrow.parquet as pq

    rows_dir = work / "rows" if (work / "rows").exists() else Path(os.environ["SPIKE_ROWS"])
    if (work / "rows").exists():
        shards = pq.read_table(rows_dir / "writes.parquet", columns=["shard"]).column("shard").unique().to_pylist()
    else:  # a store built without rows (the 10M point): its registry's shards
        shards = list(layout.store.winners("video_registry"))
    shards.sort()
    rng = random.Random(7)
    sample = rng.sample(shards[:-150], 20)
    res: dict = {}
    if probe == "read_shard":
        times = [timed(lambda s=s: layout.read_shard("raw_videos", s))[0][0] for s in sample]
        res = {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times)}
    elif probe == "funnel_one_shard":
        def one(s):
            reg = layout.read_shard("video_registry", s)
            cur = layout.read_shard("curated_videos", s)
            return reg.num_rows, cur.group_by("status").aggregate([("status", "count")]).num_rows
        times = [timed(lambda s=s: one(s))[0][0] for s in sample]
        res = {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times)}
    elif probe == "dup_lookup":
        last = shards[-1]
        ids = [v for v in layout.read_shard("raw_videos", last).column("video_id").to_pylist() if v]
        con = layout.connect(["raw_videos"])
        sql = ("select video_id, min(seq) as seq, arg_min(path, seq) as path from raw_videos where shard <> ? and error is null "
               "and video_id in (select unnest(?)) group by video_id")
        times, out = timed(lambda: con.execute(sql, [last, ids]).fetchall(), 3)
        res = {"ids": len(ids), "found": len(out), "median_ms": 1000 * statistics.median(times), "first_ms": 1000 * times[0]}
    elif probe == "staleness":
        con = layout.connect([])
        def stale():
            rows = con.execute("select asset, shard, code_version from shard_writes").fetchall()
            expected = {}
            for a, s, v in rows:
                expected.setdefault(a, v)
            return sum(1 for a, s, v in rows if v != expected[a]), len(rows)
        times, out = timed(stale, 3)
        res = {"rows": out[1], "median_ms": 1000 * statistics.median(times), "first_ms": 1000 * times[0]}
    elif probe in ("count_by_status", "funnel", "join3"):
        con = layout.connect(["curated_videos", "raw_videos", "aesthetics", "video_registry"])
        sql = {"count_by_status": "select status, count(*) from curated_videos group by 1 order by 1",
               "funnel": "select (select count(*) from video_registry) as videos_in, status, count(*), "
                         "count(*) filter (where len(reasons) > 0) from curated_videos group by status order by 2",
               "join3": JOIN}[probe]
        times, out = timed(lambda: con.execute(sql).fetchall(), 3)
        res = {"median_ms": 1000 * statistics.median(times), "first_ms": 1000 * times[0], "answer": str(out)[:200]}
    elif probe == "count_explicit":  # seg: the project's own read path (named files, no glob)
        import duckdb

        from segstore import explicit_select
        con = duckdb.connect()
        def q():
            return con.execute(f"select status, count(*) from ({explicit_select(layout.store, 'curated_videos')}) "
                               "group by 1 order by 1").fetchall()
        times, out = timed(q, 3)
        res = {"median_ms": 1000 * statistics.median(times), "first_ms": 1000 * times[0], "answer": str(out)[:200]}
    elif probe in ("write_new", "rewrite", "write_all_tables"):
        tables = ("curated_videos",) if probe != "write_all_tables" else None
        import pyarrow as pa

        template = {t: pq.read_table(rows_dir / f"{t}.parquet", filters=[("shard", "=", "shard-00000")])
                    for t in (tables or __import__("layouts").TABLES)}
        times = []
        n = 10 if probe != "write_all_tables" else 3
        targets = sample[:n] if probe == "rewrite" else [f"shard-{900000 + rng.randrange(9999):06d}" for _ in range(n)]
        for s in targets:
            t0 = time.perf_counter()
            for t, rows in template.items():
                rows = rows.set_column(rows.schema.get_field_index("shard"), "shard", pa.array([s] * rows.num_rows, pa.string()))
                layout.write(t, s, rows, "cv-new")
            times.append(time.perf_counter() - t0)
        res = {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times), "n": n,
               "tables": len(template)}
    elif probe == "compact_100":
        import pyarrow as pa

        rows0 = pq.read_table(rows_dir / "curated_videos.parquet", filters=[("shard", "=", "shard-00000")])
        t0 = time.perf_counter()
        for i in range(100):
            s = f"shard-{800000 + i:06d}"
            layout.write("curated_videos", s, rows0.set_column(rows0.schema.get_field_index("shard"), "shard",
                                                                 pa.array([s] * rows0.num_rows, pa.string())), "cv")
        res["write_100_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = layout.compact("curated_videos") if layout.name != "seg" else layout.compact("curated_videos", grace_s=0)
        res["compact_s"] = time.perf_counter() - t0
        res["compact"] = {k: v for k, v in (out or {}).items() if k in ("absorbed", "deleted", "rows", "numFilesAdded",
                                                                          "numFilesRemoved", "totalConsideredFiles")}
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items()}


def make_layout(name: str, work: Path):
    import layouts

    return layouts.LAYOUTS[name](work)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["build", "measure", "probe"])
    p.add_argument("--work", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--probe")
    p.add_argument("--probes")
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args()
    work = Path(a.work)
    if a.command == "build":
        t0 = time.perf_counter()
        make_layout(a.layout, work).build(work / "rows")
        print(f"built {a.layout} in {time.perf_counter() - t0:.1f} s (load {os.getloadavg()[0]:.1f})")
        return
    if a.command == "probe":
        print("RESULT " + json.dumps(run_probe(make_layout(a.layout, work), a.probe, work)))
        return
    sys.path.insert(0, str(HERE.parent))
    from store_scale_benchmark import measure_one

    probes = a.probes.split(",") if a.probes else list(READ_PROBES) + list(WRITE_PROBES)
    out_path = work / f"spike_{a.layout}.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for probe in probes:
        rec = measure_one([sys.executable, __file__, "probe", "--work", str(work), "--layout", a.layout, "--probe", probe],
                          dict(os.environ), a.timeout)
        line = next((l for l in rec["output_tail"].splitlines() if l.startswith("RESULT ")), None)
        rec["result"] = json.loads(line[7:]) if line else None
        if line:
            rec.pop("output_tail")
        results[probe] = rec
        print(f"{a.layout} {probe}: {rec['seconds']} s wall, {rec['peak_rss_gb']} GB, load {rec['load_before']} | "
              f"{rec['result'] if line else rec['output_tail'][-600:]}", flush=True)
        out_path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
