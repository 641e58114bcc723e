"""The Triton kernels of the torch Farneback (scorers/farneback_triton.py), run by Triton's
interpreter on the CPU (TRITON_INTERPRET=1, in a child process: the variable must be set
before triton is imported): every step bit-identical to the eager step it replaces, and the
flow of real-looking frames identical end to end. On a GPU the same kernels are compared with
OpenCV's scores by benchmarks/gpu_graph_benchmark.py (docs/gpu.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHECK = textwrap.dedent('''
    import json, numpy as np, torch, cv2
    from curation_assets.scorers import farneback_torch as ft
    from curation_assets.scorers import farneback_triton as tr
    rng = np.random.default_rng(7)
    H, W = 70, 98  # odd widths and heights in the levels below
    base = cv2.GaussianBlur(rng.integers(0, 255, (H + 12, W + 12)).astype(np.float32), (0, 0), 1.5)
    frames = torch.from_numpy(np.stack([base[i:i + H, 2 * i:2 * i + W] for i in range(4)]).astype(np.uint8))
    src = frames.float()
    out = {}

    def same(a, b):  # bit for bit, NaN where the other has NaN
        return bool(torch.isnan(a).eq(torch.isnan(b)).all()) and torch.equal(a.nan_to_num(), b.nan_to_num())

    for ksize, sigma in ((3, 0.0), (3, 0.5), (9, 1.5), (19, 3.5)):
        k = ft.gaussian_kernel(ksize, sigma)
        out[f"blur{ksize}_{sigma}"] = torch.equal(ft.blur_with_kernel(src, k), tr.blur_with_kernel(src, k))
    c = ft.poly_constants(5, 1.2)
    coeffs = ft.expand_with_constants(src, c)
    out["expand"] = torch.equal(coeffs, tr.expand_with_constants(src, c))
    pairs = torch.tensor([[0, 1], [1, 2], [3, 2]])
    flow = torch.randn(3, 2, H, W) * 4  # samples inside, across and outside the borders
    flow[0, 0, 5, 5] = float("nan")
    damp = ft.border_damping(H, W, "cpu")
    eager = ft.update_matrices(coeffs[pairs[:, 0]], coeffs[pairs[:, 1]], flow, damp)
    out["update"] = same(eager, tr.update_pairs(coeffs, pairs, flow, damp))
    out["update_nan"] = bool(torch.isnan(eager).any())  # the NaN flow reached the matrices
    eager = eager.nan_to_num()
    out["solve"] = torch.equal(ft.solve_flow(eager, 15), tr.solve_flow(eager, 15))
    a = ft.farneback_pairs(frames, pairs, kernels="eager")
    b = ft.farneback_pairs(frames, pairs, kernels="triton")
    out["pairs"] = torch.equal(a, b)
    out["failures"] = ft.kernel_failures
    out["means"] = ft.flow_magnitude_means(b).tolist()
    print("RESULT", json.dumps(out))
''')


def test_triton_kernels_equal_the_eager_steps():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert out.pop("failures") == {}
    means = out.pop("means")
    assert all(m > 0.5 for m in means), means  # the frames move: the flow is not trivially zero
    assert out == {k: True for k in out} and len(out) == 9, out


def test_a_failing_kernel_falls_back_to_the_eager_steps(monkeypatch):
    import torch

    from curation_assets.scorers import farneback_torch as ft
    from curation_assets.scorers import farneback_triton

    def broken():
        raise RuntimeError("PTX assembly failed\nmore")

    monkeypatch.setattr(farneback_triton, "triton_steps", broken)
    monkeypatch.setattr(ft, "kernel_failures", {})
    frames = torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8)
    eager = ft.farneback_pairs(frames, [(0, 1), (1, 2)])
    got = ft.farneback_pairs(frames, [(0, 1), (1, 2)], kernels="triton")
    assert torch.equal(got, eager)
    assert ft.kernel_failures == {"triton": "RuntimeError: PTX assembly failed"}
