"""What a shard run costs from the UI against the CLI, back to back on the same data dir.

    python benchmarks/ui_path_benchmark.py [--corpus demo|8x64] [--repo PATH] [--label NAME]
                                           [--work /tmp/curation-ui-bench] [--out benchmarks/out/ui_path]

Per corpus, on one data dir, in this order:
1. `curation-assets run --no-outputs` (registers the videos, adds the shard partitions);
2. the UI path: `curation-assets ui` (webserver, daemon, code server, as a user starts it),
   then the launch the UI's buttons make, through its GraphQL API: one run of `curate_shards`
   for one shard ("Materialize", "Launch 1 run"), or a backfill of every shard (asset
   backfill of the job's assets, what "Launch backfill" submits); the daemon dequeues the
   runs and the instance's run launcher starts them; timed from the launch to the end of the
   last run. One shard: launched twice in the session (the second finds warm run workers
   where the code keeps them);
3. `curation-assets run --force --no-outputs` again;
2 and 3 `--repeat` times (the OCR step's CPU time swings by 2-3x with the machine's load:
compare medians of several rounds on a shared machine).

CPU is user+system seconds of the whole process tree, including processes that exited
(a cpuacct cgroup per measured command when /sys/fs/cgroup/cpuacct is writable, else
/proc polling of the tree, which misses the last <0.2 s of each short-lived process). For
the UI path the tree is everything `curation-assets ui` started; its idle rate (the
daemon's and webserver's polling), measured for 20 s before the launch, is reported and
subtracted over the run window. `--repo` measures another checkout (its .venv), e.g. a
worktree of main before a change. Model loads per shard come from the model steps'
`model_loads` metadata where the code records it, else from the runs' event logs (a step
in a process of its own loads its model anew).

Writes <out>/<label>-<corpus>.json and .md. The machine is shared: the 1-minute load
average is recorded around every measurement; compare ratios from one invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")
MODEL_ASSETS = ("captions", "clip_similarity", "aesthetics", "ocr_area")
MODEL_STEPS = ("captions", "image_scores")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# --------------------------------------------------------------------------- CPU of a process tree


class TreeCpu:
    """CPU seconds (user, system) of every process started under one command."""

    def __init__(self, name: str):
        self.cgroup = None
        if CGROUP_ROOT.is_dir() and os.access(CGROUP_ROOT, os.W_OK):
            safe = "".join(c if c.isalnum() else "-" for c in name)
            self.cgroup = CGROUP_ROOT / f"curation-bench-{os.getpid()}-{safe}"
            self.cgroup.mkdir(exist_ok=True)
        self.root_pid: int | None = None
        self._seen: dict[int, tuple[float, float]] = {}

    def wrap(self, cmd: list[str]) -> list[str]:
        """cmd started inside the cgroup, so all its descendants count from their first instruction."""
        if self.cgroup is None:
            return cmd
        return ["sh", "-c", f'echo $$ > "{self.cgroup}/cgroup.procs" && exec "$@"', "sh", *cmd]

    def read(self) -> tuple[float, float]:
        if self.cgroup is not None:
            ticks = os.sysconf("SC_CLK_TCK")
            stat = dict(line.split() for line in (self.cgroup / "cpuacct.stat").read_text().splitlines())
            total = int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
            user = int(stat["user"]) / ticks
            return user, max(0.0, total - user)
        return self._poll()

    def _poll(self) -> tuple[float, float]:
        import psutil

        if self.root_pid is not None:
            try:
                root = psutil.Process(self.root_pid)
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        t = proc.cpu_times()
                        self._seen[proc.pid] = (t.user + t.children_user, t.system + t.children_system)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
        return sum(u for u, _ in self._seen.values()), sum(s for _, s in self._seen.values())

    def close(self) -> None:
        if self.cgroup is not None:
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    return
                except OSError:
                    time.sleep(0.2)


def cpu_total(ts: tuple[float, float]) -> float:
    return ts[0] + ts[1]


# --------------------------------------------------------------------------- inputs


def prepare(corpus: str, work: Path, repo: Path) -> tuple[Path, int]:
    """The input folder and the shard size for `corpus`."""
    demo = work / "demo"
    if not (demo / "manifest.jsonl").exists():
        subprocess.run([str(repo / ".venv/bin/curation-assets"), "demo-data", str(demo)], check=True,
                       capture_output=True)
    if corpus == "demo":
        return demo, 64
    n_shards, per_shard = (int(x) for x in corpus.split("x"))
    folder = work / f"replicated-{corpus}"
    manifest = folder / "manifest.jsonl"
    if manifest.exists():
        return folder, per_shard
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for line in (demo / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        path = demo / row["videos"][0]
        probe = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-t", "0.1", "-"],
                               capture_output=True)
        if probe.returncode == 0 and path.stat().st_size > 0:
            sources.append((path, row.get("text")))
    rows = []
    for i in range(n_shards * per_shard):
        src, text = sources[i % len(sources)]
        dst = folder / f"copy{i:04d}-{src.stem}.mp4"
        if not dst.exists():  # a distinct comment tag: distinct bytes, so a distinct content hash
            tmp = dst.with_suffix(".tmp.mp4")
            subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(src), "-map", "0", "-c", "copy",
                            "-metadata", f"comment=curation-ui-bench-{i}", str(tmp)], check=True)
            tmp.rename(dst)
        rows.append({"videos": [dst.name], **({"text": text} if text else {})})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder, per_shard


def bench_env(data_dir: Path, shard_size: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1", CURATION_MODEL_PROFILE="tiny",
               CURATION_SHARD_SIZE=str(shard_size), CURATION_INPUT_DIR=str(data_dir / "no-input-folder"),
               PYTHONUNBUFFERED="1")
    for name in ("DAGSTER_HOME", "CURATION_RECIPE", "CURATION_DATA_DIR", "CURATION_WORKERS"):
        env.pop(name, None)
    return env


# --------------------------------------------------------------------------- the CLI path


def metered_run(meter: "TreeCpu", cmd: list[str], cwd: Path, env: dict, log_path: Path) -> tuple[float, float, float]:
    """Run cmd to its end under meter, output to log_path: (wall, user CPU, system CPU) of its
    whole process tree; a failure stops the benchmark naming the log."""
    t0 = time.perf_counter()
    with log_path.open("w") as out:
        proc = subprocess.Popen(meter.wrap(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        meter.root_pid = proc.pid
        while proc.poll() is None:
            meter.read()
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    user, system = meter.read()
    meter.close()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}); see {log_path}")
    return wall, user, system


def run_cli(repo: Path, inputs: Path, data_dir: Path, env: dict, force: bool, label: str, logs: Path) -> dict:
    meter = TreeCpu(label)
    cmd = [str(repo / ".venv/bin/curation-assets"), "run", "--input", str(inputs), "--data-dir", str(data_dir),
           "--no-outputs"] + (["--force"] if force else [])
    load0 = loadavg()
    wall, user, system = metered_run(meter, cmd, repo, env, logs / f"{label}.log")
    log(f"{label}: wall {wall:.1f} s, CPU {user + system:.1f} s (user {user:.1f}), load {load0} -> {loadavg()}")
    return {"path": label, "wall_s": round(wall, 1), "cpu_s": round(user + system, 1), "user_s": round(user, 1),
            "load_before": load0, "load_after": loadavg()}


# --------------------------------------------------------------------------- the UI path


class Ui:
    def __init__(self, repo: Path, data_dir: Path, env: dict, logs: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.meter = TreeCpu("ui")
        self.log_path = logs / "ui.log"
        cmd = [str(repo / ".venv/bin/curation-assets"), "ui", "--data-dir", str(data_dir), "--port", str(self.port)]
        with self.log_path.open("w") as out:
            self.proc = subprocess.Popen(self.meter.wrap(cmd), cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.meter.root_pid = self.proc.pid

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = json.load(resp)
        if "errors" in payload:
            raise RuntimeError(payload["errors"])
        return payload["data"]

    def wait_ready(self, timeout: float = 300) -> None:
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"curation-assets ui exited; see {self.log_path}")
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    self.location = entries[0]["name"]
                    return
            except Exception:
                pass
            self.meter.read()
            time.sleep(1)
        raise SystemExit(f"the UI was not ready after {timeout:.0f} s; see {self.log_path}")

    def launch_run(self, shard: str) -> None:
        mutation = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
          __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
        params = {"selector": {"repositoryLocationName": self.location, "repositoryName": "__repository__",
                               "pipelineName": "curate_shards"},
                  "executionMetadata": {"tags": [{"key": "dagster/partition", "value": shard}]}, "runConfigData": {}}
        result = self.graphql(mutation, {"p": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise SystemExit(f"launch failed: {result}")

    def launch_backfill(self, shards: list[str], assets: list[list[str]]) -> None:
        mutation = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
          __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
        params = {"partitionNames": shards, "assetSelection": [{"path": a} for a in assets], "fromFailure": False}
        result = self.graphql(mutation, {"p": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise SystemExit(f"backfill failed: {result}")

    def job_assets(self) -> list[list[str]]:
        nodes = self.graphql("{ assetNodes { assetKey { path } jobNames } }")["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes if "curate_shards" in n["jobNames"]]

    def runs(self) -> list[dict]:
        query = """{ runsOrError(filter: {}) { ... on Runs { results { runId status startTime endTime
          tags { key value } } } } }"""
        return self.graphql(query)["runsOrError"]["results"]

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(2)  # the rest of the group follows its leader
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
        self.meter.close()


def run_ui(repo: Path, data_dir: Path, env: dict, shards: list[str], logs: Path, launches: int,
           idle_window_s: float = 20) -> list[dict]:
    """One `curation-assets ui` session: `launches` launches of the same shards one after the
    other (the first on fresh run workers, the next on warm ones where the code keeps them)."""
    ui = Ui(repo, data_dir, env, logs)
    rows = []
    try:
        t_start = time.perf_counter()
        ui.wait_ready()
        seen = {r["runId"] for r in ui.runs()}
        time.sleep(10)  # the daemon's first ticks
        idle0, ti0 = ui.meter.read(), time.perf_counter()
        time.sleep(idle_window_s)
        idle1, ti1 = ui.meter.read(), time.perf_counter()
        idle_rate = (cpu_total(idle1) - cpu_total(idle0)) / (ti1 - ti0)
        log(f"ui ready in {ti0 - t_start - 10:.1f} s; idle CPU rate {idle_rate:.3f} cores")
        for n in range(launches):
            load0, cpu0, t0 = loadavg(), ui.meter.read(), time.perf_counter()
            if len(shards) == 1:
                ui.launch_run(shards[0])
            else:
                ui.launch_backfill(shards, ui.job_assets())
            while True:
                time.sleep(1)
                ui.meter.read()
                runs = [r for r in ui.runs() if r["runId"] not in seen]
                done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
                if len(done) >= len(shards) and len(runs) == len(done):
                    break
                if time.perf_counter() - t0 > 4 * 3600:
                    raise SystemExit("UI runs did not finish in 4 h")
            wall = time.perf_counter() - t0
            cpu1 = ui.meter.read()
            failed = [r["runId"] for r in done if r["status"] != "SUCCESS"]
            if failed:
                raise SystemExit(f"UI runs failed: {failed}; see {ui.log_path}")
            seen |= {r["runId"] for r in done}
            user, total = cpu1[0] - cpu0[0], cpu_total(cpu1) - cpu_total(cpu0)
            net = total - idle_rate * wall
            what = "ui launch" if len(shards) == 1 else f"ui backfill of {len(shards)} shards"
            what += " (first in the session)" if n == 0 else f" (#{n + 1} in the session)"
            log(f"{what}: wall {wall:.1f} s, CPU {total:.1f} s (user {user:.1f}), minus idle {net:.1f} s, "
                f"load {load0} -> {loadavg()}")
            rows.append({"path": what, "wall_s": round(wall, 1), "cpu_s": round(total, 1), "user_s": round(user, 1),
                         "cpu_minus_idle_s": round(net, 1), "idle_rate_cores": round(idle_rate, 3),
                         "load_before": load0, "load_after": loadavg(), "run_ids": [r["runId"] for r in done]})
        return rows
    finally:
        ui.stop()


# --------------------------------------------------------------------------- model loads per shard


def model_loads(data_dir: Path, run_ids: list[str], env: dict, repo: Path) -> list[dict]:
    """Per run (in launch order) and model asset: loads and the process that held the model."""
    script = r"""
import json, sys
from dagster import DagsterEventType, DagsterInstance
assets, steps, run_ids = sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3].split(",")
out = {}
with DagsterInstance.get() as instance:
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        shard = run.tags.get("dagster/partition")
        entry = {"run": run_id[:8], "process": run.tags.get("curation/run_process", "")}
        for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            mat = record.dagster_event.step_materialization_data.materialization
            name = mat.asset_key.to_user_string()
            if name in assets and "model_loads" in mat.metadata:
                entry[name] = {"loads": mat.metadata["model_loads"].value, "seconds": mat.metadata["model_load_s"].value,
                               "pid": mat.metadata["model_process"].value}
        # a step executed in a process of its own (multiprocess executor) loads its model anew there
        starts = [r.dagster_event.step_key for r in instance.all_logs(run_id, of_type=DagsterEventType.STEP_WORKER_STARTING)]
        entry["step_processes"] = len(starts)
        entry["model_step_processes"] = sum(1 for s in starts if s in steps)
        entry["shard"] = shard
        out[run_id] = entry
print(json.dumps([out[r] for r in run_ids]))
"""
    env = dict(env, DAGSTER_HOME=str(data_dir / "dagster_home"))
    proc = subprocess.run([str(repo / ".venv/bin/python"), "-c", script, ",".join(MODEL_ASSETS), ",".join(MODEL_STEPS),
                           ",".join(run_ids)], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def render(res: dict) -> str:
    lines = [f"# UI path vs CLI: {res['corpus']} ({res['label']}, {res['repo_commit']})", "",
             f"Machine: {res['machine']}. Load (1-min) around each row. Rows in the order they ran.", "",
             "| path | wall s | CPU s (user+sys) | user s | CPU s minus UI idle | load before -> after |",
             "|---|---|---|---|---|---|"]
    for row in res["rows"]:
        lines.append(f"| {row['path']} | {row['wall_s']} | {row['cpu_s']} | {row['user_s']} | "
                     f"{row.get('cpu_minus_idle_s', '')} | {row['load_before']} -> {row['load_after']} |")
    clis = [r["cpu_s"] for r in res["rows"] if r["path"].startswith("cli")]
    cli_mean = sum(clis) / len(clis)
    uis = [r for r in res["rows"] if r["path"].startswith("ui")]
    lines += ["", f"UI idle CPU rate (daemon and webserver polling, before the launches): {uis[0]['idle_rate_cores']} "
              f"cores. CLI mean: {cli_mean:.1f} CPU s over {len(clis)} runs.", "",
              "| UI row | CPU minus idle / CLI mean | raw CPU / CLI mean | wall / CLI mean wall |", "|---|---|---|---|"]
    cli_wall = sum(r["wall_s"] for r in res["rows"] if r["path"].startswith("cli")) / len(clis)
    for r in uis:
        lines.append(f"| {r['path']} | {r['cpu_minus_idle_s'] / cli_mean:.2f} | {r['cpu_s'] / cli_mean:.2f} | "
                     f"{r['wall_s'] / cli_wall:.2f} |")
    lines += ["", "Model loads per shard on the UI path (model step metadata `model_loads` and the process that "
              "held the model; 'not recorded': code before the change, where every model step ran in a process of "
              "its own, so its model loaded once per step process):", "",
              "| shard | run | " + " | ".join(MODEL_ASSETS) + " | model step processes |",
              "|---|---|" + "---|" * (len(MODEL_ASSETS) + 1)]
    for entry in res["model_loads"]:
        cells = [f"{entry[a]['loads']} (pid {entry[a]['pid']})" if a in entry else "not recorded" for a in MODEL_ASSETS]
        lines.append(f"| {entry['shard']} | {entry['run']} | " + " | ".join(cells) + f" | {entry['model_step_processes']} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration):
        pass
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpus} cores{f' ({model})' if model else ''}{mem}, no GPU, shared with other jobs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="demo", help="demo (13 videos, one shard) or SHARDSxVIDEOS, e.g. 8x64")
    parser.add_argument("--repo", default=str(REPO), help="the checkout to measure (uses its .venv)")
    parser.add_argument("--label", default="this", help="names the outputs (e.g. before, after)")
    parser.add_argument("--work", default="/tmp/curation-ui-bench", help="inputs and data dirs (outside the repo)")
    parser.add_argument("--first", choices=["cli", "register"], default="cli",
                        help="cli: a first CLI run registers the videos (and is measured); register: register only")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (UI session, CLI --force) after the first CLI run")
    parser.add_argument("--ui-launches", type=int, default=0,
                        help="launches per UI session, one after the other (default: 2 for one shard, else 1)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "ui_path"))
    args = parser.parse_args(argv)
    repo, work, out = Path(args.repo).resolve(), Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs, shard_size = prepare(args.corpus, work, repo)
    data_dir = work / f"data-{args.label}-{args.corpus}"
    logs = out / f"{args.label}-{args.corpus}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = bench_env(data_dir, shard_size)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if args.first == "cli":
        rows = [run_cli(repo, inputs, data_dir, env, force=data_dir.exists(), label="cli run", logs=logs)]
    else:  # big corpora: only register, so the UI path and one CLI run go back to back
        rows = []
        register(repo, inputs, data_dir, env, shard_size)
    shards = _shards(data_dir, env, repo)
    launches = args.ui_launches or (2 if len(shards) == 1 else 1)
    for round_ in range(args.repeat):
        rows += run_ui(repo, data_dir, env, shards, logs, launches)
        rows.append(run_cli(repo, inputs, data_dir, env, force=True, label=f"cli run --force #{round_ + 1}", logs=logs))
    ui_runs = [run_id for row in rows if row["path"].startswith("ui") for run_id in row["run_ids"]]
    res = {"corpus": args.corpus, "label": args.label, "repo": str(repo), "repo_commit": commit, "machine": machine(),
           "rows": rows, "model_loads": model_loads(data_dir, ui_runs, env, repo)}
    stem = out / f"{args.label}-{args.corpus}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2))
    stem.with_suffix(".md").write_text(render(res))
    print(render(res))
    return 0


def register(repo: Path, inputs: Path, data_dir: Path, env: dict, shard_size: int) -> None:
    """What the CLI does before it runs anything: the videos as shards, the shards as partitions."""
    script = r"""
import sys
from pathlib import Path
from dagster import DagsterInstance
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register, registered_shards
from curation_assets.orchestration.instance import ensure_dagster_home
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.store import ScoreStore
inputs, data_dir, size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
data_dir.mkdir(parents=True, exist_ok=True)
ensure_dagster_home(data_dir)
store = ScoreStore(data_dir / "curation.duckdb")
register(store, discover(str(inputs)), size)
with DagsterInstance.get() as instance:
    known = set(instance.get_dynamic_partitions(shard_partitions.name))
    instance.add_dynamic_partitions(shard_partitions.name, [s for s in registered_shards(store) if s not in known])
"""
    env = dict(env, CURATION_DATA_DIR=str(data_dir))
    subprocess.run([str(repo / ".venv/bin/python"), "-c", script, str(inputs), str(data_dir), str(shard_size)],
                   env=env, cwd=repo, check=True)


def _shards(data_dir: Path, env: dict, repo: Path) -> list[str]:
    # through the store, not the catalog file: registering alone writes no catalog
    script = ("import sys; from curation_assets.ingest.registry import registered_shards; "
              "from curation_assets.store import ScoreStore; "
              "print(','.join(sorted(registered_shards(ScoreStore(sys.argv[1])))))")
    proc = subprocess.run([str(repo / ".venv/bin/python"), "-c", script, str(data_dir / "curation.duckdb")],
                          env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip().split(",")


if __name__ == "__main__":
    sys.exit(main())
