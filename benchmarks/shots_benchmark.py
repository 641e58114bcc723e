"""Shot splitting: detection cost against the `scenedetect` CLI, and memory on a long video.

    PYTHONPATH=$PWD $VENV/bin/python benchmarks/shots_benchmark.py [--work-dir DIR] [--repeats 3]

A. Detection, same video, each run in its own child process (wall time includes interpreter
   start and imports on both sides; peak RSS from os.wait4): our `detect_shots` (PyAV decode,
   bilinear downscale to 256 px on a reader thread, PySceneDetect's ContentDetector)
   against `scenedetect -i X detect-content list-scenes` with its default OpenCV backend and
   with `-b pyav`. Videos: the five real clips concatenated (when ../shared/data/real_videos
   exists) and a generated 480x360 60-s scene sequence. Runs alternate, median of --repeats.
B. Memory: the whole split step (`split_source`: detect, plan, cut every clip with ffmpeg) on
   generated 64x48 10-fps videos of 3 and 30 minutes; peak RSS should not grow with length.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEOS = REPO.parent / "shared" / "data" / "real_videos"
VENV_BIN = Path(sys.executable).parent


def child(argv: list[str]) -> None:
    kind, path = argv[0], argv[1]
    if kind == "make-real":
        from curation_assets.samples.synthetic import concatenate_clips

        concatenate_clips(sorted(REAL_VIDEOS.glob("video*.mp4")), path)
    elif kind == "make-scenes":
        from curation_assets.samples.synthetic import write_scene_sequence

        spec = json.loads(argv[2])
        write_scene_sequence(path, spec["lengths"], width=spec["width"], height=spec["height"], fps=spec["fps"])
    elif kind == "detect":
        from curation_assets.scorers.shots import ShotParams, detect_shots

        det = detect_shots(path, ShotParams())
        print(json.dumps({"cuts": det.cuts, "frames": det.frames_decoded, "seconds": det.seconds, "error": det.error}))
    elif kind == "split":
        from curation_assets.scorers.shots import ShotParams, SplitJob, split_source

        out = split_source(SplitJob(path, "bench" + "0" * 59, argv[2], ShotParams()))
        clips = out["clips"]
        print(json.dumps({"cuts": len(out["detection"].cuts), "frames": out["detection"].frames_decoded,
                          "clips": len(clips), "failed": sum(1 for c in clips if c["error"]),
                          "copied": sum(1 for c in clips if c["mode"] == "copy"),
                          "error": out["detection"].error}))


def measure(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/tmp")
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {err.decode()[-500:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "stdout": out.decode()}


def cli_cuts(stdout: str) -> int:
    # list-scenes prints "Detected N scenes" on the log, the table on stdout; count rows instead
    rows = [line for line in stdout.splitlines() if line.strip().startswith("|") and line.strip("| ").split()[:1]
            and line.strip("| ").split()[0].isdigit()]
    return max(0, len(rows) - 1)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", default="/tmp/curation_shots_bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    # Nothing heavy is imported here: a child's peak RSS starts from its parent's at fork,
    # so inputs are generated in children too.
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    videos = {}
    real = sorted(REAL_VIDEOS.glob("video*.mp4"))
    if len(real) == 5:
        target = work / "real_concat.mp4"
        if not target.exists():
            measure([sys.executable, __file__, "--child", "make-real", str(target)])
        videos["five real clips joined (480x360, 24 fps, 2850 frames)"] = target
    synthetic = work / "synthetic_480x360_60s.mp4"
    if not synthetic.exists():
        spec = {"lengths": [96, 240, 150, 312, 200, 160, 282], "width": 480, "height": 360, "fps": 24}
        measure([sys.executable, __file__, "--child", "make-scenes", str(synthetic), json.dumps(spec)])
    videos["generated scene sequence (480x360, 24 fps, 1440 frames)"] = synthetic

    print(f"machine: {os.cpu_count()} cores; load at start {load()}\n")
    print("## A. Shot detection: ours vs the scenedetect CLI (child process wall, median of "
          f"{args.repeats})\n")
    print("| video | side | wall s | CPU s | wall: CLI/ours | CPU: CLI/ours | cuts | peak RSS MB | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    scenedetect = str(VENV_BIN / "scenedetect")
    for name, path in videos.items():
        runs = {"ours": [], "cv": [], "pyav": []}
        for _ in range(args.repeats):
            runs["ours"].append(measure([sys.executable, __file__, "--child", "detect", str(path)]))
            runs["cv"].append(measure([scenedetect, "-i", str(path), "detect-content", "list-scenes", "-n"]))
            runs["pyav"].append(measure([scenedetect, "-b", "pyav", "-i", str(path), "detect-content",
                                         "list-scenes", "-n"]))
        med = {k: statistics.median(r["wall"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in runs.items()}
        cuts = {"ours": len(json.loads(runs["ours"][0]["stdout"])["cuts"]),
                "cv": cli_cuts(runs["cv"][0]["stdout"]), "pyav": cli_cuts(runs["pyav"][0]["stdout"])}
        labels = {"ours": "ours (detect_shots)", "cv": "scenedetect CLI (OpenCV)", "pyav": "scenedetect CLI (-b pyav)"}
        for k in ("ours", "cv", "pyav"):
            ratio = "" if k == "ours" else f"{med[k] / med['ours']:.2f}"
            cratio = "" if k == "ours" else f"{cpu[k] / cpu['ours']:.2f}"
            print(f"| {name} | {labels[k]} | {med[k]:.2f} | {cpu[k]:.2f} | {ratio} | {cratio} | {cuts[k]} | "
                  f"{max(r['rss_mb'] for r in runs[k]):.0f} | {load()} |")

    if not args.skip_memory:
        print("\n## B. Memory of the split step (detect + cut every clip) vs video length\n")
        print("| video | frames | cuts | clips (copied) | failed | wall s | peak RSS MB | load |")
        print("|---|---|---|---|---|---|---|---|")
        for minutes in (3, 30):
            path = work / f"long_{minutes}min_64x48_10fps.mp4"
            if not path.exists():
                # scenes of 25-35 s: each long shot is split into pieces <= 20 s
                n_scenes = minutes * 2
                lengths = [250 + (i * 37) % 100 for i in range(n_scenes)]
                lengths[-1] += minutes * 600 - sum(lengths)
                spec = {"lengths": lengths, "width": 64, "height": 48, "fps": 10}
                measure([sys.executable, __file__, "--child", "make-scenes", str(path), json.dumps(spec)])
            clips_dir = work / f"clips_{minutes}"
            subprocess.run(["rm", "-rf", str(clips_dir)], check=True)
            r = measure([sys.executable, __file__, "--child", "split", str(path), str(clips_dir)])
            out = json.loads(r["stdout"])
            print(f"| {minutes} min 64x48 10 fps | {out['frames']} | {out['cuts']} | {out['clips']} ({out['copied']}) | "
                  f"{out['failed']} | {r['wall']:.1f} | {r['rss_mb']:.0f} | {load()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
