"""Speeding up slow-motion clips with ffmpeg so their motion reaches a target band.

Farneback motion between frames a fixed number of frames apart grows about linearly with
playback speed (for the small displacements of slow clips), so the factor is
target / motion, then bounded by the cap and by the frames a training sample needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class AccelerationParams:
    accelerate_below: float = 1.0  # kept clips with motion under this are candidates
    target_min: float = 1.0  # the band the sped-up clip's motion must land in
    target_max: float = 4.0
    max_factor: float = 4.0
    min_factor: float = 1.1  # below this a re-encode is not worth it
    min_output_frames: int = 32  # 16 training frames at stride 2
    audio: str = "drop"  # drop | atempo

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def target(self) -> float:
        # aim at the geometric middle of the band: the linear model errs both ways
        return (self.target_min * self.target_max) ** 0.5


@dataclass
class FactorChoice:
    factor: float | None
    reason: str  # why this factor, or why none


def choose_factor(motion: float, frame_count: int, params: AccelerationParams) -> FactorChoice:
    if motion is None or motion <= 0:
        return FactorChoice(None, "no positive motion score to scale")
    if motion >= params.accelerate_below:
        return FactorChoice(None, f"motion {motion:.3g} >= accelerate_below {params.accelerate_below:g}")
    wanted = params.target / motion
    frames_cap = frame_count / params.min_output_frames if frame_count else 0.0
    factor = min(wanted, params.max_factor, frames_cap)
    if factor < params.min_factor:
        limit = "frame count" if frames_cap < min(wanted, params.max_factor) else "band"
        return FactorChoice(None, f"factor {factor:.2f} < min_factor {params.min_factor:g} (bounded by {limit})")
    if motion * factor < params.target_min:
        return FactorChoice(None, f"cannot reach the band: {motion:.3g} x {factor:.2f} < {params.target_min:g} "
                                  f"(cap {params.max_factor:g}, {frame_count} frames)")
    return FactorChoice(round(factor, 3), "ok")


def output_path(out_dir: str | Path, video_id: str, factor: float) -> Path:
    return Path(out_dir) / video_id[:2] / f"{video_id}_x{factor:.3f}.mp4"


def speed_up(src: str | Path, dst: str | Path, factor: float, fps: float, audio: str = "drop",
             has_audio: bool = False) -> Path:
    """Re-encode `src` at `factor` x speed into `dst` (written atomically, never over `src`).

    fps is re-applied after setpts so the output keeps the source frame rate and its
    duration is exactly duration/factor (to a frame).
    """
    import ffmpeg
    import imageio_ffmpeg

    src, dst = Path(src).resolve(), Path(dst).resolve()
    if src == dst:
        raise ValueError("refusing to overwrite an input video")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.stem + ".partial.mp4")
    # `-i file:` stops a name like '-x.mp4' from being read as an option
    stream = ffmpeg.input(f"file:{src}")
    video = stream.video.filter("setpts", f"PTS/{factor}").filter("fps", fps=fps)
    outputs = [video]
    out_kwargs = {"vcodec": "libx264", "preset": "veryfast", "crf": 18, "pix_fmt": "yuv420p",
                  "movflags": "+faststart"}
    if audio == "atempo" and has_audio:
        outputs.append(stream.audio.filter("atempo", factor))
    else:
        out_kwargs["an"] = None
    cmd = ffmpeg.output(*outputs, f"file:{tmp}", **out_kwargs).overwrite_output().global_args("-nostdin", "-loglevel", "error")
    try:
        cmd.run(cmd=imageio_ffmpeg.get_ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed: {exc.stderr.decode(errors='replace')[-400:]}") from exc
    tmp.replace(dst)
    return dst
