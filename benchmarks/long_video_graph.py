"""A long source video through the WHOLE graph (the real CLI): does memory stay flat with length?

    PYTHONPATH=$PWD $VENV/bin/python benchmarks/long_video_graph.py [--minutes 3 30] [--size 64x48]
        [--work-dir DIR]

For each length it generates (once, cached in --work-dir) a --size 10-fps video of scenes of
25-35 s (the same generator and scene lengths as benchmarks/shots_benchmark.py part B), puts
it alone in an input folder and runs

    curation-assets run --input IN --data-dir FRESH_DIR --config recipes/long_videos.yaml \
        --model-profile tiny --shard-size 64

(shots on, near-duplicates on). While it runs, /proc is polled every 0.5 s: the RSS of the
CLI process and every descendant (ffmpeg cuts, decode pools), summed, and the largest single
process. RSS summed over processes counts shared pages (libraries) once per process, so the
sum is an upper bound. With one shard the CLI runs the Dagster job in-process
(`execute_in_process`), so steps are not processes of their own: the per-step peak is the
peak of the samples taken between the step's STEP_START and its end in the run's Dagster
event log (DIR/dagster_home/history/runs/*.db).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_video(path: Path, minutes: int, width: int, height: int) -> None:
    # scenes of 25-35 s: each long shot is split into pieces <= max_clip_s (20 s)
    lengths = [250 + (i * 37) % 100 for i in range(minutes * 2)]
    lengths[-1] += minutes * 600 - sum(lengths)
    code = ("import sys, json; from curation_assets.samples.synthetic import write_scene_sequence as w; "
            "w(sys.argv[1], json.loads(sys.argv[3]), width=int(sys.argv[2].split('x')[0]), "
            "height=int(sys.argv[2].split('x')[1]), fps=10)")
    subprocess.run([sys.executable, "-c", code, str(path), f"{width}x{height}", json.dumps(lengths)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def process_tree(root: int) -> dict[int, tuple[int, str]]:
    """pid -> (rss bytes, short name) for root and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name (2nd field) may hold spaces and parentheses: split after the last ')'
        parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    tree, frontier = {root}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    out = {}
    for pid in tree:
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[pid] = (rss, " ".join(Path(p).name if p.startswith("/") else p for p in cmd.split()[:4])[:60])
    return out


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, int]] = []  # (unix time, tree RSS, largest process RSS)
        self.per_process: dict[int, tuple[int, str]] = {}  # pid -> (peak RSS, name)
        self.max_processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            tree = process_tree(self.pid)
            if tree:
                rss = [r for r, _ in tree.values()]
                self.samples.append((time.time(), sum(rss), max(rss)))
                self.max_processes = max(self.max_processes, len(tree))
                for pid, (r, name) in tree.items():
                    if r > self.per_process.get(pid, (0, ""))[0]:
                        self.per_process[pid] = (r, name)
            self.stop.wait(self.interval)


def step_windows(dagster_home: Path) -> list[tuple[str, float, float]]:
    """(step, start, end) in unix time from every run's event log (the machine's clock is UTC)."""
    windows = []
    for db in sorted((dagster_home / "history" / "runs").glob("*.db")):
        if db.name == "index.db":
            continue
        con = sqlite3.connect(db)
        rows = con.execute("select dagster_event_type, step_key, timestamp from event_logs "
                           "where step_key is not null and dagster_event_type is not null order by id").fetchall()
        con.close()
        start: dict[str, float] = {}
        end: dict[str, float] = {}
        for kind, step, ts in rows:
            t = datetime.fromisoformat(ts).replace(tzinfo=timezone.utc).timestamp()
            if kind == "STEP_START":
                start[step] = t
            end[step] = t
        windows += [(s, start[s], end[s]) for s in start]
    return sorted(windows, key=lambda w: w[1])


def image_scores_chunks(dagster_home: Path) -> dict:
    """The image_scores step's chunking as its materialization metadata reports it (frame_chunks,
    frames_resident_peak, frames_decoded; absent before image_scores scored in chunks)."""
    found: dict = {}
    for db in sorted((dagster_home / "history" / "runs").glob("*.db")):
        if db.name == "index.db":
            continue
        con = sqlite3.connect(db)
        events = con.execute("select event from event_logs where step_key = 'image_scores' "
                             "and dagster_event_type = 'ASSET_MATERIALIZATION'").fetchall()
        con.close()
        for (event,) in events:
            for key in ("frame_chunks", "frames_resident_peak", "frames_decoded", "frame_chunk_budget_mb"):
                # serialized as {"entry_data": {"__class__": ..., "value": V}, "label": KEY}
                m = re.search(r'"value":\s*([\d.]+)\},\s*"label":\s*"%s"' % key, event)
                if m:
                    found[key] = float(m.group(1))
    return found


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_one(minutes: int, work: Path, width: int, height: int) -> dict:
    size = f"{width}x{height}"
    video = work / f"long_{minutes}min_{size}_10fps.mp4"
    if not video.exists():
        t = time.perf_counter()
        make_video(video, minutes, width, height)
        print(f"generated {video.name} in {time.perf_counter() - t:.0f} s", flush=True)
    inp, data = work / f"graph_in_{minutes}_{size}", work / f"graph_data_{minutes}_{size}"
    shutil.rmtree(inp, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    inp.mkdir(parents=True)
    (inp / video.name).symlink_to(video)
    cmd = [str(Path(sys.executable).parent / "curation-assets"), "run", "--input", str(inp), "--data-dir", str(data),
           "--config", str(REPO / "recipes" / "long_videos.yaml"), "--model-profile", "tiny", "--shard-size", "64"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    load_start = load()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(REPO), text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    output = proc.stdout.read()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{output[-3000:]}")
    clips = re.search(r"cut into (\d+) clips", output)
    shard = re.search(r"(shard-\d+): ok in [\d.]+ s - (\d+) videos", output)
    steps = []
    for step, a, b in step_windows(data / "dagster_home"):
        inside = [s for s in sampler.samples if a - 0.25 <= s[0] <= b + 0.25]
        steps.append({"step": step, "seconds": b - a, "tree_mb": max((s[1] for s in inside), default=0) / 2**20,
                      "largest_mb": max((s[2] for s in inside), default=0) / 2**20})
    top_pid = max(sampler.per_process, key=lambda p: sampler.per_process[p][0])
    funnel = output[output.find("Funnel for"):output.find("Training set")].rstrip() if "Funnel for" in output else output
    return {"minutes": minutes, "size": size, "wall": wall, "clips": int(clips.group(1)) if clips else 0,
            "shard": f"{shard.group(1)}: {shard.group(2)} videos (source + clips)" if shard else "?",
            "peak_tree_mb": max(s[1] for s in sampler.samples) / 2**20,
            "peak_single_mb": sampler.per_process[top_pid][0] / 2**20, "peak_single_name": sampler.per_process[top_pid][1],
            "max_processes": sampler.max_processes, "samples": len(sampler.samples), "steps": steps,
            "funnel": funnel, "load_start": load_start, "load_end": load(), "command": " ".join(cmd),
            "image_scores": image_scores_chunks(data / "dagster_home")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, nargs="+", default=[3, 30])
    parser.add_argument("--work-dir", default="/tmp/curation_shots_bench")
    parser.add_argument("--size", default="64x48", help="WIDTHxHEIGHT of the generated video (even numbers)")
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB; load at start {load()}\n")
    results = []
    for minutes in args.minutes:  # back to back, one at a time
        r = run_one(minutes, work, *map(int, args.size.split("x")))
        results.append(r)
        print(f"### {minutes} min {args.size}\n\n`{r['command']}`\n\n{r['funnel']}\n")
        print("| step | seconds | peak tree RSS MB | largest process MB |\n|---|---|---|---|")
        for s in r["steps"]:
            print(f"| {s['step']} | {s['seconds']:.1f} | {s['tree_mb']:.0f} | {s['largest_mb']:.0f} |")
        if r["image_scores"]:
            print("\nimage_scores chunking: " + ", ".join(f"{k} {v:g}" for k, v in r["image_scores"].items()))
        print(flush=True)
    print("## Summary\n")
    print("| video | wall s | clips | shard | peak RSS, CLI + children MB | largest single process MB | "
          "most processes at once | load start / end |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['minutes']} min {r['size']} 10 fps | {r['wall']:.1f} | {r['clips']} | {r['shard']} | "
              f"{r['peak_tree_mb']:.0f} | {r['peak_single_mb']:.0f} ({r['peak_single_name']}) | {r['max_processes']} | "
              f"{r['load_start']} / {r['load_end']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
