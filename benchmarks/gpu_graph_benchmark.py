#!/usr/bin/env python
"""The whole box, measured: decode, motion and the learned scorers on one GPU machine.

    python benchmarks/gpu_graph_benchmark.py --device cuda --out OUT            # a GPU box (benchmarks/gpu_graph_box.sh)
    python benchmarks/gpu_graph_benchmark.py --device cpu --copies 1 --clips 2 --videoblip tiny --out OUT   # here

Stages, in order (each writes OUT/graph.json and OUT/graph.md as it ends, so a run cut
short keeps what it measured; --stages picks some; a stage that fails is recorded and the
next one runs; --deadline skips stages that would not finish in time):

- parity: per real clip, the torch backend on --device (batched, eager) against OpenCV's
  CPU exact path (data-juicer's score): video scores, per-pair relative differences.
- decoder: per clip, NVDEC's frames against PyAV's (the planned motion frames and the
  sampled frames: mean/max pixel difference, share of pixels that differ, the gray frames'
  difference) and what it does to the motion score (torch flow on both frame sets).
- decode: decoding alone (every frame up to the last sampled one, sampled frames converted),
  videos/s: NVDEC on T threads, PyAV on T threads in one process, PyAV in P processes.
- motion: the decode + motion stage as the graph runs it with backend torch
  (scorers/torch_pass.run_torch_pass: decode threads, pairs batched across videos, sampled
  frames saved as PNG): videos/s, decode and flow busy time, GPU utilization, per decoder.
- graph: the whole graph's work per shard of --shard-size videos, pipelined as the graph
  runs shards side by side (one shard's decode pass overlaps the previous shard's model
  steps; model steps one at a time, the `gpu` pool): video pass (torch), VideoBLIP captions
  for videos without one, then image_scores (frame files read once; CLIP ViT-B-32
  similarity, ViT-L-14 + aesthetic head, OCR/CRAFT). Real architectures with random
  weights (speed does not depend on them; CRAFT's real weights with --craft-weights):
  videos/s end to end, each stage's busy time, GPU utilization sampled over the run.
- compiled: parity and the motion stage again with the flow's steps through torch.compile.
- flow: the flow alone on decoded frames (the real clips' gray sequences, repeated to fill
  batches), per kernel set in --flow-stage-kernels (eager tensor ops, Triton's fused kernels)
  and batch size: pairs/s and what it means in videos/s at the clips' pairs per video.

--flow-kernels picks the flow's kernels in parity, motion and graph ("" = the default:
Triton's kernels on CUDA); --parity-kernels runs parity once per kernel set. Decoding in
processes: --nvdec-processes (decode stage) and the ":pN" suffix of --motion-decoders
(motion stage, e.g. nvdec:p16), --graph-decode-processes (graph stage). PyAV decodes leave
unreferenced H.264 pictures that nothing picked undecoded (scorers/unreferenced_frames.py);
"pyav-full" decodes every picture: the decode stage runs both back to back, the motion stage
takes it as a decoder (pyav-full:p16).

GPU utilization: nvidia-smi sampled every 200 ms in the background (utilization.gpu = the
share of time a kernel ran), summarized per stage. Inputs: the *.mp4 in --videos (default
../shared/data/real_videos), each repeated --copies times. Imports the model layer and the
motion scorer only (no dagster, duckdb): it runs from the source tree on a bare GPU box
with the wheels gpu_graph_box.sh installs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]
DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "real_videos"
STAGES = ("parity", "flow", "decoder", "decode", "motion", "graph", "compiled")
STAGE_MIN_S = {"parity": 20, "flow": 20, "decoder": 15, "decode": 30, "motion": 40, "graph": 120, "compiled": 150}


# --------------------------------------------------------------------------- utilization


class GpuSampler:
    """nvidia-smi's utilization.gpu and memory.used every interval, in the background."""

    def __init__(self, interval_ms: int = 200):
        self.samples: list[tuple[float, float, float]] = []  # (time, util %, memory MiB)
        self.error = None
        self._proc = None
        if not shutil.which("nvidia-smi"):
            self.error = "no nvidia-smi"
            return
        self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                       "--format=csv,noheader,nounits", f"--loop-ms={interval_ms}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(v) for v in line.strip().split(",")[:2])
                self.samples.append((time.perf_counter(), util, mem))
            except ValueError:
                continue

    def summary(self, t0: float, t1: float) -> dict:
        window = [s for s in self.samples if t0 <= s[0] <= t1]
        if not window:
            return {"gpu_util_samples": 0, "note": self.error or "no samples in the interval"}
        utils = [s[1] for s in window]
        return {"gpu_util_mean_pct": round(statistics.mean(utils), 1), "gpu_util_median_pct": statistics.median(utils),
                "gpu_util_busy_share": round(sum(u > 0 for u in utils) / len(utils), 3),
                "gpu_mem_max_mib": max(s[2] for s in window), "gpu_util_samples": len(window)}

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()


# --------------------------------------------------------------------------- helpers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def real_clips(args) -> list[Path]:
    paths = sorted(Path(args.videos).resolve().glob("*.mp4"))  # absolute: the passes run in temp dirs
    return paths[: args.clips] if args.clips else paths


def workload(args) -> list[Path]:
    clips = real_clips(args)
    return [clips[i % len(clips)] for i in range(len(clips) * args.copies)]


def captions_by_clip(args) -> dict[str, str]:
    """The manifest's captions (data-juicer format); clips without one get captioned by the graph."""
    out = {}
    manifest = Path(args.videos) / "manifest.jsonl"
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            entry = json.loads(line)
            text = entry.get("text", "").replace("<__dj__video>", "").replace("<|__dj__eoc|>", "").strip()
            for video in entry.get("videos", []):
                out[Path(video).name] = text
    return out


def environment(args) -> dict:
    import cv2
    import torch

    from curation_assets.scorers.decoders import nvdec_status
    from curation_assets.scorers.flow_backends import cpu_name

    env = {"device": args.device, "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
           "torch": torch.__version__, "opencv": cv2.__version__, "load_1min": round(os.getloadavg()[0], 2),
           "nvdec": nvdec_status()[1] if args.device.startswith("cuda") else "n/a (not on CUDA)"}
    try:
        import av

        env["pyav"] = av.__version__
    except ImportError as exc:
        env["pyav"] = f"missing: {exc}"
    if args.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            env["driver"] = str(exc)
    return env


def _job(i: int, path: Path, data_dir: str, motion=None):
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import PassJob

    return PassJob(f"v{i:05d}", str(path), None, None, motion or MotionParams(), FrameSamplingParams(), data_dir)


def resolved_decoder(args) -> str:
    from curation_assets.scorers.decoders import nvdec_status

    if args.decoder != "auto":
        return args.decoder
    return "nvdec" if args.device.startswith("cuda") and nvdec_status()[0] else "pyav"


# --------------------------------------------------------------------------- stages


def stage_parity(args, report, compiled: bool = False, kernels: str | None = None) -> dict:
    import cv2

    from curation_assets.scorers.decoders import decode_with_pyav
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams, frame_motion
    from curation_assets.scorers.torch_motion import Sequence, score_sequences

    from curation_assets.scorers.farneback_torch import default_kernels

    cv2.setNumThreads(1)
    params = MotionParams()
    kernels = None if compiled else (kernels or default_kernels(args.device))
    rows, pairs = [], []
    cpu_pool = ThreadPoolExecutor(args.cpu_threads)  # OpenCV releases the GIL: pairs in parallel
    for path in real_clips(args):
        video = decode_with_pyav(path, params, FrameSamplingParams(num_frames=0))
        grays = video.grays
        cpu = list(cpu_pool.map(lambda ab: frame_motion(ab[0], ab[1], params), zip(grays, grays[1:])))
        t0 = time.perf_counter()
        ours = score_sequences([Sequence(grays, video.source_hw)], params, args.device, compiled=compiled,
                               kernels=kernels)[0]
        sync(args.device)
        seconds = time.perf_counter() - t0
        c, t = float(np.mean(cpu)), float(np.mean(ours.pair_scores))
        rows.append({"clip": path.name, "pairs": len(cpu), "cpu_exact": c, "torch": t, "relative_difference": (t - c) / c,
                     "torch_seconds": round(seconds, 3), "fallback": ours.fallback})
        pairs += [abs(b - a) / a for a, b in zip(cpu, ours.pair_scores) if a]
    cpu_pool.shutdown()
    rel = np.array(pairs)
    from curation_assets.scorers.farneback_torch import kernel_failures

    used = "compiled" if compiled else kernels
    return {"compiled": compiled, "kernels": used, "kernel_failure": kernel_failures.get(used), "clips": rows,
            "pairs": {"n": int(rel.size), "median": float(np.median(rel)), "p99": float(np.percentile(rel, 99)),
                      "max": float(rel.max())}}


def stage_flow(args, report, sampler: GpuSampler) -> dict:
    """The flow alone: pairs/s per kernel set and batch size, frames already on the device."""
    import torch

    from curation_assets.scorers.decoders import decode_with_pyav
    from curation_assets.scorers.farneback_torch import FarnebackSettings, farneback_pairs, kernel_failures
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams

    by_size: dict = {}
    for path in real_clips(args):
        video = decode_with_pyav(path, MotionParams(), FrameSamplingParams(num_frames=0))
        by_size.setdefault(tuple(video.grays[0].shape), []).append(np.stack(video.grays))
    size, seqs = max(by_size.items(), key=lambda kv: sum(len(s) for s in kv[1]))
    pairs_per_video = float(np.mean([len(s) - 1 for s in seqs]))
    rows = []
    for kernels in [k for k in args.flow_stage_kernels.split(",") if k]:
        for batch in args.flow_batches:
            frames, pairs, offset = [], [], 0
            while len(pairs) < batch:  # whole sequences, cut to the batch
                for seq in seqs:
                    take = min(len(seq) - 1, batch - len(pairs))
                    if take <= 0:
                        break
                    frames.append(seq[:take + 1])
                    pairs += [(offset + i, offset + i + 1) for i in range(take)]
                    offset += take + 1
            gpu = torch.from_numpy(np.concatenate(frames)).to(args.device)
            settings = FarnebackSettings()
            farneback_pairs(gpu, pairs, settings, kernels=kernels)  # warm: kernels compiled, memory pooled
            sync(args.device)
            calls = max(1, args.flow_calls)
            t0 = time.perf_counter()
            for _ in range(calls):
                farneback_pairs(gpu, pairs, settings, kernels=kernels)
            sync(args.device)
            t1 = time.perf_counter()
            rate = calls * len(pairs) / (t1 - t0)
            rows.append({"kernels": kernels, "failure": kernel_failures.get(kernels), "size": f"{size[1]}x{size[0]}",
                         "batch_pairs": len(pairs), "calls": calls, "pairs_per_s": round(rate),
                         "videos_per_s_at_clip_pairs": round(rate / pairs_per_video, 1),
                         "ms_per_call": round(1000 * (t1 - t0) / calls, 1), **sampler.summary(t0, t1)})
            print(f"flow {kernels} batch {len(pairs)}: {rows[-1]['pairs_per_s']} pairs/s", flush=True)
            del gpu
    return {"pairs_per_video": pairs_per_video, "rows": rows}


def _stats(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"mean_abs": round(float(d.mean()), 4), "max_abs": int(d.max()), "share_differing": round(float((d > 0).mean()), 4)}


def stage_decoder(args, report) -> dict:
    from curation_assets.scorers.decoders import decode_with_nvdec, decode_with_pyav, nvdec_status
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.torch_motion import Sequence, score_sequences

    usable, why = nvdec_status()
    if not usable:
        return {"skipped": f"NVDEC not usable: {why}"}
    params, sampling = MotionParams(), FrameSamplingParams()
    rows = []
    for path, decoder in [(p, d) for p in real_clips(args) for d in ("nvdec", "nvdec-gpu")]:
        row = {"clip": path.name, "decoder": decoder}
        try:
            gpu = decode_with_nvdec(path, params, sampling, None, None, args.device,
                                    colour_on_gpu=decoder == "nvdec-gpu")
            cpu = decode_with_pyav(path, params, sampling)
            row["same_indices"] = gpu.motion_indices == cpu.motion_indices and gpu.frame_indices == cpu.frame_indices
            row["sampled_rgb"] = _stats(np.stack(gpu.frames), np.stack(cpu.frames))
            gpu_grays = gpu.grays.cpu().numpy()
            row["motion_gray"] = _stats(gpu_grays, np.stack(cpu.grays))
            s_gpu = score_sequences([Sequence(gpu.grays, gpu.source_hw)], params, args.device)[0].pair_scores
            s_cpu = score_sequences([Sequence(cpu.grays, cpu.source_hw)], params, args.device)[0].pair_scores
            a, b = float(np.mean(s_cpu)), float(np.mean(s_gpu))
            row.update(motion_pyav_frames=a, motion_nvdec_frames=b, motion_relative_difference=(b - a) / a)
        except Exception as exc:  # noqa: BLE001 - record and go on
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        rows.append(row)
    return {"clips": rows}


def _decode_only(item) -> int:
    """One video's decode without flow (the decode pass's floor); returns the frames decoded."""
    path, decoder, device = item
    from curation_assets.scorers.decoders import decode_video

    # "pyav-full": every picture decoded (frame_stream's skipping of unreferenced ones off)
    os.environ["CURATION_DECODE_SKIP_UNREFERENCED"] = "0" if decoder == "pyav-full" else "1"
    decoder = decoder.removesuffix("-full")
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams

    video = decode_video(path, MotionParams(), FrameSamplingParams(), decoder=decoder, device=device)
    return video.frames_decoded


def _init_process(codec_threads: int = 0) -> None:
    import cv2

    from curation_assets.scorers.frame_stream import set_codec_threads

    cv2.setNumThreads(1)
    set_codec_threads(codec_threads)  # as the graph's decode pools do: the cores / the processes


def stage_decode(args, report, sampler: GpuSampler) -> dict:
    from curation_assets.scorers.decoders import nvdec_status
    from curation_assets.scorers.frame_stream import codec_threads_for

    videos = workload(args)
    rows = []
    # PyAV with and without leaving unreferenced pictures undecoded, back to back
    variants = [("pyav", "threads", args.decode_threads), ("pyav-full", "threads", args.decode_threads),
                ("pyav", "processes", args.cpu_processes), ("pyav-full", "processes", args.cpu_processes)]
    if args.device.startswith("cuda") and nvdec_status()[0]:
        variants = [(args.nvdec_decoder, "threads", t) for t in args.nvdec_threads] + \
            [(d, "processes", p) for p in args.nvdec_processes for d in (args.nvdec_decoder, "nvdec-gpu")] + variants
    variants = [v for v in variants if v[2] > 0]
    for decoder, how, n in variants:
        items = [(str(p), decoder, args.device) for p in videos]
        if how == "processes":
            pool = ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init_process,
                                       initargs=(codec_threads_for(n),))
            list(pool.map(time.sleep, [0.2] * n))  # started before the clock
        else:
            pool = ThreadPoolExecutor(n)
            list(pool.map(_decode_only, items[:n]))  # warm: decoder sessions, imports
        t0 = time.perf_counter()
        frames = sum(pool.map(_decode_only, items))
        sync(args.device)
        t1 = time.perf_counter()
        pool.shutdown()
        rows.append({"decoder": decoder, "parallel": f"{n} {how}", "videos": len(videos),
                     "videos_per_s": round(len(videos) / (t1 - t0), 2), "frames_per_s": round(frames / (t1 - t0)),
                     **sampler.summary(t0, t1)})
        print(f"decode {decoder} {n} {how}: {rows[-1]['videos_per_s']} videos/s", flush=True)
    return {"rows": rows}


def run_motion(args, videos, decoder: str, compiled: bool, sampler: GpuSampler, data_dir: str,
               batch_pairs: int | None = None) -> dict:
    from curation_assets.scorers.torch_pass import TorchPassOptions, run_torch_pass

    decoder, _, how = decoder.partition(":")  # "nvdec:p16": 16 decode processes
    _set_skipping(not decoder.endswith("-full"))  # "pyav-full": every picture decoded
    decoder = decoder.removesuffix("-full")
    processes = int(how[1:]) if how.startswith("p") else 0
    threads = int(how[1:]) if how.startswith("t") else args.decode_threads_torch
    options = TorchPassOptions(device=args.device, decoder=decoder, decode_threads=threads,
                               batch_pairs=batch_pairs or args.batch_pairs, compiled=compiled,
                               kernels="" if compiled else args.flow_kernels, decode_processes=processes)
    processes = options.processes()
    warm = [_job(i, p, data_dir) for i, p in enumerate(real_clips(args))]
    run_torch_pass(warm, options)  # decoder sessions, CUDA context, kernels (and compilation) off the clock
    jobs = [_job(i, p, data_dir) for i, p in enumerate(videos)]
    stats: dict = {}
    t0 = time.perf_counter()
    outs = run_torch_pass(jobs, options, stats)
    sync(args.device)
    t1 = time.perf_counter()
    errors = [o["error"] for o in outs if o["error"]]
    return {"decoder": decoder, "compiled": compiled, "kernels": stats.get("kernels"),
            "kernel_failure": stats.get("kernel_failure"), "decode_threads": options.threads(),
            "decode_processes": processes, "batch_pairs": options.batch_pairs, "videos": len(jobs), "videos_per_s": round(len(jobs) / (t1 - t0), 2),
            "pairs_per_s": round(stats["pairs"] / (t1 - t0)), "wall_s": round(t1 - t0, 2),
            "flow_busy_s": round(stats["flow_seconds"], 2), "flow_calls": stats["flow_calls"],
            "decode_busy_s_summed_over_threads": round(stats["decode_seconds"], 2),
            "decoder_fallbacks": sum(1 for o in outs if o.get("decoder_fallback")),
            "first_decoder_fallback": next((o["decoder_fallback"] for o in outs if o.get("decoder_fallback")), None),
            "flow_fallbacks": sum(1 for o in outs if o.get("flow_fallback")), "errors": errors[:3],
            "compile_failure": stats.get("compile_failure"),
            **sampler.summary(t0, t1)}


def _set_skipping(on: bool) -> None:
    """frame_stream's skipping of unreferenced pictures, here and in decode processes started
    from now on (the pools of earlier runs are closed: they read the setting when spawned)."""
    value = "1" if on else "0"
    if os.environ.get("CURATION_DECODE_SKIP_UNREFERENCED", "1") == value:
        return
    os.environ["CURATION_DECODE_SKIP_UNREFERENCED"] = value
    from curation_assets.scorers.torch_pass import close_decode_pools

    close_decode_pools()


def stage_motion(args, report, sampler: GpuSampler, compiled: bool = False) -> dict:
    videos = workload(args)
    rows = []
    decoders = [d for d in args.motion_decoders.split(",") if d] or \
        [resolved_decoder(args)] + (["pyav"] if resolved_decoder(args) != "pyav" else [])
    with tempfile.TemporaryDirectory(prefix="gpu_graph_motion_") as data_dir:
        for decoder in decoders:
            rows.append(run_motion(args, videos, decoder, compiled, sampler, data_dir))
            print(f"motion ({decoder}{', compiled' if compiled else ''}): {rows[-1]['videos_per_s']} videos/s", flush=True)
    return {"rows": rows}


class Models:
    """The graph's four learned scorers: real architectures, random weights where real ones are absent."""

    def __init__(self, args):
        import gpu_benchmark as gb

        from curation_assets.models.aesthetics import AestheticScorer, load_aesthetic_head
        from curation_assets.models.registry import ModelSettings

        t0 = time.perf_counter()
        bench_args = argparse.Namespace(device=args.device, clip_weights="random", batch=args.clip_batch,
                                        craft_weights=args.craft_weights, ocr_precision="float32")
        self.clip = gb.clip_encoder("ViT-B-32", bench_args)
        large = gb.clip_encoder("ViT-L-14", bench_args)
        head, source = load_aesthetic_head(ModelSettings(profile="tiny", device=args.device), device=args.device)
        self.aesthetics = AestheticScorer(large, head, profile="bench", model_id="bench", head_path=source)
        if args.craft_weights:
            self.ocr = gb.craft_from_file(bench_args)
        else:
            from curation_assets.models.ocr import load_text_detector

            self.ocr = load_text_detector(ModelSettings(device=args.device), precision="float32")
        if args.videoblip == "full-random":
            self.captioner, _ = gb.full_size_random_captioner(args.device)
        else:
            from curation_assets.models import videoblip as vb

            self.captioner = vb.load_captioner(vb.DEFAULT_CAPTIONER, ModelSettings(profile="tiny", device=args.device))
        self.build_seconds = round(time.perf_counter() - t0, 1)


def score_shard(models: Models, outs: list[dict], captions: list[str], data_dir: str, busy: dict, args) -> None:
    """The model steps of one shard: captions for videos without one, then image_scores."""
    from curation_assets.frames.files import read_frames_parallel
    from curation_assets.models.clip import frame_text_similarity

    ok = [(o, c) for o, c in zip(outs, captions) if not o["error"] and o["frame_paths"]]
    t0 = time.perf_counter()
    paths = [str(Path(data_dir) / p) for o, _ in ok for p in o["frame_paths"]]
    frames = read_frames_parallel(paths)
    per_video = []
    n = 0
    for o, _ in ok:
        k = len(o["frame_paths"])
        per_video.append(frames[n:n + k])
        n += k
    busy["read_frames_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    missing = [i for i, (_, c) in enumerate(ok) if not c]
    tokens = {"max_new_tokens": args.caption_tokens, "min_new_tokens": args.caption_tokens}
    new = models.captioner.caption([per_video[i] for i in missing], **tokens) if missing else []
    texts = [c for _, c in ok]
    for i, text in zip(missing, new):
        texts[i] = text
    sync(args.device)
    busy["captions_s"] += time.perf_counter() - t0
    busy["captioned"] += len(missing)
    flat = [f for v in per_video for f in v]
    t0 = time.perf_counter()
    emb = models.clip.encode_images(flat)
    text_emb = models.clip.encode_texts(texts)
    n = 0
    for v, t in zip(per_video, text_emb):
        frame_text_similarity(emb[n:n + len(v)], t)
        n += len(v)
    sync(args.device)
    busy["clip_similarity_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    models.aesthetics.score(flat)
    sync(args.device)
    busy["aesthetics_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    models.ocr.area_ratios(flat)
    sync(args.device)
    busy["ocr_s"] += time.perf_counter() - t0
    busy["frames_scored"] += len(flat)


def stage_graph(args, report, sampler: GpuSampler) -> dict:
    from curation_assets.scorers.torch_pass import TorchPassOptions, run_torch_pass

    decoder = resolved_decoder(args)
    videos = workload(args)
    known = captions_by_clip(args)
    captions = [known.get(p.name, "") for p in videos]
    models = Models(args)
    print(f"models built in {models.build_seconds} s", flush=True)
    busy = {k: 0.0 for k in ("video_pass_s", "flow_s", "read_frames_s", "captions_s", "clip_similarity_s",
                             "aesthetics_s", "ocr_s")}
    busy.update(captioned=0, frames_scored=0, flow_calls=0)
    options = TorchPassOptions(device=args.device, decoder=decoder, decode_threads=args.decode_threads_torch,
                               batch_pairs=args.batch_pairs, compiled=args.graph_compiled,
                               kernels="" if args.graph_compiled else args.flow_kernels,
                               decode_processes=args.graph_decode_processes)  # 0: threads
    shards = [list(range(i, min(i + args.shard_size, len(videos)))) for i in range(0, len(videos), args.shard_size)]
    with tempfile.TemporaryDirectory(prefix="gpu_graph_") as data_dir:
        # warm every model and the video pass once, off the clock
        warm = run_torch_pass([_job(i, p, data_dir) for i, p in enumerate(real_clips(args))], options)
        score_shard(models, warm, [""] * len(warm), data_dir, {k: 0 for k in busy}, args)
        done: list = []
        ready = threading.Semaphore(0)
        errors = []

        def video_passes() -> None:  # shards one after another, as runs side by side decode
            try:
                for s, members in enumerate(shards):
                    stats: dict = {}
                    t0 = time.perf_counter()
                    outs = run_torch_pass([_job(i, videos[i], data_dir) for i in members], options, stats)
                    busy["video_pass_s"] += time.perf_counter() - t0
                    busy["flow_s"] += stats["flow_seconds"]
                    busy["flow_calls"] += stats["flow_calls"]
                    done.append((members, outs))
                    ready.release()
            except Exception as exc:  # noqa: BLE001
                errors.append(traceback.format_exc())
                ready.release()
                raise exc

        t0 = time.perf_counter()
        decoder_thread = threading.Thread(target=video_passes, daemon=True)
        decoder_thread.start()
        video_errors = 0
        for _ in shards:  # model steps one shard at a time (pool `gpu`, limit 1)
            ready.acquire()
            if errors:
                break
            members, outs = done.pop(0)
            video_errors += sum(1 for o in outs if o["error"])
            score_shard(models, outs, [captions[i] for i in members], data_dir, busy, args)
        decoder_thread.join()
        sync(args.device)
        t1 = time.perf_counter()
    wall = t1 - t0
    return {"decoder": decoder, "compiled_flow": args.graph_compiled, "flow_kernels": options.flow_kernels(),
            "decode_processes": options.processes(), "decode_threads": options.threads(),
            "craft_weights": "random" if args.craft_weights == "random" else "real (float16-rounded)",
            "videos": len(videos), "shards": len(shards), "shard_size": args.shard_size,
            "videos_per_s": round(len(videos) / wall, 2), "wall_s": round(wall, 1), "models_build_s": models.build_seconds,
            "busy_s": {k: round(v, 2) if isinstance(v, float) else v for k, v in busy.items()},
            "video_errors": video_errors, "errors": errors[:1], "videoblip": args.videoblip, **sampler.summary(t0, t1)}


# --------------------------------------------------------------------------- report


def markdown(report: dict) -> str:
    env = report.get("environment", {})
    out = [f"# The whole box: {env.get('gpu', env.get('device'))}", "",
           "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    p = report.get("parity")
    parities = [(k, v) for k, v in report.items() if k.startswith("parity") or k == "compiled_parity"]
    for key, p in parities:
        if isinstance(p, dict) and "clips" in p:
            out += [f"## torch ({p.get('kernels') or ('compiled' if p['compiled'] else 'eager')}) vs CPU exact", "",
                    "| clip | pairs | CPU exact | torch | relative difference |", "|---|---|---|---|---|"]
            out += [f"| {c['clip']} | {c['pairs']} | {c['cpu_exact']:.6f} | {c['torch']:.6f} | "
                    f"{c['relative_difference']:+.1e} |" for c in p["clips"]]
            d = p["pairs"]
            out += ["", f"Per pair ({d['n']}): |relative difference| median {d['median']:.1e}, p99 {d['p99']:.1e}, "
                    f"max {d['max']:.1e}.", ""]
    dec = report.get("decoder")
    if isinstance(dec, dict):
        out += ["## NVDEC frames vs PyAV's", ""]
        if "skipped" in dec:
            out += [dec["skipped"], ""]
        else:
            out += ["| clip | decoder | same indices | sampled RGB mean / max / share differing | motion gray mean / max / "
                    "share | motion (PyAV frames) | motion (NVDEC frames) | relative difference |",
                    "|---|---|---|---|---|---|---|---|"]
            for c in dec["clips"]:
                if "error" in c:
                    out.append(f"| {c['clip']} | {c.get('decoder', 'nvdec')} | error: {c['error']} | | | | | |")
                    continue
                s, g = c["sampled_rgb"], c["motion_gray"]
                out.append(f"| {c['clip']} | {c.get('decoder', 'nvdec')} | {c['same_indices']} | {s['mean_abs']} / {s['max_abs']} / "
                           f"{s['share_differing']} | {g['mean_abs']} / {g['max_abs']} / {g['share_differing']} | "
                           f"{c['motion_pyav_frames']:.4f} | {c['motion_nvdec_frames']:.4f} | "
                           f"{c['motion_relative_difference']:+.1e} |")
            out.append("")
    for key, title in (("flow", "Flow alone (frames on the device)"), ("decode", "Decoding alone"), ("motion", "Decode + motion (torch backend)"),
                       ("compiled_motion", "Decode + motion, compiled flow")):
        block = report.get(key)
        if isinstance(block, dict) and block.get("rows"):
            out += [f"## {title}", "", "| " + " | ".join(block["rows"][0]) + " |",
                    "|" + "---|" * len(block["rows"][0])]
            out += ["| " + " | ".join(str(r.get(k)) for k in block["rows"][0]) + " |" for r in block["rows"]]
            out.append("")
    g = report.get("graph")
    if isinstance(g, dict) and "videos_per_s" in g:
        out += ["## Whole graph", "", f"{g['videos']} videos in {g['shards']} shards of {g['shard_size']}, decoder "
                f"{g['decoder']} ({g.get('decode_processes') or g.get('decode_threads')} "
                f"{'processes' if g.get('decode_processes') else 'threads'}), flow kernels {g.get('flow_kernels')}, CRAFT "
                f"{g.get('craft_weights')}, VideoBLIP {g['videoblip']}: **{g['videos_per_s']} videos/s** ({g['wall_s']} s); GPU "
                f"utilization mean {g.get('gpu_util_mean_pct')}%, busy share {g.get('gpu_util_busy_share')}.", "",
                "Busy time per stage (s): " + ", ".join(f"{k} {v}" for k, v in g["busy_s"].items()), ""]
    for key, value in report.items():
        if isinstance(value, dict) and "failed" in value:
            out += [f"Stage {key} failed: `{value['failed'][-600:]}`", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--videos", default=str(DEFAULT_VIDEOS))
    ap.add_argument("--clips", type=int, default=0, help="first N clips only (0: all)")
    ap.add_argument("--copies", type=int, default=48, help="each clip this many times in the throughput stages")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--decoder", default="auto", choices=["auto", "pyav", "nvdec", "nvdec-gpu"])
    ap.add_argument("--motion-decoders", default="", help="motion stages: decoders to run (default: the resolved "
                    "one, then pyav)")
    ap.add_argument("--nvdec-threads", default="2,4,8", help="decode stage: NVDEC thread counts")
    ap.add_argument("--nvdec-processes", default="", help="decode stage: NVDEC process counts (nvdec and nvdec-gpu)")
    ap.add_argument("--flow-kernels", default="", choices=["", "eager", "compiled", "triton"],
                    help="the flow's kernels in parity, motion and graph (default: Triton's on CUDA, else eager)")
    ap.add_argument("--parity-kernels", default="", help="parity: one run per kernel set (default: --flow-kernels)")
    ap.add_argument("--flow-stage-kernels", default="eager,triton", help="flow stage: kernel sets")
    ap.add_argument("--flow-batches", default="64,256", help="flow stage: pairs per call")
    ap.add_argument("--flow-calls", type=int, default=3, help="flow stage: timed calls per setting")
    ap.add_argument("--graph-decode-processes", type=int, default=None,
                    help="graph stage: decode processes (0: threads; default: the torch pass's default)")
    ap.add_argument("--nvdec-decoder", default="nvdec", choices=["nvdec", "nvdec-gpu"], help="decode stage: which")
    ap.add_argument("--decode-threads", type=int, default=16, help="decode stage: PyAV threads in one process")
    ap.add_argument("--cpu-processes", type=int, default=os.cpu_count() or 1, help="decode stage: PyAV processes")
    ap.add_argument("--decode-threads-torch", type=int, default=0, help="torch pass decode threads (0: its default)")
    ap.add_argument("--batch-pairs", type=int, default=256)
    ap.add_argument("--cpu-threads", type=int, default=os.cpu_count() or 1, help="parity: OpenCV pairs in parallel")
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--clip-batch", type=int, default=256)
    ap.add_argument("--craft-weights", default=None, help="CRAFT weights file (gpu_benchmark.py --write-craft-fp16)")
    ap.add_argument("--graph-compiled", action="store_true", help="graph stage: the flow through torch.compile")
    ap.add_argument("--videoblip", default="full-random", choices=["full-random", "tiny"])
    ap.add_argument("--caption-tokens", type=int, default=30)
    ap.add_argument("--deadline", type=float, default=0, help="seconds from start; skip stages that would not fit")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    args.nvdec_threads = [int(v) for v in args.nvdec_threads.split(",") if v]
    args.nvdec_processes = [int(v) for v in args.nvdec_processes.split(",") if v]
    args.flow_batches = [int(v) for v in args.flow_batches.split(",") if v]
    if not args.device.startswith("cuda"):
        import torch

        torch.set_num_threads(1)  # torch on a CPU: one thread per process runs fastest (docs/gpu.md)
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"args": {k: v for k, v in vars(args).items()}, "environment": environment(args)}
    print(json.dumps(report["environment"]), flush=True)
    sampler = GpuSampler()
    wanted = [s for s in args.stages.split(",") if s]

    def save() -> None:
        (out / "graph.json").write_text(json.dumps(report, indent=1, default=str))
        (out / "graph.md").write_text(markdown(report))

    runs = {"flow": lambda: stage_flow(args, report, sampler), "decoder": lambda: stage_decoder(args, report),
            "decode": lambda: stage_decode(args, report, sampler), "motion": lambda: stage_motion(args, report, sampler),
            "graph": lambda: stage_graph(args, report, sampler)}
    for stage in wanted:
        left = args.deadline - (time.perf_counter() - start) if args.deadline else None
        if left is not None and left < STAGE_MIN_S.get(stage, 30):
            report[stage] = {"skipped": f"{left:.0f} s left before the deadline"}
            save()
            continue
        t0 = time.perf_counter()
        print(f"== {stage}", flush=True)
        try:
            if stage == "parity":
                for kernels in [k for k in (args.parity_kernels or args.flow_kernels or "").split(",")] or [""]:
                    key = f"parity_{kernels}" if args.parity_kernels else "parity"
                    report[key] = stage_parity(args, report, kernels=kernels or None)
                    save()
            elif stage == "compiled":
                report["compiled_parity"] = stage_parity(args, report, compiled=True)
                save()
                report["compiled_motion"] = stage_motion(args, report, sampler, compiled=True)
            else:
                report[stage] = runs[stage]()
        except Exception:  # noqa: BLE001 - a failing stage is recorded; the next one runs
            report[stage] = {"failed": traceback.format_exc()}
            print(report[stage]["failed"], flush=True)
        report.setdefault("stage_seconds", {})[stage] = round(time.perf_counter() - t0, 1)
        save()
    sampler.stop()
    save()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
