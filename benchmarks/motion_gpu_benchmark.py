#!/usr/bin/env python
"""Motion on an OpenCL device: videos/s over N decode processes sharing one device, beside
the decode-only rate and the CPU exact path, plus per-clip agreement with the CPU.

    python benchmarks/motion_gpu_benchmark.py --device gpu [--processes 1,2,4,8,16] [--copies 16]
    python benchmarks/motion_gpu_benchmark.py --device cpu --processes 1,2 --copies 1   # pocl: correctness only

--device gpu selects OPENCV_OPENCL_DEVICE=":GPU:" (a GPU whose OpenCL ICD is registered:
`curation-assets devices` says how), --device cpu selects pocl (":CPU:"), OpenCL on this
machine's cores: its timings say nothing about a GPU. Both run the product's own code:
motion_score(path, MotionParams(), flow_threads=N (--flow-threads, default 1), backend=...) per video, exact mode
(full resolution, data-juicer's sampling), one spawned process per worker as the graph's
video_pass spreads a shard, every worker's OpenCL kernels compiled before the clock starts.

Rows, per process count P (the same videos each time: the clips x --copies):
- decode only: the decode pass without flow (every frame decoded up to the last sampled
  one, sampled frames converted to gray): the floor the motion stage can reach;
- cpu exact: Farneback on the CPU (backend cpu), one core per process;
- opencl: gray frames uploaded as UMat, Farneback on the device, a few pairs in flight.
Agreement: per clip, the OpenCL score against the CPU exact score (relative difference).
Pair timing (one process, informative): a sampled pair of the first clip on the CPU vs on
the device (upload, flow, download), medians over interleaved repeats.

Writes <out>/results.md and <out>/results.json. Inputs: ../shared/data/real_videos when
present (the five real clips), else --videos DIR (*.mp4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "real_videos"
SELECTORS = {"gpu": ":GPU:", "cpu": ":CPU:"}


# --------------------------------------------------------------------------- worker side


def _init_worker(backend: str) -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per process, as the graph's workers
    if backend == "opencl":
        from curation_assets.scorers.flow_backends import resolve_backend

        resolve_backend("opencl")  # context created and Farneback's kernels compiled now, not on the clock


def _warm(_: int) -> int:
    time.sleep(0.5)  # keeps this worker busy so the pool starts all of them
    return os.getpid()


def _motion(item: tuple[str, str, int]) -> dict:
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import motion_score

    path, backend, flow_threads = item
    t0 = time.perf_counter()
    r = motion_score(path, MotionParams(), flow_threads=flow_threads, backend=backend)
    return {"path": path, "score": r.motion_score, "pairs": len(r.pair_scores), "error": r.error,
            "seconds": time.perf_counter() - t0}


def _decode_only(item: tuple[str, str, int]) -> dict:
    """The decode pass's CPU work without the flow: what the motion stage cannot go below."""
    import av

    from curation_assets.scorers.motion import MotionParams, sample_indices, sampling_step, to_gray

    path = item[0]
    params = MotionParams()
    t0 = time.perf_counter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.base_rate or stream.average_rate or stream.guessed_rate)
        total = int(stream.frames or 0)
        wanted = set(sample_indices(total, sampling_step(fps, total, params.sampling_fps), params.frame_selection))
        last = max(wanted) if wanted else -1
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                to_gray(frame.to_ndarray(format="bgr24"), params)
            if index >= last:
                break
    return {"path": path, "score": None, "pairs": 0, "error": None, "seconds": time.perf_counter() - t0}


def _pair_timing(path: str, repeats: int) -> dict:
    import av
    import cv2
    import numpy as np

    from curation_assets.scorers import flow_backends
    from curation_assets.scorers.motion import MotionParams, farneback_args, flow_score, frame_motion, to_gray

    params = MotionParams()
    cv2.setNumThreads(1)
    flow_backends.resolve_backend("opencl")
    grays = []
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in (0, 12):
                grays.append(to_gray(frame.to_ndarray(format="bgr24"), params))
            if len(grays) == 2:
                break
    prev, gray = grays
    cpu, dev = [], []
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        t0 = time.perf_counter()
        frame_motion(prev, gray, params)
        cpu.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        flow_score(flow_backends.opencl_flow(flow_backends.upload(prev), flow_backends.upload(gray), farneback_args(params)), params)
        dev.append(time.perf_counter() - t0)
    return {"clip": Path(path).name, "size": list(prev.shape), "repeats": repeats,
            "cpu_ms": 1000 * statistics.median(cpu), "opencl_ms": 1000 * statistics.median(dev),
            "cpu_threads": 1, "note": "opencl: upload of both frames + flow + download, one call at a time",
            "numpy": np.__version__}


# --------------------------------------------------------------------------- orchestration


def _load() -> float:
    return os.getloadavg()[0]


def _run(fn, items: list[tuple[str, str, int]], processes: int, backend: str) -> dict:
    ctx = get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker, initargs=(backend,)) as pool:
        list(pool.map(_warm, range(processes)))
        load_before = _load()
        t0 = time.perf_counter()
        results = list(pool.map(fn, items))
        wall = time.perf_counter() - t0
    errors = [r for r in results if r["error"]]
    return {"processes": processes, "videos": len(items), "wall_s": wall, "videos_per_s": len(items) / wall,
            "load_before": load_before, "load_after": _load(), "errors": [r["error"] for r in errors][:3],
            "scores": {r["path"]: r["score"] for r in results}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(SELECTORS), default="gpu",
                        help="gpu: OPENCV_OPENCL_DEVICE=':GPU:'; cpu: pocl (correctness only)")
    parser.add_argument("--processes", default="1,2,4,8,16", help="comma-separated process counts")
    parser.add_argument("--copies", type=int, default=16, help="each clip scored this many times per row")
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--skip-cpu", action="store_true", help="no cpu exact rows (they are slow)")
    parser.add_argument("--cpu-processes", default=None,
                        help="comma-separated process counts that also get a cpu exact row (default: all)")
    parser.add_argument("--pair-repeats", type=int, default=10)
    parser.add_argument("--flow-threads", type=int, default=1,
                        help="motion_score's flow_threads per process (OpenCL keeps at least 2 pairs in flight)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "motion_gpu")
    args = parser.parse_args(argv)

    # before anything touches OpenCL: OpenCV reads the selector once per process
    os.environ.setdefault("OPENCV_OPENCL_DEVICE", SELECTORS[args.device])
    sys.path.insert(0, str(REPO))
    from curation_assets.scorers.flow_backends import BackendError, cpu_name, device_report, resolve_backend

    report = device_report()
    print("\n".join(report), flush=True)
    try:
        device = resolve_backend("opencl")
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clips = sorted(str(p) for p in args.videos.glob("*.mp4"))
    if not clips:
        print(f"error: no *.mp4 in {args.videos}", file=sys.stderr)
        return 2
    items = [c for c in clips for _ in range(args.copies)]
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    cpu_counts = set(counts) if args.cpu_processes is None else {int(p) for p in args.cpu_processes.split(",") if p.strip()}
    machine = {"host": platform.node(), "cpu": cpu_name(), "cores": os.cpu_count(), "opencl_device": device.device,
               "selector": os.environ["OPENCV_OPENCL_DEVICE"], "python": platform.python_version()}
    import cv2

    machine["opencv"] = cv2.__version__
    rows = []
    for p in counts:
        for label, fn, backend in (("decode only", _decode_only, "cpu"), ("cpu exact", _motion, "cpu"),
                                   ("opencl", _motion, "opencl")):
            if label == "cpu exact" and (args.skip_cpu or p not in cpu_counts):
                continue
            r = _run(fn, [(c, backend, args.flow_threads) for c in items], p, backend)
            r["row"] = label
            rows.append(r)
            print(f"P={p:<3} {label:<12} {r['videos_per_s']:7.3g} videos/s ({r['videos']} videos in {r['wall_s']:.1f} s, "
                  f"load {r['load_before']:.1f}->{r['load_after']:.1f}){' ERRORS ' + str(r['errors']) if r['errors'] else ''}",
                  flush=True)

    cpu_scores = next((r["scores"] for r in rows if r["row"] == "cpu exact"), None)
    ocl_scores = next(r["scores"] for r in rows if r["row"] == "opencl")
    if cpu_scores is None:  # --skip-cpu: the agreement still needs the CPU scores, once per clip
        cpu_scores = _run(_motion, [(c, "cpu", 1) for c in clips], min(len(clips), os.cpu_count() or 1), "cpu")["scores"]
    agreement = [{"clip": Path(c).stem, "cpu": cpu_scores[c], "opencl": ocl_scores[c],
                  "rel": ocl_scores[c] / cpu_scores[c] - 1 if cpu_scores[c] else None} for c in clips]
    pair = _run_pair_timing(clips[0], args.pair_repeats)
    best = max((r for r in rows if r["row"] == "opencl"), key=lambda r: r["videos_per_s"])

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine, "device_report": report, "rows": [{k: v for k, v in r.items() if k != "scores"}
                                                                    for r in rows],
              "agreement": agreement, "pair_timing": pair, "best_processes": best["processes"], "copies": args.copies}
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    md = _markdown(result, args.device)
    (args.out / "results.md").write_text(md)
    print("\n" + md)
    return 0


def _run_pair_timing(path: str, repeats: int) -> dict:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init_worker, initargs=("opencl",)) as pool:
        return pool.submit(_pair_timing, path, repeats).result()


def _markdown(result: dict, device: str) -> str:
    m = result["machine"]
    lines = [f"# Motion on OpenCL: {m['opencl_device']} ({m['selector']})", "",
             f"Machine: {m['host']}, {m['cpu']}, {m['cores']} cores; OpenCV {m['opencv']}; "
             f"{len(result['agreement'])} clips x {result['copies']} copies per row.", ""]
    if device == "cpu":
        lines += ["**pocl runs OpenCL on this machine's CPU cores: these timings are for correctness, not "
                  "throughput claims.**", ""]
    lines += ["| processes | decode only (videos/s) | cpu exact (videos/s) | opencl (videos/s) | load before/after (opencl) |",
              "|---|---|---|---|---|"]
    by = {}
    for r in result["rows"]:
        by.setdefault(r["processes"], {})[r["row"]] = r
    for p, row in by.items():
        cell = lambda k: f"{row[k]['videos_per_s']:.3g}" if k in row else "-"  # noqa: E731
        o = row["opencl"]
        lines.append(f"| {p} | {cell('decode only')} | {cell('cpu exact')} | {cell('opencl')} | "
                     f"{o['load_before']:.1f} / {o['load_after']:.1f} |")
    lines += ["", f"Most videos/s on the device with {result['best_processes']} processes.", "",
              "| clip | CPU exact | OpenCL | relative difference |", "|---|---|---|---|"]
    for a in result["agreement"]:
        rel = f"{a['rel']:+.2e}" if a["rel"] is not None else "-"
        lines.append(f"| {a['clip']} | {a['cpu']:.4f} | {a['opencl']:.4f} | {rel} |")
    p = result["pair_timing"]
    lines += ["", f"One pair of {p['clip']} ({p['size'][1]}x{p['size'][0]}), one process, median of {p['repeats']}: "
              f"CPU {p['cpu_ms']:.0f} ms (1 thread), OpenCL {p['opencl_ms']:.0f} ms ({p['note']})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
