"""Store scale benchmark (issue 23): the head node's bookkeeping against the store's size.

    # build (or extend, resumable) a synthetic store of N shards x 64 clips under WORK
    python benchmarks/store_scale_benchmark.py build --shards 1000 [--work /work/scale/1000shards] [--procs 2]
    # the 10M-clip point: shards of 512, the size auto_shard_size gives a 10M corpus (19,532 partitions)
    STORE_SCALE_CLIPS_PER_SHARD=512 python benchmarks/store_scale_benchmark.py build --shards 19532 --work /work/scale/10m
    # measure every command of the issue's table in a child process each (wall time, peak RSS)
    python benchmarks/store_scale_benchmark.py measure --shards 1000 [--probes status,build_outputs]
        [--code /path/to/other/checkout] [--timeout 900] [--out benchmarks/results/store_scale_1000.json]

How the stores are made: see store_scale_build.py (discover + register for the registry,
ScoreStore.replace_shard for the 14 shard tables with the asset modules' schemas and real code
versions, the shards as Dagster dynamic partitions). Stores live outside the repository
(default /work/scale/<N>shards) and are reused: `measure` never changes what the build made,
except what the measured commands themselves write (the no-op run stores the recipe; the
outputs job writes the training set, the report and the catalog).

`--code` points at a checkout with its own `.venv` (scripts/setup_venv.sh): the probes run
that checkout's interpreter and CLI, so phase 2 re-measures the same stores with its code.
Each probe is one child process; its peak RSS is the kernel's (wait4's ru_maxrss, which
includes the children it waited for). The load average is recorded before and after each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def measure_one(cmd: list[str], env: dict, timeout: float) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    # output goes to a pipe: read it in a thread so a chatty child cannot block on a full pipe
    import threading

    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group (start_new_session)
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(5)
    out = "".join(chunks)
    timed = [float(line.split()[1]) for line in out.splitlines() if line.startswith("TIMED ")]
    return {"seconds": round(wall, 2), "inproc_s": timed[-1] if timed else None, "peak_rss_gb": round(usage.ru_maxrss / 2**20, 3), "rc": proc.returncode,
            "timed_out": timed_out, "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
            "output_tail": out[-1500:]}


def cmd_measure(args) -> None:
    from store_scale_probes import PIECES, TABLE, argv

    work = Path(args.work or f"/work/scale/{args.shards}shards")
    code = Path(args.code).resolve() if args.code else HERE.parent
    python, cli = str(code / ".venv" / "bin" / "python"), str(code / ".venv" / "bin" / "curation-assets")
    probes = args.probes.split(",") if args.probes else list(TABLE) + list(PIECES)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(code))
    env.pop("DAGSTER_HOME", None)
    env.pop("CURATION_STORE", None)
    if args.store:  # every process that touches the store gets it, as a deployment would set it
        env["CURATION_STORE"] = args.store
    build = json.loads((work / "build.json").read_text())
    out_path = Path(args.out) if args.out else HERE / "results" / f"store_scale_{build['shards']}{'_s3' if args.store else ''}.json"
    result = json.loads(out_path.read_text()) if out_path.exists() and not args.fresh else {}
    result.update(shards=build["shards"], clips=build["clips"], objects=build.get("objects"), work=str(work),
                  code=str(code), commit=_commit(code), cpu_count=os.cpu_count())
    runs = result.setdefault("probes", {})
    for probe in probes:
        print(f"{probe} ...", flush=True)
        record = measure_one(argv(probe, python, cli, work, args.store), env, args.timeout)
        record["commit"] = result["commit"]
        runs[probe] = record
        tail = record["output_tail"].strip().splitlines()
        inproc = f" (call {record['inproc_s']} s)" if record.get("inproc_s") is not None else ""
        print(f"  {record['seconds']} s{inproc}, {record['peak_rss_gb']} GB, rc {record['rc']}"
              f"{' TIMED OUT' if record['timed_out'] else ''}, load {record['load_before']}->{record['load_after']}"
              f" | {tail[-1][:160] if tail else ''}", flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))
    print(f"results: {out_path}")


def _commit(code: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "curation_assets"], capture_output=True,
                               text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def cmd_build(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from store_scale_build import build

    work = Path(args.work or f"/work/scale/{args.shards}shards")
    t0 = time.perf_counter()
    record = build(work, args.shards, args.procs, log=lambda line: print(line, flush=True), store_url=args.store,
                   compact_every=args.compact_every, loose_tail=args.loose_tail)
    print(json.dumps({k: v for k, v in record.items() if k != "steps"}), json.dumps(record["steps"]))
    print(f"built {work} in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--shards", type=int, required=True)
    b.add_argument("--work", default=None)
    b.add_argument("--procs", type=int, default=2)
    b.add_argument("--store", default=None, help="fsspec URL for the objects (e.g. s3://bucket/prefix; AWS_* from the env)")
    b.add_argument("--compact-every", type=int, default=1024, help="shards written between two compaction passes")
    b.add_argument("--loose-tail", type=int, default=128, help="shards written after the last pass (left loose)")
    m = sub.add_parser("measure")
    m.add_argument("--shards", type=int, required=True)
    m.add_argument("--work", default=None)
    m.add_argument("--code", default=None, help="checkout whose .venv and code run the probes (default: this one)")
    m.add_argument("--probes", default=None, help="comma-separated (default: all; see store_scale_probes.py)")
    m.add_argument("--timeout", type=float, default=900)
    m.add_argument("--out", default=None)
    m.add_argument("--fresh", action="store_true", help="start a new results file instead of updating it")
    m.add_argument("--store", default=None, help="the store URL the build used (s3://...)")
    args = parser.parse_args()
    {"build": cmd_build, "measure": cmd_measure}[args.command](args)


if __name__ == "__main__":
    main()
