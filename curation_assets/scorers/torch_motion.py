"""Scoring many videos' frame pairs in batches on one torch device (the torch motion backend).

A video's sampled gray frames form a sequence; pair i is frames i and i + 1. Sequences of
one frame size are cut into chunks and packed into batches of pairs (across videos), each
batch one farneback_pairs call, so a GPU gets thousands of pixels' worth of work per kernel
instead of one pair at a time. Each frame's pyramid is computed once per chunk.

Memory: a batch holds at most ``pairs_per_batch`` pairs, from the device's free memory
(torch.cuda.mem_get_info) and the peak the flow needs per pixel of a pair. If the device
still runs out, the batch is split in halves; a pair that does not fit alone, or a frame
size whose single pair exceeds the budget, is scored on the CPU with OpenCV (the exact
path), and the video records why. Nothing here crashes a shard over memory.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from curation_assets.scorers.motion import MotionParams, farneback_args, frame_motion

# Peak bytes farneback_pairs allocates per pixel of a pair (frames, pyramid, expansion,
# matrices, float64 box sums): 366-441 measured on the CPU at 640x360 (resource.getrusage),
# rounded up for the CUDA caching allocator's slack.
BYTES_PER_PAIR_PIXEL = 512
MAX_BATCH_PAIRS = 256  # beyond this a GPU is already saturated; keeps one call's latency bounded
CPU_BATCH_BYTES = 512 << 20  # the torch backend on a CPU (tests, CI): a few pairs per call run fastest there
DEFAULT_MEMORY_FRACTION = 0.6  # of the device's free memory, the rest for decoding and models


@dataclass
class Sequence:
    """One video's gray frames in pair order: a list of H x W uint8 arrays or a [F, H, W] uint8 tensor."""

    frames: Any
    source_hw: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.frames[0].shape[-2:])

    @property
    def pair_count(self) -> int:
        return max(0, len(self.frames) - 1)


@dataclass
class SequenceScores:
    pair_scores: list[float] = field(default_factory=list)
    cpu_pairs: int = 0  # pairs scored by OpenCV on the CPU instead
    fallback: str | None = None  # why

    @property
    def backend(self) -> str:
        return "cpu" if self.pair_scores and self.cpu_pairs == len(self.pair_scores) else "torch"


def pairs_per_batch(height: int, width: int, device: str, memory_fraction: float = DEFAULT_MEMORY_FRACTION,
                    max_pairs: int = MAX_BATCH_PAIRS, free_bytes: int | None = None) -> int:
    """Pairs of this size one flow call may hold; 0 when not even one fits the budget."""
    per_pair = BYTES_PER_PAIR_PIXEL * height * width
    if free_bytes is None:
        if device.startswith("cuda"):
            import torch

            free_bytes = torch.cuda.mem_get_info(torch.device(device))[0]
            budget = int(free_bytes * memory_fraction)
        else:
            budget = CPU_BATCH_BYTES
    else:
        budget = int(free_bytes * memory_fraction)
    return int(min(max_pairs, budget // per_pair))


def pair_scores_from_flow(flow, params: MotionParams, source_hw: tuple[int, int] | None) -> list[float]:
    """motion.flow_score for a batch of flows [N, 2, H, W] on the device."""
    from curation_assets.scorers.farneback_torch import flow_magnitude_means

    height, width = flow.shape[-2:]
    to_source = params.scale_to_source or params.skip_levels > 0
    scale_hw = tuple(source_hw) if to_source and source_hw is not None and tuple(source_hw) != (height, width) else None
    means = flow_magnitude_means(flow, scale_hw)
    if params.relative:
        means = means / math.hypot(*(scale_hw or (height, width)))
    return [float(v) for v in means.cpu()]


@dataclass
class _Chunk:
    seq: int  # which sequence
    first: int  # its first pair
    count: int  # pairs


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def score_sequences(sequences: list[Sequence], params: MotionParams, device: str = "cpu",
                    memory_fraction: float = DEFAULT_MEMORY_FRACTION, max_pairs: int = MAX_BATCH_PAIRS,
                    free_bytes: int | None = None, flow: Callable | None = None,
                    compiled: bool = False, kernels: str | None = None) -> list[SequenceScores]:
    """Every sequence's pair scores, in order, computed in batches on `device`.

    free_bytes overrides the device's free memory (budget tests); flow replaces
    farneback_pairs(frames, pairs, settings) (the out-of-memory split test); compiled runs
    the flow's steps through torch.compile (farneback_torch.compiled_steps); kernels picks
    "eager", "compiled" or "triton" (farneback_torch.farneback_pairs).
    """
    import torch

    from curation_assets.scorers.farneback_torch import FarnebackSettings, farneback_pairs

    settings = FarnebackSettings.from_args(farneback_args(params))
    run = flow or functools.partial(farneback_pairs, compiled=compiled, kernels=kernels)
    results = [SequenceScores([math.nan] * s.pair_count) for s in sequences]
    by_size: dict[tuple[int, int], list[int]] = {}
    for n, seq in enumerate(sequences):
        if seq.pair_count:
            by_size.setdefault(seq.size, []).append(n)

    def frames_of(chunk: _Chunk):
        frames = sequences[chunk.seq].frames[chunk.first:chunk.first + chunk.count + 1]
        if isinstance(frames, torch.Tensor):
            return frames.to(device)
        return torch.from_numpy(np.stack(frames)).to(device)

    def on_cpu(chunk: _Chunk, why: str) -> None:
        seq, res = sequences[chunk.seq], results[chunk.seq]
        frames = seq.frames[chunk.first:chunk.first + chunk.count + 1]
        if isinstance(frames, torch.Tensor):
            frames = list(frames.cpu().numpy())
        for i in range(chunk.count):
            res.pair_scores[chunk.first + i] = frame_motion(frames[i], frames[i + 1], params, seq.source_hw)
        res.cpu_pairs += chunk.count
        res.fallback = why

    def run_batch(chunks: list[_Chunk]) -> None:
        try:
            stacked, pairs, offset = [], [], 0
            for chunk in chunks:
                stacked.append(frames_of(chunk))
                pairs += [(offset + i, offset + i + 1) for i in range(chunk.count)]
                offset += chunk.count + 1
            flows = run(torch.cat(stacked), pairs, settings)
            del stacked
            n = 0
            for chunk in chunks:
                scores = pair_scores_from_flow(flows[n:n + chunk.count], params, sequences[chunk.seq].source_hw)
                results[chunk.seq].pair_scores[chunk.first:chunk.first + chunk.count] = scores
                n += chunk.count
        except Exception as exc:
            if not _is_oom(exc):
                raise
            _release(device)
            if len(chunks) > 1:  # halve the batch
                half = len(chunks) // 2
                run_batch(chunks[:half])
                run_batch(chunks[half:])
            elif chunks[0].count > 1:  # halve the chunk
                c = chunks[0]
                half = c.count // 2
                run_batch([_Chunk(c.seq, c.first, half)])
                run_batch([_Chunk(c.seq, c.first + half, c.count - half)])
            else:
                height, width = sequences[chunks[0].seq].size
                on_cpu(chunks[0], f"flow on the CPU (OpenCV): one {width}x{height} pair ran out of memory on {device}")

    for (height, width), members in by_size.items():
        cap = pairs_per_batch(height, width, device, memory_fraction, max_pairs, free_bytes)
        if cap < 1:
            need = BYTES_PER_PAIR_PIXEL * height * width
            for n in members:
                on_cpu(_Chunk(n, 0, sequences[n].pair_count),
                       f"flow on the CPU (OpenCV): a {width}x{height} pair needs ~{need >> 20} MiB, more than "
                       f"{memory_fraction:.0%} of the free memory on {device}")
            continue
        batch, held = [], 0
        for n in members:
            first = 0
            while first < sequences[n].pair_count:
                count = min(cap - held, sequences[n].pair_count - first)
                batch.append(_Chunk(n, first, count))
                held += count
                first += count
                if held >= cap:
                    run_batch(batch)
                    batch, held = [], 0
        if batch:
            run_batch(batch)
    return results


def _release(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
