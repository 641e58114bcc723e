#!/usr/bin/env python
"""Where the torch Farneback's time goes on a device: each step's time per call (CUDA events
around every step, synchronised) and the profiler's top kernels, per kernel set.

    python benchmarks/flow_kernel_profile.py --device cuda [--pairs 256] [--size 640x362] [--kernels eager,triton]

Needs torch (and triton for the Triton kernels) only: textured frames are generated, nothing
decoded, so it runs on a bare GPU box from the source tree in one short call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def frames_for(pairs: int, height: int, width: int, device: str):
    """pairs + 1 frames of a blurred random texture drifting 1.5 px/frame to the right."""
    import torch

    from curation_assets.scorers import farneback_torch as ft

    g = torch.Generator().manual_seed(0)
    wide = torch.rand((1, height, width + 2 * (pairs + 1)), generator=g) * 255
    wide = ft.blur_with_kernel(wide, ft.gaussian_kernel(9, 2.0))
    frames = torch.stack([wide[0, :, int(1.5 * i):int(1.5 * i) + width] for i in range(pairs + 1)])
    return frames.round().clamp(0, 255).to(torch.uint8).to(device)


def timed_steps(steps: dict, spent: dict, device: str) -> dict:
    import torch

    def wrap(name, fn):
        def run(*a, **k):
            torch.cuda.synchronize() if device.startswith("cuda") else None
            t0 = time.perf_counter()
            out = fn(*a, **k)
            torch.cuda.synchronize() if device.startswith("cuda") else None
            spent[name] += time.perf_counter() - t0
            return out
        return run

    return {name: wrap(name, fn) for name, fn in steps.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--size", default="640x362")
    ap.add_argument("--kernels", default="eager,triton")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    import torch

    from curation_assets.scorers import farneback_torch as ft

    width, height = (int(v) for v in args.size.split("x"))
    frames = frames_for(args.pairs, height, width, args.device)
    pairs = torch.tensor([(i, i + 1) for i in range(args.pairs)])
    settings = ft.FarnebackSettings()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    report = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
              "torch": torch.__version__, "pairs": args.pairs, "size": args.size}
    for kernels in args.kernels.split(","):
        if kernels == "triton":
            from curation_assets.scorers.farneback_triton import triton_steps

            steps = triton_steps()
        else:
            steps = ft._eager_steps()
        t0 = time.perf_counter()
        ft._farneback_pairs(frames, pairs, settings, steps)  # warm: compiled, memory pooled
        sync()
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.calls):
            flow = ft._farneback_pairs(frames, pairs, settings, steps)
        sync()
        per_call = (time.perf_counter() - t0) / args.calls
        spent: dict = defaultdict(float)
        t0 = time.perf_counter()
        ft._farneback_pairs(frames, pairs, settings, timed_steps(steps, spent, args.device))
        sync()
        total = time.perf_counter() - t0
        row = {"warm_s": round(warm_s, 2), "ms_per_call": round(1000 * per_call, 1),
               "pairs_per_s": round(args.pairs / per_call), "mean_motion": float(ft.flow_magnitude_means(flow).mean()),
               "steps_ms": {k: round(1000 * v, 1) for k, v in spent.items()},
               "outside_steps_ms": round(1000 * (total - sum(spent.values())), 1)}
        if args.device.startswith("cuda"):
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                ft._farneback_pairs(frames, pairs, settings, steps)
                sync()
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.top)
            row["profile"] = table
            print(f"== {kernels}\n{table}", flush=True)
        report[kernels] = row
        print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
