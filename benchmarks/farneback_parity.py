#!/usr/bin/env python
"""The torch Farneback against OpenCV's CPU path on real clips, pair by pair, and its speed.

    python benchmarks/farneback_parity.py                       # torch on the CPU, the five real clips
    python benchmarks/farneback_parity.py --device cuda [--compiled]

For each clip: data-juicer's sampled frames decoded once (PyAV, exact mode), every pair
scored by cv2.calcOpticalFlowFarneback (one thread: the CPU exact path, data-juicer's
score) and by the torch backend's batched path (scorers/torch_motion.score_sequences) on
--device. Reports per clip the video score both ways and their relative difference; over
all pairs the distribution of relative differences (median, p99, max); the worst pair
examined (its score, how much of its flow differs and where, the pyramid pixels that
round differently from OpenCV's); and the time per pair, cv2 against torch (batch of
--batch pairs; --threads torch threads on the CPU). Writes <out>/parity.json and parity.md.

Imports only the motion scorer (no dagster, duckdb): runs on a bare GPU box.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "real_videos"


def machine() -> dict:
    from curation_assets.scorers.flow_backends import cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_1min": round(os.getloadavg()[0], 2)}


def clip_paths(folder: Path, limit: int | None = None) -> list[Path]:
    paths = sorted(folder.glob("*.mp4"))
    return paths[:limit] if limit else paths


def sampled_grays(path: Path):
    from curation_assets.scorers.decoders import decode_with_pyav
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams

    return decode_with_pyav(path, MotionParams(), FrameSamplingParams(num_frames=0))


def cpu_pair_scores(grays: list[np.ndarray]) -> tuple[list[float], list[float]]:
    import cv2

    from curation_assets.scorers.motion import MotionParams, frame_motion

    cv2.setNumThreads(1)
    params, scores, seconds = MotionParams(), [], []
    for a, b in zip(grays, grays[1:]):
        t0 = time.perf_counter()
        scores.append(frame_motion(a, b, params))
        seconds.append(time.perf_counter() - t0)
    return scores, seconds


def torch_pair_scores(grays: list[np.ndarray], device: str, batch: int, compiled: bool) -> tuple[list[float], float]:
    import torch

    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.torch_motion import Sequence, score_sequences

    seq = Sequence(grays, grays[0].shape)
    t0 = time.perf_counter()
    out = score_sequences([seq], MotionParams(), device, max_pairs=batch, compiled=compiled)[0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out.pair_scores, time.perf_counter() - t0


def pyramid_rounding(prev: np.ndarray, nxt: np.ndarray) -> list[dict]:
    """Per pyramid level, the pixels of the blurred, resized frames (Farneback's input at that
    level) that differ from OpenCV's GaussianBlur + resize, both frames together."""
    import cv2
    import torch

    from curation_assets.scorers import farneback_torch as ft

    settings = ft.FarnebackSettings()
    h, w = prev.shape
    rows = []
    for k in range(ft.level_count(h, w, settings), -1, -1):
        geo = ft.level_geometry(h, w, k, settings.pyr_scale)
        differ, total = 0, 0
        for img in (prev, nxt):
            f = img.astype(np.float32)
            ref = cv2.resize(cv2.GaussianBlur(f, (geo.ksize, geo.ksize), geo.sigma, sigmaY=geo.sigma),
                             (geo.width, geo.height), interpolation=cv2.INTER_LINEAR)
            ours = ft.resize_bilinear(ft.gaussian_blur(torch.from_numpy(f)[None], geo.ksize, geo.sigma),
                                      geo.height, geo.width)[0].numpy()
            differ += int((ours != ref).sum())
            total += ref.size
        rows.append({"level": k, "size": [geo.height, geo.width], "pixels_rounded_differently": differ,
                     "of": total})
    return rows


def examine_pair(prev: np.ndarray, nxt: np.ndarray) -> dict:
    """Where one pair's torch flow departs from OpenCV's, and how textured it is there."""
    import cv2
    import torch

    from curation_assets.scorers import farneback_torch as ft

    ref = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    ours = ft.farneback_flow(torch.from_numpy(prev)[None], torch.from_numpy(nxt)[None])[0].permute(1, 2, 0).numpy()
    diff = np.hypot(*(ours - ref).transpose(2, 0, 1))
    y, x = np.unravel_index(int(diff.argmax()), diff.shape)
    # texture: the gray level's standard deviation over Farneback's 15x15 window
    f = prev.astype(np.float64)
    mean = cv2.blur(f, (15, 15))
    std = np.sqrt(np.maximum(cv2.blur(f * f, (15, 15)) - mean * mean, 0))
    return {"flow_max_abs_diff_px": float(diff.max()), "flow_mean_abs_diff_px": float(diff.mean()),
            "pixels_differing": float((diff > 0).mean()), "pixels_over_1e-3_px": float((diff > 1e-3).mean()),
            "worst_pixel": [int(y), int(x)], "window_std_at_worst": float(std[y, x]),
            "window_std_median": float(np.median(std)), "flow_magnitude_at_worst": float(np.hypot(*ref[y, x])),
            "pyramid": pyramid_rounding(prev, nxt)}


def run(args) -> dict:
    import torch

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    report = {"machine": {**machine(), "torch": torch.__version__, "device": args.device,
                          "torch_threads": torch.get_num_threads(), "compiled": args.compiled, "batch": args.batch},
              "clips": [], "pairs": []}
    grays_by_clip = {}
    for path in clip_paths(Path(args.videos), args.limit):
        video = sampled_grays(path)
        grays = video.grays
        grays_by_clip[path.name] = grays
        cpu, cpu_s = cpu_pair_scores(grays)
        ours, torch_s = torch_pair_scores(grays, args.device, args.batch, args.compiled)
        c, t = float(np.mean(cpu)), float(np.mean(ours))
        report["clips"].append({"clip": path.name, "size": list(grays[0].shape), "pairs": len(cpu), "cpu_exact": c,
                                "torch": t, "relative_difference": (t - c) / c,
                                "cpu_ms_per_pair": 1000 * statistics.median(cpu_s),
                                "torch_ms_per_pair": 1000 * torch_s / max(1, len(ours))})
        for n, (a, b) in enumerate(zip(cpu, ours)):
            report["pairs"].append({"clip": path.name, "pair": n, "frames": video.motion_indices[n:n + 2],
                                    "cpu_exact": a, "torch": b, "relative_difference": (b - a) / a if a else 0.0})
        print(f"{path.name}: {len(cpu)} pairs, cpu {c:.6f} torch {t:.6f} rel {(t - c) / c:+.2e}", flush=True)
    rel = np.abs([p["relative_difference"] for p in report["pairs"]])
    report["pair_distribution"] = {"pairs": int(rel.size), "median": float(np.median(rel)),
                                   "p99": float(np.percentile(rel, 99)), "max": float(rel.max()),
                                   "exactly_equal": int((rel == 0).sum())}
    worst = max(report["pairs"], key=lambda p: abs(p["relative_difference"]))
    grays = grays_by_clip[worst["clip"]]
    report["worst_pair"] = {**worst, **examine_pair(grays[worst["pair"]], grays[worst["pair"] + 1])}
    report["pair_scores_rank_of_worst"] = int(sorted(p["cpu_exact"] for p in report["pairs"]).index(worst["cpu_exact"]))
    report["machine"]["load_1min_after"] = round(os.getloadavg()[0], 2)
    return report


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# torch Farneback vs OpenCV's CPU path ({m['device']}{', compiled' if m['compiled'] else ''})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, load {m['load_1min']} -> {m.get('load_1min_after')}; "
             f"torch {m['torch']} ({m['torch_threads']} threads), batches of {m['batch']} pairs.", "",
             "| clip | size | pairs | CPU exact | torch | relative difference | cv2 ms/pair (1 thread) | torch ms/pair |",
             "|---|---|---|---|---|---|---|---|"]
    for c in report["clips"]:
        lines.append(f"| {c['clip']} | {c['size'][1]}x{c['size'][0]} | {c['pairs']} | {c['cpu_exact']:.6f} | "
                     f"{c['torch']:.6f} | {c['relative_difference']:+.1e} | {c['cpu_ms_per_pair']:.0f} | "
                     f"{c['torch_ms_per_pair']:.0f} |")
    d = report["pair_distribution"]
    lines += ["", f"Per pair ({d['pairs']} pairs, {d['exactly_equal']} identical): |relative difference| median "
              f"{d['median']:.1e}, p99 {d['p99']:.1e}, max {d['max']:.1e}.", ""]
    w = report["worst_pair"]
    lines += [f"Worst pair: {w['clip']} pair {w['pair']} (frames {w['frames']}), CPU {w['cpu_exact']:.6f}, torch "
              f"{w['torch']:.6f} ({w['relative_difference']:+.1e}); the {report['pair_scores_rank_of_worst'] + 1}. "
              f"smallest of {d['pairs']} pair scores. Its flow differs at {w['pixels_differing']:.1%} of pixels "
              f"({w['pixels_over_1e-3_px']:.2%} by more than 1e-3 px), at most {w['flow_max_abs_diff_px']:.2e} px, at "
              f"pixel {w['worst_pixel']} where the gray level's std over the 15x15 window is "
              f"{w['window_std_at_worst']:.2f} (median {w['window_std_median']:.2f}) and the flow "
              f"{w['flow_magnitude_at_worst']:.3f} px.", "",
              "Pyramid inputs that round differently from OpenCV's (both frames):", ""]
    lines += [f"- level {p['level']} ({p['size'][1]}x{p['size'][0]}): {p['pixels_rounded_differently']} of {p['of']}"
              for p in w["pyramid"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(DEFAULT_VIDEOS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compiled", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (1 is fastest on 2 cores)")
    ap.add_argument("--batch", type=int, default=4, help="pairs per torch call")
    ap.add_argument("--limit", type=int, default=None, help="first N clips only")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "farneback_parity"))
    args = ap.parse_args(argv)
    if not any(Path(args.videos).glob("*.mp4")):
        print(f"no clips in {args.videos}", file=sys.stderr)
        return 2
    report = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.json").write_text(json.dumps(report, indent=1))
    (out / "parity.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
