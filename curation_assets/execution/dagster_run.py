"""Executes one Dagster run, already created in the instance, in this process.

The one run body of every path: a run worker (run_worker.py) executing the runs the UI, the
sensor, the schedule and backfills launch, and `curation-assets run` executing its shards.
It is what `dagster api execute_run` does in a fresh process, made safe to repeat in a
long-lived one: the code location's module is imported anew for each run (the recipe is read
as a fresh process would read it; the heavy imports and loaded models stay), a cancel from
the UI interrupts the run and not the process, and after the run the models it used start
their idle time and its Ray model leases end.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import nullcontext

from curation_assets.execution import model_actors
from curation_assets.models import registry


RUN_PROCESS_TAG = "curation/run_process"  # "host pid start" of the process executing the run


def this_process_tag() -> str:
    """Names this process even after its pid is reused: run monitoring checks it is alive."""
    import socket

    from curation_assets.execution.worker_pool import process_start

    return f"{socket.gethostname()} {os.getpid()} {process_start(os.getpid()) or 'unknown'}"


class ExternalInterrupt(KeyboardInterrupt):
    """The run was interrupted by a signal from outside (Ctrl-C, SIGTERM), not by a cancel:
    the process is being stopped."""


def reload_code_location(job_code_origin) -> None:
    """Forget the code location's module and Dagster's cached definitions, so the next load
    builds the definitions from the environment and the data dir's recipe as they are now
    (building them takes ~25 ms; the modules they import stay loaded)."""
    from dagster._core.definitions.reconstruct import ReconstructableJob

    module = getattr(job_code_origin.repository_origin.code_pointer, "module", None)
    if module:
        sys.modules.pop(module, None)
    # Dagster keeps the latest definition per equal ReconstructableJob: a later run of the same
    # job would get the one built for an earlier run
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()


class _CancelWatch:
    """Interrupts this process's main thread when the run is canceled (the UI's Terminate:
    the run launcher marks it CANCELING), as the code server's run processes are interrupted.
    Only while the run executes: an interrupt must never reach the process between runs."""

    def __init__(self, instance_ref, run_id: str, poll_s: float):
        self._ref, self._run_id, self._poll_s = instance_ref, run_id, poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._executing = True
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name="run-cancel-watch", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._executing = False
        self._stop.set()
        self._thread.join(timeout=30)

    def _watch(self) -> None:
        from dagster import DagsterInstance, DagsterRunStatus
        from dagster_shared.ipc import send_interrupt

        ending = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)
        with DagsterInstance.from_ref(self._ref) as instance:
            while not self._stop.wait(self._poll_s):
                run = instance.get_run_by_id(self._run_id)
                if run is not None and run.status in ending:
                    with self._lock:
                        if self._executing:
                            self.fired = True
                            send_interrupt()
                    return


def execute_run(instance, run_id: str):
    """Execute the run `run_id` here; returns it as it ended (DagsterRun). Failures are the
    run's (in its event log), never raised; an interrupt from outside raises ExternalInterrupt
    after the run is marked failed."""
    from dagster import DagsterRun
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._grpc.impl import core_execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster._utils.interrupts import capture_interrupts

    run = instance.get_run_by_id(run_id)
    if not isinstance(run, DagsterRun) or run.job_code_origin is None:
        raise ValueError(f"run {run_id} is not in the instance, or has no code origin to load its job from")
    instance.add_run_tags(run_id, {RUN_PROCESS_TAG: this_process_tag()})
    run = instance.get_run_by_id(run_id)
    reload_code_location(run.job_code_origin)
    recon_job = recon_job_from_origin(run.job_code_origin)
    used_since = time.monotonic()
    external = False
    in_main = threading.current_thread() is threading.main_thread()
    with capture_interrupts():  # SIGINT/SIGTERM become Dagster's interrupt at its checkpoints
        watch = _CancelWatch(instance.get_ref(), run_id, instance.cancellation_thread_poll_interval_seconds) \
            if in_main else None
        try:
            with watch if watch else nullcontext():
                for _ in core_execute_run(recon_job, run, instance, inject_env_vars=False):
                    pass
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            external = not (watch and watch.fired)
        except Exception:
            pass  # core_execute_run reported it in the run's event log and failed the run
    registry.touch_used_since(used_since)  # the run held its models until now
    if not os.environ.get(model_actors.HOLDER_ENV):
        # a run worker's leases end with each run; a `curation-assets run` call holds its
        # leases across its shards and ends them itself (shard_runner), reporting each actor
        model_actors.release_own_leases()
    if external:
        raise ExternalInterrupt()
    return instance.get_run_by_id(run_id)

