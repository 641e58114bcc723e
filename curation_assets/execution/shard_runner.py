"""Runs shards in-process through Dagster: the engine behind `curation-assets run`.

Each shard executes the same `curate_shards` job the UI launches, as a run created with the
UI's code-location origin (so it is filed with the job's runs and on the Overview timeline)
and executed in this process by the run body the UI's run workers use, several shards side by
side in spawned worker processes. A worker keeps its imports and loaded models
for every shard it runs, which is what makes this path cheap. On the Ray engine every process
of one call shares one lease holder, so the model actors stay loaded across its shards and
are released at the end.

Reports progress through a `report(line)` callback; knows nothing of argument parsing.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable

from curation_assets import settings

Report = Callable[[str], None]


def run_shards(shards: list[str], workers: int | None = None, report: Report = print,
               stale: dict[str, list[str]] | None = None) -> list[str]:
    """Run every shard; `workers` at a time (default: one per core, or one per Ray node).
    `stale` (shard -> assets missing or stale there, see staleness.py): run only those assets
    and what depends on them, so a changed threshold re-judges without re-scoring; without
    it, a shard's whole job runs. Returns the shards whose run failed."""
    from curation_assets.execution import model_actors, ray_cluster

    on_ray = ray_cluster.enabled()
    if on_ray:  # one lease holder for this call's processes (shard workers inherit it)
        import uuid

        os.environ[model_actors.HOLDER_ENV] = f"cli-{uuid.uuid4().hex[:12]}"
    # On Ray the cores are the cluster's: one shard driver per node keeps every node fed.
    default = ray_cluster.node_count() if on_ray else (os.cpu_count() or 1)
    workers = max(1, min(workers or default, len(shards) or 1))
    work = [(shard, tuple((stale or {}).get(shard, ())) or None) for shard in shards]
    try:
        return _run_pool(work, workers, report)
    finally:
        if on_ray:  # models stay loaded across this call's shards, then free their GPU memory
            _release_models(report)


def _run_pool(work: list[tuple[str, tuple[str, ...] | None]], workers: int, report: Report) -> list[str]:
    failures = []
    if workers == 1:
        for shard, assets in work:
            ok, line = run_shard(shard, assets)
            report(line)
            if not ok:
                failures.append(shard)
        return failures
    # Shards run side by side: split the cores between them instead of each spawning a full pool.
    from curation_assets.execution.local_pool import WORKERS_ENV

    os.environ.setdefault(WORKERS_ENV, str(max(1, (os.cpu_count() or 1) // workers)))
    # spawn: a forked child would inherit the parent's Dagster/SQLite handles
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_shard, shard, assets): shard for shard, assets in work}
        for future in as_completed(futures):
            ok, line = future.result()
            report(line)
            if not ok:
                failures.append(futures[future])
    return sorted(failures)


def _release_models(report: Report) -> None:
    """End this call's leases: an actor exits unless another run (the daemon's, another CLI's)
    still holds it; that run keeps using it, and it exits when that run lets go."""
    from curation_assets.execution import model_actors

    holder = os.environ.pop(model_actors.HOLDER_ENV)
    for actor in model_actors.release_models(holder):
        others = [h for h in actor["holders"] if h != holder]
        report(f"Ray model actor {actor['name']}: loaded once on node {actor['node_id'][:12]} in "
               f"{actor['load_seconds']:.1f} s, {actor['calls']} calls, " + (
                   "released" if actor["released"] else f"kept: in use by {len(others)} other run(s)"))


def run_shard(shard: str, assets: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """Execute the curate_shards job for one partition (only `assets` and their downstream,
    when given); returns (success, progress line)."""
    from dagster import DagsterInstance, DagsterRunStatus

    from curation_assets.curation.funnel import funnel
    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
    from curation_assets.orchestration.recipe import recipe_from_env
    from curation_assets.orchestration.run_history import failure_reason
    from curation_assets.store import ScoreStore

    t0 = time.perf_counter()
    recipe = recipe_from_env()
    selection = None
    if assets:
        defs = build_definitions(recipe)
        selection = _with_downstream(defs, defs.resolve_job_def(CURATE_SHARDS_JOB), assets)
    with DagsterInstance.get() as instance:
        run = _execute(instance, CURATE_SHARDS_JOB, _cli_run_config(recipe), {PARTITION_TAG: shard}, selection)
        ok = run.status == DagsterRunStatus.SUCCESS
        reason = "" if ok else failure_reason(instance, run.run_id, limit=600)
    store = ScoreStore(settings.data_dir() / settings.DB_FILENAME)
    counts = funnel(store, shards=[shard])
    line = (f"{shard}: {'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s - {counts.videos_in} videos: "
            f"kept {counts.status['kept']}, rejected {counts.status['rejected']}, failed {counts.status['failed']} "
            f"(run {run.run_id[:8]})")
    if not ok:
        line += "\n    " + reason
    return ok, line


PARTITION_TAG = "dagster/partition"
LAUNCHED_BY_TAG = "curation/launched_by"


def _cli_run_config(recipe) -> dict:
    from curation_assets.orchestration.recipe import run_config

    config = run_config(recipe)
    config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}  # the CLI prints its own lines
    return config


def _execute(instance, job_name: str, config: dict, tags: dict, asset_selection=None):
    """Create the run as the UI would (so it is filed with the job's runs and on the timeline)
    and execute it here, with the body a run worker uses (execution/dagster_run.py)."""
    from curation_assets.execution.dagster_run import execute_run
    from curation_assets.orchestration.run_origin import create_run

    run = create_run(instance, job_name, config, {**tags, LAUNCHED_BY_TAG: "curation-assets run"}, asset_selection)
    return execute_run(instance, run.run_id)


def _with_downstream(defs, job, assets: tuple[str, ...]) -> list:
    """The job's assets that depend on `assets` (them included), widened to whole steps where a
    step cannot run part of its assets (the decode pass makes motion and the frames together)."""
    from dagster import AssetKey, AssetSelection

    graph = defs.resolve_asset_graph()
    in_job = set(job.asset_layer.asset_graph.get_all_asset_keys()) if hasattr(job, "asset_layer") else None
    keys = AssetSelection.assets(*[AssetKey(a) for a in assets]).downstream().resolve(graph)
    if in_job is not None:
        keys &= in_job
    for key in list(keys):
        keys |= set(graph.get(key).execution_set_asset_keys)
    return sorted(keys, key=lambda k: k.to_user_string())


def run_outputs(force: bool = False) -> tuple[bool, list[str]]:
    """Build the training set and the score report over every shard in the store, unless
    nothing they read changed since they were last built here (`force`: build anyway)."""
    import json
    from pathlib import Path

    from dagster import DagsterInstance, DagsterRunStatus

    from curation_assets.orchestration.jobs import BUILD_OUTPUTS_JOB
    from curation_assets.orchestration.recipe import code_version, recipe_from_env, recipe_hash
    from curation_assets.orchestration.run_history import failure_reason
    from curation_assets.outputs import fingerprint
    from curation_assets.store import ScoreStore

    recipe = recipe_from_env()
    profile = os.environ.get("CURATION_MODEL_PROFILE") or "real"
    data_dir = settings.data_dir()
    key = {"recipe": recipe_hash(recipe), "profile": profile,
           "code": [code_version(a, recipe, profile) for a in ("lora_training_set", "score_report")]}
    inputs = fingerprint.inputs_fingerprint(ScoreStore(data_dir / settings.DB_FILENAME), key)
    done = None if force else fingerprint.up_to_date(data_dir, inputs)
    if done is not None:
        return True, [f"Training set and score report up to date: nothing they read changed since they were built "
                      f"({done['built_at']}; --force rebuilds them)", *done.get("lines", [])]
    config = _cli_run_config(recipe)
    config["ops"] = {k: v for k, v in config["ops"].items() if k in ("lora_training_set", "score_report")}
    with DagsterInstance.get() as instance:
        run = _execute(instance, BUILD_OUTPUTS_JOB, config, {})
        if run.status != DagsterRunStatus.SUCCESS:
            return False, ["training set / report FAILED:", failure_reason(instance, run.run_id, limit=600)]
        mats = materializations(instance, run.run_id)
    meta = mats.get("lora_training_set", {})
    out_dir = Path(meta["output_dir"].value) if "output_dir" in meta else None
    lines, files = [], []
    if out_dir and (out_dir / "summary.json").exists():
        summary = json.loads((out_dir / "summary.json").read_text())
        shape = f"{summary['frames']}x{summary['height']}x{summary['width']}"
        name = shape if summary["preset"] == shape else f"{summary['preset']} {shape}"  # presets are named by shape
        lines.append(f"Training set {name}, {summary['epochs']} epoch(s): {summary['clips']} clips of "
                     f"{summary['eligible_clips']} eligible ({summary['kept_clips']} kept, "
                     f"{summary['accelerated_clips']} accelerated); "
                     f"pixels {summary['pixels_used']:.3g} / {summary['pixel_budget']:.3g}")
        lines.append(f"  written to {out_dir}/metadata.json, data_juicer.jsonl, summary.json")
        if summary.get("warning"):
            lines.append(f"  WARNING: {summary['warning']}")
        summary["inputs_fingerprint"] = inputs  # what it was built from (outputs/fingerprint.py)
        tmp = out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(out_dir / "summary.json")
        files += [str(out_dir / n) for n in ("metadata.json", "data_juicer.jsonl", "summary.json")]
    report_meta = mats.get("score_report", {})
    report_file = data_dir / "reports" / "score_report.md"
    lines.append(f"Score report: {report_file}")
    if "WARNING" in report_meta:
        lines.append(f"  WARNING: {report_meta['WARNING'].value}")
    fingerprint.record(data_dir, inputs, files + [str(report_file)], lines)
    return True, lines


def materializations(instance, run_id: str) -> dict[str, dict]:
    """asset name -> metadata of what the run materialized."""
    from dagster import DagsterEventType

    out = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        mat = record.dagster_event.step_materialization_data.materialization
        out[mat.asset_key.to_user_string()] = mat.metadata
    return out


def failed_shard_reasons(shards: list[str]) -> dict[str, str]:
    """shard -> why its latest run failed, from the run history (the CLI's and the UI's runs)."""
    if not shards:
        return {}
    from dagster import DagsterInstance

    from curation_assets.orchestration.run_history import failed_shards

    with DagsterInstance.get() as instance:
        return failed_shards(instance, shards)


def ensure_partitions(shards: list[str]) -> None:
    """The shards as dynamic partitions of the instance (the UI's partition list)."""
    from dagster import DagsterInstance

    from curation_assets.orchestration.partitions import shard_partitions

    with DagsterInstance.get() as instance:
        existing = set(instance.get_dynamic_partitions(shard_partitions.name))
        missing = [s for s in shards if s not in existing]
        if missing:
            instance.add_dynamic_partitions(shard_partitions.name, missing)
