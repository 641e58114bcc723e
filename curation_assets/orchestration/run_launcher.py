"""The instance's run launcher: runs go to long-lived run workers on this machine.

dagster.yaml:
    run_launcher:
      module: curation_assets.orchestration.run_launcher
      class: RunWorkerLauncher

Every run the UI, the sensor, the schedule or a backfill launches (the daemon dequeues them
all under `dagster dev`) is handed to a run worker (execution/run_worker.py) instead of a
fresh process per run. With the definitions' in-process executor a worker runs all of a
shard's steps, so a run costs what `curation-assets run` costs per shard: the code location
is imported once per worker, not once per run and step, and each model loads once per
worker, not once per shard. Measured in docs/ui.md.

Terminate marks the run CANCELING; the process executing it interrupts itself (the worker
lives on). Run monitoring asks `check_run_worker_health`: the executing process (tag
`curation/run_process`, set by every path that executes runs here, the CLI's too) must still
be alive, else the run is failed.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Mapping

from dagster import DagsterRun
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from curation_assets import settings
from curation_assets.execution.dagster_run import RUN_PROCESS_TAG

WORKER_IDLE_ENV = "CURATION_RUN_WORKER_IDLE_S"
DEFAULT_WORKER_IDLE_S = 3600.0


def worker_idle_seconds() -> float:
    """$CURATION_RUN_WORKER_IDLE_S: an idle run worker exits after this long (its imports and
    any model it still holds go with it)."""
    return settings.positive_seconds(WORKER_IDLE_ENV, DEFAULT_WORKER_IDLE_S)


def check_settings() -> None:
    """Every setting of the run workers, so a bad one fails at start-up (ValueError, one line)."""
    from curation_assets.execution.run_worker import model_idle_seconds

    worker_idle_seconds()
    model_idle_seconds()


class RunWorkerLauncher(RunLauncher, ConfigurableClass):
    def __init__(self, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._pool = None
        self._lock = threading.Lock()
        check_settings()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data)

    # ------------------------------------------------------------------ launching
    def _workers(self):
        from dagster._serdes import serialize_value

        from curation_assets.execution.local_pool import WORKERS_ENV
        from curation_assets.execution.run_worker import INSTANCE_REF_ENV
        from curation_assets.execution.worker_pool import RunWorkerPool

        with self._lock:
            if self._pool is None:
                env = dict(os.environ, **{INSTANCE_REF_ENV: serialize_value(self._instance.get_ref())})
                self._pool = RunWorkerPool(on_lost=self._fail_lost_run, worker_idle_s=worker_idle_seconds(), env=env,
                                           decode_workers=WORKERS_ENV not in os.environ)
            return self._pool

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            raise ValueError(f"run {run.run_id} has no code origin: a run worker cannot load its job")
        worker, fresh = self._workers().submit(run.run_id, self._finished)
        self._instance.report_engine_event(
            f"Handed to run worker pid {worker.pid} "
            + ("(started for this run: it imports the code location first)" if fresh
               else f"(warm: run {worker.runs} of this worker; the models it loaded stay loaded)"),
            run, cls=self.__class__)

    def _finished(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        return run is None or run.is_finished

    def _fail_lost_run(self, run_id: str, why: str) -> None:
        run = self._instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            self._instance.report_run_failed(run, why)
        # the dead process cannot release the pool slots its steps held (e.g. `gpu`): free them
        # now, or the next run's model steps wait for the daemon's run monitoring (or forever)
        storage = self._instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run_id)

    # ------------------------------------------------------------------ terminating, health
    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        # the executing process polls its run's status and interrupts itself (dagster_run.py)
        self._instance.report_run_canceling(run)
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        from curation_assets.execution.worker_pool import process_start

        tag = run.tags.get(RUN_PROCESS_TAG)
        if not tag:  # not executed by a process of ours (or not yet tagged): nothing to judge
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run process recorded")
        host, pid, start = tag.split(" ")
        if host != socket.gethostname():
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run process on {host}, not visible from here")
        if process_start(int(pid)) == start:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run process pid {pid} is alive", run_worker_id=tag)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the process executing the run (pid {pid}) is gone",
                                    run_worker_id=tag)

    def dispose(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
