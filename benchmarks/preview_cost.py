"""What the gallery's preview adds to the decode pass (goal: at most 5 % of its time).

    .venv/bin/python benchmarks/preview_cost.py [--repeat 5] [--videos DIR] [--out DIR]

Per clip, back to back and alternating which goes first: the decode pass as the pipeline
runs it in a worker process (`video_pass`, motion at 2 fps on one flow thread, the three
sampled frames) without a preview, then with one (its frames scaled in the decoder's
converter as they stream past), and the preview's encode + atomic write (`write_preview`,
what run_pass_job adds after the pass). Wall and CPU time (this process, all threads), the
median of `--repeat` runs each; overhead = (with - without + encode) / without. Clips: the
five real ones in ../shared/data/real_videos when present (360p-640p), plus generated
720p and 1080p clips (decoding and scaling cost more there). The 1-minute load average is
recorded around every clip: compare the ratios on a shared machine, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation_assets.samples import synthetic  # noqa: E402
from curation_assets.scorers.frame_sampling import FrameSamplingParams  # noqa: E402
from curation_assets.scorers.motion import MotionParams  # noqa: E402
from curation_assets.scorers.previews import PreviewParams, write_preview  # noqa: E402
from curation_assets.scorers.video_pass import video_pass  # noqa: E402


def clips(videos: Path | None, work: Path) -> list[Path]:
    found = sorted(videos.glob("*.mp4")) if videos and videos.is_dir() else []
    for name, (w, h) in {"synthetic_720p.mp4": (1280, 720), "synthetic_1080p.mp4": (1920, 1080)}.items():
        path = work / name
        if not path.exists():
            synthetic.write_moving_pattern(path, shift_px_per_frame=(2.0, 1.0), seed=7, width=w, height=h, fps=30,
                                           n_frames=300)
        found.append(path)
    return found


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def measure(path: Path, repeat: int, store: Path) -> dict:
    motion, sampling, preview = MotionParams(), FrameSamplingParams(), PreviewParams()
    runs = {"without": [], "with": [], "encode": []}
    frames = 0
    video_pass(path, motion, sampling)  # warm: file cache, codec tables
    for r in range(repeat):
        order = ("without", "with") if r % 2 == 0 else ("with", "without")
        for kind in order:
            wall, cpu, result = timed(lambda: video_pass(path, motion, sampling, preview=preview if kind == "with" else None))
            runs[kind].append((wall, cpu))
            if kind == "with":
                frames = len(result.preview)
                wall, cpu, key = timed(lambda: write_preview(store, f"bench{r:02d}", result.preview, result.fps, preview))
                runs["encode"].append((wall, cpu))
                size = (store / key).stat().st_size
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    without, with_, encode = med["without"], med["with"], med["encode"]
    return {
        "clip": path.name, "preview_frames": frames, "preview_bytes": size,
        "pass_wall_s": without[0], "pass_cpu_s": without[1],
        "with_preview_wall_s": with_[0], "with_preview_cpu_s": with_[1],
        "encode_wall_s": encode[0], "encode_cpu_s": encode[1],
        "overhead_wall": (with_[0] - without[0] + encode[0]) / without[0],
        "overhead_cpu": (with_[1] - without[1] + encode[1]) / without[1],
        "load1": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "real_videos")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "curation_preview_bench")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "preview_cost")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="preview-store-") as store:
        for path in clips(args.videos, args.work_dir):
            row = measure(path, args.repeat, Path(store))
            rows.append(row)
            print(f"{row['clip']:<22} pass {row['pass_wall_s']:.3f} s wall / {row['pass_cpu_s']:.3f} s CPU; preview "
                  f"+{row['overhead_wall']:.1%} wall, +{row['overhead_cpu']:.1%} CPU ({row['preview_frames']} frames, "
                  f"{row['preview_bytes'] / 1e3:.0f} kB; encode {row['encode_wall_s'] * 1e3:.0f} ms); load {row['load1']:.1f}",
                  flush=True)
    total = {k: sum(r[k] for r in rows) for k in ("pass_wall_s", "pass_cpu_s", "with_preview_wall_s",
                                                   "with_preview_cpu_s", "encode_wall_s", "encode_cpu_s")}
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "cpu_model": _cpu_model(), "load_before": load_before, "load_after": os.getloadavg(), "repeat": args.repeat,
        "overhead_wall": (total["with_preview_wall_s"] - total["pass_wall_s"] + total["encode_wall_s"]) / total["pass_wall_s"],
        "overhead_cpu": (total["with_preview_cpu_s"] - total["pass_cpu_s"] + total["encode_cpu_s"]) / total["pass_cpu_s"],
        "clips": rows,
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"all clips: preview adds {summary['overhead_wall']:.1%} wall, {summary['overhead_cpu']:.1%} CPU to the decode "
          f"pass ({summary['cpu_model']}, load {load_before[0]:.1f} -> {summary['load_after'][0]:.1f}); "
          f"{args.out / 'results.json'}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
