"""Calibrating fast motion mode to exact mode on a sample of the user's own clips.

Flow on downscaled frames is not exact flow scaled down: on real footage Farneback with
the same window on a smaller frame sees other structure, and fast/exact varies from clip
to clip (docs/recipes.md, "Fast motion mode"). A monotone map fitted on real clips puts fast scores
back on the exact (data-juicer) scale: exact ~ scale * fast (scale = the median of
exact / fast), or exact ~ scale * fast ** power (least squares in log-log space), fitted
on per-window mean scores (windows of a few seconds give many points from a few clips). The map is stored in the recipe's motion
section (calibration_scale, calibration_power) and applied to each video's fast score.

Each sampled clip is decoded once; the same frames feed an exact and a fast accumulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from curation_assets.scorers.frame_convert import FrameConverter
from curation_assets.scorers.motion import MotionAccumulator, MotionParams


@dataclass
class ClipComparison:
    path: str
    exact: float
    fast: float
    windows: list[tuple[float, float]]  # (exact, fast) mean pair scores per window
    error: str | None = None


@dataclass
class MotionCalibration:
    scale: float
    power: float
    clips: list[ClipComparison]
    windows_used: int

    def apply(self, fast: float) -> float:
        return calibrated(fast, self.scale, self.power)


def calibrated(score: float, scale: float, power: float) -> float:
    """scale * score ** power for a real score; -1 (no pair scored) and 0 pass through."""
    if score <= 0:
        return score
    return float(scale * score ** power)


def window_means(pair_scores: list[float], pair_ends: list[int], fps: float, seconds: float,
                 skip_first: bool) -> dict[int, float]:
    """Mean pair score per window of `seconds`, keyed by window number; a pair belongs to
    the window of its second frame; windows with under half their pairs are dropped."""
    groups: dict[int, list[float]] = {}
    for i, (score, end) in enumerate(zip(pair_scores, pair_ends)):
        if i == 0 and skip_first:
            continue  # data-juicer's extra 0 -> 1 pair: not part of a stride window
        groups.setdefault(int(end / fps // seconds), []).append(score)
    expected = max(1, round(seconds * 2))  # pairs per window at 2 fps
    return {w: float(np.mean(v)) for w, v in groups.items() if len(v) * 2 >= expected}


def compare_clip(path: str | Path, fast: MotionParams, window_s: float = 4.0) -> ClipComparison:
    """Exact (data-juicer's parameters) and fast scores of one clip from a single decode."""
    import av

    exact_params = replace(fast, size=None, max_size=None, relative=False, scale_to_source=False, skip_levels=0,
                           calibration_scale=1.0, calibration_power=1.0)
    fast = replace(fast, calibration_scale=1.0, calibration_power=1.0)  # calibrate raw fast scores
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            total = int(stream.frames or 0)
            if fps <= 0 or total <= 1:
                return ClipComparison(str(path), -1.0, -1.0, [], "no frame rate or frame count in the header")
            accs = [MotionAccumulator(fps, total, exact_params), MotionAccumulator(fps, total, fast)]
            convert = FrameConverter()
            for index, frame in enumerate(container.decode(stream)):
                if accs[0].wants(index):
                    bgr = convert.to_ndarray(frame, "bgr24")
                    for acc in accs:
                        acc.add(index, bgr)
                if accs[0].done(index):
                    break
    except Exception as exc:  # one bad clip must not stop the calibration
        return ClipComparison(str(path), -1.0, -1.0, [], f"{type(exc).__name__}: {str(exc)[:200]}")
    results = [acc.result(index + 1) for acc in accs]
    if any(r.error for r in results):
        return ClipComparison(str(path), -1.0, -1.0, [], results[0].error or results[1].error)
    exact_r, fast_r = results
    ends = exact_r.frame_indices[1:]
    skip_first = len(exact_r.frame_indices) > 2 and exact_r.frame_indices[1] == 1
    ew = window_means(exact_r.pair_scores, ends, fps, window_s, skip_first)
    fw = window_means(fast_r.pair_scores, ends, fps, window_s, skip_first)
    return ClipComparison(str(path), exact_r.motion_score, fast_r.motion_score, [(ew[w], fw[w]) for w in sorted(ew)])


def fit_power_map(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """(scale, power) with exact ~ scale * fast ** power, least squares on logs.

    Points with a zero score on either side carry no scale information and are left out.
    """
    pts = np.array([(e, f) for e, f in pairs if e > 1e-6 and f > 1e-6], dtype=float)
    if len(pts) < 3:
        raise ValueError(f"need at least 3 windows with motion to fit a map, got {len(pts)}")
    if np.ptp(np.log(pts[:, 1])) < 1e-9:
        raise ValueError("all windows have the same fast score: no map can be fitted")
    power, log_scale = np.polyfit(np.log(pts[:, 1]), np.log(pts[:, 0]), 1)
    if power <= 0:
        raise ValueError(f"fitted power {power:.3f} is not positive: fast and exact scores do not rise together "
                         "on these clips; sample more varied clips")
    return float(math.exp(log_scale)), float(power)


def fit_scale(pairs: list[tuple[float, float]]) -> float:
    """exact ~ scale * fast with scale = the median of exact / fast over the windows: robust
    to a few odd windows, and on held-out real sources it kept the median fast/exact nearest
    1 (docs/recipes.md, "Fast motion mode")."""
    ratios = [e / f for e, f in pairs if e > 1e-6 and f > 1e-6]
    if len(ratios) < 3:
        raise ValueError(f"need at least 3 windows with motion to fit a map, got {len(ratios)}")
    return float(np.median(ratios))


def calibrate(paths: list[str | Path], fast: MotionParams, window_s: float = 4.0,
              fit: str = "scale") -> MotionCalibration:
    """fit: "scale" (exact ~ scale * fast, the default) or "power" (exact ~ scale * fast ** power)."""
    if fit not in ("scale", "power"):
        raise ValueError(f"fit must be 'scale' or 'power', got {fit!r}")
    clips = [compare_clip(p, fast, window_s) for p in paths]
    windows = [w for c in clips if c.error is None for w in c.windows]
    scale, power = fit_power_map(windows) if fit == "power" else (fit_scale(windows), 1.0)
    return MotionCalibration(scale, power, clips, len(windows))
