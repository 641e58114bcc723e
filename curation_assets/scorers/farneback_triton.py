"""Farneback's heavy steps as hand-written Triton kernels: each step one or two passes over
memory instead of the dozens of tensor operations the eager steps (farneback_torch) run.

Why: eager Farneback on a GPU is a chain of ~9,000 small kernels per call, each a full pass
over float32/float64 planes: memory-bound at ~400 pairs/s of 640x360 on an H200, while the
arithmetic itself is light. torch.compile would fuse the chain, but its inductor failed on
these shapes on the GPU (docs/gpu.md). These kernels do the same arithmetic in the same
order and precision as the eager steps, which follow OpenCV's CPU path:

- blur_rows / blur_cols: the pyramid's Gaussian blur (reflect-101 borders), each tap a
  float64 multiply-add of exact float32 products rounded once to float32;
- expand_vertical / expand_horizontal: the polynomial expansion (float32 vertical pass,
  float64 horizontal accumulators, replicate borders);
- update: the matrix update of every pair, sampling the second frame's coefficients at
  x + flow, straight from the frames' coefficients (no copies per pair);
- box_columns: the box filter's running sums down the columns, row after row in float64 on
  float32 differences, exactly OpenCV's order (the eager step's cumsum sums in another order);
- box_rows_solve: the window sums along the rows (15 float64 values summed directly: OpenCV
  keeps a running sum there, a difference in the last bits of a float64) and the 2x2 solve.

Sizes are not specialised on (do_not_specialize): a corpus of many frame sizes compiles each
kernel once per constant set, not once per size (~14 s per new size on an H200 otherwise).
Every kernel is launched with enable_fp_fusion=False: the compiler must not contract a
float32 multiply and add into one rounding the eager steps do not make (float64
multiply-adds of float32 values are exact either way). Constants whose float64 value matters
(the expansion's inverse-G entries) travel as a float64 tensor: a Python float argument
would reach the kernel as float32.

Tested on the CPU under Triton's interpreter (TRITON_INTERPRET=1) against the eager steps,
and on a GPU by benchmarks/gpu_graph_benchmark.py against OpenCV's scores.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

BLOCK = 1024  # pixels per program in the elementwise kernels
COLUMN_BLOCK = 128  # columns per program in the running sums down the columns
SOLVE_BLOCK = 256  # pixels per program in the row sums + solve: few registers per thread (see there)
_NO_FUSION = {"enable_fp_fusion": False}


@triton.jit
def _pixels(total, height, width, BLOCK: tl.constexpr):
    """This program's elements of [planes, H, W] (flat, int64): offsets, the in-range mask, the
    plane each lies in, its pixel in that plane, its row and its column."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    plane = height * width
    pix = offs % plane
    return offs, offs < total, offs // plane, pix, pix // width, pix % width


@triton.jit
def _reflect101(i, size):
    i = tl.where(i < 0, -i, i)
    return tl.where(i >= size, 2 * size - 2 - i, i)


@triton.jit(do_not_specialize=["total", "width"])
def _blur_rows_kernel(src, dst, taps, total, width, K: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    x = offs % width
    row = offs - x
    HALF: tl.constexpr = K // 2
    if K == 3:  # SymmRowSmallFilter: the side pair rounded in float32, the centre fused on
        left = tl.load(src + row + _reflect101(x - 1, width), mask=mask, other=0.0)
        centre = tl.load(src + offs, mask=mask, other=0.0)
        right = tl.load(src + row + _reflect101(x + 1, width), mask=mask, other=0.0)
        side = (left + right) * tl.load(taps)
        acc = (side.to(tl.float64) + centre.to(tl.float64) * tl.load(taps + 1).to(tl.float64)).to(tl.float32)
    else:
        first = tl.load(src + row + _reflect101(x - HALF, width), mask=mask, other=0.0)
        acc = first * tl.load(taps)
        for j in tl.static_range(1, K):
            value = tl.load(src + row + _reflect101(x + j - HALF, width), mask=mask, other=0.0)
            acc = (acc.to(tl.float64) + value.to(tl.float64) * tl.load(taps + j).to(tl.float64)).to(tl.float32)
    tl.store(dst + offs, acc, mask=mask)


@triton.jit(do_not_specialize=["total", "height", "width"])
def _blur_cols_kernel(src, dst, taps, total, height, width, K: tl.constexpr, BLOCK: tl.constexpr):
    offs, mask, _, pix, y, x = _pixels(total, height, width, BLOCK)
    plane = height * width
    base = offs - pix + x
    HALF: tl.constexpr = K // 2
    acc = tl.load(src + offs, mask=mask, other=0.0) * tl.load(taps + HALF)
    for i in tl.static_range(1, HALF + 1):
        below = tl.load(src + base + _reflect101(y + i, height) * width, mask=mask, other=0.0)
        above = tl.load(src + base + _reflect101(y - i, height) * width, mask=mask, other=0.0)
        pair = below + above
        acc = (acc.to(tl.float64) + pair.to(tl.float64) * tl.load(taps + HALF + i).to(tl.float64)).to(tl.float32)
    tl.store(dst + offs, acc, mask=mask)


@triton.jit(do_not_specialize=["total", "height", "width"])
def _expand_vertical_kernel(src, dst, g, xg, xxg, total, height, width, N: tl.constexpr, BLOCK: tl.constexpr):
    """[F, H, W] -> [F, 3, H, W]: the vertical pass's three float32 sums."""
    offs, mask, frame, pix, y, x = _pixels(total, height, width, BLOCK)
    plane = height * width
    base = offs - pix + x
    r0 = tl.load(src + offs, mask=mask, other=0.0) * tl.load(g)
    r1 = tl.zeros_like(r0)
    r2 = tl.zeros_like(r0)
    for k in tl.static_range(1, N + 1):
        above = tl.load(src + base + tl.maximum(y - k, 0) * width, mask=mask, other=0.0)
        below = tl.load(src + base + tl.minimum(y + k, height - 1) * width, mask=mask, other=0.0)
        p = above + below
        r0 = r0 + p * tl.load(g + k)
        r1 = r1 + (below - above) * tl.load(xg + k)
        r2 = r2 + p * tl.load(xxg + k)
    out = frame * (3 * plane) + pix
    tl.store(dst + out, r0, mask=mask)
    tl.store(dst + out + plane, r1, mask=mask)
    tl.store(dst + out + 2 * plane, r2, mask=mask)


@triton.jit(do_not_specialize=["total", "height", "width"])
def _expand_horizontal_kernel(src, dst, g, xg, xxg, ig, total, height, width, N: tl.constexpr, BLOCK: tl.constexpr):
    """[F, 3, H, W] -> [F, 5, H, W]: the horizontal pass (float64 sums) and the coefficients
    in OpenCV's channel order (y, x, yy, xx, xy). ig: float64 [ig11, ig03, ig33, ig55]."""
    offs, mask, frame, pix, _, x = _pixels(total, height, width, BLOCK)
    plane = height * width
    row = frame * (3 * plane) + pix - x
    g0 = tl.load(g)
    b1 = (tl.load(src + row + x, mask=mask, other=0.0) * g0).to(tl.float64)
    b3 = (tl.load(src + row + plane + x, mask=mask, other=0.0) * g0).to(tl.float64)
    b5 = (tl.load(src + row + 2 * plane + x, mask=mask, other=0.0) * g0).to(tl.float64)
    b2 = tl.zeros_like(b1)
    b4 = tl.zeros_like(b1)
    b6 = tl.zeros_like(b1)
    for k in tl.static_range(1, N + 1):
        xr = tl.minimum(x + k, width - 1)
        xl = tl.maximum(x - k, 0)
        r0 = tl.load(src + row + xr, mask=mask, other=0.0)
        l0 = tl.load(src + row + xl, mask=mask, other=0.0)
        r1 = tl.load(src + row + plane + xr, mask=mask, other=0.0)
        l1 = tl.load(src + row + plane + xl, mask=mask, other=0.0)
        r2 = tl.load(src + row + 2 * plane + xr, mask=mask, other=0.0)
        l2 = tl.load(src + row + 2 * plane + xl, mask=mask, other=0.0)
        gk = tl.load(g + k)
        xgk = tl.load(xg + k)
        tg = (r0 + l0).to(tl.float64)
        b1 = b1 + tg * gk.to(tl.float64)
        b4 = b4 + tg * tl.load(xxg + k).to(tl.float64)
        b2 = b2 + ((r0 - l0) * xgk).to(tl.float64)
        b3 = b3 + ((r1 + l1) * gk).to(tl.float64)
        b6 = b6 + ((r1 - l1) * xgk).to(tl.float64)
        b5 = b5 + ((r2 + l2) * gk).to(tl.float64)
    ig11 = tl.load(ig)
    ig03 = tl.load(ig + 1)
    ig33 = tl.load(ig + 2)
    ig55 = tl.load(ig + 3)
    out = frame * (5 * plane) + pix
    tl.store(dst + out, (b3 * ig11).to(tl.float32), mask=mask)
    tl.store(dst + out + plane, (b2 * ig11).to(tl.float32), mask=mask)
    tl.store(dst + out + 2 * plane, (b1 * ig03 + b5 * ig33).to(tl.float32), mask=mask)
    tl.store(dst + out + 3 * plane, (b1 * ig03 + b4 * ig33).to(tl.float32), mask=mask)
    tl.store(dst + out + 4 * plane, (b6 * ig55).to(tl.float32), mask=mask)


@triton.jit
def _bilinear(coeffs, at, width, take, a00, a01, a10, a11):
    """One channel of the second frame sampled at x + flow: the products and sums in the
    eager step's order (float32, no fused multiply-adds)."""
    v00 = tl.load(coeffs + at, mask=take, other=0.0)
    v01 = tl.load(coeffs + at + 1, mask=take, other=0.0)
    v10 = tl.load(coeffs + at + width, mask=take, other=0.0)
    v11 = tl.load(coeffs + at + width + 1, mask=take, other=0.0)
    return ((a00 * v00 + a01 * v01) + a10 * v10) + a11 * v11


@triton.jit(do_not_specialize=["total", "height", "width"])
def _update_kernel(coeffs, first, second, flow, damp, dst, total, height, width, BLOCK: tl.constexpr):
    """FarnebackUpdateMatrices for every pair: coeffs [F, 5, H, W], first/second [N] frame
    indices, flow [N, 2, H, W], damp [H, W] -> dst [N, 5, H, W], float32 throughout."""
    offs, mask, pair, pix, y, x = _pixels(total, height, width, BLOCK)
    plane = height * width
    c0 = tl.load(first + pair, mask=mask, other=0).to(tl.int64) * (5 * plane) + pix
    c1 = tl.load(second + pair, mask=mask, other=0).to(tl.int64) * (5 * plane)
    dx = tl.load(flow + pair * (2 * plane) + pix, mask=mask, other=0.0)
    dy = tl.load(flow + pair * (2 * plane) + plane + pix, mask=mask, other=0.0)
    fx = x.to(tl.float32) + dx
    fy = y.to(tl.float32) + dy
    x1 = tl.floor(fx)
    y1 = tl.floor(fy)
    fx = fx - x1
    fy = fy - y1
    inside = (x1 >= 0) & (x1 < (width - 1).to(tl.float32)) & (y1 >= 0) & (y1 < (height - 1).to(tl.float32))
    corner = c1 + tl.where(inside, y1, 0.0).to(tl.int64) * width + tl.where(inside, x1, 0.0).to(tl.int64)
    a00 = (1 - fx) * (1 - fy)
    a01 = fx * (1 - fy)
    a10 = (1 - fx) * fy
    a11 = fx * fy
    take = mask & inside
    s0 = _bilinear(coeffs, corner, width, take, a00, a01, a10, a11)
    s1 = _bilinear(coeffs, corner + plane, width, take, a00, a01, a10, a11)
    s2 = _bilinear(coeffs, corner + 2 * plane, width, take, a00, a01, a10, a11)
    s3 = _bilinear(coeffs, corner + 3 * plane, width, take, a00, a01, a10, a11)
    s4 = _bilinear(coeffs, corner + 4 * plane, width, take, a00, a01, a10, a11)
    r0 = tl.load(coeffs + c0, mask=mask, other=0.0)
    r1 = tl.load(coeffs + c0 + plane, mask=mask, other=0.0)
    r2 = tl.load(coeffs + c0 + 2 * plane, mask=mask, other=0.0)
    r3 = tl.load(coeffs + c0 + 3 * plane, mask=mask, other=0.0)
    r4 = tl.load(coeffs + c0 + 4 * plane, mask=mask, other=0.0)
    c2 = tl.where(inside, s0, 0.0)
    c3 = tl.where(inside, s1, 0.0)
    c4 = tl.where(inside, (r2 + s2) * 0.5, r2)
    c5 = tl.where(inside, (r3 + s3) * 0.5, r3)
    c6 = tl.where(inside, (r4 + s4) * 0.25, r4 * 0.5)
    c2 = (r0 - c2) * 0.5
    c3 = (r1 - c3) * 0.5
    c2 = c2 + (c4 * dy + c6 * dx)
    c3 = c3 + (c6 * dy + c5 * dx)
    d = tl.load(damp + pix, mask=mask, other=0.0)
    c2 = c2 * d
    c3 = c3 * d
    c4 = c4 * d
    c5 = c5 * d
    c6 = c6 * d
    out = pair * (5 * plane) + pix
    tl.store(dst + out, c4 * c4 + c6 * c6, mask=mask)
    tl.store(dst + out + plane, (c4 + c5) * c6, mask=mask)
    tl.store(dst + out + 2 * plane, c5 * c5 + c6 * c6, mask=mask)
    tl.store(dst + out + 3 * plane, c4 * c2 + c6 * c3, mask=mask)
    tl.store(dst + out + 4 * plane, c6 * c2 + c5 * c3, mask=mask)


@triton.jit(do_not_specialize=["height", "width"])
def _box_columns_kernel(src, dst, height, width, M: tl.constexpr, BLOCK: tl.constexpr):
    """Running window sums down the columns of one [H, W] plane per program row: float32
    [planes, H, W] -> float64 [planes, H, W], OpenCV's order (see farneback_torch.box_sums)."""
    plane_at = tl.program_id(0).to(tl.int64) * height * width
    xs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = xs < width
    base = src + plane_at + xs
    acc = (tl.load(base, mask=mask, other=0.0) * (M + 2)).to(tl.float64)
    for j in tl.static_range(1, M):
        acc = acc + tl.load(base + tl.minimum(j, height - 1) * width, mask=mask, other=0.0).to(tl.float64)
    out = dst + plane_at + xs
    for y in range(0, height):
        gained = tl.load(base + tl.minimum(y + M, height - 1) * width, mask=mask, other=0.0)
        lost = tl.load(base + tl.maximum(y - M - 1, 0) * width, mask=mask, other=0.0)
        acc = acc + (gained - lost).to(tl.float64)
        tl.store(out + y * width, acc, mask=mask)


@triton.jit(do_not_specialize=["total", "height", "width", "window"])
def _box_rows_solve_kernel(cols, flow, scale, total, height, width, window, BLOCK: tl.constexpr):
    """The window sums along the rows of the 5 column-sum channels [N, 5, H, W] (float64,
    replicate borders, each summed left to right), scaled, and the 2x2 solve -> flow
    [N, 2, H, W] float32. scale: float64 [1 / winsize**2, 1e-3] (the determinant's
    regularizer as a float64: a Python float reaches a kernel as float32).

    The window is a loop with a run-time bound on purpose: unrolled (a constant bound), the
    compiler hoisted all 75 loads and spilled registers, and this kernel took 89% of the flow's
    time on an H200 (221 of 250 ms for 256 pairs of 640x362); looped, the whole call took 48 ms
    (benchmarks/flow_kernel_profile.py, docs/gpu.md)."""
    offs, mask, pair, pix, _, x = _pixels(total, height, width, BLOCK)
    plane = height * width
    row = cols + pair * (5 * plane) + pix - x
    half = window // 2
    g11 = tl.zeros([BLOCK], dtype=tl.float64)
    g12 = tl.zeros([BLOCK], dtype=tl.float64)
    g22 = tl.zeros([BLOCK], dtype=tl.float64)
    h1 = tl.zeros([BLOCK], dtype=tl.float64)
    h2 = tl.zeros([BLOCK], dtype=tl.float64)
    for j in range(0, window):
        at = row + tl.minimum(tl.maximum(x + j - half, 0), width - 1)
        g11 += tl.load(at, mask=mask, other=0.0)
        g12 += tl.load(at + plane, mask=mask, other=0.0)
        g22 += tl.load(at + 2 * plane, mask=mask, other=0.0)
        h1 += tl.load(at + 3 * plane, mask=mask, other=0.0)
        h2 += tl.load(at + 4 * plane, mask=mask, other=0.0)
    norm = tl.load(scale)
    g11 = g11 * norm
    g12 = g12 * norm
    g22 = g22 * norm
    h1 = h1 * norm
    h2 = h2 * norm
    idet = 1.0 / (g11 * g22 - g12 * g12 + tl.load(scale + 1))
    out = pair * (2 * plane) + pix
    tl.store(flow + out, ((g11 * h2 - g12 * h1) * idet).to(tl.float32), mask=mask)
    tl.store(flow + out + plane, ((g22 * h1 - g12 * h2) * idet).to(tl.float32), mask=mask)


# --------------------------------------------------------------------------- launchers


def _grid(total: int, block: int = BLOCK) -> tuple[int]:
    return (triton.cdiv(total, block),)


@functools.lru_cache(maxsize=64)
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def blur_with_kernel(img: torch.Tensor, k: tuple[float, ...]) -> torch.Tensor:
    """farneback_torch.blur_with_kernel: float32 [F, H, W] -> float32 [F, H, W]."""
    img = img.contiguous()
    taps = _constant(tuple(k), torch.float32, str(img.device))
    height, width = img.shape[-2:]
    rows = torch.empty_like(img)
    total = img.numel()
    _blur_rows_kernel[_grid(total)](img, rows, taps, total, width, K=len(k), BLOCK=BLOCK, **_NO_FUSION)
    out = torch.empty_like(img)
    _blur_cols_kernel[_grid(total)](rows, out, taps, total, height, width, K=len(k), BLOCK=BLOCK, **_NO_FUSION)
    return out


def expand_with_constants(img: torch.Tensor, c) -> torch.Tensor:
    """farneback_torch.expand_with_constants: float32 [F, H, W] -> float32 [F, 5, H, W]."""
    img = img.contiguous()
    frames, height, width = img.shape
    dev = str(img.device)
    g, xg, xxg = (_constant(tuple(v), torch.float32, dev) for v in (c.g, c.xg, c.xxg))
    ig = _constant((c.ig11, c.ig03, c.ig33, c.ig55), torch.float64, dev)
    total = img.numel()
    rows = torch.empty((frames, 3, height, width), dtype=torch.float32, device=img.device)
    n = len(c.g) - 1
    _expand_vertical_kernel[_grid(total)](img, rows, g, xg, xxg, total, height, width, N=n, BLOCK=BLOCK, **_NO_FUSION)
    out = torch.empty((frames, 5, height, width), dtype=torch.float32, device=img.device)
    _expand_horizontal_kernel[_grid(total)](rows, out, g, xg, xxg, ig, total, height, width, N=n, BLOCK=BLOCK,
                                            **_NO_FUSION)
    return out


def update_pairs(coeffs: torch.Tensor, pairs: torch.Tensor, flow: torch.Tensor, damp: torch.Tensor) -> torch.Tensor:
    """farneback_torch.update_matrices for pairs [N, 2] of the frames' coefficients
    [F, 5, H, W] -> the matrices [N, 5, H, W]."""
    coeffs, flow, damp = coeffs.contiguous(), flow.contiguous(), damp.contiguous()
    n = pairs.shape[0]
    height, width = coeffs.shape[-2:]
    first = pairs[:, 0].contiguous()
    second = pairs[:, 1].contiguous()
    out = torch.empty((n, 5, height, width), dtype=torch.float32, device=coeffs.device)
    total = n * height * width
    _update_kernel[_grid(total)](coeffs, first, second, flow, damp, out, total, height, width, BLOCK=BLOCK,
                                 **_NO_FUSION)
    return out


def solve_flow(matrices: torch.Tensor, winsize: int) -> torch.Tensor:
    """farneback_torch.solve_flow: matrices [N, 5, H, W] float32 -> flow [N, 2, H, W] float32."""
    matrices = matrices.contiguous()
    n, _, height, width = matrices.shape
    m = winsize // 2
    cols = torch.empty(matrices.shape, dtype=torch.float64, device=matrices.device)
    _box_columns_kernel[(n * 5, triton.cdiv(width, COLUMN_BLOCK))](matrices, cols, height, width, M=m,
                                                                   BLOCK=COLUMN_BLOCK, **_NO_FUSION)
    flow = torch.empty((n, 2, height, width), dtype=torch.float32, device=matrices.device)
    scale = _constant((1.0 / (winsize * winsize), 1e-3), torch.float64, str(matrices.device))
    total = n * height * width
    _box_rows_solve_kernel[_grid(total, SOLVE_BLOCK)](cols, flow, scale, total, height, width, winsize,
                                                      BLOCK=SOLVE_BLOCK, **_NO_FUSION)
    return flow


def triton_steps() -> dict:
    """The step table farneback_torch._farneback_pairs runs (update takes the pair indices)."""
    return {"blur": blur_with_kernel, "expand": expand_with_constants, "update_pairs": update_pairs,
            "solve": solve_flow}
