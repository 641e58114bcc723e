"""How the torch motion backend's decode pass reads a video: PyAV on the CPU (the reference,
today's decode) or NVDEC on an NVIDIA GPU (PyNvVideoCodec), both yielding the same frames:
data-juicer's 2 fps picks for motion and its uniform picks for the sampled frames.

- ``pyav``: one sequential decode with the exact code of the CPU path (frame_stream.stream_frames),
  gray frames converted on the host by cv2.
- ``nvdec``: the frame indices are planned first from the container's packets (a PyAV demux,
  no decoding): the same rules (MotionFrames' indices, FrameCollector's picks) walked over
  the packets' timestamps and keyframe flags in presentation order. PyNvVideoCodec then
  decodes exactly those frames on the GPU in their native NV12; the planned frames' YUV planes
  (1.5 bytes a pixel) come to the host, where FFmpeg's own swscale (through PyAV) converts
  them, so the pixels are PyAV's bit for bit (H.264/HEVC decoding is exact; only colour
  conversion differs between decoders) and motion is the CPU path's exactly. Motion's grays
  go back to the flow device.
- ``nvdec-gpu``: the same plan and decode, but NVDEC's own YUV->RGB conversion on the GPU and
  the grays made there (OpenCV's fixed-point BGR2GRAY, bit for bit on equal RGB): frames stay
  on the GPU from decoding to flow. NVDEC's conversion is not swscale's: on the real clips its
  pixels differ by 0.6-3.0 levels on average (up to 26) and motion scores by up to 0.6%
  (docs/gpu.md), so data-juicer's thresholds no longer transfer exactly.
- ``auto``: nvdec when the flow runs on CUDA and PyNvVideoCodec loads, else pyav.

A video the GPU decoder cannot take (codec or profile NVDEC lacks, a corrupt stream, a
frame count that disagrees with the plan, any error) is decoded again with PyAV; the reason
is kept with the video (its motion and sampled_frames rows record it) and the rest goes on.
PyNvVideoCodec is optional (``pip install curation_assets[gpu]``) and imported only when used.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation_assets.scorers.flow_backends import BackendError
from curation_assets.scorers.frame_convert import FrameConverter
from curation_assets.scorers.frame_sampling import FrameCollector, FrameSamplingParams
from curation_assets.scorers.motion import MotionFrames, MotionParams, SampledIndices, to_gray
from curation_assets.scorers.unreferenced_frames import PacketFrame

DECODERS = ("auto", "pyav", "nvdec", "nvdec-gpu")
NVDEC_DECODERS = ("nvdec", "nvdec-gpu")
NVDEC_PACKAGE = "PyNvVideoCodec"
NVDEC_INSTALL = "pip install 'curation_assets[gpu]' (PyNvVideoCodec)"


class DecoderError(BackendError):
    """A requested decoder that cannot run here; the message is one line saying what to do."""


@dataclass
class DecodedVideo:
    """One video's decode pass for the torch backend, before its pairs are scored."""

    motion_indices: list[int]  # the frames in pair order (pair i = frames i and i + 1), repeats kept
    grays: Any  # list of H x W uint8 arrays (pyav) or a [F, H, W] uint8 tensor on the flow device (nvdec)
    source_hw: tuple[int, int] | None  # the frames' size before any fast-mode resize
    frame_indices: list[int] = field(default_factory=list)  # the sampled frames, in pick order
    frame_timestamps: list[float | None] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # RGB uint8, on the host
    frames_decoded: int = 0
    error: str | None = None  # a decode error mid-stream; what was read before it is kept
    decoder: str = "pyav"  # what decoded it
    fallback: str | None = None  # why the GPU decoder did not
    # the gallery's preview frames (scorers/previews.py): pyav and nvdec (its frames pass
    # through swscale on the host); nvdec-gpu's RGB stays on the GPU, its cards show a sampled frame
    preview: list = field(default_factory=list)
    fps: float | None = None
    frames_skipped: int = 0  # pyav: unreferenced pictures left undecoded (unreferenced_frames.py)

    @property
    def pair_count(self) -> int:
        return max(0, len(self.motion_indices) - 1)


# --------------------------------------------------------------------------- PyAV


def decode_with_pyav(path: str | Path, motion_params: MotionParams, sampling: FrameSamplingParams,
                     fps: float | None = None, total_frames: int | None = None, preview=None) -> DecodedVideo:
    from curation_assets.scorers.frame_stream import stream_frames

    motion, out = stream_frames(path, lambda fps_, total: MotionFrames(fps_, total, motion_params), sampling, fps,
                                total_frames, preview)
    return DecodedVideo(list(motion.used_indices), motion.grays, motion.source_hw, out.frame_indices,
                        out.frame_timestamps, out.frames, out.frames_decoded, out.error, "pyav",
                        preview=out.preview, fps=out.fps, frames_skipped=out.frames_skipped)


# --------------------------------------------------------------------------- the plan


@dataclass
class DecodePlan:
    motion_indices: list[int]  # in pair order, repeats kept
    frame_indices: list[int]  # sampled frames in pick order
    frame_timestamps: list[float | None]
    frames_decoded: int  # frames the sequential decode reads before it can stop
    packet_frames: int  # frames the container's packets hold
    colour: tuple = (None, None)  # the stream's (colorspace, color_range) as PyAV reports them
    fps: float | None = None  # the rate and frame count the indices were planned with
    total: int = 0

    @property
    def needed(self) -> list[int]:
        return sorted(set(self.motion_indices) | set(self.frame_indices))


def stream_packets(path: str | Path) -> tuple[float, int, int | None, list[PacketFrame]]:
    """(fps, declared frames, duration in pts, the frames in presentation order) from a demux."""
    return _stream_packets(path)[:4]


def _stream_packets(path: str | Path) -> tuple[float, int, int | None, list[PacketFrame], tuple]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        colour = (getattr(context, "colorspace", None), getattr(context, "color_range", None))
        fps = float(stream.base_rate or stream.average_rate or stream.guessed_rate)
        declared = int(stream.frames or 0)
        base = stream.time_base
        packets = [(p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.size and p.pts is not None]
        packets.sort(key=lambda item: item[0])
        frames = [PacketFrame(pts, key, float(pts * base) if base is not None else None) for pts, key in packets]
        return fps, declared, stream.duration, frames, colour


def plan_decode(path: str | Path, motion_params: MotionParams, sampling: FrameSamplingParams,
                fps: float | None = None, total_frames: int | None = None) -> DecodePlan:
    """The frames a sequential decode would hand to motion and keep as samples, from the
    packets alone: the same rules walked over the same order, stopping where it stops."""
    stream_fps, declared, duration, frames, colour = _stream_packets(path)
    fps = stream_fps if fps is None else fps
    total = declared if total_frames is None or total_frames <= 0 else total_frames
    motion = SampledIndices(fps, total, motion_params)
    collector = FrameCollector(total, sampling, duration_pts=duration)
    decoded, last_index, last_frame, stopped_early = 0, -1, None, False
    for index, frame in enumerate(frames):
        decoded += 1
        last_index, last_frame = index, frame
        if motion.wants(index):
            motion.used_indices.extend([index] * motion.repeats(index))
        if collector.wants(index, frame):
            collector.add(index, frame, index)  # the index stands in for the pixels
        if motion.done(index) and collector.done(index):
            stopped_early = True
            break
    if not stopped_early and declared and decoded < 0.9 * declared:
        raise DecoderError(f"the container holds {decoded} of the {declared} frames its header declares")
    picks = collector.finish(last_index, last_frame, last_index if last_frame is not None else None)
    return DecodePlan(motion.used_indices, picks, [collector.timestamps[i] for i in picks], decoded, len(frames),
                      colour, fps, total)


# --------------------------------------------------------------------------- NVDEC


@functools.lru_cache(maxsize=None)
def nvdec_status() -> tuple[bool, str]:
    """(usable, why not / what): PyNvVideoCodec imports (it loads the driver's NVDEC/NVENC
    libraries) and torch sees a CUDA device."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "torch sees no CUDA device"
    except Exception as exc:  # pragma: no cover - torch is a dependency
        return False, f"torch: {exc}"
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError as exc:
        return False, f"{NVDEC_PACKAGE} is not installed ({NVDEC_INSTALL}): {str(exc).splitlines()[0][:200]}"
    except Exception as exc:  # its import opens the driver's codec libraries
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return False, (f"{NVDEC_PACKAGE} cannot load the NVIDIA codec libraries (a container needs "
                       f"NVIDIA_DRIVER_CAPABILITIES to include 'video'): {first}")
    return True, f"{NVDEC_PACKAGE} {getattr(PyNvVideoCodec, '__version__', '?')}"


def decoder_report() -> list[str]:
    """`curation-assets devices`' line on the GPU decoder (after flow_backends.device_report)."""
    usable, why = nvdec_status()
    return [f"GPU decoder (motion decoders nvdec, nvdec-gpu): {'available: ' if usable else 'not available: '}{why}"]


def resolve_decoder(requested: str, backend: str, flow_device: str = "") -> str:
    """What a requested decoder runs as ("pyav" or "nvdec") beside a resolved motion backend;
    DecoderError when it cannot. Only the torch backend takes frames from the GPU."""
    if requested not in DECODERS:
        raise DecoderError(f"unknown motion decoder {requested!r} (choose one of {', '.join(DECODERS)})")
    if requested == "pyav":
        return "pyav"
    on_cuda = backend == "torch" and flow_device.startswith("cuda")
    if requested == "auto":
        return "nvdec" if on_cuda and nvdec_status()[0] else "pyav"
    if not on_cuda:
        runs = f"torch on {flow_device!r}" if backend == "torch" else backend
        raise DecoderError(f"motion decoder {requested!r} hands GPU frames to the torch backend on CUDA, but motion "
                           f"runs {runs}: set the motion recipe key backend: torch (or auto) on a CUDA machine, or "
                           "decoder: pyav")
    usable, why = nvdec_status()
    if not usable:
        raise DecoderError(f"motion decoder {requested!r} cannot run here: {why}; or set the motion recipe key decoder: "
                           "pyav (or auto)")
    return requested


_local = threading.local()


def _nvdec_decoder(path: str, gpu_id: int, rgb: bool = False):
    """One PyNvVideoCodec SimpleDecoder per thread and output (NV12 or RGB), reconfigured for
    each new file (creating a decoder session costs far more than decoding a short clip)."""
    import PyNvVideoCodec as nvc

    key = "decoder_rgb" if rgb else "decoder"
    dec = getattr(_local, key, None)
    if dec is not None:
        try:
            dec.reconfigure_decoder(path)
            return dec
        except Exception:
            setattr(_local, key, None)
    output = nvc.OutputColorType.RGB if rgb else nvc.OutputColorType.NATIVE
    dec = nvc.SimpleDecoder(path, gpu_id=gpu_id, use_device_memory=True, output_color_type=output)
    setattr(_local, key, dec)
    return dec


def _nv12_frame(frame, height: int, width: int, colour: tuple):
    """A decoded NV12 surface as a PyAV yuv420p frame (on the host), tagged with the stream's
    colorspace and range, so swscale converts it exactly as it converts PyAV's own frames."""
    import av
    import torch

    if isinstance(frame, np.ndarray):  # the test's stand-in decoder serves host arrays
        planes = frame
    else:
        try:
            planes = torch.from_dlpack(frame)
        except Exception:  # older builds: the CUDA array interface only
            planes = torch.as_tensor(frame)
        planes = planes.cpu().numpy()
    if planes.ndim == 3 and planes.shape[-1] == 1:
        planes = planes[..., 0]
    # one luma plane over the interleaved chroma plane; a surface may be taller than the picture
    # (height aligned for the decoder): the picture is its top-left corner
    rows = planes.shape[0] * 2 // 3 if planes.ndim == 2 else 0
    if (planes.dtype != np.uint8 or planes.ndim != 2 or planes.shape[0] != rows * 3 // 2 or rows < height
            or planes.shape[1] < width or height % 2 or width % 2):
        raise DecoderError(f"unexpected NV12 surface from the GPU decoder: {planes.shape} {planes.dtype} for "
                           f"{width}x{height}")
    chroma = planes[rows:rows + height // 2, :width].reshape(height // 2, width // 2, 2)
    yuv = np.concatenate([planes[:height, :width].reshape(-1), chroma[..., 0].reshape(-1),
                          chroma[..., 1].reshape(-1)])
    out = av.VideoFrame.from_ndarray(yuv.reshape(height * 3 // 2, width), format="yuv420p")
    colorspace, color_range = colour
    if colorspace is not None:
        out.colorspace = colorspace
    if color_range is not None:
        out.color_range = color_range
    return out


def _frame_tensor(frame, device):
    """A decoded NVDEC frame as an H x W x 3 uint8 tensor of our own (the decoder reuses its surfaces)."""
    import torch

    try:
        t = torch.from_dlpack(frame)
    except Exception:  # older builds: the CUDA array interface only
        t = torch.as_tensor(frame, device=device)
    if t.dim() == 2 and t.shape[1] % 3 == 0:  # some builds hand interleaved RGB as H x (3W)
        t = t.view(t.shape[0], -1, 3)
    return t.to(device).clone()


NVDEC_CHUNK = 64  # frames per decode call: bounds the RGB frames held on the GPU for a long video


def decode_with_nvdec(path: str | Path, motion_params: MotionParams, sampling: FrameSamplingParams,
                      fps: float | None, total_frames: int | None, device: str,
                      colour_on_gpu: bool = False, preview=None, gray_device: str | None = None) -> DecodedVideo:
    """The planned frames decoded on the GPU; raises on anything unexpected (the caller falls
    back). colour_on_gpu: NVDEC's own RGB conversion (decoder nvdec-gpu), else swscale's on
    the host from the NV12 planes (decoder nvdec: PyAV's pixels exactly). gray_device: where
    motion's grays go (default: the decoding device; "cpu" in a decode process, which hands
    them to the flow's process)."""
    import torch

    plan = plan_decode(path, motion_params, sampling, fps, total_frames)
    needed = plan.needed
    if not needed:
        raise DecoderError("no frame to decode")
    dev = torch.device(device)
    dec = _nvdec_decoder(str(path), dev.index or 0, rgb=colour_on_gpu)
    available = len(dec)
    if needed[-1] >= available:
        raise DecoderError(f"the GPU decoder counts {available} frames, the plan needs frame {needed[-1]}")
    if not colour_on_gpu:
        return _nvdec_host_colour(dec, plan, motion_params, dev, preview, torch.device(gray_device or dev))
    from curation_assets.scorers.farneback_torch import gray_from_rgb
    exact = motion_params.size is None and motion_params.max_size is None and not motion_params.skip_levels
    wanted_gray, wanted_rgb = set(plan.motion_indices), set(plan.frame_indices)
    grays, samples, size = {}, {}, None
    for start in range(0, len(needed), NVDEC_CHUNK):  # in order, a chunk at a time: only grays are kept
        chunk = needed[start:start + NVDEC_CHUNK]
        decoded = dec.get_batch_frames_by_index(chunk)
        if len(decoded) != len(chunk):
            raise DecoderError(f"the GPU decoder returned {len(decoded)} of {len(chunk)} frames")
        rgb = torch.stack([_frame_tensor(f, dev) for f in decoded])
        del decoded
        if rgb.dim() != 4 or rgb.shape[-1] != 3 or rgb.dtype != torch.uint8:
            raise DecoderError(f"unexpected frames from the GPU decoder: {tuple(rgb.shape)} {rgb.dtype}")
        if size is None:
            size = tuple(rgb.shape[1:3])
        elif tuple(rgb.shape[1:3]) != size:
            raise DecoderError(f"the frame size changes mid-stream ({size} -> {tuple(rgb.shape[1:3])})")
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        motion = [n for n, index in enumerate(chunk) if index in wanted_gray]
        if motion:
            if exact:
                gray = gray_from_rgb(rgb[motion])
            else:  # fast modes resize on the host with OpenCV's own resize, as the CPU path does
                gray = torch.from_numpy(np.stack([to_gray(np.ascontiguousarray(f[..., ::-1]), motion_params)
                                                  for f in rgb[motion].cpu().numpy()])).to(dev)
            grays.update({chunk[n]: g for n, g in zip(motion, gray)})
        samples.update({chunk[n]: rgb[n].cpu().numpy() for n, index in enumerate(chunk) if index in wanted_rgb})
        del rgb
    sequence = torch.stack([grays[i] for i in plan.motion_indices]) if plan.motion_indices else \
        torch.zeros((0, *size), dtype=torch.uint8, device=dev)
    if gray_device is not None:
        sequence = sequence.to(gray_device)
    return DecodedVideo(list(plan.motion_indices), sequence, size, list(plan.frame_indices),
                        list(plan.frame_timestamps), [samples[i] for i in plan.frame_indices], plan.frames_decoded,
                        None, "nvdec-gpu")


def _nvdec_host_colour(dec, plan: DecodePlan, motion_params: MotionParams, dev, preview=None,
                       gray_dev=None) -> DecodedVideo:
    """Decoder nvdec: NV12 surfaces to the host in chunks, converted by swscale exactly as the
    PyAV path converts (bgr24 for motion's gray, rgb24 for the samples, the gallery's preview
    scaled in the same call), grays to the device."""
    import torch

    from curation_assets.scorers.previews import PreviewCollector

    meta = dec.get_stream_metadata()
    height, width = int(meta.height), int(meta.width)
    previews, wanted_preview = None, set()
    if preview is not None and plan.total > 0:  # the preview's frames lie on motion's 2 fps grid
        previews = PreviewCollector(plan.fps, plan.total, preview)
        wanted_preview = {i for i in range(min(plan.total, plan.packet_frames)) if previews.wants(i)}
    needed = sorted(set(plan.needed) | wanted_preview)
    wanted_gray, wanted_rgb = set(plan.motion_indices), set(plan.frame_indices)
    grays, samples, source_hw = {}, {}, None
    convert = FrameConverter()  # one swscale context per conversion for the whole video
    for start in range(0, len(needed), NVDEC_CHUNK):
        chunk = needed[start:start + NVDEC_CHUNK]
        decoded = dec.get_batch_frames_by_index(chunk)
        if len(decoded) != len(chunk):
            raise DecoderError(f"the GPU decoder returned {len(decoded)} of {len(chunk)} frames")
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        for index, surface in zip(chunk, decoded):
            frame = _nv12_frame(surface, height, width, plan.colour)
            if index in wanted_gray:
                bgr = convert.to_ndarray(frame, "bgr24")
                source_hw = source_hw or bgr.shape[:2]
                grays[index] = to_gray(bgr, motion_params)
            if index in wanted_rgb:
                samples[index] = convert.to_ndarray(frame, "rgb24")
            if index in wanted_preview:
                previews.add(index, frame, convert)
        del decoded
    if plan.motion_indices:
        sequence = torch.from_numpy(np.stack([grays[i] for i in plan.motion_indices])).to(gray_dev or dev)
    else:
        sequence = torch.zeros((0, height, width), dtype=torch.uint8, device=gray_dev or dev)
    return DecodedVideo(list(plan.motion_indices), sequence, source_hw or (height, width), list(plan.frame_indices),
                        list(plan.frame_timestamps), [samples[i] for i in plan.frame_indices], plan.frames_decoded,
                        None, "nvdec", preview=previews.result() if previews is not None else [], fps=plan.fps)


# --------------------------------------------------------------------------- either


def decode_video(path: str | Path, motion_params: MotionParams, sampling: FrameSamplingParams,
                 fps: float | None = None, total_frames: int | None = None, decoder: str = "pyav",
                 device: str = "cpu", preview=None, gray_device: str | None = None) -> DecodedVideo:
    """Decode with the resolved decoder; a video NVDEC cannot take is decoded with PyAV, the
    reason kept in the result. gray_device: see decode_with_nvdec (PyAV's grays are host arrays)."""
    fallback = None
    if decoder in NVDEC_DECODERS:
        try:
            return decode_with_nvdec(path, motion_params, sampling, fps, total_frames, device,
                                     colour_on_gpu=decoder == "nvdec-gpu", preview=preview,
                                     gray_device=gray_device)
        except Exception as exc:
            _local.decoder = _local.decoder_rgb = None  # a session that failed is not reused for the next video
            fallback = f"{decoder} failed, decoded with pyav: {type(exc).__name__}: {str(exc).strip()[:200]}"
    elif decoder != "pyav":
        raise DecoderError(f"decode_video takes a resolved decoder ('pyav', 'nvdec' or 'nvdec-gpu'), got {decoder!r}")
    video = decode_with_pyav(path, motion_params, sampling, fps, total_frames, preview)
    video.fallback = fallback
    return video
