"""Fast motion mode against exact mode on real footage: per clip, per time window, per setting.

    $VENV/bin/python benchmarks/fast_motion_study.py [VIDEO_OR_DIR ...] [--window 4] [--speed]

Default input: ../shared/data/real_videos (the five real clips). Each clip is decoded once;
its sampled frames (data-juicer's 0, 1, s, 2s, ... at 2 fps) stay in memory and every
setting scores the same frame pairs, so the comparison is pair for pair. Besides the
whole-clip scores, each clip is cut into windows of --window seconds (the pairs whose
second frame falls in the window, the 0->1 pair left out): more data points, but from the
same sources; the tables say how many sources there are.

Settings: exact (data-juicer's, full resolution), fast modes at several flow sizes with
Farneback's parameters as they are or scaled with the resize, and each fast mode after a
calibration map (exact ~ a * fast^b, fitted in log space) learnt leave-one-source-out:
the map used on a clip was fitted on the other clips only.

--speed times, back to back in this process, exact mode and the fast settings through
the product's own motion_score (one decode per clip, default flow threads) and reports
videos/s and the ratio; multiply by exact mode's measured speed-up over data-juicer to get
fast mode's. Timings are only comparable within one run (the machine may be shared:
the load average is printed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation_assets.scorers.motion import (  # noqa: E402
    MotionParams,
    frame_motion,
    resized_size,
    sample_indices,
    sampling_step,
    to_gray,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"


@dataclass
class Clip:
    name: str
    fps: float
    shape: tuple[int, int]
    indices: list[int]  # sampled frame indices, data-juicer's selection
    frames: list[np.ndarray]  # BGR, one per entry of indices


def load_clip(path: Path) -> Clip:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate)
        total = int(stream.frames or 0)
        if total <= 0:
            total = sum(1 for _ in container.decode(stream))
            container.seek(0)
        step = sampling_step(fps, total, 2.0)
        indices = sample_indices(total, step, "datajuicer")
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                got[index] = frame.to_ndarray(format="bgr24")
            if index >= indices[-1]:
                break
    indices = [i for i in indices if i in got]
    frames = [got[i] for i in indices]
    return Clip(path.stem, fps, frames[0].shape[:2], indices, frames)


def scaled(params: MotionParams, shape: tuple[int, int], what: str) -> MotionParams:
    """Farneback's parameters scaled with the resize r = flow short side / source short side:
    w = window, l = pyramid levels (fewer: the coarsest level stays at the same source
    scale), p = poly_sigma (poly_n 5 stays: the smallest neighbourhood it has)."""
    h, w = resized_size(shape[0], shape[1], params.size, params.max_size)
    r = min(h, w) / min(shape)
    if r >= 1:
        return params
    if "w" in what:
        params = replace(params, winsize=max(3, int(round(params.winsize * r)) | 1))
    if "l" in what:
        params = replace(params, levels=max(1, params.levels - int(round(math.log2(1 / r)))))
    if "p" in what:
        params = replace(params, poly_sigma=max(0.6, params.poly_sigma * r))
    return params


def pyramid_gray(bgr: np.ndarray, levels_down: int) -> np.ndarray:
    """Gray frame halved levels_down times the way Farneback builds its own pyramid
    (Gaussian blur sigma (1/0.5 - 1) / 2, then a linear resize), so flow on it is the
    exact computation without its finest level(s)."""
    import cv2

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for _ in range(levels_down):
        blurred = cv2.GaussianBlur(gray, (0, 0), 0.5)
        h, w = gray.shape
        gray = cv2.resize(blurred, (round(w * 0.5), round(h * 0.5)), interpolation=cv2.INTER_LINEAR)
    return gray


def pair_scores(clip: Clip, params) -> tuple[list[float], float]:
    """Per-pair scores for one setting, and the seconds spent (resize + gray + flow)."""
    t0 = time.perf_counter()
    if isinstance(params, tuple) and params[1].startswith("pyr"):
        # ("pyrN", levels): flow on the source halved N times, with `levels` pyramid levels
        down = int(params[1][3:])
        p = replace(params[0], levels=params[2], scale_to_source=True)
        grays = [pyramid_gray(f, down) for f in clip.frames]
        scores = [frame_motion(a, b, p, clip.shape) for a, b in zip(grays, grays[1:])]
        return scores, time.perf_counter() - t0
    if isinstance(params, tuple):  # (base params, what to scale): per-clip parameters
        params = scaled(params[0], clip.shape, params[1])
    grays = [to_gray(f, params) for f in clip.frames]
    scores = [frame_motion(a, b, params, clip.shape) for a, b in zip(grays, grays[1:])]
    return scores, time.perf_counter() - t0


def windows(clip: Clip, scores: list[float], seconds: float) -> dict[int, float]:
    """Mean pair score per window of `seconds`; pair i joins frames i and i+1 of the sample."""
    groups: dict[int, list[float]] = {}
    for i, score in enumerate(scores):
        if i == 0 and len(clip.indices) > 1 and clip.indices[1] == 1:
            continue  # data-juicer's extra 0->1 pair: not part of a stride window
        groups.setdefault(int(clip.indices[i + 1] / clip.fps // seconds), []).append(score)
    need = max(1, round(seconds * 2 * 0.5))  # at least half a window's pairs (2 fps)
    return {w: float(np.mean(v)) for w, v in groups.items() if len(v) >= need}


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def fit_power(fast: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """exact ~ a * fast**b by least squares on logs (monotone for b > 0)."""
    ok = (fast > 1e-6) & (exact > 1e-6)
    b, log_a = np.polyfit(np.log(fast[ok]), np.log(exact[ok]), 1)
    return float(math.exp(log_a)), float(b)


def settings_to_study() -> dict:
    out: dict = {"exact": MotionParams()}
    for size in (128, 192, 256):
        base = MotionParams(size=size, scale_to_source=True)
        out[f"s{size}"] = base
        for what in ("w", "wl", "wlp"):
            out[f"s{size}-{what}"] = (base, what)
    # the product's skip_levels: exact mode's own pyramid without its finest level(s)
    out["skip1"] = MotionParams(skip_levels=1)
    out["skip2"] = MotionParams(skip_levels=2)
    # the same by hand (iterated blur + halving), and with the pyramid kept as deep as exact's
    out["half-l2"] = (MotionParams(), "pyr1", 2)
    out["half-l3"] = (MotionParams(), "pyr1", 3)
    out["quarter-l1"] = (MotionParams(), "pyr2", 1)
    out["quarter-l2"] = (MotionParams(), "pyr2", 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path, help=f"files or folders (default {REAL})")
    parser.add_argument("--window", type=float, default=4.0, help="window length in seconds (default 4)")
    parser.add_argument("--settings", default="", help="comma-separated subset of the settings")
    parser.add_argument("--per-window", action="store_true", help="print every window's ratios")
    parser.add_argument("--cache", type=Path, help="JSON file keeping pair scores between runs (same clips)")
    parser.add_argument("--speed", default="", help="comma-separated settings to time end to end against exact")
    args = parser.parse_args()

    paths: list[Path] = []
    for item in args.videos or [REAL]:
        paths += sorted(item.glob("*.mp4")) if item.is_dir() else [item]
    settings = settings_to_study()
    if args.settings:
        settings = {k: v for k, v in settings.items() if k == "exact" or k in args.settings.split(",")}
    print(f"machine: {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}")

    clips = [load_clip(p) for p in paths]
    clip_scores: dict[str, dict[str, float]] = {}
    win_scores: dict[str, dict[str, dict[int, float]]] = {}
    seconds: dict[str, float] = {name: 0.0 for name in settings}
    import json

    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    for clip in clips:
        clip_scores[clip.name], win_scores[clip.name] = {}, {}
        for name, params in settings.items():
            key = f"{clip.name}/{name}"
            if key in cache:
                scores, spent = cache[key]
            else:
                scores, spent = pair_scores(clip, params)
                cache[key] = [scores, spent]
                if args.cache:
                    args.cache.write_text(json.dumps(cache))
            seconds[name] += spent
            clip_scores[clip.name][name] = float(np.mean(scores))
            win_scores[clip.name][name] = windows(clip, scores, args.window)
        exact = clip_scores[clip.name]["exact"]
        print(f"{clip.name}: exact {exact:.3f}; fast/exact "
              + ", ".join(f"{n} {s / exact:.2f}" for n, s in clip_scores[clip.name].items() if n != "exact"), flush=True)

    fast_names = [n for n in settings if n != "exact"]
    # leave-one-source-out calibration on windows
    calibrated: dict[str, dict[str, float]] = {c.name: {} for c in clips}
    calibrated_win: dict[str, dict[str, dict[int, float]]] = {c.name: {} for c in clips}
    scaled_only: dict[str, dict[str, float]] = {c.name: {} for c in clips}
    scaled_only_win: dict[str, dict[str, dict[int, float]]] = {c.name: {} for c in clips}
    for name in fast_names:
        for clip in clips:
            others = [c for c in clips if c.name != clip.name]
            fast = np.array([v for c in others for v in win_scores[c.name][name].values()])
            exact = np.array([win_scores[c.name]["exact"][w] for c in others for w in win_scores[c.name][name]])
            a, b = fit_power(fast, exact)
            calibrated[clip.name][name] = a * clip_scores[clip.name][name] ** b
            calibrated_win[clip.name][name] = {w: a * v ** b for w, v in win_scores[clip.name][name].items()}
            ok = (fast > 1e-6) & (exact > 1e-6)
            c = float(np.median(exact[ok] / fast[ok]))  # scale only: exact ~ c * fast
            scaled_only[clip.name][name] = c * clip_scores[clip.name][name]
            scaled_only_win[clip.name][name] = {w: c * v for w, v in win_scores[clip.name][name].items()}

    print(f"\n{len(clips)} sources, {sum(len(w['exact']) for w in win_scores.values())} windows of {args.window:g} s")
    header = "| clip | exact | " + " | ".join(f"{n} ratio" for n in fast_names) + " |"
    print("\nPer clip (fast/exact):\n" + header + "\n|" + "---|" * (len(fast_names) + 2))
    for clip in clips:
        exact = clip_scores[clip.name]["exact"]
        cells = [f"{clip_scores[clip.name][n] / exact:.2f}" for n in fast_names]
        print(f"| {clip.name} ({clip.shape[1]}x{clip.shape[0]}) | {exact:.3f} | " + " | ".join(cells) + " |")
    print("\nPer clip after leave-one-source-out calibration (fast/exact):\n" + header + "\n|" + "---|" * (len(fast_names) + 2))
    for clip in clips:
        exact = clip_scores[clip.name]["exact"]
        print(f"| {clip.name} | {exact:.3f} | " + " | ".join(f"{calibrated[clip.name][n] / exact:.2f}" for n in fast_names) + " |")

    print("\nPer clip after leave-one-source-out scale-only calibration (exact ~ c * fast, c = median "
          "exact/fast over the other sources' windows):\n" + header + "\n|" + "---|" * (len(fast_names) + 2))
    for clip in clips:
        exact = clip_scores[clip.name]["exact"]
        print(f"| {clip.name} | {exact:.3f} | " + " | ".join(f"{scaled_only[clip.name][n] / exact:.2f}" for n in fast_names) + " |")

    if args.per_window:
        print("\nPer window (fast/exact; LOO = after the leave-one-source-out scale-only calibration):")
        print("| clip | window (s) | exact | " + " | ".join(f"{n} | {n} LOO" for n in fast_names) + " |")
        print("|---|---|---|" + "---|---|" * len(fast_names))
        for clip in clips:
            for w, exact in sorted(win_scores[clip.name]["exact"].items()):
                cells = []
                for n in fast_names:
                    cells.append(f"{win_scores[clip.name][n][w] / exact:.2f}" if exact > 1e-6 else "-")
                    cells.append(f"{scaled_only_win[clip.name][n][w] / exact:.2f}" if exact > 1e-6 else "-")
                t0 = w * args.window
                print(f"| {clip.name} | {t0:g}-{t0 + args.window:g} | {exact:.3f} | " + " | ".join(cells) + " |")

    def pooled(source, name):
        fast, exact = [], []
        for clip in clips:
            for w, v in source[clip.name][name].items():
                fast.append(v)
                exact.append(win_scores[clip.name]["exact"][w])
        return np.array(fast), np.array(exact)

    print("\nSummary (windows pooled over all sources; clips = whole-clip scores; flow seconds of cached "
          "settings come from the run that computed them: compare speed with --speed):")
    print("| setting | flow s (all clips) | speed vs exact (flow only) | median ratio windows | Spearman windows "
          "| median ratio clips | Spearman clips | power map (LOO): median ratio windows | clips "
          "| scale only (LOO): median ratio windows | clips |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    exact_clip = [clip_scores[c.name]["exact"] for c in clips]
    for name in fast_names:
        fast, exact = pooled(win_scores, name)
        cfast, _ = pooled(calibrated_win, name)
        fc = [clip_scores[c.name][name] for c in clips]
        cc = [calibrated[c.name][name] for c in clips]
        sfast, _ = pooled(scaled_only_win, name)
        sc = [scaled_only[c.name][name] for c in clips]
        ok = exact > 1e-6
        print(f"| {name} | {seconds[name]:.1f} | {seconds['exact'] / seconds[name]:.1f}x "
              f"| {np.median(fast[ok] / exact[ok]):.2f} | {spearman(list(fast), list(exact)):.3f} "
              f"| {np.median(np.array(fc) / np.array(exact_clip)):.2f} | {spearman(fc, exact_clip):.3f} "
              f"| {np.median(cfast[ok] / exact[ok]):.2f} | {np.median(np.array(cc) / np.array(exact_clip)):.2f} "
              f"| {np.median(sfast[ok] / exact[ok]):.2f} | {np.median(np.array(sc) / np.array(exact_clip)):.2f} |")
    print(f"| exact | {seconds['exact']:.1f} | 1.0x | | | | | | | | |")
    for name in fast_names:  # the map a user would fit on all of these clips
        fast, exact = pooled(win_scores, name)
        a, b = fit_power(fast, exact)
        ok = (fast > 1e-6) & (exact > 1e-6)
        print(f"fitted on all windows, {name}: exact ~ {a:.3f} * fast^{b:.3f}; scale only: exact ~ "
              f"{np.median(exact[ok] / fast[ok]):.3f} * fast")

    if args.speed:
        from curation_assets.scorers.video_pass import motion_score

        print(f"\nEnd to end (motion_score, default flow threads), back to back; load {os.getloadavg()[0]:.1f}")
        names = ["exact"] + [n for n in args.speed.split(",") if n in settings and n != "exact"]
        walls, cpus = {}, {}
        for name in names + names[:1]:  # exact again at the end: the load drifts on a shared machine
            t0, c0 = time.perf_counter(), time.process_time()
            for path in paths:
                motion_score(path, settings[name])
            walls.setdefault(name, []).append(time.perf_counter() - t0)
            cpus.setdefault(name, []).append(time.process_time() - c0)
        exact_wall, exact_cpu = float(np.mean(walls["exact"])), float(np.mean(cpus["exact"]))
        # CPU seconds (all threads) barely depend on other processes' load; wall time does
        print("| setting | videos/s (wall) | vs exact (wall) | CPU s/video | vs exact (CPU) |")
        for name in names:
            wall, cpu = float(np.mean(walls[name])), float(np.mean(cpus[name]))
            print(f"| {name} | {len(paths) / wall:.3f} | {exact_wall / wall:.2f}x | {cpu / len(paths):.2f} "
                  f"| {exact_cpu / cpu:.2f}x |")
        print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
