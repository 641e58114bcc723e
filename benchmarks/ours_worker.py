"""One measured task of the benchmark, run in a child process of run_benchmark.py.

    python benchmarks/ours_worker.py TASK --input videos.json --out result.json [--params JSON]

Every task runs in its own process, so the parent's os.wait4 rusage (peak RSS, CPU) belongs
to that task alone. Tasks:

- motion: ``curation_assets.scorers.motion.motion_score(path, MotionParams(**params))``
- resolution: ``curation_assets.scorers.probe.probe_video``
- ocr: ``load_text_detector(ModelSettings(profile='real'), max_side=...)`` on the uniform
  first/middle/last frames, decoded with PyAV (extraction timed apart from detection)
- char_rep: ``char_repetition_ratio(text, rep_len)``
- decode: every frame of each clip, sequentially, with PyAV (the decode bound)
- motion_study: exact and candidate fast-mode scores on a clip list (no per-scorer RSS needed)
- gen_synthetic / replicate: write the benchmark's inputs (in a child so the parent stays lean)
- graph_report: read a finished `curation-assets run`'s DuckDB and Dagster event log

Per-video wall seconds use time.perf_counter; CPU seconds use time.process_time (all
threads of this process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def _timed(fn, *args, **kwargs):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def _self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- scorers


def task_motion(videos: list[dict], params: dict) -> dict:
    from curation_assets.scorers.motion import MotionParams, default_flow_threads
    from curation_assets.scorers.video_pass import motion_score

    params = dict(params)
    flow_threads = params.pop("flow_threads", None) or default_flow_threads()
    motion_params = MotionParams(**params)
    rows = []
    for video in videos:
        result, wall, cpu = _timed(motion_score, video["path"], motion_params, flow_threads=flow_threads)
        rows.append({"path": video["path"], "value": result.motion_score, "wall_s": wall, "cpu_s": cpu,
                     "frames_decoded": result.frames_decoded, "frames_compared": len(result.frame_indices),
                     "error": result.error})
    return {"params": {**motion_params.as_dict(), "flow_threads": flow_threads}, "videos": rows}


def _motion_one(item: tuple[str, dict]) -> dict:
    """One video in a worker process (picklable by reference: this module's top level)."""
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import motion_score

    path, params = item
    # the pool's processes already fill the cores: no flow threads of their own (as in the graph)
    result, wall, cpu = _timed(motion_score, path, MotionParams(**params), flow_threads=1)
    return {"path": path, "value": result.motion_score, "video_wall_s": wall, "cpu_s": cpu,
            "frames_decoded": result.frames_decoded, "error": result.error, "worker_pid": os.getpid()}


def task_motion_parallel(videos: list[dict], params: dict) -> dict:
    """motion_score over the videos spread across worker processes, the way the graph's
    video_pass asset spreads a shard (curation_assets.execution.local_pool.map_videos when the product
    has it). Per-video wall = elapsed / videos, so videos/s includes worker start-up."""
    workers = int(params.get("workers", os.cpu_count() or 1))
    items = [(v["path"], params.get("motion", {})) for v in videos]
    t0 = time.perf_counter()
    try:
        from curation_assets.execution.local_pool import map_videos

        how = "curation_assets.execution.local_pool.map_videos"
        out = map_videos(_motion_one, items, workers)
    except ImportError:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        how = "ProcessPoolExecutor(spawn) (the product has no curation_assets.execution.local_pool)"
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            out = list(pool.map(_motion_one, items))
    elapsed = time.perf_counter() - t0
    for row in out:
        row["wall_s"] = elapsed / len(out)
    return {"params": {"workers": workers, "how": how, "elapsed_s": elapsed,
                       "worker_pids": sorted({r["worker_pid"] for r in out})}, "videos": out}


def task_resolution(videos: list[dict], params: dict) -> dict:
    from curation_assets.scorers.probe import probe_video

    rows = []
    for video in videos:
        result, wall, cpu = _timed(probe_video, video["path"])
        rows.append({"path": video["path"], "value": {"width": result.width, "height": result.height},
                     "display": [result.display_width, result.display_height], "frame_count": result.frame_count,
                     "wall_s": wall, "cpu_s": cpu, "frames_decoded": 1, "error": result.error})
    return {"videos": rows}


def extract_uniform_frames(path: str, k: int = 3):
    """The frames the graph's sampled_frames asset keeps (data-juicer's uniform picks), one PyAV pass."""
    import av

    from curation_assets.scorers.frame_sampling import FrameCollector, FrameSamplingParams

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        collector = FrameCollector(int(stream.frames or 0), FrameSamplingParams(num_frames=k),
                                   duration_pts=stream.duration)
        decoded, last_index, last_frame = 0, -1, None
        for index, frame in enumerate(container.decode(stream)):
            decoded += 1
            last_index, last_frame = index, frame
            if collector.wants(index, frame):
                collector.add(index, frame, frame.to_ndarray(format="rgb24"))
            if collector.done(index):
                break
        last_rgb = last_frame.to_ndarray(format="rgb24") if last_frame is not None else None
        indices = collector.finish(last_index, last_frame, last_rgb)
    return [collector.frames[i] for i in indices], indices, decoded


def task_ocr(videos: list[dict], params: dict) -> dict:
    from curation_assets.models.ocr import load_text_detector
    from curation_assets.models.registry import ModelSettings

    max_side = params.get("max_side")
    (detector, load_wall, load_cpu) = _timed(load_text_detector, ModelSettings(profile="real"), max_side=max_side,
                                             precision=params.get("precision", "auto"))
    rows = []
    for video in videos:
        (frames, indices, decoded), ex_wall, ex_cpu = _timed(extract_uniform_frames, video["path"])
        ratios, det_wall, det_cpu = _timed(detector.area_ratios, frames)
        rows.append({"path": video["path"], "value": sum(ratios) / len(ratios) if ratios else None,
                     "frame_ratios": ratios, "frame_indices": indices, "frames_decoded": decoded,
                     "extract_wall_s": ex_wall, "extract_cpu_s": ex_cpu,
                     "detect_wall_s": det_wall, "detect_cpu_s": det_cpu,
                     "wall_s": ex_wall + det_wall, "cpu_s": ex_cpu + det_cpu, "error": None})
    import torch

    return {"params": {"max_side": max_side, "precision": detector.precision, "model_id": detector.model_id},
            "load_s": load_wall, "load_cpu_s": load_cpu,
            "torch_threads": torch.get_num_threads(), "videos": rows}


def task_char_rep(videos: list[dict], params: dict) -> dict:
    from curation_assets.scorers.caption_text import char_repetition_ratio, clean_caption

    rep_len, repeat = int(params.get("rep_len", 10)), int(params.get("repeat", 200))
    rows = []
    for video in videos:
        text = video.get("text") or ""
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            value = char_repetition_ratio(text, rep_len)
        rows.append({"path": video["path"], "value": value, "wall_s": (time.perf_counter() - w0) / repeat,
                     "cpu_s": (time.process_time() - c0) / repeat,
                     "cleaned_caption_value": char_repetition_ratio(clean_caption(text), rep_len), "error": None})
    return {"params": {"rep_len": rep_len, "input": "raw manifest text, as data-juicer sees it"}, "videos": rows}


def task_decode(videos: list[dict], params: dict) -> dict:
    import av

    thread_type = params.get("thread_type", "AUTO")
    rows = []
    for video in videos:
        def decode_all(path=video["path"]):
            n = 0
            with av.open(path) as container:
                stream = container.streams.video[0]
                if thread_type:
                    stream.thread_type = thread_type
                else:  # one decoding thread
                    stream.codec_context.thread_count = 1
                for _ in container.decode(stream):
                    n += 1
            return n

        n, wall, cpu = _timed(decode_all)
        rows.append({"path": video["path"], "value": n, "frames_decoded": n, "wall_s": wall, "cpu_s": cpu,
                     "error": None})
    return {"params": {"thread_type": thread_type or "one thread"}, "videos": rows}


def task_motion_study(videos: list[dict], params: dict) -> dict:
    """Scores of every clip under the exact parameters and each candidate fast setting."""
    import av

    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import motion_score

    settings = {"exact": {}} if params.get("with_exact", True) else {}
    settings.update(params["candidates"])
    rows = []
    for video in videos:
        with av.open(video["path"]) as c:
            s = c.streams.video[0]
            size = [s.codec_context.width, s.codec_context.height]
        row = {"path": video["path"], "size": size, "scores": {}, "wall_s": {}, "cpu_s": {}}
        for name, kwargs in settings.items():
            result, wall, cpu = _timed(motion_score, video["path"], MotionParams(**kwargs))
            row["scores"][name], row["wall_s"][name], row["cpu_s"][name] = result.motion_score, wall, cpu
        rows.append(row)
    return {"settings": settings, "videos": rows}


# --------------------------------------------------------------------------- inputs


def _write_once(path: Path, write) -> bool:
    """write(tmp) then rename onto path, unless a non-empty path is already there (inputs are
    reused across runs; the rename keeps a killed run from leaving a half-written clip)."""
    if path.exists() and path.stat().st_size > 0:
        return False
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    write(tmp)
    tmp.replace(path)
    return True


def task_gen_synthetic(videos: list[dict], params: dict) -> dict:
    """Write the motion-study clips described in params['specs'] (skipping ones already there)."""
    from curation_assets.samples.synthetic import write_moving_pattern

    written = 0
    for spec in params["specs"]:
        written += _write_once(Path(spec["path"]), lambda tmp, spec=spec: write_moving_pattern(
            tmp, width=spec["width"], height=spec["height"], fps=spec["fps"], n_frames=spec["n_frames"],
            shift_px_per_frame=tuple(spec["shift"]), seed=spec["seed"]))
    return {"written": written, "videos": []}


def task_replicate(videos: list[dict], params: dict) -> dict:
    """Stream-copy each source into a distinct file (a unique comment tag, so a new content hash)."""
    import subprocess

    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    written = 0
    for item in params["copies"]:
        written += _write_once(Path(item["dst"]), lambda tmp, item=item: subprocess.run(
            [ffmpeg, "-y", "-loglevel", "error", "-i", item["src"], "-map", "0", "-c", "copy",
             "-metadata", f"comment=curation-bench-copy-{item['tag']}", str(tmp)], check=True, capture_output=True))
    return {"written": written, "videos": []}


# --------------------------------------------------------------------------- graph run report


def task_graph_report(videos: list[dict], params: dict) -> dict:
    """Per-step times (Dagster events), per-asset `seconds`, frames decoded, from a finished run."""
    import duckdb

    data_dir = Path(params["data_dir"])
    out: dict = {"steps": {}, "asset_seconds": {}, "runs": []}
    os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            records = instance.all_logs(run.run_id)
            if not records:
                continue
            run_info = {"run_id": run.run_id, "status": str(run.status.value), "start": records[0].timestamp,
                        "end": records[-1].timestamp, "steps": {}}
            starts: dict[str, float] = {}
            for record in records:
                event = record.dagster_event
                if event is None:
                    continue
                if event.event_type == DagsterEventType.STEP_START:
                    starts[event.step_key] = record.timestamp
                elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    step = run_info["steps"].setdefault(event.step_key, {})
                    step.update(start=starts.get(event.step_key), end=record.timestamp,
                                ok=event.event_type == DagsterEventType.STEP_SUCCESS)
                elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                    materialization = event.event_specific_data.materialization
                    seconds = materialization.metadata.get("seconds")
                    step = run_info["steps"].setdefault(event.step_key, {})
                    value = float(seconds.value) if seconds is not None else None
                    step.setdefault("asset_seconds", {})[materialization.asset_key.to_user_string()] = value
            out["runs"].append(run_info)

    db = data_dir / "curation.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}

        def rows(sql):
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

        if {"raw_videos", "motion", "sampled_frames"} <= tables:
            out["videos"] = rows(
                "select r.path, r.frame_count, r.duplicate_of, r.error as probe_error, m.frames_decoded, "
                "m.frame_indices as motion_indices, m.seconds as motion_seconds, m.motion_score, "
                "s.frame_indices as sampled_indices, m.error as motion_error "
                "from raw_videos r left join motion m using (video_id) left join sampled_frames s using (video_id)")
        else:
            out["videos"] = []
        if "curated_videos" in tables:
            out["status_counts"] = rows("select status, count(*) as n from curated_videos group by status")
        if "ocr_area" in tables:
            out["ocr"] = rows("select r.path, o.ocr_area_ratio from ocr_area o join raw_videos r using (video_id)")
    finally:
        con.close()
    return out


TASKS = {
    "motion": task_motion, "motion_parallel": task_motion_parallel, "resolution": task_resolution, "ocr": task_ocr, "char_rep": task_char_rep,
    "decode": task_decode, "motion_study": task_motion_study, "gen_synthetic": task_gen_synthetic,
    "replicate": task_replicate, "graph_report": task_graph_report,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--input", help="JSON list of {path, text}")
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", default="{}", help="JSON object (or @file)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    videos = json.loads(Path(args.input).read_text()) if args.input else []
    params = json.loads(Path(args.params[1:]).read_text() if args.params.startswith("@") else args.params)
    w0, c0 = time.perf_counter(), time.process_time()
    result = TASKS[args.task](videos, params)
    result.update(task=args.task, task_wall_s=time.perf_counter() - w0, task_cpu_s=time.process_time() - c0,
                  self_peak_rss_mb=_self_rss_mb())
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
