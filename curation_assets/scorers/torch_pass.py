"""The decode pass for the torch motion backend: a shard's videos in one process, decoded on
a few threads (NVDEC or PyAV, scorers/decoders.py), their frame pairs scored in batches
across videos on one torch device (scorers/torch_motion.py).

Decoding and flow overlap: the decode threads keep going while the calling thread runs a
batch. Each video's sampled frames are saved by its decode thread as soon as it is decoded
(a GPU decode brings only those few frames back to the host). One bad video (unreadable
file, decode error) ends as that video's error and the rest goes on, as in run_pass_job;
a video NVDEC cannot take is decoded with PyAV and one whose pairs do not fit in device
memory is scored on the CPU, each recorded with the video.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from curation_assets.scorers.decoders import decode_video
from curation_assets.scorers.motion import motion_result
from curation_assets.scorers.torch_motion import DEFAULT_MEMORY_FRACTION, MAX_BATCH_PAIRS, Sequence, score_sequences
from curation_assets.scorers.video_pass import PassJob, save_preview

COMPILE_ENV = "CURATION_MOTION_COMPILE"  # "1": TorchPassOptions.compiled by default
KERNELS_ENV = "CURATION_FLOW_KERNELS"  # eager | compiled | triton: TorchPassOptions.kernels by default
DECODE_PROCESSES_ENV = "CURATION_DECODE_PROCESSES"  # N: TorchPassOptions.decode_processes by default


@dataclass(frozen=True)
class TorchPassOptions:
    device: str = "cpu"  # the torch device the flow runs on
    decoder: str = "pyav"  # resolved: "pyav", "nvdec" or "nvdec-gpu"
    decode_threads: int = 0  # 0: default_decode_threads(decoder)
    batch_pairs: int = MAX_BATCH_PAIRS  # pairs gathered before a flow call (memory may cap it lower)
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    # the flow's steps through torch.compile: fused kernels on a GPU, ~1 min to compile per process
    compiled: bool = field(default_factory=lambda: os.environ.get(COMPILE_ENV, "") == "1")
    # "eager", "compiled" or "triton"; "" picks: compiled if asked, else Triton's fused kernels
    # on a CUDA device (farneback_torch.default_kernels), else eager
    kernels: str = field(default_factory=lambda: os.environ.get(KERNELS_ENV, ""))
    # decode in this many processes instead of threads (0: threads): the host's share of a
    # decode (demux, swscale, PNG) then runs outside the GIL; the pool stays up for the next
    # shard. None: default_decode_processes(device)
    decode_processes: int | None = field(default_factory=lambda: _env_int(DECODE_PROCESSES_ENV))

    def threads(self) -> int:
        return self.decode_threads or default_decode_threads(self.decoder)

    def processes(self) -> int:
        if self.decode_processes is None:
            return default_decode_processes(self.device, self.decoder)
        return self.decode_processes

    def flow_kernels(self) -> str:
        from curation_assets.scorers.farneback_torch import KERNELS, default_kernels

        if self.kernels and self.kernels not in KERNELS:
            raise ValueError(f"flow kernels must be one of {', '.join(KERNELS)}, got {self.kernels!r}")
        return self.kernels or ("compiled" if self.compiled else default_kernels(self.device))


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def default_decode_processes(device: str, decoder: str = "pyav") -> int:
    """Decode processes by default: the cores, up to 16, when the flow runs on a GPU (measured on
    an H200 with 16 cores, 600-frame 640x360 clips, Triton flow: PyAV 10.4 videos/s in 16
    processes against 5.3 on 8 threads, NVDEC 8.8 against 5.4-7.9; docs/gpu.md); threads on a
    CPU, where the flow itself takes the cores, and for nvdec-gpu, whose point is frames that
    stay on the GPU (in processes they come back through the host: 3.2 videos/s against 8.4)."""
    if not str(device).startswith("cuda") or decoder == "nvdec-gpu":
        return 0
    return min(16, os.cpu_count() or 1)


def default_decode_threads(decoder: str) -> int:
    """NVDEC: 4-8 sessions keep the GPU's decoders busy (on an H200, 8 decoded 21 videos/s, 4
    only 16); PyAV: the cores, up to 8."""
    if decoder.startswith("nvdec"):  # NVDEC sessions, each also demuxing and converting on the host
        return max(4, min(8, os.cpu_count() or 1))
    return max(1, min(8, os.cpu_count() or 1))


def _decode_job(job: PassJob, options: TorchPassOptions, in_process: bool = False) -> dict:
    """One video decoded, its sampled frames and preview saved. in_process: running in a
    decode process, so motion's grays come back as a host array (pickled to the flow's process)."""
    from curation_assets.frames.files import save_frames
    from curation_assets.store.location import StoreLocation

    t0 = time.perf_counter()
    try:
        location = job.data_dir if isinstance(job.data_dir, StoreLocation) else StoreLocation(job.data_dir)
        video = decode_video(location.local_file(job.path), job.motion_params, job.sampling, job.fps, job.frame_count,
                             options.decoder, options.device, job.preview, "cpu" if in_process else None)
        paths = save_frames(job.data_dir, job.video_id, video.frame_indices, video.frames, job.image_format)
        preview = save_preview(location, job.video_id, video.preview, video.fps)
        height, width = video.frames[0].shape[:2] if video.frames else (None, None)
        video.frames = video.preview = []  # saved: the pixels are not needed any more
        if in_process and not isinstance(video.grays, list):
            video.grays = video.grays.numpy()
        return {"video": video, "frame_indices": video.frame_indices, "timestamps": video.frame_timestamps,
                "frame_paths": paths, "preview_path": preview, "width": width, "height": height,
                "frames_error": video.error, "frames_decoded": video.frames_decoded,
                "frames_skipped": video.frames_skipped, "decoder": video.decoder, "decoder_fallback": video.fallback,
                "decode_seconds": time.perf_counter() - t0, "error": None}
    except Exception as exc:  # one bad video must not cost the shard
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "seconds": time.perf_counter() - t0}


def _decode_in_process(job: PassJob, options: TorchPassOptions) -> dict:
    return _decode_job(job, options, in_process=True)


def _init_decode_process(codec_threads: int = 1) -> None:
    import cv2
    import torch

    from curation_assets.scorers.frame_stream import set_codec_threads

    cv2.setNumThreads(1)  # one video per process: the processes are the parallelism
    torch.set_num_threads(1)
    set_codec_threads(codec_threads)


_decode_pools: dict = {}


def decode_pool(processes: int):
    """A pool of decode processes, started once per process and reused by every later pass
    (a shard of 64 short clips decodes in ~1 s; starting 16 processes costs more). spawn: the
    parent may already hold a CUDA context, which a forked child cannot use."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from curation_assets.scorers.frame_stream import codec_threads_for

    pool = _decode_pools.get(processes)
    if pool is None or getattr(pool, "_broken", False):
        pool = ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_init_decode_process,
                                   initargs=(codec_threads_for(processes),))
        _decode_pools[processes] = pool
    return pool


def close_decode_pools() -> None:
    """Stop the kept decode processes (the next pass starts new ones, which read the
    environment afresh: a benchmark switching a decode setting between runs)."""
    for pool in _decode_pools.values():
        pool.shutdown()
    _decode_pools.clear()


def _batch_key(job: PassJob, out: dict) -> tuple:
    """Videos scored together: one motion setting and one frame size (a flow call takes one size)."""
    video = out["video"]
    size = tuple(video.grays[0].shape[-2:]) if video.pair_count else None
    return job.motion_params, size


def run_torch_pass(jobs: list[PassJob], options: TorchPassOptions, stats: dict | None = None) -> list[dict]:
    """run_pass_job's result for every job, in order, with the torch backend's extras:
    decoder, decoder_fallback, flow_backend ("torch", or "cpu" when OpenCV scored it) and
    flow_fallback. stats (optional) collects the time spent decoding and in flow calls.

    Decoded videos wait, grouped by frame size, until a group holds batch_pairs pairs (or
    nothing is left to decode), so each flow call gets full batches of one size.
    """
    results: list[dict | None] = [None] * len(jobs)
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    stats = stats if stats is not None else {}
    kernels = options.flow_kernels()
    stats.update(flow_seconds=0.0, flow_calls=0, decode_seconds=0.0, pairs=0, kernels=kernels)

    def flush(key: tuple) -> None:
        members = groups.pop(key)
        params = key[0]
        t0 = time.perf_counter()
        scored = score_sequences([Sequence(out["video"].grays, out["video"].source_hw) for _, out in members], params,
                                 options.device, options.memory_fraction, options.batch_pairs, kernels=kernels)
        spent = time.perf_counter() - t0
        if kernels != "eager":
            from curation_assets.scorers.farneback_torch import kernel_failures

            if kernel_failures.get(kernels):
                stats["kernel_failure"] = kernel_failures[kernels]
                if kernels == "compiled":
                    stats["compile_failure"] = kernel_failures[kernels]
        pairs = sum(out["video"].pair_count for _, out in members)
        stats["flow_seconds"] += spent
        stats["flow_calls"] += 1 if pairs else 0
        stats["pairs"] += pairs
        for (i, out), scores in zip(members, scored):
            video = out.pop("video")
            out["motion"] = motion_result(scores.pair_scores, video.motion_indices, video.frames_decoded, params,
                                          video.error)
            out["flow_backend"], out["flow_fallback"] = scores.backend, scores.fallback
            out["seconds"] = out.pop("decode_seconds") + spent * video.pair_count / max(pairs, 1)
            results[i] = out

    processes = options.processes()
    threads = processes or options.threads()
    if processes:
        pool, decode = decode_pool(processes), _decode_in_process
    else:
        pool, decode = ThreadPoolExecutor(threads, thread_name_prefix="decode"), _decode_job
    with contextlib.ExitStack() as stack:
        if not processes:
            stack.enter_context(pool)
        queue = iter(enumerate(jobs))
        inflight: dict[Future, int] = {}
        holder = [pool]

        def submit() -> None:
            # a bounded look-ahead: decoded videos wait for a flow batch, not for memory
            while len(inflight) < 4 * threads:
                nxt = next(queue, None)
                if nxt is None:
                    return
                try:
                    inflight[holder[0].submit(decode, nxt[1], options)] = nxt[0]
                except Exception:  # the pool broke meanwhile: a new one
                    if not processes:
                        raise
                    holder[0] = decode_pool(processes)
                    inflight[holder[0].submit(decode, nxt[1], options)] = nxt[0]

        submit()
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                i = inflight.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # a decode process died (a decoder crash): this video again, here
                    if not processes:
                        raise
                    stats["decode_process_failures"] = stats.get("decode_process_failures", 0) + 1
                    stats["decode_process_failure"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    out = _decode_job(jobs[i], options)
                    holder[0] = decode_pool(processes)  # a broken pool is replaced
                if out["error"]:
                    results[i] = out
                    continue
                stats["decode_seconds"] += out["decode_seconds"]
                groups.setdefault(_batch_key(jobs[i], out), []).append((i, out))
            submit()
            for key in [k for k, members in groups.items()
                        if not inflight or sum(o["video"].pair_count for _, o in members) >= options.batch_pairs]:
                flush(key)
    return results  # type: ignore[return-value]
