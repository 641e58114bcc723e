"""Sampled frames at the store location, so image scorers read them instead of decoding again.

Layout: <location>/frames/<video_id[:2]>/<video_id>/<frame_index>.<ext>. Rows record the
*relative* key (`frames/ab/<id>/0000003.png`), resolved against the location when read, so a
GPU node reads what a CPU node wrote and a store copied or mounted elsewhere still works.
PNG by default: lossless, so OCR and CLIP see exactly the decoded pixels.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from curation_assets.store.location import StoreLocation

FORMATS = {"png": [], "jpg": None}


def frame_key(video_id: str) -> str:
    return f"frames/{video_id[:2]}/{video_id}"


def frame_dir(location: str | Path | StoreLocation, video_id: str) -> Path:
    """The local folder of a video's frames (local locations only)."""
    loc = _location(location)
    return Path(loc.path(frame_key(video_id)))


def save_frames(location: str | Path | StoreLocation, video_id: str, indices: list[int], frames: list[np.ndarray],
                image_format: str = "png", jpeg_quality: int = 95) -> list[str]:
    """Write the frames (each atomically); return their keys relative to the location."""
    import cv2

    if image_format not in FORMATS:
        raise ValueError(f"image_format must be one of {sorted(FORMATS)}")
    loc = _location(location)
    folder = frame_key(video_id)
    loc.remove_prefix(folder)  # a re-run with other sampling must not leave stale frames
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if image_format == "png" else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    keys = []
    for index, rgb in zip(indices, frames):
        key = f"{folder}/{index:07d}.{image_format}"
        ok, encoded = cv2.imencode("." + image_format, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise OSError(f"could not encode frame {key}")
        loc.write_bytes(key, encoded.tobytes())  # readers never see half-written files
        keys.append(key)
    return keys


def read_frame(path: str) -> np.ndarray:
    """One frame file (a local path or an fsspec URL) -> RGB uint8 (H, W, 3); FileNotFoundError
    when missing or unreadable. Reading and cv2.imdecode release the GIL: threads decode in parallel."""
    import cv2

    try:
        data = _read(path)
    except (FileNotFoundError, OSError):
        data = None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise FileNotFoundError(f"sampled frame missing or unreadable: {path} (re-materialize sampled_frames)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_threads() -> int:
    """Threads for decoding frame files: every core, at most 16."""
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


def load_frames(paths: list[str], location: str | Path | StoreLocation | None = None,
                threads: int | None = None) -> list[np.ndarray]:
    """A video's frames by key (resolved against `location`), local path or fsspec URL, decoded
    in parallel; raises on the first bad one."""
    loc = _location(location) if location is not None else None
    frames = read_frames_parallel([loc.resolve(p) if loc is not None else p for p in paths], threads)
    for frame in frames:
        if isinstance(frame, Exception):
            raise frame
    return frames


def _read(where: str) -> bytes:
    if "://" in where:
        import fsspec

        with fsspec.open(where, "rb") as fh:
            return fh.read()
    with open(where, "rb") as fh:
        return fh.read()


def _location(location) -> StoreLocation:
    return location if isinstance(location, StoreLocation) else StoreLocation(location)
