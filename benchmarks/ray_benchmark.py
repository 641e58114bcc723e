"""The same videos through the one-machine path and a two-node local Ray cluster, back to back.

    python benchmarks/ray_benchmark.py [--videos 64] [--shard-size 16] [--source real|synthetic]
                                       [--work /tmp/curation-ray-bench] [--out benchmarks/out]

- inputs: the five real clips of ../shared/data/real_videos stream-copied into N distinct files
  (a unique comment tag each, so N content hashes), or N synthetic moving patterns;
- one machine: `curation-assets run` (process pool, default workers);
- Ray: a local cluster of two nodes with one CPU each (this machine has two cores), started
  here, and `curation-assets run --engine ray --ray-address ...`;
- both with the tiny model profile (no real weights here; OCR's detector is real);
- reports wall time, the Ray path's overhead, model loads (per shard), videos per node, and
  the per-step cost a step-per-process executor (dagster-ray's ray_executor) would pay:
  a cold process importing the code location, and a no-op Ray job's submit-to-finish time.

Writes <out>/ray_results.md and <out>/ray_results.json. The machine is shared: `uptime` is
recorded before and after each path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real_videos"
OBJECT_STORE = 200 * 1024 * 1024


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def prepare_inputs(folder: Path, n: int, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from ours_worker import _write_once

    if source == "real":
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        clips = sorted(REAL.glob("video*.mp4"))
        for i in range(n):
            src = clips[i % len(clips)]
            _write_once(folder / f"{src.stem}_copy{i:03d}.mp4", lambda tmp, src=src, i=i: subprocess.run(
                [ffmpeg, "-y", "-loglevel", "error", "-i", str(src), "-map", "0", "-c", "copy",
                 "-metadata", f"comment=curation-ray-bench-{i}", str(tmp)], check=True, capture_output=True))
    else:
        from curation_assets.samples.synthetic import write_moving_pattern

        for i in range(n):
            _write_once(folder / f"synthetic_{i:03d}.mp4", lambda tmp, i=i: write_moving_pattern(
                tmp, width=320, height=240, n_frames=96, shift_px_per_frame=(1 + i % 5, i % 3), seed=i))
    return folder


def children_cpu() -> float:
    """CPU seconds of reaped children (the CLI and the worker processes it reaped)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cluster_cpu() -> float:
    """CPU seconds so far of the live Ray processes under this process (raylets, GCS, workers,
    actors) and of the children they reaped. With the machine shared, CPU time is the fairer
    overhead measure: wall time also reflects how much of the cores other work takes."""
    import psutil

    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def run_cli(args: list[str], env: dict) -> tuple[float, str, float]:
    """(wall s, stdout, CPU s of the CLI process and everything it reaped)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "curation_assets.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout, children_cpu() - cpu0


def per_node_work(data_dir: Path) -> tuple[dict, dict]:
    """videos decoded per Ray node, and the node of each model actor, from the materializations."""
    from dagster import AssetKey, DagsterInstance, DagsterEventType, EventRecordsFilter

    videos, shards = Counter(), {}
    with DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        records = instance.get_event_records(EventRecordsFilter(
            event_type=DagsterEventType.ASSET_MATERIALIZATION, asset_key=AssetKey("motion")), limit=10_000)
        for r in records:
            mat = r.asset_materialization
            per_video = mat.metadata.get("ray_node_per_video")
            if per_video is None:
                continue
            videos.update(per_video.value.values())
            shards[mat.partition] = sorted({n[:12] for n in per_video.value.values()})
    return {k[:12]: v for k, v in videos.items()}, shards


def step_process_cost(env: dict) -> float:
    """A fresh Python importing the code location: what every step pays in its own process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import curation_assets.orchestration.definitions"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def noop_ray_job(dashboard_url: str | None, env: dict) -> float | None:
    """Submit-to-finish of a Ray job running `python -c pass` (ray_executor's per-step wrapper)."""
    if not dashboard_url:
        return None
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(f"http://{dashboard_url}")
    t0 = time.perf_counter()
    job = client.submit_job(entrypoint=f"{sys.executable} -c pass")
    while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        time.sleep(0.05)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=16)
    p.add_argument("--source", choices=["real", "synthetic"], default="real" if REAL.is_dir() else "synthetic")
    p.add_argument("--work", type=Path, default=Path("/tmp/curation-ray-bench"))
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = p.parse_args(argv)

    import shutil

    inputs = prepare_inputs(args.work / f"inputs-{args.source}-{args.videos}", args.videos, args.source)
    env = dict(os.environ, HF_HUB_OFFLINE="1", CURATION_MODEL_PROFILE="tiny", PYTHONPATH=str(REPO))
    for name in ("DAGSTER_HOME", "CURATION_ENGINE", "CURATION_RAY_ADDRESS", "CURATION_INSTANCE", "CURATION_WORKERS"):
        env.pop(name, None)
    common = ["run", "--input", str(inputs), "--shard-size", str(args.shard_size), "--no-outputs"]
    res = {"videos": args.videos, "source": args.source, "shard_size": args.shard_size,
           "shards": -(-args.videos // args.shard_size), "cores": os.cpu_count()}

    local_dir = args.work / "data-local"
    shutil.rmtree(local_dir, ignore_errors=True)
    res["load_before_local"] = loadavg()
    res["local_wall_s"], local_out, res["local_cpu_s"] = run_cli(common + ["--data-dir", str(local_dir)], env)
    res["load_after_local"] = loadavg()
    print(f"one machine: {res['local_wall_s']:.1f} s (load {res['load_after_local']})", flush=True)

    import ray
    from ray.cluster_utils import Cluster

    t0 = time.perf_counter()
    # the dashboard only for the no-op job probe (job submission goes through it)
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "object_store_memory": OBJECT_STORE, "include_dashboard": True})
    cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    res["cluster_start_s"] = time.perf_counter() - t0
    try:
        ray_dir = args.work / "data-ray"
        shutil.rmtree(ray_dir, ignore_errors=True)
        res["load_before_ray"] = loadavg()
        ray_cpu0 = cluster_cpu()
        res["ray_wall_s"], ray_out, driver_cpu = run_cli(
            common + ["--data-dir", str(ray_dir), "--engine", "ray", "--ray-address", cluster.address], env)
        res["ray_cpu_s"] = driver_cpu + cluster_cpu() - ray_cpu0
        res["load_after_ray"] = loadavg()
        print(f"two-node Ray: {res['ray_wall_s']:.1f} s (load {res['load_after_ray']})", flush=True)
        actors = re.findall(r"Ray model actor curation-model:(\w+):\w+: loaded once on node (\w+) in ([\d.]+) s, (\d+) calls",
                            ray_out)
        res["model_actors"] = [{"loader": a, "node": n, "load_s": float(s), "calls": int(c)} for a, n, s, c in actors]
        res["model_loads_per_shard_ray"] = round(len(actors) / res["shards"], 3)
        res["videos_per_node"], res["nodes_per_shard"] = per_node_work(ray_dir)
        res["step_process_import_s"] = step_process_cost(env)
        ray.init(address=cluster.address, logging_level="ERROR")
        try:
            res["noop_ray_job_s"] = noop_ray_job(cluster.webui_url, env)
        except Exception as exc:
            res["noop_ray_job_s"], res["noop_ray_job_error"] = None, f"{type(exc).__name__}: {exc}"[:200]
    finally:
        ray.shutdown()
        cluster.shutdown()
    res["ray_overhead"] = res["ray_wall_s"] / res["local_wall_s"] - 1
    res["ray_cpu_overhead"] = res["ray_cpu_s"] / res["local_cpu_s"] - 1

    steps = 10  # steps of one curate_shards run (video_pass is one multi-asset step)
    lines = [
        f"# Ray engine benchmark ({args.videos} {args.source} videos, {res['shards']} shards of {args.shard_size}, "
        f"{res['cores']} cores, tiny models)", "",
        "| path | wall s | CPU s | load avg before | after |", "|---|---|---|---|---|",
        f"| one machine (process pool) | {res['local_wall_s']:.1f} | {res['local_cpu_s']:.1f} | {res['load_before_local']} | {res['load_after_local']} |",
        f"| two-node local Ray (1 CPU each) | {res['ray_wall_s']:.1f} | {res['ray_cpu_s']:.1f} | {res['load_before_ray']} | {res['load_after_ray']} |",
        "", f"Ray path overhead: wall {res['ray_overhead']:+.1%} (cluster start {res['cluster_start_s']:.1f} s, "
        "not counted). The Ray row's CPU s is a lower bound, not an overhead measure: Ray's raylets and "
        "workers leave this process's tree, so only what stays under it is counted.",
        "", "Model actors (one load each for the whole run, all shards):", "",
        "| model loader | node | load s | calls |", "|---|---|---|---|",
        *[f"| {a['loader']} | {a['node']} | {a['load_s']:.2f} | {a['calls']} |" for a in res["model_actors"]],
        "", f"Model loads per shard on Ray: {len(res['model_actors'])} loads / {res['shards']} shards "
        f"= {len(res['model_actors']) / res['shards']:.2f} (one per model per run)",
        "", f"Videos decoded per node: {res['videos_per_node']}",
        f"Nodes per shard (decode pass): {res['nodes_per_shard']}",
        "", "Per-step cost of a step-per-process executor (dagster-ray ray_executor):",
        f"- cold process importing the code location: {res['step_process_import_s']:.1f} s",
        f"- no-op Ray job submit-to-finish: " + (f"{res['noop_ray_job_s']:.1f} s" if res["noop_ray_job_s"] else
                                                 f"not measured ({res.get('noop_ray_job_error')})"),
        f"- x {steps} steps x {res['shards']} shards, plus one model load per model step per shard",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ray_results.json").write_text(json.dumps(res, indent=2))
    (args.out / "ray_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
