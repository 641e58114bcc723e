"""Race: N writers re-running shards + a compactor + readers, then check every shard holds
exactly the rows of its last successful write (nothing lost, nothing duplicated, no mix).

    python race.py --layout seg|delta --root /tmp/race --writers 8 --shards 64 --writes 40 [--same-shard]

Writer w owns shards s with s % N == w and writes them one after another, so "last write of a
shard" is that writer's last successful one (`--same-shard`: every writer also hammers shard
'hot', which must end as one whole version of one of them). Each write carries a tag column
(writer-iteration) and 0..5 rows. Readers query the table while all this runs and count any
shard seen with rows of two writes at once, or an error.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make(layout: str, root: Path, opts_json: str | None):
    import layouts

    if layout == "delta" and opts_json:
        o = json.loads(opts_json)
        return layouts.Delta(root, storage_options=o["opts"], uri=o["uri"])
    return layouts.LAYOUTS[layout](root)


def rows_for(shard: str, tag: str, n: int):
    import pyarrow as pa

    return pa.table({"shard": pa.array([shard] * n, pa.string()), "tag": pa.array([tag] * n, pa.string()),
                     "i": pa.array(range(n), pa.int64())})


def writer(args):
    layout, root, opts, w, n_writers, shards, writes, same, seed = args
    lay = make(layout, Path(root), opts)
    rng = random.Random(seed)
    mine = [s for s in range(shards) if s % n_writers == w]
    log, errors = [], []
    for i in range(writes):
        time.sleep(float(os.environ.get("RACE_PAUSE", "0.05")))
        hot = same and i % 4 == 0
        shard = "hot" if hot else f"s{rng.choice(mine):04d}"
        tag, n = f"w{w}-{i}", rng.randrange(0, 6)
        for attempt in range(20):
            try:
                lay.write("t", shard, rows_for(shard, tag, n), f"cv{i}")
                log.append((shard, tag, n, time.time()))
                break
            except Exception as exc:  # a commit that lost a conflict: the run would fail or retry
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                time.sleep(0.05 * (attempt + 1))
    return log, errors


def compactor(layout, root, opts, stop_at, out):
    lay = make(layout, Path(root), opts)
    passes, errors = 0, []
    while time.time() < stop_at.value:
        try:
            if layout == "seg":
                lay.compact("t", grace_s=float(os.environ.get("RACE_GRACE", "5")))
            else:
                lay.compact("t")
            passes += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
        time.sleep(0.1)
    out.put(("compactor", passes, errors[:5], len(errors)))


def reader(layout, root, opts, stop_at, out):
    lay = make(layout, Path(root), opts)
    checks, mixed, errors = 0, 0, []
    while time.time() < stop_at.value:
        try:
            con = lay.connect(["t"])
            for shard, tags, n, distinct_i in con.execute(
                    "select shard, count(distinct tag), count(*), count(distinct i) from t group by shard").fetchall():
                if tags != 1 or n != distinct_i:
                    mixed += 1
            checks += 1
            con.close()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
        time.sleep(0.05)
    out.put(("reader", checks, mixed, errors[:5], len(errors)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layout", required=True)
    p.add_argument("--root", default="/tmp/race")
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--shards", type=int, default=64)
    p.add_argument("--writes", type=int, default=40)
    p.add_argument("--same-shard", action="store_true")
    p.add_argument("--s3", default=None, help="JSON {uri, opts} for delta on S3")
    a = p.parse_args()
    root = Path(a.root)
    if a.s3 is None:
        shutil.rmtree(root, ignore_errors=True)
    lay = make(a.layout, root, a.s3)
    # seed the table: every shard once (a table must exist before predicate overwrites)
    import pyarrow as pa

    seed = pa.concat_tables([rows_for(f"s{s:04d}", "seed", 2) for s in range(a.shards)] + [rows_for("hot", "seed", 2)])
    if a.layout == "delta":
        from deltalake import write_deltalake

        write_deltalake(lay.path("t"), seed, mode="overwrite", storage_options=lay.opts)
        write_deltalake(lay.path("_shard_writes"), pa.table({"asset": ["t"], "shard": ["x"], "rows": pa.array([0], pa.int64()),
                        "code_version": [""], "written_at": pa.array([0], pa.timestamp("us"))}), mode="overwrite",
                        storage_options=lay.opts)
    else:
        for s in [f"s{s:04d}" for s in range(a.shards)] + ["hot"]:
            lay.write("t", s, rows_for(s, "seed", 2), "cv")
    ctx = mp.get_context("spawn")
    stop_at = ctx.Value("d", time.time() + 3600)
    out = ctx.Queue()
    side = [ctx.Process(target=compactor, args=(a.layout, str(root), a.s3, stop_at, out)),
            ctx.Process(target=reader, args=(a.layout, str(root), a.s3, stop_at, out))]
    for proc in side:
        proc.start()
    t0 = time.time()
    with ctx.Pool(a.writers) as pool:
        results = pool.map(writer, [(a.layout, str(root), a.s3, w, a.writers, a.shards, a.writes, a.same_shard, w)
                                    for w in range(a.writers)])
    stop_at.value = time.time() + 1.0  # one more compactor pass and read after the last write
    side_out = [out.get() for _ in side]
    for proc in side:
        proc.join()
    elapsed = time.time() - t0
    # final compaction, then the check
    if a.layout == "seg":
        lay.compact("t", grace_s=0)
    last: dict[str, tuple[str, int]] = {}
    hot_tags = {}
    for log, _ in results:
        for shard, tag, n, when in log:
            if shard == "hot":
                hot_tags[tag] = n
            else:
                last[shard] = (tag, n)
    con = lay.connect(["t"])
    got = {s: (tags, n) for s, tags, n in con.execute(
        "select shard, list(distinct tag), count(*) from t group by shard").fetchall()}
    wrong = []
    for s in range(a.shards):
        key = f"s{s:04d}"
        want = last.get(key, ("seed", 2))
        have = got.get(key, ([], 0))
        if want[1] == 0:
            ok = key not in got
        else:
            ok = have[0] == [want[0]] and have[1] == want[1]
        if not ok:
            wrong.append((key, want, have))
    hot_ok = True
    if a.same_shard:
        have = got.get("hot", ([], 0))
        hot_ok = (have[1] == 0 and 0 in hot_tags.values()) or (len(have[0]) == 1 and hot_tags.get(have[0][0]) == have[1])
    errors = [e for _, errs in results for e in errs]
    summary = {"layout": a.layout, "writers": a.writers, "shards": a.shards,
               "successful_writes": sum(len(l) for l, _ in results), "write_errors": len(errors),
               "error_kinds": sorted({e.split(':')[0] for e in errors}), "first_errors": errors[:3],
               "seconds": round(elapsed, 1), "side": side_out, "wrong_shards": len(wrong), "wrong": wrong[:5],
               "hot_shard_one_whole_version": hot_ok, "load": os.getloadavg()[0]}
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
