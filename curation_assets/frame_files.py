"""Sampled frames on disk, so image scorers read them instead of decoding the video again.

Layout: <data_dir>/frames/<video_id[:2]>/<video_id>/<frame_index>.<ext>. PNG by default:
lossless, so OCR and CLIP see exactly the decoded pixels.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

FORMATS = {"png": [], "jpg": None}


def frame_dir(data_dir: str | Path, video_id: str) -> Path:
    return Path(data_dir) / "frames" / video_id[:2] / video_id


def save_frames(data_dir: str | Path, video_id: str, indices: list[int], frames: list[np.ndarray],
                image_format: str = "png", jpeg_quality: int = 95) -> list[str]:
    import cv2

    if image_format not in FORMATS:
        raise ValueError(f"image_format must be one of {sorted(FORMATS)}")
    folder = frame_dir(data_dir, video_id)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):  # a re-run with other sampling must not leave stale frames
        old.unlink()
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if image_format == "png" else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    paths = []
    for index, rgb in zip(indices, frames):
        path = folder / f"{index:07d}.{image_format}"
        tmp = path.with_name(path.stem + ".tmp." + image_format)
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write frame {path}")
        tmp.replace(path)  # readers never see half-written files
        paths.append(str(path))
    return paths


def read_frame(path: str) -> np.ndarray:
    """One frame file -> RGB uint8 (H, W, 3); FileNotFoundError when missing or unreadable."""
    import cv2

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"sampled frame missing or unreadable: {path} (re-materialize sampled_frames)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_threads() -> int:
    """Threads for decoding frame files: every core (cv2.imread releases the GIL), at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


def read_frames_parallel(paths: list[str], threads: int | None = None) -> list[np.ndarray | Exception]:
    """Every path decoded on a thread pool, in order; a failure is returned in its slot (not raised)."""
    threads = decode_threads() if threads is None else max(1, threads)

    def one(path: str):
        try:
            return read_frame(path)
        except Exception as exc:  # reported per video by the caller
            return exc

    if threads == 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(min(threads, len(paths)), thread_name_prefix="frame-decode") as pool:
        return list(pool.map(one, paths))


def load_frames(paths: list[str], threads: int | None = None) -> list[np.ndarray]:
    """A video's frame files -> RGB uint8 frames (decoded in parallel); raises on the first bad one."""
    frames = read_frames_parallel(list(paths), threads)
    for frame in frames:
        if isinstance(frame, Exception):
            raise frame
    return frames
