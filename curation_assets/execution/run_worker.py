"""A long-lived run worker: executes the Dagster runs its pool hands it, one after another.

    python -m curation_assets.execution.run_worker      (started by worker_pool.RunWorkerPool)

It imports the code location once and keeps the models its runs load (the process's model
cache, models/registry.py), so a backfill of N shards loads each model once per worker, not
once per shard. A model unused for $CURATION_MODEL_IDLE_S (default 600 s, as the Ray
engine's model actors) is dropped between runs and its memory, GPU memory included, given
back; the next run that needs it loads it again.

Protocol with the pool (one JSON object per line):
- in, on stdin: {"run_id": ..., "decode_workers": N?}; end of input (the pool closed it, or
  the process holding the pool is gone): finish the run in progress, then exit;
- out, on the file descriptor that was stdout at start: {"ready": pid}, {"started": run_id},
  {"finished": run_id, "status": ...}, {"evicted": [model, ...]}. Everything else the
  worker prints goes to stderr, which it shares with the daemon, like a run process.
A signal from outside (Ctrl-C in the terminal, SIGTERM to the process group) interrupts the
run in progress, which ends failed, and the worker exits.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

from curation_assets import settings

MODEL_IDLE_ENV = "CURATION_MODEL_IDLE_S"
DEFAULT_MODEL_IDLE_S = 600.0
INSTANCE_REF_ENV = "CURATION_RUN_WORKER_INSTANCE"  # the pool's instance, serialized


def model_idle_seconds() -> float:
    """$CURATION_MODEL_IDLE_S: seconds a loaded model may go unused before it is freed."""
    return settings.positive_seconds(MODEL_IDLE_ENV, DEFAULT_MODEL_IDLE_S)


def _read_lines(stream, inbox: queue.Queue) -> None:
    for line in stream:
        if line.strip():
            inbox.put(json.loads(line))
    inbox.put(None)  # end of input


def _log(message: str) -> None:
    print(f"run worker {os.getpid()}: {message}", file=sys.stderr, flush=True)


def _model_names(keys) -> str:
    return ", ".join(sorted({str(key[0]) if isinstance(key, tuple) and key else str(key) for key in keys})) or "none"


def serve(instance, inbox: queue.Queue, send, idle_s: float) -> None:
    """Run what arrives in `inbox` until it ends (None) or an outside interrupt."""
    from curation_assets.execution.dagster_run import ExternalInterrupt, execute_run
    from curation_assets.execution.local_pool import WORKERS_ENV
    from curation_assets.models import registry

    runs = 0
    check_every = max(0.5, min(30.0, idle_s / 4))
    while True:
        try:
            message = inbox.get(timeout=check_every)
        except queue.Empty:
            evicted = registry.evict_idle(idle_s)
            if evicted:
                _log(f"freed models unused for {idle_s:g} s: {_model_names(evicted)}")
                send({"evicted": [repr(key) for key in evicted]})
            continue
        if message is None:
            return
        run_id = message["run_id"]
        if message.get("decode_workers"):
            os.environ[WORKERS_ENV] = str(message["decode_workers"])
        runs += 1
        send({"started": run_id})
        run = instance.get_run_by_id(run_id)
        if run is not None:
            instance.report_engine_event(
                f"Run worker pid {os.getpid()} executes this run (run {runs} of this process; models already "
                f"loaded: {_model_names(registry.cached_keys())}).", run)
        t0 = time.perf_counter()
        try:
            ended = execute_run(instance, run_id)
            status = ended.status.value if ended is not None else "UNKNOWN"
        except ExternalInterrupt:
            send({"finished": run_id, "status": "INTERRUPTED"})
            _log(f"run {run_id[:8]} interrupted from outside; exiting")
            return
        except Exception as exc:  # the run could not even start here: fail it, keep serving
            status = "FAILURE"
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                instance.report_run_failed(run, f"run worker pid {os.getpid()} could not execute the run: "
                                                f"{type(exc).__name__}: {exc}")
        _log(f"run {run_id[:8]} {status} in {time.perf_counter() - t0:.1f} s (run {runs} of this worker)")
        send({"finished": run_id, "status": status})


def main() -> int:
    from dagster import DagsterInstance
    from dagster._serdes import deserialize_value

    # the protocol keeps the original stdout; anything printed (Dagster prints too) goes to stderr
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    send_lock = threading.Lock()

    def send(message: dict) -> None:
        with send_lock:
            proto.write(json.dumps(message) + "\n")
            proto.flush()

    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(sys.stdin, inbox), name="run-worker-inbox", daemon=True).start()
    ref = os.environ.get(INSTANCE_REF_ENV)
    try:
        with (DagsterInstance.from_ref(deserialize_value(ref)) if ref else DagsterInstance.get()) as instance:
            # the code location's imports now, while nothing waits on this worker
            from curation_assets.orchestration.run_origin import reconstructable_job  # noqa: F401
            import curation_assets.orchestration.definitions  # noqa: F401

            send({"ready": os.getpid()})
            serve(instance, inbox, send, model_idle_seconds())
    except KeyboardInterrupt:  # Ctrl-C while idle: nothing to clean up
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
