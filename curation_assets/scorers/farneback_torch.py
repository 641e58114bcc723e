"""Farneback dense optical flow in torch: many frame pairs per call, on any torch device,
following OpenCV's CPU ``calcOpticalFlowFarneback`` step by step so that data-juicer's motion
scores (and thresholds) carry over.

The reference is OpenCV 5.0's CPU path (modules/video/src/optflowgf.cpp and the imgproc
calls it makes, as built in the opencv-python wheels). Each step keeps OpenCV's precision,
because the 2x2 solve at the end amplifies any difference where the image has little texture:

- pyramid: level k (scale = pyr_scale**k) blurs the *full-resolution* float32 frame with
  OpenCV's Gaussian kernel (sigma = (1/scale - 1) / 2, size round(5 sigma) | 1, at least 3;
  sigma 0 gives [1/4, 1/2, 1/4]), reflect-101 borders, a row pass then a column pass with
  OpenCV's order of fused multiply-adds, then resizes it bilinearly to round(size * scale).
  A downscale follows the arithmetic of the IPP resize OpenCV's wheels call (weights and
  sums in float64, float32 between the passes); an upscale follows OpenCV's own float32 resize.
- polynomial expansion (FarnebackPolyExp): a float32 vertical pass and a float64 horizontal
  pass over the separable Gaussian applicability, replicate borders, 5 float32 coefficients.
- matrix update (FarnebackUpdateMatrices): float32; the second frame's coefficients sampled
  bilinearly at x + flow (a sample whose 2x2 cell leaves the frame counts as missing), the
  coefficients damped over the 5 pixels nearest each border.
- flow update (FarnebackUpdateFlow_Blur): the 5 matrix channels box-filtered (winsize) in
  float64 with replicate borders, the 2x2 system solved in float64 (+1e-3 on the
  determinant), the flow kept as float32. OpenCV interleaves this with the next matrix update
  in row stripes; every stripe it updates has already left the box filter's window, so
  updating the whole frame after the whole solve gives the same numbers.
- between levels the flow is resized (OpenCV's float32 bilinear upscale) and divided by
  pyr_scale.

What is not bit-identical: a few rows of the blur and the resize round differently in the
last bit (OpenCV's SIMD tails and IPP), and the reductions here sum in another order. The
measured effect on scores is in docs/gpu.md (far below data-juicer's 1e-3 tolerance).

Only flags=0 is supported (box window, no initial flow): data-juicer's setting.
Elementwise ops only (no convolutions or matmuls), so no TF32 or cuDNN algorithm choice can
change the arithmetic on a GPU. farneback_triton runs the same steps as fused Triton kernels.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MIN_LEVEL_SIZE = 32  # OpenCV stops adding pyramid levels below this many pixels on either side
BORDER_DAMPING = (0.14, 0.14, 0.4472, 0.4472, 0.4472)  # FarnebackUpdateMatrices' border[] (float32)
SMALL_GAUSSIANS = {1: (1.0,), 3: (0.25, 0.5, 0.25), 5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
                   7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
                   9: tuple(v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4))}


@dataclass(frozen=True)
class FarnebackSettings:
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2

    @classmethod
    def from_args(cls, args: tuple) -> "FarnebackSettings":
        """From motion.farneback_args(params): (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags)."""
        pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags = args
        if flags != 0:
            raise ValueError(f"the torch Farneback supports flags=0 only (data-juicer's), got {flags}")
        return cls(float(pyr_scale), int(levels), int(winsize), int(iterations), int(poly_n), float(poly_sigma))

    def __post_init__(self):
        if not 0 < self.pyr_scale < 1:
            raise ValueError(f"pyr_scale must be in (0, 1), got {self.pyr_scale}")
        if self.winsize < 1 or self.iterations < 1 or self.poly_n < 1 or self.levels < 0:
            raise ValueError(f"invalid Farneback settings {self}")


# --------------------------------------------------------------------------- constants (host)


def cv_round(value: float) -> int:
    """cvRound: nearest integer, ties to even (lrint); Python's round does the same on floats."""
    return int(round(value))


def level_count(height: int, width: int, settings: FarnebackSettings) -> int:
    """The coarsest level OpenCV uses: it stops where either side would fall under 32 pixels."""
    scale, k = 1.0, 0
    while k < settings.levels:
        scale *= settings.pyr_scale
        if width * scale < MIN_LEVEL_SIZE or height * scale < MIN_LEVEL_SIZE:
            break
        k += 1
    return k


@dataclass(frozen=True)
class LevelGeometry:
    scale: float
    sigma: float  # the pyramid blur's sigma (0 at the finest level: OpenCV's fixed 3-tap kernel)
    ksize: int
    height: int
    width: int


def level_geometry(height: int, width: int, k: int, pyr_scale: float) -> LevelGeometry:
    scale = 1.0
    for _ in range(k):  # repeated products, as OpenCV computes them
        scale *= pyr_scale
    sigma = (1.0 / scale - 1) * 0.5
    ksize = max(cv_round(sigma * 5) | 1, 3)
    return LevelGeometry(scale, sigma, ksize, cv_round(height * scale), cv_round(width * scale))


@functools.lru_cache(maxsize=None)
def gaussian_kernel(ksize: int, sigma: float) -> tuple[float, ...]:
    """cv::getGaussianKernel(ksize, sigma, CV_32F): float64 values rounded to float32."""
    if sigma <= 0 and ksize in SMALL_GAUSSIANS:
        return SMALL_GAUSSIANS[ksize]
    sigma_x = sigma if sigma > 0 else ((ksize - 1) * 0.5 - 1) * 0.3 + 0.8
    scale2x = -0.125 / (sigma_x * sigma_x)
    half = (ksize - 1) // 2
    values = [math.exp((x * x) * scale2x) for x in range(1 - ksize, 1 - ksize + 2 * half, 2)]
    total = sum(values) * 2 + 1.0 + (1.0 if ksize % 2 == 0 else 0.0)
    inv = 1.0 / total
    side = [v * inv for v in values]
    middle = [inv] * (2 if ksize % 2 == 0 else 1)
    return tuple(float(np.float32(v)) for v in side + middle + side[::-1])


@dataclass(frozen=True)
class PolyConstants:
    g: tuple[float, ...]  # index 0..n: the applicability's Gaussian (float32 values)
    xg: tuple[float, ...]
    xxg: tuple[float, ...]
    ig11: float
    ig03: float
    ig33: float
    ig55: float


@functools.lru_cache(maxsize=None)
def poly_constants(n: int, sigma: float) -> PolyConstants:
    """FarnebackPrepareGaussian: the float32 kernels and the entries of the inverse of G used
    by the expansion (the sums into G take float32 products, as OpenCV's do)."""
    if sigma < np.finfo(np.float32).eps:
        sigma = n * 0.3
    f32 = np.float32
    xs = range(-n, n + 1)
    g = {x: f32(math.exp(-x * x / (2 * sigma * sigma))) for x in xs}
    s = 0.0
    for x in xs:
        s += float(g[x])
    s = 1.0 / s
    g = {x: f32(float(g[x]) * s) for x in xs}
    xg = {x: f32(x) * g[x] for x in xs}
    xxg = {x: f32(x * x) * g[x] for x in xs}
    G = np.zeros((6, 6))
    for y in xs:
        for x in xs:
            gg = g[y] * g[x]  # float32 product
            G[0, 0] += float(gg)
            G[1, 1] += float(gg * f32(x) * f32(x))
            G[3, 3] += float(gg * f32(x) * f32(x) * f32(x) * f32(x))
            G[5, 5] += float(gg * f32(x) * f32(x) * f32(y) * f32(y))
    G[2, 2] = G[0, 3] = G[0, 4] = G[3, 0] = G[4, 0] = G[1, 1]
    G[4, 4] = G[3, 3]
    G[3, 4] = G[4, 3] = G[5, 5]
    inv = np.linalg.inv(G)
    return PolyConstants(tuple(float(g[k]) for k in range(n + 1)), tuple(float(xg[k]) for k in range(n + 1)),
                         tuple(float(xxg[k]) for k in range(n + 1)),
                         float(inv[1, 1]), float(inv[0, 3]), float(inv[3, 3]), float(inv[5, 5]))


@functools.lru_cache(maxsize=64)
def _resize_table(src: int, dst: int, wide: bool, columns: bool) -> tuple[np.ndarray, ...]:
    """Source indices and weights of a bilinear resize along one axis (half-pixel centres).
    wide: weights in float64 (the IPP downscale), else float32 (OpenCV's resize). Past an
    edge OpenCV moves a column's weight onto the edge pixel, but keeps a row's weights and
    repeats the edge row instead (both rows then count, which can round differently)."""
    scale = 1.0 / (dst / src)
    pos = (np.arange(dst) + 0.5) * scale - 0.5
    if not wide:
        pos = pos.astype(np.float32)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo.astype(pos.dtype)
    if columns:
        frac[lo < 0] = 0
        lo[lo < 0] = 0
        high = lo >= src - 1
        frac[high] = 0
        lo[high] = src - 1
    return np.clip(lo, 0, src - 1), np.clip(lo + 1, 0, src - 1), (1 - frac).astype(frac.dtype), frac


@functools.lru_cache(maxsize=32)
def _border_damping(height: int, width: int) -> np.ndarray:
    """The per-pixel factor FarnebackUpdateMatrices multiplies near the borders (float32,
    products in OpenCV's order); 1 inside."""
    b = np.array(BORDER_DAMPING, dtype=np.float32)
    one = np.float32(1)

    def side(size: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(size)
        near = np.where(idx < len(b), b[np.minimum(idx, len(b) - 1)], one).astype(np.float32)
        far_i = size - idx - 1
        far = np.where(far_i < len(b), b[np.clip(far_i, 0, len(b) - 1)], one).astype(np.float32)
        return near, far

    x0, x1 = side(width)
    y0, y1 = side(height)
    return ((x0[None, :] * x1[None, :]) * y0[:, None]) * y1[:, None]


# --------------------------------------------------------------------------- image steps


def _take(x: torch.Tensor, dim: int, index: np.ndarray) -> torch.Tensor:
    return x.index_select(dim, torch.as_tensor(index, device=x.device))


def gaussian_blur(img: torch.Tensor, ksize: int, sigma: float) -> torch.Tensor:
    """cv::GaussianBlur of float32 frames [B, H, W] (reflect-101 borders): a row pass, then a
    column pass, each rounded to float32 as OpenCV's filter engine does. The rows take the
    taps left to right as fused multiply-adds (RowVec_32f), the columns the centre tap then
    symmetric pairs (SymmColumnVec_32f); a 3-tap row fuses the centre tap onto the side pair
    (SymmRowSmallVec_32f). A fused multiply-add is computed in float64 and rounded once."""
    return blur_with_kernel(img, gaussian_kernel(ksize, sigma))


def blur_with_kernel(img: torch.Tensor, k: tuple[float, ...]) -> torch.Tensor:
    """gaussian_blur with the kernel given (so torch.compile sees plain constants)."""
    ksize = len(k)
    n = ksize // 2
    height, width = img.shape[-2:]
    padded = F.pad(img.unsqueeze(1), (n, n, 0, 0), mode="reflect").squeeze(1) if n else img
    # A float32 x float32 product is exact in float64, so torch.add(acc, x, alpha=k) in float64
    # (one kernel, fused or not) rounds once, as a fused multiply-add does, before the float32 cast.
    if ksize == 3:  # SymmRowSmallFilter: the centre fused onto the rounded side pair
        side = (padded[..., 0:width] + padded[..., 2:2 + width]) * k[0]
        rows = torch.add(side.double(), padded[..., 1:1 + width], alpha=k[1]).float()
    else:
        rows = padded[..., 0:width] * k[0]
        for j in range(1, ksize):
            rows = torch.add(rows.double(), padded[..., j:j + width], alpha=k[j]).float()
    padded = F.pad(rows.unsqueeze(1), (0, 0, n, n), mode="reflect").squeeze(1) if n else rows
    cols = padded[..., n:n + height, :] * k[n]
    for i in range(1, n + 1):
        pair = padded[..., n + i:n + i + height, :] + padded[..., n - i:n - i + height, :]
        cols = torch.add(cols.double(), pair, alpha=k[n + i]).float()
    return cols


def resize_bilinear(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """cv::resize(INTER_LINEAR) of float32 [..., H, W] (rows first, then columns). A downscale
    on both axes follows the IPP resize the opencv-python wheels run (float64 weights and
    sums, float32 between the passes); anything else OpenCV's own float32 resize."""
    src_h, src_w = img.shape[-2:]
    if (src_h, src_w) == (height, width):
        return img
    wide = height < src_h and width < src_w
    x0, x1, a0, a1 = _resize_table(src_w, width, wide, True)
    y0, y1, b0, b1 = _resize_table(src_h, height, wide, False)
    dt = torch.float64 if wide else torch.float32
    a0, a1 = (torch.as_tensor(v, dtype=dt, device=img.device) for v in (a0, a1))
    b0, b1 = (torch.as_tensor(v, dtype=dt, device=img.device).unsqueeze(-1) for v in (b0, b1))
    rows = (_take(img, -1, x0).to(dt) * a0 + _take(img, -1, x1).to(dt) * a1).float()
    out = _take(rows, -2, y0).to(dt) * b0 + _take(rows, -2, y1).to(dt) * b1
    return out.float()


def poly_expansion(img: torch.Tensor, n: int, sigma: float) -> torch.Tensor:
    """FarnebackPolyExp of float32 frames [B, H, W] -> [B, 5, H, W] float32, in OpenCV's
    channel order: (y, x, yy, xx, xy) coefficients."""
    return expand_with_constants(img, poly_constants(n, sigma))


def expand_with_constants(img: torch.Tensor, c: PolyConstants) -> torch.Tensor:
    """poly_expansion with its constants given (so torch.compile sees plain constants)."""
    n = len(c.g) - 1
    height, width = img.shape[-2:]
    padded = F.pad(img.unsqueeze(1), (0, 0, n, n), mode="replicate").squeeze(1)
    # vertical pass, float32
    r0 = img * c.g[0]
    r1 = torch.zeros_like(img)
    r2 = torch.zeros_like(img)
    for k in range(1, n + 1):
        above = padded[:, n - k:n - k + height]
        below = padded[:, n + k:n + k + height]
        p = above + below
        r0 = r0 + p * c.g[k]
        r1 = r1 + (below - above) * c.xg[k]
        r2 = r2 + p * c.xxg[k]
    rows = F.pad(torch.stack((r0, r1, r2), 1), (n, n, 0, 0), mode="replicate")
    del r0, r1, r2, padded
    # horizontal pass: double accumulators; b1, b4 take double products, the rest float32 ones
    mid = rows[..., n:n + width]
    b1 = (mid[:, 0] * c.g[0]).double()
    b3 = (mid[:, 1] * c.g[0]).double()
    b5 = (mid[:, 2] * c.g[0]).double()
    b2 = torch.zeros_like(b1)
    b4 = torch.zeros_like(b1)
    b6 = torch.zeros_like(b1)
    for k in range(1, n + 1):
        right = rows[..., n + k:n + k + width]
        left = rows[..., n - k:n - k + width]
        tg = right[:, 0] + left[:, 0]  # float32, taken to float64 by the adds (exact products there)
        b1 = torch.add(b1, tg, alpha=c.g[k])
        b4 = torch.add(b4, tg, alpha=c.xxg[k])
        b2 = b2 + (right[:, 0] - left[:, 0]) * c.xg[k]  # float32 products, added in float64
        b3 = b3 + (right[:, 1] + left[:, 1]) * c.g[k]
        b6 = b6 + (right[:, 1] - left[:, 1]) * c.xg[k]
        b5 = b5 + (right[:, 2] + left[:, 2]) * c.g[k]
    return torch.stack(((b3 * c.ig11).float(), (b2 * c.ig11).float(), (b1 * c.ig03 + b5 * c.ig33).float(),
                        (b1 * c.ig03 + b4 * c.ig33).float(), (b6 * c.ig55).float()), 1)


def border_damping(height: int, width: int, device) -> torch.Tensor:
    return torch.as_tensor(_border_damping(height, width), device=device)


def update_matrices(r0: torch.Tensor, r1: torch.Tensor, flow: torch.Tensor, damp: torch.Tensor) -> torch.Tensor:
    """FarnebackUpdateMatrices for pairs [N, 5, H, W] (coefficients of frame 0 and 1) and the
    current flow [N, 2, H, W] -> the 5 matrix channels [N, 5, H, W], float32 throughout.
    damp: border_damping(H, W) on the flow's device."""
    n, _, height, width = r0.shape
    dx, dy = flow[:, 0], flow[:, 1]
    xs = torch.arange(width, device=flow.device, dtype=torch.float32)
    ys = torch.arange(height, device=flow.device, dtype=torch.float32).unsqueeze(-1)
    fx = xs + dx
    fy = ys + dy
    x1 = torch.floor(fx)
    y1 = torch.floor(fy)
    fx = fx - x1
    fy = fy - y1
    inside = (x1 >= 0) & (x1 < width - 1) & (y1 >= 0) & (y1 < height - 1)  # false for NaN too
    corner = (torch.where(inside, y1, 0).long() * width + torch.where(inside, x1, 0).long()).view(n, 1, -1)
    flat = r1.reshape(n, 5, -1)

    def sample(offset: int) -> torch.Tensor:
        return flat.gather(2, (corner + offset).expand(n, 5, -1)).view(n, 5, height, width)

    a00 = (1 - fx) * (1 - fy)
    a01 = fx * (1 - fy)
    a10 = (1 - fx) * fy
    a11 = fx * fy
    s = ((a00.unsqueeze(1) * sample(0) + a01.unsqueeze(1) * sample(1)) + a10.unsqueeze(1) * sample(width)) \
        + a11.unsqueeze(1) * sample(width + 1)
    inside = inside.unsqueeze(1)
    c2 = torch.where(inside[:, 0], s[:, 0], 0)
    c3 = torch.where(inside[:, 0], s[:, 1], 0)
    c4 = torch.where(inside[:, 0], (r0[:, 2] + s[:, 2]) * 0.5, r0[:, 2])
    c5 = torch.where(inside[:, 0], (r0[:, 3] + s[:, 3]) * 0.5, r0[:, 3])
    c6 = torch.where(inside[:, 0], (r0[:, 4] + s[:, 4]) * 0.25, r0[:, 4] * 0.5)
    del s
    c2 = (r0[:, 0] - c2) * 0.5
    c3 = (r0[:, 1] - c3) * 0.5
    c2 = c2 + (c4 * dy + c6 * dx)
    c3 = c3 + (c6 * dy + c5 * dx)
    c2, c3, c4, c5, c6 = (v * damp for v in (c2, c3, c4, c5, c6))
    return torch.stack((c4 * c4 + c6 * c6, (c4 + c5) * c6, c5 * c5 + c6 * c6, c4 * c2 + c6 * c3, c6 * c2 + c5 * c3), 1)


def box_sums(matrices: torch.Tensor, winsize: int) -> torch.Tensor:
    """The box filter of FarnebackUpdateFlow_Blur: window sums of [N, 5, H, W] float32 over
    winsize x winsize (replicate borders) as float64, summed the way OpenCV runs them.

    OpenCV keeps running sums: down the columns it adds each new row minus the row leaving
    the window, that difference taken in float32 (the rows are float32), onto a float64 sum
    started at row 0 * (m + 2) (a float32 product) plus rows 1..m-1; along a row it does the
    same in float64 on the column sums. Running sums are cumulative sums of those
    differences; a plain window sum would round differently in the last bits.
    """
    m = winsize // 2
    n, c, height, width = matrices.shape
    # down the columns: row y's window gains row min(y + m, H - 1) and loses max(y - m - 1, 0)
    padded = F.pad(matrices, (0, 0, m + 1, m), mode="replicate")
    cols = torch.empty((n, c, height + 1, width), dtype=torch.float64, device=matrices.device)
    start = (matrices[:, :, :1] * float(m + 2)).double()
    for j in range(1, m):
        start = start + matrices[:, :, min(j, height - 1)].unsqueeze(2).double()
    cols[:, :, :1] = start
    cols[:, :, 1:] = padded[:, :, 2 * m + 1:] - padded[:, :, :height]
    del padded
    cols = cols.cumsum_(2)[:, :, 1:]
    # along the rows, in float64
    padded = F.pad(cols, (m + 1, m, 0, 0), mode="replicate")
    sums = torch.empty((n, c, height, width + 1), dtype=torch.float64, device=matrices.device)
    start = cols[..., :1] * float(m + 2)
    for j in range(1, m):
        start = start + cols[..., min(j, width - 1)].unsqueeze(-1)
    sums[..., :1] = start
    torch.sub(padded[..., 2 * m + 1:], padded[..., :width], out=sums[..., 1:])
    return sums.cumsum_(3)[..., 1:]


def solve_flow(matrices: torch.Tensor, winsize: int) -> torch.Tensor:
    """FarnebackUpdateFlow_Blur without the matrix update: box-filtered matrices (float64,
    replicate borders), the 2x2 solve in float64 -> flow [N, 2, H, W] float32."""
    sums = box_sums(matrices, winsize) * (1.0 / (winsize * winsize))
    g11, g12, g22, h1, h2 = sums.unbind(1)
    idet = 1.0 / (g11 * g22 - g12 * g12 + 1e-3)
    return torch.stack((((g11 * h2 - g12 * h1) * idet).float(), ((g22 * h1 - g12 * h2) * idet).float()), 1)


# --------------------------------------------------------------------------- flow


_compiled_steps = None


def compiled_steps() -> dict:
    """The per-level steps through torch.compile (fused kernels: far less memory traffic on a
    GPU). Fusion must not change the arithmetic: Triton's fused multiply-adds are switched
    off (inductor's emulate_precision_casts), so compiled steps round as eager ones do (on
    the CPU they are bit-identical; docs/gpu.md has the GPU check). Compiling takes about a
    minute per process, once; shapes are dynamic, so new frame sizes do not recompile."""
    global _compiled_steps
    if _compiled_steps is None:
        import torch._inductor.config as inductor_config

        if hasattr(inductor_config, "emulate_precision_casts"):
            inductor_config.emulate_precision_casts = True
        # Triton only: reordering loops to fuse more asks sympy to compare symbolic strides of
        # these dynamic shapes and fails ("'((-89)) + 5' is not comparable", torch 2.11 on an
        # H200); the CPU backend never reorders
        if hasattr(inductor_config, "loop_ordering_after_fusion"):
            inductor_config.loop_ordering_after_fusion = False
        _compiled_steps = {name: torch.compile(fn, dynamic=True) for name, fn in _eager_steps().items()}
    return _compiled_steps


def _eager_steps() -> dict:
    return {"blur": blur_with_kernel, "expand": expand_with_constants, "update": update_matrices, "solve": solve_flow}


KERNELS = ("eager", "compiled", "triton")


def triton_available(device) -> bool:
    """Whether the Triton kernels can run here: a CUDA device and the triton package (torch's
    CUDA wheels bring it), or any device under Triton's interpreter (TRITON_INTERPRET=1)."""
    import importlib.util
    import os

    if importlib.util.find_spec("triton") is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def default_kernels(device) -> str:
    """What the flow runs as when nothing is asked: the Triton kernels on a CUDA device that
    has them, else the eager steps (torch.compile only on request: ~1 min per process)."""
    return "triton" if torch.device(device).type == "cuda" and triton_available(device) else "eager"


def farneback_pairs(frames: torch.Tensor, pairs: torch.Tensor | list[tuple[int, int]],
                    settings: FarnebackSettings = FarnebackSettings(), compiled: bool = False,
                    kernels: str | None = None) -> torch.Tensor:
    """Flow of frame pairs that share frames: frames [F, H, W] (uint8 or float32, one size),
    pairs [N, 2] indices into frames (first -> second) -> flow [N, 2, H, W] float32 (x, y).

    Each frame's pyramid and polynomial expansion is computed once, however many pairs use it
    (a video's consecutive samples: every frame is in two pairs). kernels: "eager" (tensor
    operations), "compiled" (the steps through torch.compile, compiled_steps) or "triton"
    (farneback_triton's fused kernels); compiled=True is kernels="compiled". A compiler that
    fails falls back to the eager steps for the rest of the process, the reason kept in
    kernel_failures (compile_failure for torch.compile).
    """
    if frames.dim() != 3:
        raise ValueError(f"frames must be [F, H, W], got shape {tuple(frames.shape)}")
    kernels = kernels or ("compiled" if compiled else "eager")
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    global compile_failure
    if kernels == "compiled" and compile_failure is None:
        try:
            return _farneback_pairs(frames, pairs, settings, compiled_steps())
        except Exception as exc:  # a compiler that fails costs speed, never a shard's scores
            if _is_oom(exc):
                raise
            compile_failure = _failure(exc)
            kernel_failures["compiled"] = compile_failure
            logging.getLogger(__name__).warning("torch.compile failed, the flow runs eagerly: %s", compile_failure)
    if kernels == "triton" and "triton" not in kernel_failures:
        try:
            from curation_assets.scorers.farneback_triton import triton_steps

            return _farneback_pairs(frames, pairs, settings, triton_steps())
        except Exception as exc:
            if _is_oom(exc):
                raise
            kernel_failures["triton"] = _failure(exc)
            logging.getLogger(__name__).warning("the Triton kernels failed, the flow runs eagerly: %s",
                                                kernel_failures["triton"])
    return _farneback_pairs(frames, pairs, settings, _eager_steps())


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc)


def _failure(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


compile_failure: str | None = None  # why the compiled steps failed in this process (then eager ones run)
kernel_failures: dict[str, str] = {}  # kernels -> why they failed in this process (then eager ones run)


def _farneback_pairs(frames: torch.Tensor, pairs, settings: FarnebackSettings, step: dict) -> torch.Tensor:
    pairs = torch.as_tensor(pairs, dtype=torch.long, device=frames.device).reshape(-1, 2)
    height, width = frames.shape[-2:]
    source = frames.float()
    levels = level_count(height, width, settings)
    flow = None
    for k in range(levels, -1, -1):
        geo = level_geometry(height, width, k, settings.pyr_scale)
        level = resize_bilinear(step["blur"](source, gaussian_kernel(geo.ksize, geo.sigma)), geo.height, geo.width)
        coeffs = step["expand"](level, poly_constants(settings.poly_n, settings.poly_sigma))
        del level
        if "update_pairs" in step:  # samples the frames' coefficients through the pair indices
            def update(current, coeffs=coeffs):
                return step["update_pairs"](coeffs, pairs, current, damp)
        else:
            r0 = coeffs.index_select(0, pairs[:, 0])
            r1 = coeffs.index_select(0, pairs[:, 1])

            def update(current, r0=r0, r1=r1):
                return step["update"](r0, r1, current, damp)
        del coeffs
        if flow is None:
            flow = torch.zeros((pairs.shape[0], 2, geo.height, geo.width), dtype=torch.float32, device=frames.device)
        else:
            flow = resize_bilinear(flow, geo.height, geo.width) * float(np.float32(1.0 / settings.pyr_scale))
        damp = border_damping(geo.height, geo.width, frames.device)
        matrices = update(flow)
        for i in range(settings.iterations):
            flow = step["solve"](matrices, settings.winsize)
            if i < settings.iterations - 1:
                matrices = update(flow)
        del update, matrices
    return flow


def farneback_flow(prev: torch.Tensor, nxt: torch.Tensor, settings: FarnebackSettings = FarnebackSettings()) -> torch.Tensor:
    """Flow from prev[i] to nxt[i] for batches [N, H, W] -> [N, 2, H, W] float32."""
    n = prev.shape[0]
    index = torch.arange(n)
    return farneback_pairs(torch.cat((prev, nxt)), torch.stack((index, index + n), 1), settings)


# --------------------------------------------------------------------------- scores


def flow_magnitude_means(flow: torch.Tensor, source_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Per pair, the mean flow magnitude [N] float64, as motion.flow_score reduces a flow:
    optionally in source pixels (x and y scaled by their own factors), magnitude in float32
    (cv2.cartToPolar), the mean accumulated in float64 (numpy's float32 pairwise sum differs
    in the 7th digit at most)."""
    fx, fy = flow[:, 0], flow[:, 1]
    height, width = flow.shape[-2:]
    if source_hw is not None and tuple(source_hw) != (height, width):
        fx = fx * (source_hw[1] / width)
        fy = fy * (source_hw[0] / height)
    mag = torch.sqrt(fx * fx + fy * fy)
    return mag.double().mean(dim=(-2, -1))


def gray_from_bgr(bgr: torch.Tensor) -> torch.Tensor:
    """cv2.cvtColor(COLOR_BGR2GRAY) for uint8 [..., H, W, 3], bit for bit: OpenCV 5's
    15-bit fixed-point weights (B 3735, G 19235, R 9798) with rounding."""
    return _gray(bgr[..., 0], bgr[..., 1], bgr[..., 2])


def gray_from_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """The same gray from RGB channel order (GPU decoders hand out RGB)."""
    return _gray(rgb[..., 2], rgb[..., 1], rgb[..., 0])


def _gray(b: torch.Tensor, g: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    acc = b.int() * 3735 + g.int() * 19235 + r.int() * 9798 + (1 << 14)
    return (acc >> 15).to(torch.uint8)
