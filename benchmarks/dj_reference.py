"""data-juicer's own operators on the benchmark's videos: the reference side of the benchmark.

Runs INSIDE the reference venv built by ``benchmarks/setup_reference.sh`` (py-data-juicer
1.6.1), never the project's venv. Standard library + data-juicer only.

    $REF/bin/python benchmarks/dj_reference.py --input videos.json --out dj.json [--ops a,b]

``videos.json`` is a list of ``{"path": "/abs/video.mp4", "text": "<__dj__video> ... <|__dj__eoc|>"}``
(text may be missing or ""). Each op runs in its own child process (so its peak RSS is
its own), one process, one sample at a time, through ``op.compute_stats(sample)``:

- video_motion_score_filter: ``VideoMotionScoreFilter()`` (defaults: sampling_fps 2, full size)
- video_resolution_filter: ``VideoResolutionFilter()``
- video_ocr_area_ratio_filter: ``VideoOcrAreaRatioFilter()`` (defaults: 3 frames, ['ch_sim', 'en'])
- character_repetition_filter: ``CharacterRepetitionFilter(rep_len=10)``

Sample layout (data-juicer 1.6.1): the single-sample ops (``_batched_op = False``) take
``{"videos": [path], "text": text, "__dj__stats__": {}}`` and return the sample with the stat
under ``sample["__dj__stats__"][key]``; character_repetition_filter is a batched op
(``_batched_op = True``): ``compute_stats`` takes ``{"text": [text], "__dj__stats__": [{}]}``.

Per op the JSON holds: per video the stat value, wall seconds and CPU seconds (process
time: every thread of the process), the op construction time (model load) and the
child's peak RSS (``getrusage`` of the child as reaped by ``os.wait4``, plus the child's
own ``RUSAGE_SELF`` report).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPS = ("video_motion_score_filter", "video_resolution_filter", "video_ocr_area_ratio_filter",
       "character_repetition_filter")


def _maxrss_mb(ru) -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes)
    return ru.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _as_float(value):
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            value = value.tolist()
    except ImportError:
        pass
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build_op(name: str):
    from data_juicer.ops.filter import (CharacterRepetitionFilter, VideoMotionScoreFilter,
                                        VideoOcrAreaRatioFilter, VideoResolutionFilter)

    if name == "video_motion_score_filter":
        return VideoMotionScoreFilter()
    if name == "video_resolution_filter":
        return VideoResolutionFilter()
    if name == "video_ocr_area_ratio_filter":
        return VideoOcrAreaRatioFilter()
    if name == "character_repetition_filter":
        return CharacterRepetitionFilter(rep_len=10)
    raise ValueError(f"unknown op {name}")


def run_one_op(name: str, videos: list[dict], repeat_text: int) -> dict:
    """In the child: build the op, then compute_stats on each sample, timed."""
    from data_juicer.utils.constant import Fields, StatsKeys

    t0, c0 = time.perf_counter(), time.process_time()
    op = build_op(name)
    load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    rows = []
    for video in videos:
        text = video.get("text") or ""
        row = {"path": video["path"], "value": None, "error": None}
        try:
            if name == "character_repetition_filter":
                # microseconds per call: time `repeat_text` calls, report the per-call mean
                w0, p0 = time.perf_counter(), time.process_time()
                for _ in range(repeat_text):
                    out = op.compute_stats({op.text_key: [text], Fields.stats: [{}]})
                row["wall_s"] = (time.perf_counter() - w0) / repeat_text
                row["cpu_s"] = (time.process_time() - p0) / repeat_text
                row["value"] = _as_float(out[Fields.stats][0][StatsKeys.char_rep_ratio])
            else:
                sample = {op.video_key: [video["path"]], op.text_key: text, Fields.stats: {}}
                w0, p0 = time.perf_counter(), time.process_time()
                out = op.compute_stats(sample)
                row["wall_s"] = time.perf_counter() - w0
                row["cpu_s"] = time.process_time() - p0
                stats = out[Fields.stats]
                if name == "video_motion_score_filter":
                    row["value"] = _as_float(stats[StatsKeys.video_motion_score])
                elif name == "video_ocr_area_ratio_filter":
                    row["value"] = _as_float(stats[StatsKeys.video_ocr_area_ratio])
                elif name == "video_resolution_filter":
                    row["value"] = {"width": _as_float(stats[StatsKeys.video_width]),
                                    "height": _as_float(stats[StatsKeys.video_height])}
        except Exception as exc:  # report, keep going
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        rows.append(row)
        print(f"  dj {name}: {Path(video['path']).name} -> {row['value']} "
              f"({row.get('wall_s', float('nan')):.3f} s)", file=sys.stderr, flush=True)
    return {
        "op": name,
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "videos": rows,
        "self_peak_rss_mb": _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF)),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("data_juicer", "cv2", "av", "torch", "easyocr", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as exc:  # pragma: no cover - informative only
            out[mod] = f"unavailable: {type(exc).__name__}"
    return out


def run_measured(cmd: list[str], env: dict | None = None, log=None) -> tuple[int, float, object]:
    """Start cmd, reap it with os.wait4: (returncode, wall seconds, rusage of that child alone)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, ru


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="JSON list of {path, text}")
    parser.add_argument("--out", required=True, help="JSON results")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {OPS}")
    parser.add_argument("--repeat-text", type=int, default=200, help="calls per caption for the text op")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run this op in this process
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    videos = json.loads(Path(args.input).read_text())

    if args.child:
        result = versions() if args.child == "versions" else run_one_op(args.child, videos, args.repeat_text)
        Path(args.out).write_text(json.dumps(result, indent=1))
        return 0

    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        parser.error(f"unknown ops {unknown}")
    # Keep this parent lean (no data_juicer / torch import here): on Linux a child's peak RSS
    # starts from its parent's at fork time and survives exec, so a heavy parent would inflate
    # every op's number. Versions are read in a child of their own.
    report = {"versions": {}, "ops": {}, "executable": sys.executable}
    with tempfile.TemporaryDirectory(prefix="dj-ref-") as tmp:
        versions_out = Path(tmp) / "versions.json"
        run_measured([sys.executable, str(Path(__file__).resolve()), "--input", args.input, "--out",
                      str(versions_out), "--child", "versions"], env=dict(os.environ))
        if versions_out.exists():
            report["versions"] = json.loads(versions_out.read_text())
        report["parent_rss_mb_at_start"] = _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF))
        for name in ops:
            child_out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--input", args.input, "--out", str(child_out),
                   "--child", name, "--repeat-text", str(args.repeat_text)]
            print(f"dj_reference: {name} on {len(videos)} videos ...", file=sys.stderr, flush=True)
            rc, wall, ru = run_measured(cmd, env=dict(os.environ))
            entry = {"returncode": rc, "process_wall_s": wall,
                     "process_cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": _maxrss_mb(ru)}
            if rc == 0 and child_out.exists():
                entry.update(json.loads(child_out.read_text()))
            else:
                entry["error"] = f"child exited {rc}"
            report["ops"][name] = entry
            print(f"dj_reference: {name} done in {wall:.1f} s, peak RSS {entry['peak_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
