"""Runs launched through the instance (what the UI, the sensor, the schedule and backfills do)
execute on long-lived run workers: the same rows and code versions as `curation-assets run`,
each model loaded once per worker (not once per shard) and freed after its idle time, a
killed worker's run failed readably and the next run on a fresh worker.

The slow test launches real runs with the project's dagster.yaml (its RunWorkerLauncher) in
a throwaway instance, without `dagster dev` (the UI test launches through the daemon).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from curation_assets.models import registry
from score_tables import SCORE_TABLES

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODEL_ASSETS = ("captions", "clip_similarity", "aesthetics", "ocr_area")


# --------------------------------------------------------------------------- the model cache


def test_the_model_cache_counts_loads_and_frees_idle_models():
    registry.clear_cache()
    try:
        mark = registry.load_mark()
        inner = registry.cached_model(("inner",), lambda: object())
        outer = registry.cached_model(("outer",), lambda: [registry.cached_model(("nested",), lambda: object())])
        assert registry.cached_model(("inner",), lambda: pytest.fail("loaded twice")) is inner
        loads = registry.loads_since(mark)
        assert [load.key for load in loads] == [("inner",), ("nested",), ("outer",)]
        assert [load.nested for load in loads] == [False, True, False]  # its time is inside outer's
        assert registry.evict_idle(3600) == []  # all used just now
        time.sleep(0.05)
        since = time.monotonic()
        registry.cached_model(("outer",), lambda: pytest.fail("loaded twice"))  # a run uses outer only
        registry.touch_used_since(since)
        assert sorted(registry.evict_idle(0.04)) == [("inner",), ("nested",)]
        assert registry.cached_keys() == [("outer",)] and outer
        assert registry.cached_model(("inner",), lambda: "again") == "again"  # freed: the next use loads it
        assert registry.loads_of(("inner",)) == 2
    finally:
        registry.clear_cache()


def test_an_idle_run_worker_frees_its_models_and_says_so():
    """The worker's loop between runs (run_worker.serve): models unused for the idle time are
    dropped and reported to the pool; input's end stops it."""
    import queue
    import threading

    from curation_assets.execution import run_worker

    registry.clear_cache()
    try:
        registry.cached_model(("captioner", "tiny"), lambda: object())
        inbox, sent = queue.Queue(), []
        loop = threading.Thread(target=run_worker.serve, args=(None, inbox, sent.append, 0.6))
        loop.start()
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:
            time.sleep(0.1)
        inbox.put(None)
        loop.join(timeout=10)
        assert not loop.is_alive()
        assert sent == [{"evicted": [repr(("captioner", "tiny"))]}] and registry.cached_keys() == []
    finally:
        registry.clear_cache()


# --------------------------------------------------------------------------- settings and the CLI


@pytest.mark.parametrize("name, value", [("CURATION_MODEL_IDLE_S", "ten"), ("CURATION_RUN_WORKER_IDLE_S", "0")])
def test_a_bad_worker_setting_stops_the_ui_at_start_up_in_one_line(tmp_path, name, value):
    env = dict(os.environ, **{name: value}, DAGSTER_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    # a subprocess in a session of its own: were the check missing, `dagster dev` would start (and be stopped here)
    proc = subprocess.Popen([str(BIN / "curation-assets"), "ui", "--data-dir", str(tmp_path / "data")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0 and err.strip().startswith(f"error: {name}={value!r}"), err


def test_every_cli_option_has_help():
    import argparse

    from curation_assets.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, sub in subparsers.choices.items() for action in sub._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert missing == []
    host = next(a for a in subparsers.choices["ui"]._actions if "--host" in a.option_strings)
    assert host.default == "127.0.0.1"


def test_an_unedited_old_instance_file_is_brought_up_to_date(tmp_path, monkeypatch):
    from curation_assets.orchestration import instance

    old = subprocess.run(["git", "-C", str(REPO_ROOT), "show", "3f08cf8:dagster.yaml"], capture_output=True, text=True)
    if old.returncode != 0:
        pytest.skip("no git history here")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(old.stdout)
    assert instance.launcher_note(home) is not None  # a process per run
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance.ensure_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text() == instance.INSTANCE_TEMPLATE.read_text()
    assert instance.launcher_note(home) is None
    edited = old.stdout.replace("max_concurrent_runs: 2", "max_concurrent_runs: 3")  # the user's: kept
    (home / "dagster.yaml").write_text(edited)
    instance.ensure_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text() == edited and "RunWorkerLauncher" in instance.launcher_note(home)


# --------------------------------------------------------------------------- runs on workers, end to end


def _write_inputs(folder: Path) -> None:
    from curation_assets.samples import synthetic

    folder.mkdir()
    size = {"width": 320, "height": 256, "fps": 24, "n_frames": 48}
    synthetic.write_moving_pattern(folder / "pan.mp4", shift_px_per_frame=(1, 0), seed=1, **size)
    # no caption files: every shard's captions step loads the captioner (a manifest caption would skip it)
    synthetic.write_moving_pattern(folder / "tilt.mp4", shift_px_per_frame=(0, 1), seed=2, **size)


TIMING_COLUMNS = {"seconds", "detect_seconds"}  # how long a step took: the one thing allowed to differ


def _rows(data_dir: Path) -> dict:
    """Every score table's rows by video, every column but timings and those naming the data dir."""
    con = duckdb.connect(str(data_dir / "curation.duckdb"), read_only=True)
    try:
        out = {}
        for table in SCORE_TABLES:
            frame = con.execute(f"select * from {table} order by video_id").pl()
            keep = [c for c in frame.columns if c not in TIMING_COLUMNS
                    and not any(str(data_dir) in str(v) for v in frame[c].to_list())]
            out[table] = {row["video_id"]: row for row in frame.select(keep).iter_rows(named=True)}
        return out
    finally:
        con.close()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-5, abs=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _launch(instance, shard: str):
    from curation_assets.orchestration.recipe import recipe_from_env, run_config
    from curation_assets.orchestration.run_origin import create_run

    run = create_run(instance, "curate_shards", run_config(recipe_from_env()), {"dagster/partition": shard})
    instance.launch_run(run.run_id, workspace=None)
    return run.run_id


def _wait(instance, run_id: str, until=lambda run: run.is_finished, timeout: float = 400):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if until(run):
            return run
        time.sleep(0.3)
    pytest.fail(f"run {run_id[:8]} still {instance.get_run_by_id(run_id).status} after {timeout:.0f} s")


def _model_meta(instance, run_id: str) -> dict[str, dict]:
    from dagster import DagsterEventType

    out = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        mat = record.dagster_event.step_materialization_data.materialization
        if mat.asset_key.to_user_string() in MODEL_ASSETS:
            out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items() if k.startswith("model_")}
    return out


def _process(run) -> int:
    return int(run.tags["curation/run_process"].split()[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_launched_runs_reuse_warm_workers_and_equal_the_cli(tmp_path, monkeypatch):
    from dagster import DagsterInstance, DagsterRunStatus

    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.orchestration.instance import ensure_dagster_home
    from curation_assets.orchestration.partitions import shard_partitions
    from curation_assets.orchestration.run_history import failure_reason
    from curation_assets.orchestration.run_launcher import RunWorkerLauncher
    from curation_assets.store import ScoreStore

    inputs, by_cli, by_ui = tmp_path / "inputs", tmp_path / "cli", tmp_path / "ui"
    _write_inputs(inputs)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CURATION_RECIPE", "CURATION_DATA_DIR")}
    env.update(CURATION_MODEL_PROFILE="tiny", HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1")
    t0 = time.perf_counter()
    cli = subprocess.run([str(BIN / "curation-assets"), "run", "--input", str(inputs), "--data-dir", str(by_cli),
                          "--shard-size", "1", "--workers", "1", "--no-outputs"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
    cli_s = time.perf_counter() - t0

    # the same inputs, registered the same way, launched through the instance's run launcher
    for name, value in (("CURATION_DATA_DIR", str(by_ui)), ("CURATION_INPUT_DIR", str(tmp_path / "no-input"))):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(by_ui / "dagster_home"))
    monkeypatch.delenv("CURATION_RECIPE", raising=False)
    by_ui.mkdir()
    ensure_dagster_home(by_ui)  # the project's dagster.yaml: RunWorkerLauncher
    shards = register(ScoreStore(by_ui / "curation.duckdb"), discover(inputs), 1)
    assert shards == ["shard-00000", "shard-00001"]
    timings = {"cli (2 shards)": cli_s}
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_launcher, RunWorkerLauncher)
        instance.add_dynamic_partitions(shard_partitions.name, shards)

        # a backfill of two shards, one after the other: one worker, each model loaded once
        runs = []
        for shard in shards:
            t0 = time.perf_counter()
            runs.append(_wait(instance, _launch(instance, shard)))
            timings[f"{shard} on the worker"] = time.perf_counter() - t0
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2, [failure_reason(instance, r.run_id) for r in runs]
        worker = _process(runs[0])
        assert _process(runs[1]) == worker != os.getpid()
        first, second = _model_meta(instance, runs[0].run_id), _model_meta(instance, runs[1].run_id)
        assert set(first) == set(second) == set(MODEL_ASSETS)
        assert all(first[a]["model_loads"] == 1 and first[a]["model_process"] == worker for a in MODEL_ASSETS), first
        assert all(second[a]["model_loads"] == 0 and second[a]["model_load_s"] == 0 for a in MODEL_ASSETS), second

        # whichever way a shard ran: the same rows, the same code versions
        cli_rows, ui_rows = _rows(by_cli), _rows(by_ui)
        for table in SCORE_TABLES:
            assert cli_rows[table].keys() == ui_rows[table].keys() and len(ui_rows[table]) == 2, table
            for vid, row in cli_rows[table].items():
                other = ui_rows[table][vid]
                assert row.keys() == other.keys(), table
                different = {c: (row[c], other[c]) for c in row if not _same(row[c], other[c])}
                assert not different, f"{table} {vid}: {different}"
            assert {r["code_version"] for r in ui_rows[table].values()} == {r["code_version"] for r in cli_rows[table].values()}

        # a worker killed mid-run: the run fails, saying so; the next run gets a fresh worker
        doomed = _launch(instance, shards[1])
        started = _wait(instance, doomed, until=lambda r: r.status == DagsterRunStatus.STARTED, timeout=120)
        time.sleep(1)
        os.kill(_process(started), signal.SIGKILL)
        failed = _wait(instance, doomed, timeout=60)
        assert failed.status == DagsterRunStatus.FAILURE
        reason = failure_reason(instance, doomed)
        assert f"run worker (pid {worker}) was killed by SIGKILL" in reason, reason
        fresh = _wait(instance, _launch(instance, shards[1]))
        assert fresh.status == DagsterRunStatus.SUCCESS and _process(fresh) not in (worker, os.getpid())
        assert all(m["model_loads"] == 1 for m in _model_meta(instance, fresh.run_id).values())  # a new process
        pids = [w.pid for w in instance.run_launcher._workers().workers()]
    # the instance is gone: its workers finish and exit
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
        time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "run workers outlived the process holding their pool"
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)  # our child: reap it
        except ChildProcessError:
            pass
        return False
    return True

