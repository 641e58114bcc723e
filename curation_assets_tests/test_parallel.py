"""How a shard's per-video work is split between processes and threads."""

from __future__ import annotations

import pytest

from curation_assets.execution.local_pool import threads_per_process, worker_processes


@pytest.mark.parametrize(
    "n_items,workers,processes,threads",
    [
        (64, 2, 2, 1),  # the cores are taken by processes: no extra threads
        (3, 2, 1, 2),  # too small for workers: one process, flow on both cores
        (1, 1, 1, 1),
        (0, 4, 1, 4),
        (4, 8, 2, 4),  # 2 processes (2 videos each), 4 cores each
        (100, 8, 8, 1),
    ],
)
def test_processes_and_threads_share_the_core_budget(n_items, workers, processes, threads):
    assert worker_processes(n_items, workers) == processes
    assert threads_per_process(n_items, workers) == threads
    assert processes * threads <= max(workers, 1)
