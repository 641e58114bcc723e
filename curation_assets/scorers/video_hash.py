"""Perceptual video hash and near-duplicate choice. Plain functions, no Dagster.

A video's hash is the 64-bit DCT perceptual hash (pHash) of each sampled frame: grayscale,
32x32 area-resized, the 8x8 lowest DCT frequencies, each bit = coefficient above their
median (the DC term left out). Low frequencies survive re-encoding, small crops and
rescaling; thresholding at the median makes it blind to brightness and contrast changes.

Two videos' similarity is the frame-to-best-frame agreement, symmetric:
    sim(A, B) = min(mean_a max_b s(a, b), mean_b max_a s(a, b)),  s = 1 - hamming / 64
so the same shot shifted in time still matches (each frame finds its nearest counterpart),
and a clip matching only one frame of another does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_BITS = 64


def frame_phash(rgb: np.ndarray) -> int:
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    bits[0] = False  # the DC term is brightness: left out on purpose
    return int(np.packbits(bits).view(">u8")[0])


def to_signed(h: int) -> int:
    """uint64 -> int64 with the same bits (DuckDB/Parquet BIGINT)."""
    return h - (1 << 64) if h >= 1 << 63 else h


def as_uint64(hashes) -> np.ndarray:
    return np.asarray(list(hashes), dtype=np.int64).view(np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2: one machine popcount per element
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)


def frame_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a| x |b| matrix of 1 - hamming/64 between two uint64 hash arrays."""
    return 1.0 - _popcount(a[:, None] ^ b[None, :]) / HASH_BITS


def video_similarity(a, b) -> float:
    a, b = as_uint64(a), as_uint64(b)
    if not len(a) or not len(b):
        return 0.0
    s = frame_similarity(a, b)
    return float(min(s.max(axis=1).mean(), s.max(axis=0).mean()))


@dataclass
class Candidate:
    video_id: str
    hashes: list[int]  # signed int64 view of each frame's uint64 hash
    rank_key: tuple  # smaller = better (the keep rule)


@dataclass
class Match:
    video_id: str
    near_duplicate_of: str | None
    similarity: float | None  # to the kept video it duplicates, or the best similarity seen


class HashBank:
    """Frame hashes of many videos in flat, growing arrays: one vectorised pass per query."""

    def __init__(self):
        self.ids: list[str] = []
        self._flat = np.zeros(1024, np.uint64)
        self._owner = np.zeros(1024, np.int64)
        self._n = 0

    def add(self, video_id: str, hashes: np.ndarray) -> None:
        if not len(hashes):
            return
        while self._n + len(hashes) > len(self._flat):  # amortised doubling, never a copy per add
            self._flat = np.concatenate([self._flat, np.zeros_like(self._flat)])
            self._owner = np.concatenate([self._owner, np.zeros_like(self._owner)])
        self._flat[self._n:self._n + len(hashes)] = hashes
        self._owner[self._n:self._n + len(hashes)] = len(self.ids)
        self._n += len(hashes)
        self.ids.append(video_id)

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """video_similarity(query, each video in the bank), as one array."""
        if not self.ids or not len(query):
            return np.zeros(len(self.ids))
        flat, owner = self._flat[:self._n], self._owner[:self._n]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        s = frame_similarity(query, flat)  # (q, M)
        forward = np.maximum.reduceat(s, starts, axis=1).mean(axis=0)  # each query frame's best, per video
        counts = np.diff(np.append(starts, self._n))
        backward = np.add.reduceat(s.max(axis=0), starts) / counts  # each bank frame's best in the query
        return np.minimum(forward, backward)


def choose_near_duplicates(candidates: list[Candidate], earlier: list[tuple[str, list[int]]], threshold: float) -> list[Match]:
    """Walk this shard's candidates best first (their rank_key); each one similar (>= threshold)
    to a video of an earlier shard, or to one already kept here, is a near-duplicate of the
    most similar such video; otherwise it is kept and later candidates are compared with it.

    Earlier shards win whatever their quality, so a shard's verdicts never change when later
    shards arrive. Exact comparison against every kept video (vectorised); see docs/long-videos.md for
    how the cross-shard side scales.
    """
    bank = HashBank()
    for vid, hashes in earlier:
        bank.add(vid, as_uint64(hashes))
    out = []
    for cand in sorted(candidates, key=lambda c: c.rank_key):
        mine = as_uint64(cand.hashes)
        sims = bank.similarities(mine)
        best = int(np.argmax(sims)) if len(sims) else -1
        if best >= 0 and sims[best] >= threshold:
            out.append(Match(cand.video_id, bank.ids[best], float(sims[best])))
        else:
            bank.add(cand.video_id, mine)
            out.append(Match(cand.video_id, None, float(sims[best]) if best >= 0 else None))
    return out
