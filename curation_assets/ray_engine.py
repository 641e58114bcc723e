"""Running a shard's heavy work on a Ray cluster: decode tasks and long-lived model actors.

Chosen over dagster-ray's `ray_executor` (each Dagster step a Ray job) by measurement
(benchmarks/ray_benchmark.py, README "Running on a cluster"): a step-per-job executor starts
a fresh Python process per step, which re-imports the code location and reloads the step's
model for every 64-video shard. Here the Dagster run stays one process (the Ray driver) and:

- the decode pass sends one Ray task per video (num_cpus=1), so Ray spreads a shard's videos
  over every node's cores; no process pool of our own competes with Ray;
- each learned model lives in one named, detached Ray actor (GPU when the cluster has one),
  loaded once and reused by every shard and every run until released, so a node does not
  reload VideoBLIP per shard.

Knows nothing of Dagster. `ray` is imported only when the Ray engine is on.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Callable, Iterable, Sequence

from curation_assets import deployment

NAMESPACE = "curation_assets"
ACTOR_PREFIX = "curation-model:"
#: Ray re-submits a task lost to a dead node this many times (0: the shard fails, readable, and
#: Dagster's run retry or a re-run of the CLI does it again; frames and rows are rewritten whole).
TASK_RETRIES_ENV = "CURATION_RAY_TASK_RETRIES"
#: GPU share each model actor asks for when the cluster has GPUs (4 models fit one GPU).
GPUS_PER_MODEL_ENV = "CURATION_RAY_GPUS_PER_MODEL"


class RayStepError(RuntimeError):
    """Work of a shard was lost with the Ray worker or node running it."""


def enabled() -> bool:
    return deployment.from_env().uses_ray


def connect(address: str | None = None) -> None:
    """Join the cluster once per process (the CLI, a shard worker, a Dagster run worker)."""
    import ray

    if ray.is_initialized():
        return
    address = address or deployment.from_env().ray_address
    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR",
             ignore_reinit_error=True)


def node_count() -> int:
    import ray

    return sum(1 for n in ray.nodes() if n.get("Alive"))


def _task_retries() -> int:
    return int(os.environ.get(TASK_RETRIES_ENV, "0"))


def _on_node(fn: Callable, item: Any) -> tuple[str, Any]:
    import ray

    import cv2

    cv2.setNumThreads(1)  # num_cpus=1 per task: one core each, as the local pool does
    return ray.get_runtime_context().get_node_id(), fn(item)


def map_on_ray(fn: Callable, items: Iterable, num_cpus: float = 1, what: str = "task") -> tuple[list, list[str]]:
    """fn over items as Ray tasks, in order; returns (results, node id per item)."""
    import ray

    connect()
    items = list(items)
    task = ray.remote(_on_node).options(num_cpus=num_cpus, max_retries=_task_retries())
    refs = [task.remote(fn, item) for item in items]
    try:
        pairs = ray.get(refs)
    except (ray.exceptions.RayError, ray.exceptions.RaySystemError) as exc:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise RayStepError(f"a {what} was lost on the Ray cluster ({_reason(exc)}); nothing of this shard was "
                           "written: re-run it") from exc
    return [r for _, r in pairs], [n for n, _ in pairs]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:240]}"


# ---- model actors ------------------------------------------------------------------------
class ModelActor:
    """Holds one loaded model; every call is a method of it by name."""

    def __init__(self, loader: Callable, args: tuple, kwargs: dict):
        import ray

        t0 = time.perf_counter()
        self.model = loader(*args, **kwargs)
        self.load_seconds = time.perf_counter() - t0
        self.node_id = ray.get_runtime_context().get_node_id()
        self.calls = 0

    def describe(self) -> dict:
        attrs = {}
        for name in dir(self.model):
            if name.startswith("_"):
                continue
            try:
                value = getattr(self.model, name)
            except Exception:
                continue
            if isinstance(value, (str, int, float, bool, type(None))):
                attrs[name] = value
        return {"attrs": attrs, "node_id": self.node_id, "load_seconds": self.load_seconds, "pid": os.getpid()}

    def call(self, method: str, args: tuple, kwargs: dict):
        self.calls += 1
        return getattr(self.model, method)(*args, **kwargs)

    def stats(self) -> dict:
        return {"node_id": self.node_id, "load_seconds": self.load_seconds, "calls": self.calls, "pid": os.getpid()}


class RemoteModel:
    """Looks like the loaded model: plain attributes copied once, methods run in the actor."""

    def __init__(self, name: str, handle, info: dict):
        self._name, self._handle, self._info = name, handle, info

    def __getattr__(self, name: str):
        attrs = self.__dict__.get("_info", {}).get("attrs", {})
        if name in attrs:
            return attrs[name]
        if name.startswith("_"):
            raise AttributeError(name)

        def remote_call(*args, **kwargs):
            import ray

            try:
                return ray.get(self._handle.call.remote(name, args, kwargs))
            except (ray.exceptions.RayActorError, ray.exceptions.RaySystemError) as exc:
                raise RayStepError(f"the model actor {self._name} was lost on the Ray cluster ({_reason(exc)}); "
                                   "nothing of this shard was written: re-run it") from exc

        return remote_call

    def placement(self) -> dict:
        return {"node_id": self._info["node_id"], "actor": self._name, "pid": self._info["pid"]}


def actor_name(loader: Callable, args: Sequence, kwargs: dict) -> str:
    key = repr((loader.__module__, loader.__qualname__, tuple(args), sorted(kwargs.items())))
    return f"{ACTOR_PREFIX}{loader.__qualname__}:{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _gpus_per_model() -> float:
    import ray

    if os.environ.get(GPUS_PER_MODEL_ENV):
        return float(os.environ[GPUS_PER_MODEL_ENV])
    return 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def load_model(loader: Callable, *args, **kwargs):
    """The loaded model: in this process (local engine), or a handle on its Ray actor.

    The actor is named by the loader and its arguments, detached and fetched with
    get_if_exists, so every shard and run of a deployment shares one load. It asks for a GPU
    share when the cluster has GPUs and for no CPU otherwise (a model actor idles between
    calls; reserving a core for it would starve the decode tasks).
    """
    if not enabled():
        return loader(*args, **kwargs)
    import ray

    connect()
    name = actor_name(loader, args, kwargs)
    actor_cls = ray.remote(ModelActor)
    handle = actor_cls.options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=0, num_gpus=_gpus_per_model(), max_restarts=1,
    ).remote(loader, tuple(args), dict(kwargs))
    try:
        info = ray.get(handle.describe.remote())
    except ray.exceptions.RayActorError as exc:
        cause = exc.__cause__ or exc
        # the loader's own error (e.g. MissingWeightsError) reads best as itself
        raise RayStepError(f"loading {loader.__qualname__} in a Ray actor failed: {_reason(cause)}") from exc
    return RemoteModel(name, handle, info)


def placement_metadata(model: Any) -> dict:
    """What a model step records about where it ran (empty on the local engine)."""
    if isinstance(model, RemoteModel):
        return {"ray_node": model.placement()["node_id"], "ray_actor": model.placement()["actor"]}
    return {}


def actor_stats() -> dict[str, dict]:
    """name -> node id, load seconds, calls, pid of every live model actor (for benchmarks)."""
    import ray

    connect()
    out = {}
    for name in _named_actors():
        try:
            out[name] = ray.get(ray.get_actor(name, namespace=NAMESPACE).stats.remote())
        except Exception:
            continue
    return out


def _named_actors() -> list[str]:
    import ray

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == NAMESPACE and a["name"].startswith(ACTOR_PREFIX)]


def release_models() -> list[dict]:
    """Kill this deployment's model actors (frees GPU memory); returns each one's stats
    (name, node id, load seconds, calls): one load per actor is one load per run."""
    import ray

    if not ray.is_initialized():
        return []
    released = []
    for name in _named_actors():
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            continue
        try:
            stats = ray.get(handle.stats.remote(), timeout=30)
        except Exception as exc:  # a dead actor still gets killed
            stats = {"error": _reason(exc)}
        ray.kill(handle, no_restart=True)
        released.append({"name": name, **stats})
    return released
