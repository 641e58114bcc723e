"""The real sample clips' sampled frames (first / middle / last of each), decoded once per
test session, for the equivalence tests of the model layer. Skips when the clips are absent."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

REAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"
CLIPS = ("video1", "video2", "video3", "video4", "video5")


@lru_cache(maxsize=None)
def _decode(name: str, k: int) -> tuple[np.ndarray, ...]:
    import av

    from curation_assets.models.ocr import uniform_frame_indices

    path = REAL_VIDEOS / f"{name}.mp4"
    with av.open(str(path)) as container:
        count = container.streams.video[0].frames or sum(1 for p in container.demux(video=0) if p.size)
    wanted = uniform_frame_indices(count, k)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= wanted[-1]:
                break
    return tuple(got[i] for i in wanted)


def real_frames(k: int = 3) -> dict[str, list[np.ndarray]]:
    """clip name -> its k uniformly sampled RGB uint8 frames (skips the test without the clips)."""
    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real clips not available at {REAL_VIDEOS}")
    return {name: list(_decode(name, k)) for name in CLIPS}
