from __future__ import annotations

from typing import Iterable

import numpy as np

REDUCERS = {"avg": np.mean, "max": np.max, "min": np.min}
REDUCE_MODES = tuple(REDUCERS)


def reduce_scores(values: Iterable[float] | np.ndarray, mode: str = "avg") -> float:
    """Per-frame scores -> one per video (data-juicer's reduce_mode); NaN when there are none."""
    if mode not in REDUCERS:
        raise ValueError(f"unknown reduce mode {mode!r}: expected one of {REDUCE_MODES}")
    values = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).reshape(-1)
    return float(REDUCERS[mode](values)) if values.size else float("nan")
