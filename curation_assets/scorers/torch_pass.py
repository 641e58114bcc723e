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

import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from curation_assets.scorers.decoders import decode_video
from curation_assets.scorers.motion import motion_result
from curation_assets.scorers.torch_motion import DEFAULT_MEMORY_FRACTION, MAX_BATCH_PAIRS, Sequence, score_sequences
from curation_assets.scorers.video_pass import PassJob

COMPILE_ENV = "CURATION_MOTION_COMPILE"  # "1": TorchPassOptions.compiled by default


@dataclass(frozen=True)
class TorchPassOptions:
    device: str = "cpu"  # the torch device the flow runs on
    decoder: str = "pyav"  # resolved: "pyav" or "nvdec"
    decode_threads: int = 0  # 0: default_decode_threads(decoder)
    batch_pairs: int = MAX_BATCH_PAIRS  # pairs gathered before a flow call (memory may cap it lower)
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    # the flow's steps through torch.compile: fused kernels on a GPU, ~1 min to compile per process
    compiled: bool = field(default_factory=lambda: os.environ.get(COMPILE_ENV, "") == "1")

    def threads(self) -> int:
        return self.decode_threads or default_decode_threads(self.decoder)


def default_decode_threads(decoder: str) -> int:
    """NVDEC: a few sessions keep the GPU's decoders busy; PyAV: the cores, up to 8."""
    return 4 if decoder == "nvdec" else max(1, min(8, os.cpu_count() or 1))


def _decode_job(job: PassJob, options: TorchPassOptions) -> dict:
    from curation_assets.frames.files import save_frames
    from curation_assets.store.location import StoreLocation

    t0 = time.perf_counter()
    try:
        location = job.data_dir if isinstance(job.data_dir, StoreLocation) else StoreLocation(job.data_dir)
        video = decode_video(location.local_file(job.path), job.motion_params, job.sampling, job.fps, job.frame_count,
                             options.decoder, options.device)
        paths = save_frames(job.data_dir, job.video_id, video.frame_indices, video.frames, job.image_format)
        height, width = video.frames[0].shape[:2] if video.frames else (None, None)
        video.frames = []  # saved: the pixels are not needed any more
        return {"video": video, "frame_indices": video.frame_indices, "timestamps": video.frame_timestamps,
                "frame_paths": paths, "width": width, "height": height, "frames_error": video.error,
                "decoder": video.decoder, "decoder_fallback": video.fallback,
                "decode_seconds": time.perf_counter() - t0, "error": None}
    except Exception as exc:  # one bad video must not cost the shard
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "seconds": time.perf_counter() - t0}


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
    stats.update(flow_seconds=0.0, flow_calls=0, decode_seconds=0.0, pairs=0)

    def flush(key: tuple) -> None:
        members = groups.pop(key)
        params = key[0]
        t0 = time.perf_counter()
        scored = score_sequences([Sequence(out["video"].grays, out["video"].source_hw) for _, out in members], params,
                                 options.device, options.memory_fraction, options.batch_pairs,
                                 compiled=options.compiled)
        spent = time.perf_counter() - t0
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

    threads = options.threads()
    with ThreadPoolExecutor(threads, thread_name_prefix="decode") as pool:
        queue = iter(enumerate(jobs))
        inflight: dict[Future, int] = {}

        def submit() -> None:
            # a bounded look-ahead: decoded videos wait for a flow batch, not for memory
            while len(inflight) < 4 * threads:
                nxt = next(queue, None)
                if nxt is None:
                    return
                inflight[pool.submit(_decode_job, nxt[1], options)] = nxt[0]

        submit()
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                i = inflight.pop(future)
                out = future.result()
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
