"""Spreading per-video work of one shard over worker processes.

Spawned (not forked) workers: a fork of a process holding Dagster's threads and SQLite
handles can deadlock. Each worker keeps OpenCV to one thread so N workers use N cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterable, TypeVar

WORKERS_ENV = "CURATION_WORKERS"
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    value = os.environ.get(WORKERS_ENV)
    return max(1, int(value)) if value else max(1, os.cpu_count() or 1)


def _init_worker(codec_threads: int = 0) -> None:
    import cv2

    from curation_assets.scorers.frame_stream import set_codec_threads

    cv2.setNumThreads(1)
    set_codec_threads(codec_threads)  # the decoder's share of the cores, not all of them


def worker_processes(n_items: int, workers: int, min_per_worker: int = 2) -> int:
    """How many processes map_videos uses: 1 (in-process) when the shard is too small to
    repay worker start-up."""
    return max(1, min(workers, n_items // min_per_worker))


def threads_per_process(n_items: int, workers: int, min_per_worker: int = 2) -> int:
    """The cores of the budget each of map_videos' processes can fill with threads of its
    own: the whole budget in-process, 1 when the workers already take every core."""
    return max(1, workers // worker_processes(n_items, workers, min_per_worker))


def map_videos(fn: Callable[[T], R], items: Iterable[T], workers: int, min_per_worker: int = 2) -> list[R]:
    """fn over items, in order; in-process when the shard is too small to repay worker start-up."""
    items = list(items)
    workers = worker_processes(len(items), workers, min_per_worker)
    if workers <= 1:
        return [fn(item) for item in items]
    from curation_assets.scorers.frame_stream import codec_threads_for

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(codec_threads_for(workers),)) as pool:
        return list(pool.map(fn, items))
