"""Near-duplicate clips with KNOWN answers, for tests and the near-duplicate benchmark.

From one base clip: a re-encode at another quality, a 2% crop scaled back, a +10%
brightness copy, and the same scene shifted by 1 s (cut from a longer take); plus clips of
different scenes that must NOT match. Nothing here imports Dagster.
"""

from __future__ import annotations

from pathlib import Path

from curation_assets.samples.synthetic import _run_ffmpeg, write_moving_pattern

# name -> the base it duplicates (None: an original)
NEAR_DUPLICATE_EXPECTED: dict[str, str | None] = {
    "base.mp4": None,
    "reencoded.mp4": "base.mp4",
    "cropped.mp4": "base.mp4",
    "brighter.mp4": "base.mp4",
    "shifted_1s.mp4": "base.mp4",
    "other_scene_a.mp4": None,
    "other_scene_b.mp4": None,
    "other_scene_c.mp4": None,
}


def write_near_duplicate_set(folder: str | Path, *, width: int = 320, height: int = 256, fps: int = 24,
                             seconds: int = 3) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = seconds * fps
    # one take of seconds+1 s: base = its first `seconds`, shifted_1s = the same take 1 s later
    take = write_moving_pattern(folder / "take.mp4", width=width, height=height, fps=fps, n_frames=n + fps,
                                shift_px_per_frame=(0.3, 0.1), seed=11)
    out = {}

    def ff(name: str, *args: str) -> None:
        _run_ffmpeg(["-i", f"file:{take}", *args, "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                     f"file:{folder / name}"])
        out[name] = folder / name

    ff("base.mp4", "-frames:v", str(n), "-crf", "18")
    ff("reencoded.mp4", "-frames:v", str(n), "-crf", "34", "-preset", "ultrafast")
    ff("cropped.mp4", "-frames:v", str(n), "-crf", "18", "-vf",
       f"crop=iw*0.98:ih*0.98,scale={width}:{height}")
    ff("brighter.mp4", "-frames:v", str(n), "-crf", "18", "-vf", "lutrgb=r=val*1.1:g=val*1.1:b=val*1.1")
    ff("shifted_1s.mp4", "-vf", f"select=gte(n\\,{fps}),setpts=N/FRAME_RATE/TB", "-frames:v", str(n), "-crf", "18")
    take.unlink()
    for i, (name, shift) in enumerate([("other_scene_a.mp4", (0.3, 0.1)), ("other_scene_b.mp4", (0, 0.4)),
                                       ("other_scene_c.mp4", (-0.3, 0.2))]):
        out[name] = write_moving_pattern(folder / name, width=width, height=height, fps=fps, n_frames=n,
                                         shift_px_per_frame=shift, seed=21 + i)
    return out
