"""A shard's sampled frames in bounded chunks, the next chunk decoding while this one is scored.

Holding every sampled frame of a shard at once grows with the shard's clip count, and shot
splitting puts all clips of a long source in its shard (a 1000-shot 1080p film: ~19 GB of
frames). So the image scorers take the shard's videos in chunks: consecutive videos whose
decoded frames fit a byte budget (width x height x 3 per frame, known from the sampled_frames
row before decoding), a video larger than the budget alone. While a chunk is scored, the next
one decodes on a background thread (itself fanning out over files.py's decode pool), so at
most two chunks are resident: the one being scored and the one being decoded.

The budget is $CURATION_FRAMES_CHUNK_MB (MiB of decoded RGB frames per chunk, default 64):
at 640x360 about 97 frames (32 clips of 3), at 1920x1080 about 10. Plain code, no Dagster.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

CHUNK_MB_ENV = "CURATION_FRAMES_CHUNK_MB"
DEFAULT_CHUNK_MB = 64.0
# a sampled_frames row without width/height (written before they were recorded): assume 1080p
UNKNOWN_FRAME_BYTES = 1920 * 1080 * 3


def chunk_budget_mb() -> float:
    """$CURATION_FRAMES_CHUNK_MB, else the default; a bad value is one readable line."""
    value = os.environ.get(CHUNK_MB_ENV)
    if not value:
        return DEFAULT_CHUNK_MB
    try:
        mb = float(value)
    except ValueError:
        mb = float("nan")
    if not mb > 0 or mb == float("inf"):
        raise ValueError(f"{CHUNK_MB_ENV} must be a number of MiB above 0 (decoded frames per scoring chunk), "
                         f"got {value!r}")
    return mb


def video_frame_bytes(row: dict | None) -> int:
    """Bytes of a video's decoded frames (0 for a row that decodes nothing: it only adds an error)."""
    if row is None or row.get("error") or not row.get("frame_paths"):
        return 0
    width, height = row.get("width"), row.get("height")
    per_frame = width * height * 3 if width and height else UNKNOWN_FRAME_BYTES
    return per_frame * len(row["frame_paths"])


def plan_chunks(frames_by_id: dict[str, dict], video_ids: list[str], budget_bytes: float) -> list[list[str]]:
    """`video_ids` cut, in order, into runs whose frames fit `budget_bytes` (a larger video alone)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for vid in video_ids:
        cost = video_frame_bytes(frames_by_id.get(vid))
        if current and cost and size + cost > budget_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(vid)
        size += cost
    if current:
        chunks.append(current)
    return chunks


class FrameChunks:
    """Iterate (ready, errors) per chunk, as `load(frames_by_id, video_ids)` returns them.

    `load` is shard_io.load_videos_frames: ([(video_id, frames)], {video_id: reason}). At least
    one chunk is yielded (empty for an empty shard), so scorers always report their model.
    A yielded `ready` list is emptied when the consumer asks for the next chunk, so its frames
    are freed even while the consumer's name for it still exists. The counters are what the
    step reports: frames_decoded, decode_seconds, and peak_resident_frames (frames of chunks
    decoded and not yet released, the real bound this class keeps).
    """

    def __init__(self, frames_by_id: dict[str, dict], video_ids: list[str], budget_mb: float,
                 load: Callable, prefetch: bool = True):
        self.budget_mb = budget_mb
        self.plan = plan_chunks(frames_by_id, video_ids, budget_mb * 2**20) or [[]]
        self._frames_by_id, self._load_fn, self._prefetch = frames_by_id, load, prefetch
        self._lock = threading.Lock()
        self.frames_decoded = 0
        self.decode_seconds = 0.0
        self.resident_frames = 0
        self.peak_resident_frames = 0
        self.largest_chunk_videos = max(len(c) for c in self.plan)

    def _load(self, video_ids: list[str]):
        started = time.perf_counter()
        ready, errors = self._load_fn(self._frames_by_id, video_ids)
        n = sum(len(frames) for _, frames in ready)
        with self._lock:
            self.decode_seconds += time.perf_counter() - started
            self.frames_decoded += n
            self.resident_frames += n
            self.peak_resident_frames = max(self.peak_resident_frames, self.resident_frames)
        return ready, errors

    def _release(self, ready: list) -> None:
        n = sum(len(frames) for _, frames in ready)
        ready.clear()
        with self._lock:
            self.resident_frames -= n

    def __iter__(self) -> Iterator[tuple[list, dict]]:
        with ThreadPoolExecutor(1, thread_name_prefix="frame-chunk") as ahead:
            pending = None
            for k, video_ids in enumerate(self.plan):
                ready, errors = pending.result() if pending is not None else self._load(video_ids)
                nxt = self.plan[k + 1] if k + 1 < len(self.plan) else None
                pending = ahead.submit(self._load, nxt) if nxt is not None and self._prefetch else None
                try:
                    yield ready, errors
                finally:
                    self._release(ready)
