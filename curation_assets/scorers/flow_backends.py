"""Where the motion score's Farneback flow runs: the CPU, an OpenCL device through OpenCV, or
a torch device (scorers/farneback_torch.py: OpenCV's CPU algorithm, batched across videos).

OpenCV ships Farneback as OpenCL kernels behind its transparent API: `cv2.UMat` frames in,
a `UMat` flow out. Frames are still decoded on the CPU; each sampled gray frame is uploaded
once (it takes part in two pairs), the flow comes back to the host and is reduced by the
same code as the CPU path (`motion.flow_score`), so the backend never changes the reduction.

The flow itself is not bit-identical: OpenCV's OpenCL Farneback is a separate float32
implementation (the CPU path accumulates the polynomial expansion, the box-filtered
matrices and the 2x2 solve in float64, and treats borders slightly differently). Where a
region is nearly textureless the solve is ill-conditioned and the two differ by more than
rounding; docs/gpu.md ("Motion on a GPU") has the measured per-clip differences.

Backends:
- ``cpu``: OpenCV's C++ loop (data-juicer's exact path).
- ``opencl``: OpenCV's default OpenCL device, whatever its type (``OPENCV_OPENCL_DEVICE``
  picks it; ``:CPU:`` selects Debian's pocl for correctness checks). No device: a
  BackendError at start-up, never a silent CPU run.
- ``torch``: the torch Farneback on CUDA when torch sees a GPU, else on the CPU (slower than
  ``cpu``: for tests); ``CURATION_DEVICE`` (cpu, cuda, cuda:1) overrides. It follows
  OpenCV's CPU arithmetic (float64 where OpenCV accumulates in float64), so its scores agree
  with ``cpu`` to about 1e-7 per video on the real clips (docs/gpu.md). Pairs of many videos
  go to the device per call (scorers/torch_pass.py).
- ``auto``: ``torch`` when torch sees a CUDA device, else ``opencl`` when OpenCV's OpenCL
  device is a GPU, else ``cpu``. A CPU OpenCL device (pocl) is never chosen automatically:
  it is slower than the CPU path.

The OpenCL context belongs to the process: OPENCV_OPENCL_DEVICE is read once, at OpenCV's
first OpenCL call, so set it before the process starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Backend = Literal["auto", "cpu", "opencl", "torch"]
BACKENDS = ("auto", "cpu", "opencl", "torch")
TORCH_DEVICE_ENV = "CURATION_DEVICE"  # the same override the learned scorers read
DEVICE_ENV = "OPENCV_OPENCL_DEVICE"
NVIDIA_OPENCL_LIB = "libnvidia-opencl.so.1"
DEFAULT_VENDORS_DIR = Path("/etc/OpenCL/vendors")
NVIDIA_ICD_COMMAND = f"echo {NVIDIA_OPENCL_LIB} > /etc/OpenCL/vendors/nvidia.icd"
GPU_SELECTOR = f'{DEVICE_ENV}=":GPU:"'
# An OpenCL pair waits on the device, not on a core: keep a few in flight per process even
# when the process has one core to itself, so the device never idles while it decodes.
OPENCL_MIN_THREADS = 2


class BackendError(RuntimeError):
    """A motion backend that cannot run here; the message is one line saying what to do."""


@dataclass(frozen=True)
class ResolvedBackend:
    backend: str  # "cpu", "opencl" or "torch": what actually runs
    device: str  # the OpenCL or CUDA device's name, or the CPU's model name
    torch_device: str = ""  # torch: the torch device the flow runs on ("cuda", "cuda:1", "cpu")

    def as_dict(self) -> dict:
        return {"backend": self.backend, "device": self.device}


@dataclass(frozen=True)
class OpenCLDevice:
    platform: str
    name: str
    kind: str  # "GPU", "CPU", "ACCELERATOR" or "OTHER"


# --------------------------------------------------------------------------- what is installed


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def vendors_dir() -> Path:
    """Where the ICD loader looks for vendor files (ocl-icd honours OCL_ICD_VENDORS)."""
    override = os.environ.get("OCL_ICD_VENDORS")
    return Path(override) if override and Path(override).is_dir() else DEFAULT_VENDORS_DIR


def nvidia_library_present() -> bool:
    """The NVIDIA driver's OpenCL library is loadable (the driver ships it; an ICD file may not)."""
    if ctypes.util.find_library("nvidia-opencl"):
        return True
    return any(Path(d, NVIDIA_OPENCL_LIB).exists() for d in
               ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64",
                "/usr/lib/aarch64-linux-gnu"))


def nvidia_registered(directory: Path) -> bool:
    try:
        return any("nvidia" in f.read_text().lower() for f in directory.glob("*.icd"))
    except OSError:
        return False


def nvidia_icd_hint(directory: Path | None = None, library_present: bool | None = None) -> str | None:
    """The exact fix when the NVIDIA OpenCL library exists but the ICD loader cannot see it."""
    directory = directory or vendors_dir()
    present = nvidia_library_present() if library_present is None else library_present
    if not present or nvidia_registered(directory):
        return None
    return (f"{NVIDIA_OPENCL_LIB} is installed but not registered in {directory}: "
            f"run `{NVIDIA_ICD_COMMAND}` (as root), then set {GPU_SELECTOR}")


_CL_DEVICE_TYPES = ((4, "GPU"), (2, "CPU"), (8, "ACCELERATOR"))


def icd_devices() -> list[OpenCLDevice]:
    """Every platform/device the OpenCL ICD loader offers (the same loader OpenCV opens).

    ctypes, so no clinfo or pyopencl is needed; empty when there is no loader or no platform.
    """
    try:
        lib = ctypes.CDLL("libOpenCL.so.1")
    except OSError:
        return []
    c_uint, c_void_p, c_size_t, c_ulong = ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
    lib.clGetPlatformIDs.argtypes = [c_uint, ctypes.POINTER(c_void_p), ctypes.POINTER(c_uint)]
    lib.clGetPlatformInfo.argtypes = [c_void_p, c_uint, c_size_t, c_void_p, ctypes.POINTER(c_size_t)]
    lib.clGetDeviceIDs.argtypes = [c_void_p, c_ulong, c_uint, ctypes.POINTER(c_void_p), ctypes.POINTER(c_uint)]
    lib.clGetDeviceInfo.argtypes = [c_void_p, c_uint, c_size_t, c_void_p, ctypes.POINTER(c_size_t)]

    def text(fn, handle, param) -> str:
        size = c_size_t()
        if fn(handle, param, 0, None, ctypes.byref(size)) != 0:
            return "?"
        buf = ctypes.create_string_buffer(size.value)
        fn(handle, param, size, buf, None)
        return buf.value.decode(errors="replace").strip()

    count = c_uint()
    if lib.clGetPlatformIDs(0, None, ctypes.byref(count)) != 0 or count.value == 0:
        return []
    platforms = (c_void_p * count.value)()
    lib.clGetPlatformIDs(count.value, platforms, None)
    devices = []
    for plat in platforms:
        plat_name = text(lib.clGetPlatformInfo, plat, 0x0902)  # CL_PLATFORM_NAME
        n = c_uint()
        if lib.clGetDeviceIDs(plat, 0xFFFFFFFF, 0, None, ctypes.byref(n)) != 0 or n.value == 0:
            continue
        ids = (c_void_p * n.value)()
        lib.clGetDeviceIDs(plat, 0xFFFFFFFF, n.value, ids, None)
        for dev in ids:
            dev_type = c_ulong()
            lib.clGetDeviceInfo(dev, 0x1000, ctypes.sizeof(dev_type), ctypes.byref(dev_type), None)  # CL_DEVICE_TYPE
            kind = next((label for bit, label in _CL_DEVICE_TYPES if dev_type.value & bit), "OTHER")
            devices.append(OpenCLDevice(plat_name, text(lib.clGetDeviceInfo, dev, 0x102B), kind))  # CL_DEVICE_NAME
    return devices


def opencv_device() -> OpenCLDevice | None:
    """The device OpenCV's transparent API runs UMat work on in this process, if any.

    Without OPENCV_OPENCL_DEVICE OpenCV only takes a GPU; ":CPU:" takes pocl, "disabled" none.
    """
    import cv2

    if not cv2.ocl.haveOpenCL():
        return None
    dev = cv2.ocl.Device.getDefault()
    if not dev.name() or not dev.available():
        return None
    cv2.ocl.setUseOpenCL(True)
    if not cv2.ocl.useOpenCL():
        return None
    kind = next((label for bit, label in _CL_DEVICE_TYPES if dev.type() & bit), "OTHER")
    return OpenCLDevice(dev.vendorName(), dev.name(), kind)


def no_device_message(requested: str = "opencl") -> str:
    """One line: why OpenCL cannot run and exactly what to do."""
    selector = os.environ.get(DEVICE_ENV)
    seen = "; ".join(f"{d.name} [{d.kind}]" for d in icd_devices()) or "none"
    parts = [f"motion backend '{requested}' needs an OpenCL device but OpenCV has none "
             f"({DEVICE_ENV}={selector!r}; devices the OpenCL loader offers: {seen})"]
    hint = nvidia_icd_hint()
    if hint:
        parts.append(hint)
    else:
        parts.append(f"on an NVIDIA machine: `{NVIDIA_ICD_COMMAND}` and {GPU_SELECTOR}; "
                     f'for pocl (correctness only): {DEVICE_ENV}=":CPU:"')
    parts.append("or set the motion recipe key backend: cpu (or auto); `curation-assets devices` shows what is seen")
    return "; ".join(parts)


# --------------------------------------------------------------------------- resolution


@functools.lru_cache(maxsize=None)
def resolve_backend(requested: str) -> ResolvedBackend:
    """What a requested backend runs as in this process; BackendError when it cannot run.

    Cached: OpenCV's device cannot change within a process.
    """
    if requested not in BACKENDS:
        raise BackendError(f"unknown motion backend {requested!r} (choose one of {', '.join(BACKENDS)})")
    if requested == "cpu":
        return ResolvedBackend("cpu", cpu_name())
    if requested == "torch" or (requested == "auto" and torch_cuda_available()):
        return _resolve_torch(requested)
    device = opencv_device()
    if requested == "auto":
        if device is None or device.kind != "GPU":
            return ResolvedBackend("cpu", cpu_name())
    elif device is None:
        raise BackendError(no_device_message(requested))
    _check_device_runs_farneback(device)
    return ResolvedBackend("opencl", device.name)


def torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def torch_flow_device() -> str:
    """The torch device the torch backend's flow runs on: CURATION_DEVICE, else cuda when torch sees one."""
    value = os.environ.get(TORCH_DEVICE_ENV, "auto").strip() or "auto"
    if value == "auto":
        return "cuda" if torch_cuda_available() else "cpu"
    return value


def _resolve_torch(requested: str) -> ResolvedBackend:
    import torch

    device = torch_flow_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise BackendError(f"motion backend {requested!r}: {TORCH_DEVICE_ENV}={device!r} is not a torch device ({exc}); "
                           "use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendError(f"motion backend {requested!r} was asked to run on {device!r} ({TORCH_DEVICE_ENV}) but "
                               "torch sees no CUDA device; unset it to run torch on the CPU, or set the motion recipe key "
                               "backend: cpu")
        name = torch.cuda.get_device_name(dev)
    elif dev.type == "cpu":
        name = cpu_name()
    else:
        name = str(dev)
    _check_torch_runs_farneback(device, requested)
    return ResolvedBackend("torch", name, device)


def _check_torch_runs_farneback(device: str, requested: str) -> None:
    """One small pair on the device before anything is decoded: a CUDA build without kernels
    for this GPU, or a device that cannot allocate, fails here in one line."""
    import torch

    from curation_assets.scorers.farneback_torch import FarnebackSettings, farneback_flow

    try:
        frames = torch.arange(2 * 48 * 64, dtype=torch.float32, device=device).remainder(251).view(2, 48, 64)
        flow = farneback_flow(frames[:1], frames[1:], FarnebackSettings(levels=1, iterations=1))
        if not bool(torch.isfinite(flow).all()):
            raise RuntimeError("non-finite flow")
    except Exception as exc:
        raise BackendError(f"motion backend {requested!r} cannot run Farneback on torch device {device!r}: "
                           f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}; set the motion recipe key "
                           "backend: cpu") from exc


def _check_device_runs_farneback(device: OpenCLDevice) -> None:
    """OpenCV quietly computes a UMat Farneback on the CPU when its OpenCL path declines
    (e.g. no float image support). Its float32 kernels never match the CPU's float64 result
    bit for bit on a textured pair, so an identical flow means the device did not run."""
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (96, 128), dtype=np.uint8), (0, 0), 2)
    moved = np.roll(base, (1, 2), axis=(0, 1))
    args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
    on_cpu = cv2.calcOpticalFlowFarneback(base, moved, *args)
    on_device = cv2.calcOpticalFlowFarneback(cv2.UMat(base), cv2.UMat(moved), *args).get()
    if np.array_equal(on_cpu, on_device):
        raise BackendError(f"OpenCV did not run Farneback on OpenCL device {device.name!r} (it fell back to the "
                           "CPU); set the motion recipe key backend: cpu, or check `curation-assets devices`")


# What a motion row's params record about how it ran, beside the MotionParams fields
RUN_KEYS = ("backend", "device", "decoder", "decoder_fallback", "flow_fallback")


def split_motion_row_params(params: dict) -> tuple[dict, str]:
    """A motion row's params: (the MotionParams fields, the backend that ran). Rows written
    before backends existed have no backend key: they ran on the CPU."""
    rest = {k: v for k, v in params.items() if k not in RUN_KEYS}
    return rest, params.get("backend", "cpu")


def pair_threads(backend: str, flow_threads: int) -> int:
    """Threads scoring pairs for one process: OpenCL keeps a few pairs in flight on the device."""
    return max(flow_threads, OPENCL_MIN_THREADS) if backend == "opencl" else flow_threads


# --------------------------------------------------------------------------- OpenCL pairs


def upload(gray: np.ndarray):
    """A gray frame on the device; uploaded once, used by both pairs it belongs to."""
    import cv2

    return cv2.UMat(gray)


def opencl_flow(prev, gray, farneback_args: tuple) -> np.ndarray:
    """Farneback of two uploaded frames on OpenCV's OpenCL device, copied back to the host;
    farneback_args are motion.farneback_args(params), the same as the CPU path's."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(prev, gray, None, *farneback_args)
    return flow.get()


# --------------------------------------------------------------------------- diagnosis


def device_report(backend: str = "auto") -> list[str]:
    """What `curation-assets devices` prints: the loader's devices, OpenCV's choice, the
    backends it leads to, and the NVIDIA ICD fix when it applies."""
    lines = [f"OpenCL devices the ICD loader offers (vendor files in {vendors_dir()}):"]
    devices = icd_devices()
    lines += [f"  {d.platform}: {d.name} [{d.kind}]" for d in devices] or ["  none"]
    selector = os.environ.get(DEVICE_ENV)
    try:
        device = opencv_device()
    except Exception as exc:  # a broken driver must not hide the rest of the report
        device = None
        lines.append(f"OpenCV's OpenCL failed: {type(exc).__name__}: {exc}")
    chosen = f"{device.name} [{device.kind}]" if device else "none"
    lines.append(f"OpenCV's OpenCL device ({DEVICE_ENV}={selector!r}): {chosen}")
    for name in BACKENDS:
        try:
            r = resolve_backend(name)
            note = ""
            if name == "auto" and r.backend != "torch" and device is not None and device.kind != "GPU":
                note = f" (a {device.kind} OpenCL device is for correctness checks, never chosen by auto)"
            if r.backend == "torch":
                note = f" (torch device {r.torch_device}" + (": slower than cpu, for checks)" if r.torch_device == "cpu" else ")")
            lines.append(f"motion backend {name}: runs {r.backend} on {r.device}{note}")
        except BackendError as exc:
            lines.append(f"motion backend {name}: cannot run here: {exc}")
    hint = nvidia_icd_hint()
    if hint:
        lines.append("NVIDIA: " + hint)
    elif device is None or device.kind != "GPU":
        lines.append(f"For OpenCL on a GPU: register its OpenCL ICD (NVIDIA: `{NVIDIA_ICD_COMMAND}`) and set {GPU_SELECTOR}.")
    return lines  # the GPU decoder's line: decoders.decoder_report (decoders build on this module)
