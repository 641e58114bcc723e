"""Where model weights come from, which device runs them, and the one-per-process cache.

Profiles:
- `real`: the public models by their ids, loaded offline from $CURATION_MODEL_DIR or the
  Hugging Face / open_clip cache. Missing weights raise MissingWeightsError at once, naming
  the weights and how to provide them; nothing ever waits on the network.
- `tiny`: small random-weight models of the same classes, built from configs, for tests
  and CI. Their scores are noise; the profile is recorded with every row so they can never
  be mistaken for real scores.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

PROFILE_ENV = "CURATION_MODEL_PROFILE"
MODEL_DIR_ENV = "CURATION_MODEL_DIR"
DEVICE_ENV = "CURATION_DEVICE"
PROFILES = ("real", "tiny")

Profile = Literal["real", "tiny"]


class MissingWeightsError(RuntimeError):
    """Raised before any scoring starts, so an asset fails whole instead of writing partial rows."""


def default_profile() -> str:
    profile = os.environ.get(PROFILE_ENV, "real")
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r}: expected one of {PROFILES}")
    return profile


def default_model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV)
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class ModelSettings:
    profile: str = field(default_factory=default_profile)
    model_dir: Path | None = field(default_factory=default_model_dir)
    device: str = "auto"  # auto -> cuda when available, else cpu
    batch_size: int = 32
    dtype: str = "auto"  # auto -> float16 on cuda, float32 on cpu

    def resolved_device(self) -> str:
        return resolve_device(self.device if self.device != "auto" else os.environ.get(DEVICE_ENV, "auto"))

    def torch_dtype(self):
        import torch

        if self.dtype == "auto":
            return torch.float16 if self.resolved_device().startswith("cuda") else torch.float32
        return getattr(torch, self.dtype)

    def cache_key(self) -> tuple:
        return (self.profile, str(self.model_dir), self.resolved_device(), self.dtype)


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def missing_weights(what: str, looked_in: list[str], how: str, problem: str = "weights not found") -> MissingWeightsError:
    places = "\n  ".join(looked_in)
    return MissingWeightsError(
        f"{what}: {problem}. Looked in:\n  {places}\n{how}\n"
        f"For tests and CI without weights, use the random-weight profile: {PROFILE_ENV}=tiny."
    )


def hf_hub_cache_dir() -> Path:
    """The hub cache huggingface_hub would use, resolved from the environment *now*.

    (huggingface_hub reads HF_HOME / HF_HUB_CACHE once at import; reading them here keeps a
    later change, e.g. a test's HF_HOME, effective.)
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


_CACHE: dict[tuple, Any] = {}
_LAST_USED: dict[tuple, float] = {}  # key -> time.monotonic() of its last use
_LOADS: list["ModelLoad"] = []  # every load this process made, in order
_LOCK = threading.RLock()  # re-entrant: a loader may load another cached model (aesthetics -> CLIP)
_DEPTH = threading.local()  # loads in progress on this thread: a nested load's time is inside its caller's


@dataclass(frozen=True)
class ModelLoad:
    key: tuple
    seconds: float
    nested: bool  # loaded by another model's loader (its time is counted in that load too)


def cached_model(key: tuple, factory: Callable[[], Any]) -> Any:
    """Load once per process, reuse across videos, shards, assets and runs of the process;
    a long-lived process frees models unused for a while with `evict_idle`."""
    with _LOCK:
        if key not in _CACHE:
            depth = getattr(_DEPTH, "n", 0)
            _DEPTH.n = depth + 1
            t0 = time.perf_counter()
            try:
                _CACHE[key] = factory()
            finally:
                _DEPTH.n = depth
            _LOADS.append(ModelLoad(key, time.perf_counter() - t0, nested=depth > 0))
        _LAST_USED[key] = time.monotonic()
        return _CACHE[key]


def load_mark() -> int:
    """A position in this process's load history, for `loads_since`."""
    with _LOCK:
        return len(_LOADS)


def loads_since(mark: int) -> list[ModelLoad]:
    with _LOCK:
        return list(_LOADS[mark:])


def loads_of(key: tuple) -> int:
    """How many times this process has loaded `key` (more than once only after an eviction)."""
    with _LOCK:
        return sum(1 for load in _LOADS if load.key == key)


def cached_keys() -> list[tuple]:
    with _LOCK:
        return list(_CACHE)


def touch_used_since(since: float) -> None:
    """Models used at or after `since` (time.monotonic) count as used until now: a run holds
    the models its steps fetched until the run ends, not only at the fetch."""
    now = time.monotonic()
    with _LOCK:
        for key, used in _LAST_USED.items():
            if used >= since:
                _LAST_USED[key] = now


def evict_idle(idle_s: float) -> list[tuple]:
    """Drop the models unused for `idle_s` seconds and give their memory back (accelerator
    memory too); returns their keys. Call it between runs, never while a step holds a model."""
    now = time.monotonic()
    with _LOCK:
        keys = [key for key in _CACHE if now - _LAST_USED.get(key, now) >= idle_s]
        for key in keys:
            del _CACHE[key]
            _LAST_USED.pop(key, None)
    if keys:
        free_memory()
    return keys


def free_memory() -> None:
    """Collect the dropped models now and hand the CUDA allocator's cached blocks back to the
    driver (torch keeps them reserved otherwise, so other processes could not use them)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to free nothing
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
        _LAST_USED.clear()
