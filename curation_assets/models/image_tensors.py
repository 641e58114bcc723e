"""CLIP-style image preprocessing as batched torch tensors on the model's device.

open_clip's eval transform works on one PIL image at a time on one CPU thread (resize the
short side to 224 with antialiased bicubic, centre crop 224x224, scale to 0..1, normalize
with the CLIP mean/std). On a GPU that loop, not the network, sets the pace. This module does
the same steps on tensors:

1. frames (RGB uint8 HxWx3 arrays) go to the device as uint8 (a third of float32's bytes),
   grouped by size so that each group is resized by one call;
2. resize: ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``, the separable
   antialiased filter PIL uses, to torchvision's output size (short side = size, long side =
   ``int(size * long / short)``). On the CPU torch resizes uint8 directly (its
   PIL-compatible fixed-point kernel: within one grey level of PIL and several times faster
   than PIL). Where uint8 is not supported (CUDA) it resizes float32 and rounds/clamps to
   0..255, as PIL's uint8 output is;
3. centre crop with torchvision's offsets (``int(round((h - crop) / 2))``);
4. /255, (x - mean) / std, cast to the model's input dtype: one (N, 3, crop, crop) batch.

Only open_clip's default eval shape is handled (Resize(int) + CenterCrop + Normalize, i.e.
resize_mode 'shortest' with a square size); :func:`from_open_clip` returns None for anything
else and callers keep the PIL transform.

torch is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

_UINT8_RESIZE_OK: dict[str, bool] = {}  # device type -> whether uint8 bicubic-aa resize works there


@dataclass(frozen=True)
class TensorPreprocess:
    """Resize short side to `resize`, centre crop `crop`, normalize with `mean`/`std`."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"  # 'bicubic' or 'bilinear' (open_clip's two eval modes)
    squash: bool = False  # True: resize to resize x resize whatever the aspect (BLIP's processor)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's Resize(int) size for an (h, w) image: short side -> resize."""
        if self.squash:
            return (self.resize, self.resize)
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def __call__(self, frames: Sequence[Any], device: str = "cpu", dtype: Any = None):
        """RGB uint8 (H, W, 3) frames -> normalized (N, 3, crop, crop) tensor on `device`."""
        import torch

        arrays = [_as_rgb_uint8(f) for f in frames]
        dtype = dtype or torch.float32
        out = torch.empty((len(arrays), 3, self.crop, self.crop), dtype=torch.float32, device=device)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, arr in enumerate(arrays):
            by_size.setdefault(arr.shape[:2], []).append(i)
        for (height, width), idx in by_size.items():
            batch = torch.from_numpy(np.stack([arrays[i] for i in idx])).to(device, non_blocking=True)
            batch = batch.permute(0, 3, 1, 2)  # (n, 3, h, w) uint8, channels-last in memory
            resized = self._resize(batch, self.output_size(height, width))
            top = int(round((resized.shape[-2] - self.crop) / 2.0))
            left = int(round((resized.shape[-1] - self.crop) / 2.0))
            out[idx] = resized[..., top : top + self.crop, left : left + self.crop].float()
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return ((out / 255.0 - mean) / std).to(dtype)

    def _resize(self, batch, size: tuple[int, int]):
        """uint8 (n, 3, h, w) -> resized values in 0..255 (uint8 or rounded float32)."""
        import torch
        from torch.nn.functional import interpolate

        kwargs = dict(size=size, mode=self.interpolation, antialias=True, align_corners=False)
        device_type = batch.device.type
        if _UINT8_RESIZE_OK.get(device_type, True):
            try:
                resized = interpolate(batch, **kwargs)
                _UINT8_RESIZE_OK[device_type] = True
                return resized
            except (RuntimeError, NotImplementedError):  # no uint8 kernel on this device
                _UINT8_RESIZE_OK[device_type] = False
        resized = interpolate(batch.to(torch.float32), **kwargs)
        return resized.round_().clamp_(0.0, 255.0)


def _as_rgb_uint8(frame: Any) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]  # as PIL's RGBA -> RGB convert
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB frame HxWx3, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def from_open_clip(preprocess: Any) -> TensorPreprocess | None:
    """The tensor equivalent of an open_clip eval transform, or None when it has another shape.

    Accepts exactly Compose([Resize(int, bicubic|bilinear), CenterCrop(square), <mode/tensor
    conversions>, Normalize]).
    """
    from torchvision import transforms as T

    steps = list(getattr(preprocess, "transforms", []) or [])
    resize = next((s for s in steps if type(s) is T.Resize), None)
    crop = next((s for s in steps if type(s) is T.CenterCrop), None)
    norm = next((s for s in steps if type(s) is T.Normalize), None)
    known = {T.Resize, T.CenterCrop, T.Normalize}
    others = [s for s in steps if type(s) not in known and type(s).__name__ not in ("MaybeConvertMode", "MaybeToTensor",
                                                                                      "ToTensor", "_convert_to_rgb")]
    if resize is None or crop is None or norm is None or others:
        return None
    size = resize.size
    if isinstance(size, (list, tuple)):
        if len(size) != 1:
            return None
        size = size[0]
    if getattr(resize, "max_size", None) is not None:
        return None
    mode = getattr(resize.interpolation, "value", str(resize.interpolation))
    if mode not in ("bicubic", "bilinear"):
        return None
    crop_size = crop.size if isinstance(crop.size, (list, tuple)) else (crop.size, crop.size)
    if len(crop_size) != 2 or crop_size[0] != crop_size[1] or int(size) < int(crop_size[0]):
        return None  # (a crop larger than the resized image would pad: not handled here)
    mean, std = tuple(float(x) for x in norm.mean), tuple(float(x) for x in norm.std)
    if len(mean) != 3 or len(std) != 3:
        return None
    return TensorPreprocess(resize=int(size), crop=int(crop_size[0]), mean=mean, std=std, interpolation=mode)


def from_blip_processor(processor: Any) -> TensorPreprocess | None:
    """The tensor equivalent of transformers' BLIP image processor (resize to HxW ignoring the
    aspect, bicubic; x/255; normalize), or None when it is configured otherwise."""
    size = getattr(processor, "size", None)
    height = getattr(size, "height", None) if not isinstance(size, dict) else size.get("height")
    width = getattr(size, "width", None) if not isinstance(size, dict) else size.get("width")
    resample = int(getattr(processor, "resample", -1))
    modes = {3: "bicubic", 2: "bilinear"}  # PIL's Resampling values
    if not (getattr(processor, "do_resize", False) and height and height == width and resample in modes):
        return None
    if not getattr(processor, "do_rescale", False) or abs(float(processor.rescale_factor) - 1 / 255) > 1e-12:
        return None
    if not getattr(processor, "do_normalize", False) or getattr(processor, "do_center_crop", None) or getattr(
            processor, "do_pad", None):
        return None
    mean, std = tuple(float(x) for x in processor.image_mean), tuple(float(x) for x in processor.image_std)
    if len(mean) != 3 or len(std) != 3:
        return None
    return TensorPreprocess(resize=int(height), crop=int(height), mean=mean, std=std, interpolation=modes[resample],
                            squash=True)
