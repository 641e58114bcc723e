"""`curation-assets`: run the curation graph on a folder or manifest, without the UI.

It registers the inputs as shard partitions and executes the same `curate_shards` job the
UI launches, in this process (or one process per worker), against a persistent Dagster
instance, so every run also shows up in `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from curation_assets import settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curation-assets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register videos and curate every shard that needs it")
    run.add_argument("--input", required=True, help="folder (searched recursively), video file, or manifest (.jsonl/.csv/.parquet)")
    _data_dir_arg(run)
    run.add_argument("--config", help="recipe YAML: scorer parameters and thresholds (Dagster run-config keys)")
    run.add_argument("--shard-size", type=int, default=None, help=f"videos per new shard (default {settings.DEFAULT_SHARD_SIZE})")
    run.add_argument("--workers", type=int, default=None, help="shards run in parallel processes (default: min(cores, shards))")
    run.add_argument("--force", action="store_true", help="re-run the input's shards even when up to date")
    run.add_argument("--no-outputs", action="store_true", help="skip the training set and the score report")
    run.add_argument("--allow-outside-paths", action="store_true", help="accept manifest paths that leave the manifest's folder")
    run.add_argument("--model-profile", choices=["real", "tiny"], default=None,
                     help="real weights (default) or tiny random-weight models for tests; sets CURATION_MODEL_PROFILE")

    demo = sub.add_parser("demo-data", help="write the synthetic demo corpus (every curation rule exercised)")
    demo.add_argument("folder")

    status = sub.add_parser("status", help="funnel and stale shards of a data dir")
    _data_dir_arg(status)
    status.add_argument("--config", help="recipe to compare code versions against")

    models = sub.add_parser("models", help="which real model weights are present (nothing is loaded or downloaded)")
    models.add_argument("--model-dir", default=None, help="defaults to $CURATION_MODEL_DIR")

    migrate = sub.add_parser("migrate-store", help="convert a data dir of the DuckDB-table format into "
                             "Parquet objects at the store location (no re-scoring)")
    _data_dir_arg(migrate)

    ui = sub.add_parser("ui", help="start `dagster dev -w workspace.yaml` on this data dir")
    _data_dir_arg(ui)
    ui.add_argument("--port", type=int, default=3000)

    args = parser.parse_args(argv)
    try:
        return {"run": cmd_run, "demo-data": cmd_demo, "status": cmd_status, "models": cmd_models,
                "migrate-store": cmd_migrate_store, "ui": cmd_ui}[args.command](args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    pass


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="where curation.duckdb and the Dagster home live (default: ./data)")
    p.add_argument("--store", default=None, help="store location for score objects, frames and clips: a folder or "
                   f"an fsspec URL (s3://bucket/prefix); sets ${settings.STORE_ENV} (default: the data dir)")


def _setup_env(args) -> tuple[Path, dict]:
    """Point every later import (definitions, resources) at this data dir and recipe."""
    from curation_assets.orchestration.instance import ensure_dagster_home
    from curation_assets.orchestration.recipe import RECIPE_ENV, RecipeError, load_recipe

    if getattr(args, "model_profile", None):
        os.environ["CURATION_MODEL_PROFILE"] = args.model_profile
    data_dir = Path(args.data_dir).resolve() if args.data_dir else settings.data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ[settings.DATA_DIR_ENV] = str(data_dir)
    _check_store(args, data_dir)
    recipe_path = getattr(args, "config", None)
    try:
        recipe = load_recipe(recipe_path)
    except RecipeError as exc:
        raise CliError(str(exc)) from exc
    if recipe_path:
        os.environ[RECIPE_ENV] = str(Path(recipe_path).resolve())
    else:
        os.environ.pop(RECIPE_ENV, None)
    ensure_dagster_home(data_dir)
    return data_dir, recipe


def _check_store(args, data_dir: Path) -> None:
    """A bad store location fails here, in one line naming the setting, before anything runs."""
    from curation_assets.store import StoreLocation, StoreLocationError
    from curation_assets.store.catalog import legacy_tables

    if getattr(args, "store", None):
        os.environ[settings.STORE_ENV] = args.store
    setting = "--store" if getattr(args, "store", None) else settings.STORE_ENV
    try:
        StoreLocation(settings.store_location() or data_dir).check(setting)
    except StoreLocationError as exc:
        raise CliError(str(exc)) from None
    if args.command != "migrate-store":
        try:
            old = legacy_tables(data_dir / settings.DB_FILENAME)
        except Exception as exc:  # e.g. a catalog held open read-write by another program
            raise CliError(f"cannot open {data_dir / settings.DB_FILENAME}: {str(exc).splitlines()[0]}") from None
        if old:
            raise CliError(f"{data_dir / settings.DB_FILENAME} is in the old DuckDB-table format: run "
                           f"`curation-assets migrate-store --data-dir {data_dir}` once (nothing is re-scored)")


def cmd_run(args) -> int:
    started = time.perf_counter()
    data_dir, recipe = _setup_env(args)  # first: a bad setting fails before anything loads

    from curation_assets.orchestration.definitions import expected_code_versions
    from curation_assets.funnel import funnel
    from curation_assets.ingest.discover import InputError, discover
    from curation_assets.ingest.registry import REGISTRY_TABLE, register
    from curation_assets.orchestration.staleness import shards_needing_run
    from curation_assets.store import ScoreStore

    store = ScoreStore(data_dir / settings.DB_FILENAME)
    try:
        entries = discover(args.input, allow_outside=args.allow_outside_paths)
    except InputError as exc:
        raise CliError(str(exc)) from exc
    if not entries:
        raise CliError(f"no videos found in {args.input}")
    new_shards = register(store, entries, args.shard_size or settings.shard_size())
    paths = sorted({e.path for e in entries})
    registry = store.query(f"select path, shard from {REGISTRY_TABLE}")
    input_shards = sorted({s for p, s in registry.iter_rows() if p in set(paths)})
    todo = input_shards if args.force else sorted(
        s for s in shards_needing_run(store, expected_code_versions(recipe)) if s in set(input_shards))
    print(f"{len(paths)} videos in {len(input_shards)} shards ({len(new_shards)} new); "
          f"{len(todo)} shards to run; data in {store.db_path}")

    _ensure_partitions(input_shards)
    workers = max(1, min(args.workers or os.cpu_count() or 1, len(todo) or 1))
    failures = _run_shards(todo, workers)

    result = funnel(store, paths=paths)
    print(f"\nFunnel for {args.input}:")
    for line in result.lines():
        print("  " + line)
    if not args.no_outputs and not failures:
        ok, lines = run_outputs()
        print("\n" + "\n".join(lines))
        if not ok:
            failures.append("build_outputs")
    store.refresh_catalog()  # curation.duckdb shows every table the run wrote, wherever it ran
    print(f"\nwall time {time.perf_counter() - started:.1f} s")
    if failures:
        print(f"{len(failures)} shard runs failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _ensure_partitions(shards: list[str]) -> None:
    from dagster import DagsterInstance

    from curation_assets.orchestration.partitions import shard_partitions

    with DagsterInstance.get() as instance:
        existing = set(instance.get_dynamic_partitions(shard_partitions.name))
        missing = [s for s in shards if s not in existing]
        if missing:
            instance.add_dynamic_partitions(shard_partitions.name, missing)


def _run_shards(shards: list[str], workers: int) -> list[str]:
    failures = []
    if workers == 1:
        for shard in shards:
            ok, line = run_shard(shard)
            print(line, flush=True)
            if not ok:
                failures.append(shard)
        return failures
    # Shards run side by side: split the cores between them instead of each spawning a full pool.
    from curation_assets.parallel import WORKERS_ENV

    os.environ.setdefault(WORKERS_ENV, str(max(1, (os.cpu_count() or 1) // workers)))
    # spawn: a forked child would inherit the parent's Dagster/SQLite handles
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_shard, shard): shard for shard in shards}
        for future in as_completed(futures):
            ok, line = future.result()
            print(line, flush=True)
            if not ok:
                failures.append(futures[future])
    return sorted(failures)


def run_shard(shard: str) -> tuple[bool, str]:
    """Execute the curate_shards job for one partition; returns (success, progress line)."""
    from dagster import DagsterInstance

    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.funnel import funnel
    from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
    from curation_assets.orchestration.recipe import recipe_from_env, run_config
    from curation_assets.store import ScoreStore

    t0 = time.perf_counter()
    recipe = recipe_from_env()
    defs = build_definitions(recipe)
    job = defs.resolve_job_def(CURATE_SHARDS_JOB)
    config = run_config(recipe)
    config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key=shard, instance=instance, run_config=config, raise_on_error=False)
    store = ScoreStore(settings.data_dir() / settings.DB_FILENAME)
    counts = funnel(store, shards=[shard])
    status = "ok" if result.success else "FAILED"
    line = (f"{shard}: {status} in {time.perf_counter() - t0:.1f} s - {counts.videos_in} videos: "
            f"kept {counts.status['kept']}, rejected {counts.status['rejected']}, failed {counts.status['failed']} "
            f"(run {result.run_id[:8]})")
    if not result.success:
        errors = [e.message for e in result.all_events if e.is_failure][:3]
        line += "\n    " + "\n    ".join(errors)
    return result.success, line


def run_outputs() -> tuple[bool, list[str]]:
    """Build the training set and the score report over every shard in the store."""
    import json

    from dagster import DagsterInstance

    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.jobs import BUILD_OUTPUTS_JOB
    from curation_assets.orchestration.recipe import recipe_from_env, run_config

    recipe = recipe_from_env()
    job = build_definitions(recipe).resolve_job_def(BUILD_OUTPUTS_JOB)
    config = run_config(recipe)
    config["ops"] = {k: v for k, v in config["ops"].items() if k in ("lora_training_set", "score_report")}
    config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False)
    if not result.success:
        errors = [e.message for e in result.all_events if e.is_failure][:3]
        return False, ["training set / report FAILED:", *errors]
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("lora_training_set")}
    meta = mats.get("lora_training_set", {})
    out_dir = Path(meta["output_dir"].value) if "output_dir" in meta else None
    lines = []
    if out_dir and (out_dir / "summary.json").exists():
        summary = json.loads((out_dir / "summary.json").read_text())
        lines.append(f"Training set {summary['preset']} ({summary['frames']}x{summary['height']}x{summary['width']}, "
                     f"{summary['epochs']} epoch(s)): {summary['clips']} clips of {summary['eligible_clips']} eligible "
                     f"({summary['kept_clips']} kept, {summary['accelerated_clips']} accelerated); "
                     f"pixels {summary['pixels_used']:.3g} / {summary['pixel_budget']:.3g}")
        lines.append(f"  written to {out_dir}/metadata.json, data_juicer.jsonl, summary.json")
    lines.append(f"Score report: {settings.data_dir() / 'reports' / 'score_report.md'}")
    return True, lines


def cmd_demo(args) -> int:
    from curation_assets.samples.synthetic import write_demo_set

    manifest = write_demo_set(Path(args.folder))
    print(f"demo corpus written; manifest: {manifest}")
    return 0


def cmd_status(args) -> int:
    data_dir, recipe = _setup_env(args)  # first: a bad setting fails before anything loads

    from curation_assets.orchestration.definitions import expected_code_versions
    from curation_assets.funnel import funnel
    from curation_assets.orchestration.staleness import shards_needing_run
    from curation_assets.store import ScoreStore

    store = ScoreStore(data_dir / settings.DB_FILENAME)
    store.refresh_catalog()
    for line in funnel(store).lines():
        print(line)
    todo = shards_needing_run(store, expected_code_versions(recipe))
    print(f"\n{len(todo)} shards missing or stale")
    for shard, assets in sorted(todo.items()):
        print(f"  {shard}: {', '.join(assets)}")
    return 0


def cmd_migrate_store(args) -> int:
    from curation_assets.store.migrate import migrate_data_dir

    data_dir, _ = _setup_env(args)
    report = migrate_data_dir(data_dir, settings.store_location() or data_dir)
    for line in report.lines():
        print(line)
    return 0


def cmd_models(args) -> int:
    from curation_assets.models.inventory import inventory
    from curation_assets.models.registry import ModelSettings

    settings = ModelSettings(profile="real")
    if args.model_dir:
        settings = ModelSettings(profile="real", model_dir=Path(args.model_dir))
    missing = 0
    for row in inventory(settings):
        state = f"found  {row.found}" if row.found else f"MISSING (looked in: {row.how})"
        missing += row.found is None
        print(f"{row.model:<40} {row.used_by:<22} {state}")
    from curation_assets.models.ocr import resolve_precision

    device = settings.resolved_device()
    print(f"\ndevice: {device}; ocr_area precision 'auto' runs {resolve_precision('auto', device)} here")
    if missing:
        print(f"\n{missing} missing: see README 'Models' for the download commands, or run with "
              "CURATION_MODEL_PROFILE=tiny (random weights, for tests).")
    return 1 if missing else 0


def cmd_ui(args) -> int:
    _setup_env(args)
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(settings.PROJECT_ROOT / "workspace.yaml"), "-p", str(args.port)]
    print("starting:", " ".join(cmd), f"(DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    return subprocess.call(cmd, cwd=settings.PROJECT_ROOT)


if __name__ == "__main__":
    sys.exit(main())
