from __future__ import annotations

import numpy as np

REDUCERS = {"avg": np.mean, "max": np.max, "min": np.min}


def reduce_scores(values, mode: str = "avg") -> float:
    """Per-frame scores -> one per video (data-juicer's reduce_mode); NaN when there are none."""
    if mode not in REDUCERS:
        raise ValueError(f"reduce mode must be one of {sorted(REDUCERS)}, not {mode!r}")
    values = np.asarray(values, dtype=np.float64)
    return float(REDUCERS[mode](values)) if values.size else float("nan")
