"""One shard's run under each executor the definitions could use, back to back, same data dir.

    python benchmarks/executor_benchmark.py [--rounds 2] [--work /tmp/curation-ui-bench] [--out benchmarks/out/ui_path]

Each variant is `dagster job execute -m curation_assets.orchestration.definitions -j curate_shards`
for the demo shard (the run a run launcher would start, in one fresh process), with:
- in_process: every step in the run's process (the definitions' default since issue 20);
- multiprocess (spawn): a process per step, each importing the code location (Dagster's default);
- multiprocess (forkserver, preloaded): a process per step forked from a server that has
  imported the code location and torch once.
CPU is user+system of the whole process tree (ui_path_benchmark.TreeCpu); rounds alternate
the variants so the machine's load changes hit them alike. The data dir must hold the demo
shard (ui_path_benchmark.py --corpus demo makes one). Writes <out>/executors.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_path_benchmark import REPO, TreeCpu, bench_env, log, loadavg, machine, metered_run  # noqa: E402

PRELOAD = ["torch", "curation_assets.orchestration.definitions"]
VARIANTS = {
    "in_process": {"in_process": {}},
    "multiprocess (spawn)": {"multiprocess": {}},
    "multiprocess (forkserver, preloaded)": {"multiprocess": {"start_method": {"forkserver": {"preload_modules": PRELOAD}}}},
}


def run_variant(name: str, config: dict, data_dir: Path, env: dict, logs: Path) -> dict:
    meter = TreeCpu(name)
    safe = "".join(c if c.isalnum() else "-" for c in name)
    run_config = logs / f"executor-{safe}.yaml"  # JSON is YAML; `dagster job execute` takes a file
    run_config.write_text(json.dumps({"execution": {"config": config}}))
    cmd = [str(REPO / ".venv/bin/dagster"), "job", "execute", "-m", "curation_assets.orchestration.definitions",
           "-j", "curate_shards", "--tags", json.dumps({"dagster/partition": "shard-00000"}),
           "--config", str(run_config)]
    env = dict(env, DAGSTER_HOME=str(data_dir / "dagster_home"), CURATION_DATA_DIR=str(data_dir))
    load0 = loadavg()
    wall, user, system = metered_run(meter, cmd, REPO, env, logs / f"executor-{safe}.log")
    log(f"{name}: wall {wall:.1f} s, CPU {user + system:.1f} s, load {load0} -> {loadavg()}")
    return {"variant": name, "wall_s": round(wall, 1), "cpu_s": round(user + system, 1), "load_before": load0,
            "load_after": loadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default="/tmp/curation-ui-bench/data-this-demo",
                        help="a data dir holding the demo shard (from ui_path_benchmark.py --corpus demo)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "ui_path"))
    args = parser.parse_args(argv)
    data_dir, out = Path(args.data_dir), Path(args.out)
    logs = out / "executor-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = bench_env(data_dir, 64)
    rows = [run_variant(name, config, data_dir, env, logs) for _ in range(args.rounds) for name, config in VARIANTS.items()]
    lines = [f"# One demo shard per executor ({machine()})", "", "| variant | round CPU s | median CPU s | median wall s |",
             "|---|---|---|---|"]
    for name in VARIANTS:
        mine = [r for r in rows if r["variant"] == name]
        lines.append(f"| {name} | {', '.join(str(r['cpu_s']) for r in mine)} | "
                     f"{statistics.median(r['cpu_s'] for r in mine):.1f} | {statistics.median(r['wall_s'] for r in mine):.1f} |")
    lines.append("\nLoad (1-min) before -> after each run: " + "; ".join(
        f"{r['variant']} {r['load_before']}->{r['load_after']}" for r in rows))
    (out / "executors.json").write_text(json.dumps(rows, indent=2))
    (out / "executors.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
