"""Helpers of the FRAMES scorers that batch a chunk's frames through one model call."""

from __future__ import annotations

import numpy as np

from curation_assets.scorers.reduce import reduce_scores


def flatten(ready: list[tuple[str, list]]) -> tuple[list, np.ndarray]:
    """Every frame of the chunk in one list, and the index of the clip each belongs to."""
    images, owners = [], []
    for i, (_, frames) in enumerate(ready):
        images.extend(frames)
        owners.extend([i] * len(frames))
    return images, np.asarray(owners)


def reduced_row(video_id: str, column: str, per_frame, mode: str, base: dict) -> dict:
    """A clip's row: the per-frame values kept beside the reduced score."""
    return {"video_id": video_id, column: reduce_scores(per_frame, mode),
            "frame_scores": [float(x) for x in per_frame], "error": None, **base}


def error_rows(errors: dict[str, str], base: dict, only: set | dict | None = None) -> list[dict]:
    """Rows for the clips whose frames could not be read (only those in `only`, when given)."""
    return [{"video_id": vid, "error": err, **base} for vid, err in errors.items() if only is None or vid in only]
