"""The torch Farneback against OpenCV's CPU calcOpticalFlowFarneback, step by step and end to
end, with torch on the CPU (the same code runs on a GPU).

The pyramid's blur and resize are checked against cv2.GaussianBlur / cv2.resize directly;
the polynomial expansion, matrix update, box filter and solve have no public OpenCV entry
point, so they are checked through a one-level flow (levels=0), whose pyramid step is exact
(integer frames, OpenCV's fixed [1/4, 1/2, 1/4] kernel): that flow must equal OpenCV's bit
for bit. The full pyramid then agrees to float32 rounding; the real clips' agreement is a
slow test in test_motion_torch.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from curation_assets.scorers import farneback_torch as ft
from curation_assets.scorers.motion import MotionParams, farneback_args, flow_score

DJ_ARGS = (0.5, 3, 15, 3, 5, 1.2, 0)  # data-juicer's calcOpticalFlowFarneback arguments


def _texture(height: int, width: int, seed: int, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (0, 0), sigma)


def _pair(height: int, width: int, seed: int, shift=(1, 2)) -> tuple[np.ndarray, np.ndarray]:
    base = _texture(height, width, seed)
    return base, np.roll(base, shift, axis=(0, 1))


def _torch_flow(prev: np.ndarray, nxt: np.ndarray, settings: ft.FarnebackSettings = ft.FarnebackSettings()) -> np.ndarray:
    flow = ft.farneback_flow(torch.from_numpy(prev)[None], torch.from_numpy(nxt)[None], settings)
    return flow[0].permute(1, 2, 0).numpy()  # OpenCV's H x W x 2


# --------------------------------------------------------------------------- host-side constants


@pytest.mark.parametrize(("ksize", "sigma"), [(3, 0.0), (3, 0.5), (9, 1.5), (19, 3.5), (39, 7.5), (5, 0.0)])
def test_gaussian_kernels_equal_opencvs(ksize, sigma):
    ours = np.array(ft.gaussian_kernel(ksize, sigma), dtype=np.float32)
    assert np.array_equal(ours, cv2.getGaussianKernel(ksize, sigma, cv2.CV_32F).ravel())


@pytest.mark.parametrize(("hw", "expected"), [((360, 640), 3), ((362, 640), 3), ((128, 160), 2), ((96, 128), 1),
                                              ((40, 1000), 0), ((2160, 3840), 3)])
def test_level_count_stops_under_32_pixels(hw, expected):
    assert ft.level_count(*hw, ft.FarnebackSettings()) == expected


def test_level_geometry_is_opencvs():
    # sigma (1/scale - 1)/2, kernel round(5 sigma) | 1 (>= 3), sizes rounded half to even
    assert [(g.ksize, g.height, g.width) for g in (ft.level_geometry(362, 641, k, 0.5) for k in range(4))] == [
        (3, 362, 641), (3, 181, 320), (9, 90, 160), (19, 45, 80)]


def test_settings_from_farneback_args_refuse_other_flags():
    assert ft.FarnebackSettings.from_args(farneback_args(MotionParams())) == ft.FarnebackSettings()
    assert ft.FarnebackSettings.from_args(farneback_args(MotionParams(skip_levels=1))).levels == 2
    with pytest.raises(ValueError, match="flags=0"):
        ft.FarnebackSettings.from_args((0.5, 3, 15, 3, 5, 1.2, 256))  # OPTFLOW_FARNEBACK_GAUSSIAN


def test_gray_equals_cvtcolor_on_every_colour():
    values = np.arange(1 << 24, dtype=np.uint32)
    bgr = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(ft.gray_from_bgr(torch.from_numpy(bgr)).numpy(), expected)
    assert np.array_equal(ft.gray_from_rgb(torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1]))).numpy(), expected)


# --------------------------------------------------------------------------- pyramid steps


@pytest.mark.parametrize(("ksize", "sigma"), [(3, 0.0), (3, 0.5), (9, 1.5), (19, 3.5)])
def test_pyramid_blur_matches_gaussianblur(ksize, sigma):
    img = _texture(181, 323, seed=1).astype(np.float32)
    ours = ft.gaussian_blur(torch.from_numpy(img)[None], ksize, sigma)[0].numpy()
    expected = cv2.GaussianBlur(img, (ksize, ksize), sigma, sigmaY=sigma)
    # OpenCV's order of fused multiply-adds: identical but for a few pixels of its scalar tail
    np.testing.assert_allclose(ours, expected, rtol=4e-7, atol=0)
    assert (ours == expected).mean() > 0.99


@pytest.mark.parametrize(("src", "dst"), [((362, 640), (181, 320)), ((362, 640), (90, 160)), ((362, 640), (45, 80)),
                                          ((361, 641), (180, 320))])
def test_frame_downscale_matches_cv2_resize(src, dst):
    img = (_texture(*src, seed=2).astype(np.float32) / 7).astype(np.float32)
    ours = ft.resize_bilinear(torch.from_numpy(img)[None], *dst)[0].numpy()
    expected = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(ours, expected, rtol=3e-7, atol=0)
    assert (ours == expected).mean() > 0.97  # the IPP resize rounds a few pixels the other way


@pytest.mark.parametrize(("src", "dst"), [((45, 80), (90, 160)), ((90, 160), (181, 320)), ((23, 40), (45, 80))])
def test_flow_upscale_matches_cv2_resize(src, dst):
    flow = np.random.default_rng(7).normal(0, 3, (*src, 2)).astype(np.float32)  # two channels, as Farneback's
    ours = ft.resize_bilinear(torch.from_numpy(flow).permute(2, 0, 1)[None], *dst)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(ours, cv2.resize(flow, dst[::-1], interpolation=cv2.INTER_LINEAR))


# --------------------------------------------------------------------------- flow


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("hw", [(96, 128), (75, 131)])
def test_one_level_flow_is_bit_identical(hw, iterations):
    """Polynomial expansion, matrix update, box filter and solve: OpenCV's numbers exactly."""
    prev, nxt = _pair(*hw, seed=3)
    settings = ft.FarnebackSettings(levels=0, iterations=iterations)
    expected = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 0, 15, iterations, 5, 1.2, 0)
    assert np.array_equal(_torch_flow(prev, nxt, settings), expected)


@pytest.mark.parametrize(("hw", "shift"), [((128, 160), (1, 2)), ((181, 241), (-3, 4)), ((96, 128), (0, 0))])
def test_pyramid_flow_matches_opencv(hw, shift):
    prev, nxt = _pair(*hw, seed=4, shift=shift)
    expected = cv2.calcOpticalFlowFarneback(prev, nxt, None, *DJ_ARGS)
    ours = _torch_flow(prev, nxt)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)
    params = MotionParams()
    want = flow_score(expected.copy(), params)
    got = float(ft.flow_magnitude_means(torch.from_numpy(ours).permute(2, 0, 1)[None])[0])
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_pairs_sharing_frames_equal_separate_pairs():
    frames = np.stack([np.roll(_texture(96, 128, seed=5), (i, 2 * i), axis=(0, 1)) for i in range(4)])
    shared = ft.farneback_pairs(torch.from_numpy(frames), [(0, 1), (1, 2), (2, 3), (3, 3)])
    for n, (a, b) in enumerate([(0, 1), (1, 2), (2, 3), (3, 3)]):
        alone = ft.farneback_flow(torch.from_numpy(frames[a])[None], torch.from_numpy(frames[b])[None])[0]
        assert torch.equal(shared[n], alone)
    # a repeated frame: no motion but at the last row and column, whose samples OpenCV treats as missing
    same = cv2.calcOpticalFlowFarneback(frames[3], frames[3], None, *DJ_ARGS)
    assert np.array_equal(shared[3].permute(1, 2, 0).numpy(), same)


def test_magnitude_means_follow_flow_score_scaling():
    rng = np.random.default_rng(6)
    flow = rng.normal(0, 2, (48, 64, 2)).astype(np.float32)
    params = MotionParams(size=48, scale_to_source=True)
    want = flow_score(flow.copy(), params, source_hw=(96, 160))
    got = float(ft.flow_magnitude_means(torch.from_numpy(flow).permute(2, 0, 1)[None], (96, 160))[0])
    assert got == pytest.approx(want, rel=1e-6)
