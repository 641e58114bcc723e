"""Learned models on a Ray cluster: one named, detached actor per model, shared by every run.

Each learned model lives in one actor (GPU when the cluster has one), loaded once and reused by
every shard and every run, so a node does not reload VideoBLIP per shard.

Model-actor lifetime: leases. Every process using an actor holds a lease on it under a
*holder* id (a `curation-assets run` invocation: one id for all its shard processes; any
other process, e.g. a step of a run launched by the daemon: its own host:pid), renewed by a
heartbeat thread. A lease ends when its holder releases it (the CLI at the end of its run; a
process at exit) or when its heartbeats stop for CURATION_RAY_LEASE_TTL_S (a killed process).
An actor exits, freeing its GPU memory, at once when `release_models` ends the last lease on
it (a CLI run's end), else after CURATION_RAY_MODEL_IDLE_S without any lease (the daemon's
runs: the next shard within that window reuses the loaded model). So one run ending never
kills an actor another run holds. Closing is atomic inside the actor: a lease asked of a closing actor is
refused and `load_model` starts a fresh one.

Knows nothing of Dagster. `ray` is imported only when the Ray engine is on.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from typing import Any, Callable, Sequence

from curation_assets.execution.ray_cluster import NAMESPACE, RayStepError, connect, enabled, init_error, reason

ACTOR_PREFIX = "curation-model:"
#: GPU share each model actor asks for when the cluster has GPUs (4 models fit one GPU).
GPUS_PER_MODEL_ENV = "CURATION_RAY_GPUS_PER_MODEL"
#: Who holds leases on model actors: `curation-assets run` sets one id for all its processes.
HOLDER_ENV = "CURATION_RAY_HOLDER"
#: A lease not renewed for this long is over (its holder died without releasing it).
LEASE_TTL_ENV = "CURATION_RAY_LEASE_TTL_S"
DEFAULT_LEASE_TTL_S = 60.0
#: A model actor nobody holds a lease on exits after this long (frees its GPU memory).
IDLE_ENV = "CURATION_RAY_MODEL_IDLE_S"
DEFAULT_IDLE_S = 600.0


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def lease_holder() -> str:
    """This process's holder id: the CLI run's (shared by its shard processes) or host:pid."""
    return os.environ.get(HOLDER_ENV) or f"{socket.gethostname()}:{os.getpid()}"


class ModelActor:
    """Holds one loaded model; every call is a method of it by name. Threaded (max_concurrency
    > 1) so lease calls never wait behind a long model call; model calls run one at a time."""

    def __init__(self, loader: Callable, args: tuple, kwargs: dict, holder: str | None = None,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S, idle_s: float = DEFAULT_IDLE_S):
        import ray

        t0 = time.perf_counter()
        self.model = loader(*args, **kwargs)
        self.load_seconds = time.perf_counter() - t0
        self.node_id = ray.get_runtime_context().get_node_id()
        self.calls = 0
        self._model_lock = threading.Lock()
        self._lock = threading.Lock()  # guards everything below
        self._ttl, self._idle_s = lease_ttl_s, idle_s
        # the creator holds a lease from birth: no other run's release can close the actor
        # between its creation and the creator's first acquire
        self._leases: dict[str, float] = {holder: time.monotonic() + lease_ttl_s} if holder else {}
        self._busy = 0
        self._idle_since: float | None = None if holder else time.monotonic()
        self._closing = False
        threading.Thread(target=self._reap_when_idle, name="model-actor-reaper", daemon=True).start()

    # ---- leases
    def acquire(self, holder: str) -> dict | None:
        """A lease for holder and the model's description; None when the actor is closing."""
        with self._lock:
            if self._closing:
                return None
            self._leases[holder] = time.monotonic() + self._ttl
            self._idle_since = None
        return self.describe()

    def renew(self, holder: str) -> bool:
        with self._lock:
            if self._closing:
                return False
            self._leases[holder] = time.monotonic() + self._ttl
            return True

    def release(self, holder: str, close: bool = True) -> dict:
        """Drop holder's lease. With close, an actor holder used and nobody else holds closes
        now (the caller then kills it); without, the idle time starts."""
        with self._lock:
            held = self._leases.pop(holder, None) is not None
            self._expire_locked()
            if close and held and not self._leases and not self._busy:
                self._closing = True
            return {**self._stats_locked(), "closing": self._closing, "held": held}

    def _expire_locked(self) -> None:
        now = time.monotonic()
        for h in [h for h, until in self._leases.items() if until < now]:
            del self._leases[h]
        if self._leases or self._busy:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now

    def _reap_when_idle(self) -> None:
        import ray

        period = max(0.2, min(5.0, self._idle_s / 4, self._ttl / 4))
        while True:
            time.sleep(period)
            with self._lock:
                if self._closing:
                    return
                self._expire_locked()
                if self._idle_since is None or time.monotonic() - self._idle_since < self._idle_s:
                    continue
                self._closing = True
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
            return

    # ---- the model
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
        with self._lock:
            self._busy += 1
            self._idle_since = None
        try:
            with self._model_lock:
                self.calls += 1
                return getattr(self.model, method)(*args, **kwargs)
        finally:
            with self._lock:
                self._busy -= 1

    def stats(self) -> dict:
        with self._lock:
            self._expire_locked()
            return self._stats_locked()

    def _stats_locked(self) -> dict:
        return {"node_id": self.node_id, "load_seconds": self.load_seconds, "calls": self.calls, "pid": os.getpid(),
                "holders": sorted(self._leases), "busy": self._busy}


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
                raise RayStepError(f"the model actor {self._name} was lost on the Ray cluster ({reason(exc)}); "
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
    get_if_exists, so every shard and run of a deployment shares one load; this process
    takes a lease on it (see the module's docstring). It asks for a GPU share when the
    cluster has GPUs and for no CPU otherwise (a model actor idles between calls; reserving a
    core for it would starve the decode tasks).
    """
    if not enabled():
        from curation_assets.models import registry

        mark = registry.load_mark()
        model = loader(*args, **kwargs)
        _LOCAL_LOADS[id(model)] = registry.loads_since(mark)
        return model
    import ray

    connect()
    name, holder = actor_name(loader, args, kwargs), lease_holder()
    actor_cls = ray.remote(ModelActor)
    deadline = time.monotonic() + 60
    while True:
        handle = actor_cls.options(
            name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, num_gpus=_gpus_per_model(), max_concurrency=8,
        ).remote(loader, tuple(args), dict(kwargs), holder,
                 _env_seconds(LEASE_TTL_ENV, DEFAULT_LEASE_TTL_S), _env_seconds(IDLE_ENV, DEFAULT_IDLE_S))
        try:
            info = ray.get(handle.acquire.remote(holder))
        except ray.exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False) or time.monotonic() > deadline:
                raise RayStepError(f"loading {loader.__qualname__} in a Ray actor failed: {init_error(exc)}") from exc
            info = None  # closed (or its node lost) between get_if_exists and acquire: start a new one
        if info is not None:
            break
        if time.monotonic() > deadline:
            raise RayStepError(f"the model actor {name} kept closing for 60 s; re-run the shard")
        time.sleep(0.2)  # the closing actor is being killed; its name is free in a moment
    _Leases.hold(name, handle, holder)
    return RemoteModel(name, handle, info)


class _Leases:
    """This process's leases: renewed by a heartbeat thread, released at process exit (unless
    they are a CLI run's, which `release_models` ends for all its processes at once)."""

    lock = threading.Lock()
    held: dict[tuple[str, str], Any] = {}  # (actor name, holder) -> handle
    thread: threading.Thread | None = None
    at_exit = False

    @classmethod
    def hold(cls, name: str, handle, holder: str) -> None:
        with cls.lock:
            cls.held[(name, holder)] = handle
            if cls.thread is None or not cls.thread.is_alive():
                cls.thread = threading.Thread(target=cls._heartbeat, name="model-lease-heartbeat", daemon=True)
                cls.thread.start()
            if not os.environ.get(HOLDER_ENV) and not cls.at_exit:
                cls.at_exit = True
                cls._release_at_exit()

    @classmethod
    def drop(cls, holder: str) -> None:
        with cls.lock:
            for key in [k for k in cls.held if k[1] == holder]:
                del cls.held[key]

    @classmethod
    def _heartbeat(cls) -> None:
        period = max(0.2, _env_seconds(LEASE_TTL_ENV, DEFAULT_LEASE_TTL_S) / 4)
        while True:
            time.sleep(period)
            with cls.lock:
                held = list(cls.held.items())
            for (_, holder), handle in held:
                try:
                    handle.renew.remote(holder)  # fire and forget: a gone actor has no lease to keep
                except Exception:
                    pass

    @classmethod
    def _release_at_exit(cls) -> None:
        """atexit for plain processes (before Ray's own shutdown hook, registered earlier);
        multiprocessing children (Dagster's step processes) skip atexit but run Finalize."""
        import atexit
        from multiprocessing import util

        atexit.register(cls.release_own)
        util.Finalize(None, cls.release_own, exitpriority=100)

    @classmethod
    def release_own(cls) -> None:
        with cls.lock:
            held, cls.held = dict(cls.held), {}
        for (_, holder), handle in held.items():
            _release(handle, holder, close=False)  # the next shard may come within the idle time


def _release(handle, holder: str, close: bool = True, timeout: float = 10) -> dict:
    """End holder's lease on one actor; with close, kill it when no lease is left. Returns its stats."""
    import ray

    try:
        stats = ray.get(handle.release.remote(holder, close), timeout=timeout)
    except Exception as exc:  # a dead or hung actor: nothing more to release
        return {"error": reason(exc)}
    if stats.get("closing"):
        ray.kill(handle, no_restart=True)
    return stats


# id(model) -> the loads the latest load_model call of it made in this process (local engine).
# A model step calls load_model, then placement_metadata for the same object, one step at a time.
_LOCAL_LOADS: dict[int, list] = {}


def placement_metadata(model: Any) -> dict:
    """What a model step records about where its model ran and what loading it cost.

    Ray engine: the node and actor, and the actor's one load time. Local engine: the loads
    this step made (0: the model was already in this process's memory, from an earlier shard
    or run of the same process), their seconds, and the process that holds the model, so the
    UI shows that a backfill loads each model once per worker process, not once per shard.
    A model's `model_loads` summed over a backfill's shards is its loads."""
    if isinstance(model, RemoteModel):
        return {"ray_node": model.placement()["node_id"], "ray_actor": model.placement()["actor"],
                "model_actor_load_s": round(float(model._info.get("load_seconds", 0.0)), 3)}
    loads = _LOCAL_LOADS.get(id(model))
    if loads is None:
        return {}
    # one load of the step's model, whatever parts it has (aesthetics: a CLIP backbone and a head)
    return {"model_loads": 1 if loads else 0,
            "model_load_s": round(sum(load.seconds for load in loads if not load.nested), 3),
            "model_process": os.getpid()}


def release_own_leases() -> None:
    """End this process's leases on model actors as its exit would (the idle time starts):
    a long-lived run worker calls it after each run, so the actors of a finished run are
    not held for as long as the worker lives."""
    if enabled():
        _Leases.release_own()


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


def release_models(holder: str | None = None) -> list[dict]:
    """End holder's (default: this process's) leases on every model actor of the deployment.
    An actor exits (freeing its GPU memory) only when no lease is left on it; one that another
    run still holds stays loaded for it; actors this holder never used are left alone. Returns,
    per actor it held: name, node id, load seconds, calls, `released` (it exited), `holders`
    (the runs keeping it)."""
    import ray

    if not ray.is_initialized():
        return []
    holder = holder or lease_holder()
    _Leases.drop(holder)
    out = []
    for name in _named_actors():
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            continue
        # an actor still loading for another run answers only after its load: not ours to wait for
        stats = _release(handle, holder, timeout=10)
        if "error" not in stats and stats["held"]:
            out.append({"name": name, **stats, "released": stats["closing"]})
    return out
