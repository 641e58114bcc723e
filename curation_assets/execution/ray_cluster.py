"""The Ray cluster as an engine: join it, check that an address joins, run decode tasks on it.

Chosen over dagster-ray's `ray_executor` (each Dagster step a Ray job) by measurement
(benchmarks/ray_benchmark.py, docs/clusters.md): a step-per-job executor starts
a fresh Python process per step, which re-imports the code location and reloads the step's
model for every 64-video shard. Here the Dagster run stays one process (the Ray driver); the
decode pass sends one Ray task per video (num_cpus=1), so Ray spreads a shard's videos over
every node's cores and no process pool of our own competes with Ray. Learned models live in
long-lived, shared actors (model_actors.py).

Knows nothing of Dagster. `ray` is imported only when the Ray engine is on.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable

from curation_assets.execution import deployment

NAMESPACE = "curation_assets"
#: Ray re-submits a task lost to a dead node this many times (0: the shard fails, readable, and
#: Dagster's run retry or a re-run of the CLI does it again; frames and rows are rewritten whole).
TASK_RETRIES_ENV = "CURATION_RAY_TASK_RETRIES"
RAY_JOIN_TIMEOUT_S = 15.0


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
        raise RayStepError(f"a {what} was lost on the Ray cluster ({reason(exc)}); nothing of this shard was "
                           "written: re-run it") from exc
    return [r for _, r in pairs], [n for n, _ in pairs]


def init_error(exc: BaseException) -> str:
    """The loader's own error (e.g. MissingWeightsError: ...): it reads best as itself. Ray puts
    it on the last line of the creation task's traceback, after colour codes and its frames."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    if getattr(exc, "actor_init_failed", False) and "\n" in text:
        lines = text.splitlines()
        start = max((i for i, line in enumerate(lines) if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", line)),
                    default=len(lines) - 1)
        return " ".join(" ".join(lines[start:]).split())[:600]
    return reason(exc)


def reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:240]}"


def check_joins(address: str) -> None:
    """After deployment.check's TCP probe: really join, or fail in one line naming --ray-address.

    ray.init keeps retrying for ~20 s when something other than Ray listens there: join from
    a daemon thread and give up after RAY_JOIN_TIMEOUT_S (the thread dies with the process)."""
    outcome: list = []

    def join() -> None:
        try:
            connect(address)
            outcome.append(None)
        except BaseException as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            outcome.append(exc)

    thread = threading.Thread(target=join, name="ray-join", daemon=True)
    thread.start()
    thread.join(RAY_JOIN_TIMEOUT_S)
    if not outcome:
        raise deployment.DeploymentError(f"--ray-address {address}: something answers there but no Ray cluster "
                                         f"joined within {RAY_JOIN_TIMEOUT_S:.0f} s (wrong port?)")
    if outcome[0] is not None:
        exc = outcome[0]
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise deployment.DeploymentError(f"--ray-address {address}: could not join the Ray cluster ({first})") from None
