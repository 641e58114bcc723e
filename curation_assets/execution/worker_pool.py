"""A pool of long-lived run workers (run_worker.py) on this machine, started on demand.

Held by the run launcher in the process that launches runs (the daemon, under `dagster dev`).
A run goes to an idle worker, else to a new one; each worker executes one run at a time, so
the run queue's limit (dagster.yaml `max_concurrent_runs`) bounds how many work at once. A
worker idle for `worker_idle_s`, or started before the project's code changed on disk, is
asked to exit. A worker that dies mid-run (killed, out of memory) has its run reported
through `on_lost`; the next run gets a fresh worker. Closing the pool (or the process that
holds it exiting) ends every worker's input: each finishes the run it has, then exits.

Knows nothing of Dagster's run launcher API; run_launcher.py adapts it.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from curation_assets.settings import PROJECT_ROOT

CODE_DIR = PROJECT_ROOT / "curation_assets"
FINISH_WAIT_S = 10.0  # a worker whose run ended in the instance reports back within this


def code_version(root: Path = CODE_DIR) -> str:
    """The project's Python files as they are on disk now (paths, sizes, mtimes): a worker
    started under another version runs stale code and is replaced."""
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                entries.append(f"{folder}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (None if no such process): with the pid, it names a
    process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if not Path("/proc").is_dir():  # no procfs: the pid alone
            try:
                os.kill(pid, 0)
                return "unknown"
            except OSError:
                return None
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # state, ..., starttime (field 22)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {returncode}"


@dataclass
class Worker:
    proc: subprocess.Popen
    code: str
    started: str  # process_start of its pid
    run_id: str | None = None
    runs: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    closing: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """End its input: it finishes the run it has, then exits."""
        self.closing = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class RunWorkerPool:
    def __init__(self, on_lost: Callable[[str, str], None], worker_idle_s: float, env: dict | None = None,
                 decode_workers: bool = True, log: Callable[[str], None] | None = None):
        """`on_lost(run_id, why)`: a worker died while it had that run. `decode_workers`: split
        this machine's cores between the runs in progress ($CURATION_WORKERS per run), as
        `curation-assets run` splits them between its shard processes."""
        self._on_lost, self._idle_s, self._env = on_lost, worker_idle_s, env
        self._split_cores = decode_workers
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._cond = threading.Condition()
        self._workers: list[Worker] = []
        self._closed = False
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------------ handing out runs
    def submit(self, run_id: str, run_finished: Callable[[str], bool] = lambda _: False) -> tuple[Worker, bool]:
        """Hand `run_id` to a worker; returns (worker, whether it was started for this run).
        `run_finished(run_id)`: whether a run has ended in the instance (a worker reports its
        end a moment later; waiting for it beats starting one more worker)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the run worker pool is closed")
            self._retire_locked()
            worker = self._idle_locked()
            deadline = time.monotonic() + FINISH_WAIT_S
            while worker is None and time.monotonic() < deadline and any(
                    w.run_id and run_finished(w.run_id) for w in self._workers if not w.closing):
                self._cond.wait(0.2)
                worker = self._idle_locked()
            fresh = worker is None
            if fresh:
                worker = self._start_locked()
            worker.run_id, worker.runs = run_id, worker.runs + 1
            message: dict = {"run_id": run_id}
            if self._split_cores:
                busy = sum(1 for w in self._workers if w.run_id)
                message["decode_workers"] = max(1, (os.cpu_count() or 1) // busy)
            try:
                worker.send(message)
            except OSError:  # it died between the check and the send: its reader reports the run
                pass
            return worker, fresh

    def worker_of(self, run_id: str) -> Worker | None:
        with self._cond:
            return next((w for w in self._workers if w.run_id == run_id), None)

    def workers(self) -> list[Worker]:
        with self._cond:
            return list(self._workers)

    def _idle_locked(self) -> Worker | None:
        idle = [w for w in self._workers if w.run_id is None and not w.closing and w.proc.poll() is None]
        # the most recently used: its models are the likeliest to be loaded still
        return max(idle, key=lambda w: w.idle_since) if idle else None

    def _retire_locked(self) -> None:
        now, code = time.monotonic(), code_version()
        for w in self._workers:
            if w.run_id is None and not w.closing and (w.code != code or now - w.idle_since > self._idle_s):
                self._log(f"run worker {w.pid}: asked to exit ("
                          + ("the code changed on disk" if w.code != code else f"idle {now - w.idle_since:.0f} s") + ")")
                w.close()

    def _start_locked(self) -> Worker:
        env = dict(os.environ if self._env is None else self._env)
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen([sys.executable, "-m", "curation_assets.execution.run_worker"], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        worker = Worker(proc, code_version(), process_start(proc.pid) or "unknown")
        self._workers.append(worker)
        threading.Thread(target=self._read, args=(worker,), name=f"run-worker-{proc.pid}", daemon=True).start()
        if self._reaper is None:
            atexit.register(self.close)
            self._reaper = threading.Thread(target=self._reap, name="run-worker-reaper", daemon=True)
            self._reaper.start()
        self._log(f"run worker {proc.pid}: started ({len(self._workers)} in the pool)")
        return worker

    # ------------------------------------------------------------------ what workers say
    def _read(self, worker: Worker) -> None:
        for line in worker.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "finished" in message:
                with self._cond:
                    if worker.run_id == message["finished"]:
                        worker.run_id, worker.idle_since = None, time.monotonic()
                    self._cond.notify_all()
        returncode = worker.proc.wait()
        with self._cond:
            lost = worker.run_id
            worker.run_id = None
            if worker in self._workers:
                self._workers.remove(worker)
            self._cond.notify_all()
        if lost:
            self._on_lost(lost, f"the run worker (pid {worker.pid}) {describe_exit(returncode)} during this run; "
                                "the next run starts in a fresh worker")
        elif not worker.closing:
            self._log(f"run worker {worker.pid}: {describe_exit(returncode)}")

    def _reap(self) -> None:
        period = max(1.0, min(60.0, self._idle_s / 4))
        while True:
            time.sleep(period)
            with self._cond:
                if self._closed:
                    return
                self._retire_locked()

    # ------------------------------------------------------------------ the end
    def close(self) -> None:
        """Every worker finishes the run it has, then exits; idle ones exit now."""
        with self._cond:
            self._closed = True
            workers = list(self._workers)
        for w in workers:
            w.close()
