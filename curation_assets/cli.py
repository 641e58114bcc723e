"""`curation-assets`: run the curation graph on a folder or manifest, without the UI.

It registers the inputs as shard partitions and executes the same `curate_shards` job the
UI launches, in this process (or one process per worker), against a persistent Dagster
instance, so every run also shows up in `dagster dev`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from curation_assets import settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"run": cmd_run, "demo-data": cmd_demo, "status": cmd_status, "models": cmd_models,
                "devices": cmd_devices, "calibrate-motion": cmd_calibrate_motion, "migrate-store": cmd_migrate_store,
                "compact": cmd_compact, "ui": cmd_ui, "review": cmd_review, "export": cmd_export}[args.command](args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    from curation_assets.review.page import STATIC_CLIPS  # light: the page module imports json and os only

    parser = argparse.ArgumentParser(prog="curation-assets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register videos and curate every shard that needs it")
    run.add_argument("--input", required=True, help="folder (searched recursively), video file, or manifest (.jsonl/.csv/.parquet)")
    _data_dir_arg(run)
    run.add_argument("--config", help="recipe YAML: scorer parameters and thresholds (Dagster run-config keys); "
                     "default: the recipe stored in the data dir by its last run (DIR/recipe.yaml)")
    run.add_argument("--shard-size", type=int, default=None,
                     help=f"videos per new shard (default: ${settings.SHARD_SIZE_ENV}, else {settings.DEFAULT_SHARD_SIZE} "
                     "growing with the corpus to keep it under ~25,000 shards)")
    run.add_argument("--workers", type=int, default=None, help="shards run in parallel processes (default: min(cores, shards))")
    run.add_argument("--force", action="store_true", help="re-run the input's shards and rebuild the outputs "
                     "even when up to date")
    run.add_argument("--no-outputs", action="store_true", help="skip the training set and the score report")
    run.add_argument("--allow-outside-paths", action="store_true", help="accept manifest paths that leave the manifest's folder")
    run.add_argument("--model-profile", choices=["real", "tiny"], default=None,
                     help="real weights (default) or tiny random-weight models for tests; sets CURATION_MODEL_PROFILE")
    _deployment_args(run)

    demo = sub.add_parser("demo-data", help="write the synthetic demo corpus (every curation rule exercised)")
    demo.add_argument("folder", help="where to write the clips and manifest.jsonl (created if missing)")

    status = sub.add_parser("status", help="funnel and stale shards of a data dir")
    _data_dir_arg(status)
    status.add_argument("--config", help="recipe to compare code versions against (default: the data dir's)")
    status.add_argument("--model-profile", choices=["real", "tiny"], default=None,
                        help="model profile to compare against (default: the data dir's)")

    models = sub.add_parser("models", help="which real model weights are present (nothing is loaded or downloaded)")
    models.add_argument("--model-dir", default=None, help="defaults to $CURATION_MODEL_DIR")

    devices = sub.add_parser("devices", help="the OpenCL devices OpenCV sees and what each motion backend runs on here")
    devices.add_argument("--config", help="recipe whose motion backend to check (exit 2 when it cannot run here)")
    cal = sub.add_parser("calibrate-motion", help="fit fast motion mode to exact (data-juicer) scores on a sample of "
                         "your clips and write the map into a recipe")
    cal.add_argument("--input", required=True, help="folder (searched recursively), video file, or manifest")
    cal.add_argument("--skip-levels", type=int, default=1, choices=[1, 2],
                     help="fast mode: flow without exact mode's finest pyramid level(s) (default 1)")
    cal.add_argument("--size", type=int, default=None,
                     help="fast mode by resizing to this short side instead of --skip-levels (less faithful)")
    cal.add_argument("--sample", type=int, default=20, help="clips compared, spread over the input (default 20)")
    cal.add_argument("--window", type=float, default=4.0, help="seconds per fitted window (default 4)")
    cal.add_argument("--fit", choices=["scale", "power"], default="scale",
                     help="exact ~ scale * fast (default) or exact ~ scale * fast ** power")
    cal.add_argument("--config", help="recipe YAML whose motion section gets the map (created if missing); "
                     "without it the section is only printed")
    migrate = sub.add_parser("migrate-store", help="convert a data dir of the DuckDB-table format into "
                             "Parquet objects at the store location (no re-scoring)")
    _data_dir_arg(migrate)
    migrate.add_argument("--compact", action="store_true", help="then merge every object into segments at once "
                         "(otherwise the next commands compact when a table has many objects)")

    compact = sub.add_parser("compact", help="merge the store's loose objects into segments, update the shard "
                             "index and delete what no reader needs (docs/store.md)")
    _data_dir_arg(compact)
    compact.add_argument("--grace", type=float, default=None,
                         help="seconds a replaced file is kept for readers that listed it (default 3600; "
                         "$CURATION_GC_GRACE_S)")
    compact.add_argument("--repack", action="store_true",
                         help="also rewrite the segments an earlier version wrote with smaller row groups, one "
                         "per table a pass: whole-table queries over them run 3-6x faster")

    review = sub.add_parser("review", help="the review gallery on 127.0.0.1: every clip as a card, thresholds "
                            "moved in the browser, a clip's frames and scores (docs/review.md)")
    _data_dir_arg(review)
    review.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free port)")
    review.add_argument("--config", help="recipe whose thresholds the page starts from (default: the data dir's)")
    review.add_argument("--static-clips", type=int, default=STATIC_CLIPS, metavar="N",
                        help=f"--write-static: at most N curated clips, a sample across verdicts past it (default "
                        f"{STATIC_CLIPS:,}; 0: every clip)")
    review.add_argument("--write-static", metavar="HTML", default=None,
                        help="write the self-contained copy (data, details, relative media links) to this file and exit")
    export = sub.add_parser("export", help="export the curated clips to another tool")
    export_sub = export.add_subparsers(dest="target", required=True, help="the tool to export to")
    fo = export_sub.add_parser("fiftyone", help="a FiftyOne dataset: one sample per clip with its scores, verdict, "
                               "rules as tags, caption and lineage (needs the FiftyOne venv: docs/review.md)")
    _data_dir_arg(fo)
    fo.add_argument("--name", default=None, help="dataset name (default: curation-<data dir name>); replaced if it exists")
    fo.add_argument("--fiftyone-python", default=None,
                    help="the python of a venv with fiftyone (default: $CURATION_FIFTYONE_PYTHON, else the venv "
                    "scripts/setup_fiftyone_venv.sh builds)")
    fo.add_argument("--database-dir", default=None,
                    help="FiftyOne's database folder (default: FiftyOne's own, ~/.fiftyone/var/lib/mongo)")


    ui = sub.add_parser("ui", help="start `dagster dev -w workspace.yaml` on this data dir",
                        description="Start the Dagster UI (webserver, daemon: sensor, schedule, run queue, backfills) "
                        "on this data dir. It has no login: anyone who can reach HOST:PORT can launch runs and "
                        "read every asset (docs/ui.md: behind an authenticating proxy). Stop it with Ctrl-C once.")
    _data_dir_arg(ui)
    ui.add_argument("--host", default="127.0.0.1",
                    help="address the webserver listens on (default 127.0.0.1: this machine only; 0.0.0.0: every "
                    "interface, only behind an authenticating proxy or firewall)")
    ui.add_argument("--port", type=int, default=3000, help="port of the webserver (default 3000)")
    ui.add_argument("--review-port", type=int, default=8765,
                    help="the review gallery, served beside the UI (its asset pages link to it); 0: any free port; "
                    "-1: not started")
    ui.add_argument("--config", help="recipe for the launchpad defaults, code versions, sensor and schedule "
                    "(default: the data dir's)")
    ui.add_argument("--model-profile", choices=["real", "tiny"], default=None,
                    help="model profile (default: $CURATION_MODEL_PROFILE, else the data dir's)")
    _deployment_args(ui)
    return parser


class CliError(Exception):
    pass


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="where curation.duckdb, the recipe and the Dagster home live (default: $CURATION_DATA_DIR, else data/ in this clone)")
    p.add_argument("--store", default=None, help="store location for score objects, frames and clips: a folder or "
                   f"an fsspec URL (s3://bucket/prefix); sets ${settings.STORE_ENV} (default: the data dir)")


def _deployment_args(p: argparse.ArgumentParser) -> None:
    """The one switch between this machine and a cluster (docs/clusters.md)."""
    g = p.add_argument_group("deployment (default: this machine, no Ray, SQLite instance)")
    g.add_argument("--deployment", help="deployment YAML with engine, ray_address, instance ($CURATION_DEPLOYMENT)")
    g.add_argument("--engine", choices=["local", "ray"], default=None,
                   help="local: process pool here (default); ray: decode tasks and model actors on a Ray cluster")
    g.add_argument("--ray-address", default=None, help="Ray cluster to join: HOST:PORT, ray://HOST:10001 or auto")
    g.add_argument("--instance", default=None,
                   help="dagster.yaml variant for the Dagster instance, e.g. deploy/dagster.postgres.yaml")


def _setup_deployment(args):
    """Resolve, export to child processes, and check the deployment: one readable line if bad."""
    from curation_assets.execution import deployment

    try:
        dep = deployment.resolve(getattr(args, "engine", None), getattr(args, "ray_address", None),
                                 getattr(args, "instance", None), getattr(args, "deployment", None))
        deployment.check(dep)
        if dep.uses_ray:
            from curation_assets.execution import ray_cluster

            ray_cluster.check_joins(dep.ray_address)
    except deployment.DeploymentError as exc:
        raise CliError(str(exc)) from None
    deployment.export(dep)
    return dep


@dataclass
class Setup:
    data_dir: Path
    recipe: dict
    recipe_path: Path | None  # the file in use (None: the defaults)
    stored: object  # StoredRecipe of the data dir, or None
    profile: str
    profile_from: str
    deployment: object  # deployment.Deployment: engine, Ray address, instance file

    def recipe_line(self) -> str:
        from curation_assets.orchestration.recipe import recipe_hash

        where = str(self.recipe_path) if self.recipe_path else "defaults (no recipe stored in this data dir)"
        if self.stored is not None and self.recipe_path == self.stored.path:
            where += f" (stored by the run of {self.stored.stored_at or '?'}, from {self.stored.source})"
        return f"recipe: {where}; hash {recipe_hash(self.recipe)}"

    def profile_line(self) -> str:
        return f"model profile: {self.profile} ({self.profile_from})"


def _setup_env(args, dagster_home: bool = True) -> Setup:
    """Point every later import (definitions, resources) at this data dir, its recipe and profile.

    The recipe is --config, else the one the last run stored in the data dir, else the
    defaults; the profile --model-profile, else $CURATION_MODEL_PROFILE, else the stored one,
    else real. Both go into the environment, so Dagster (in-process runs, spawned shard
    workers, `dagster dev`) builds the same definitions and code versions.
    """
    from curation_assets.models.registry import PROFILE_ENV, PROFILES
    from curation_assets.orchestration.instance import ensure_dagster_home
    from curation_assets.orchestration.recipe import RECIPE_ENV, RecipeError, load_recipe
    from curation_assets.orchestration.stored_recipe import read_stored, resolve_profile

    _check_scores()

    dep = _setup_deployment(args)
    data_dir = Path(args.data_dir).resolve() if args.data_dir else settings.data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ[settings.DATA_DIR_ENV] = str(data_dir)
    _check_store(args, data_dir)
    try:  # checked here so a bad value fails at start-up, not in the first image_scores step
        from curation_assets.frames.chunks import chunk_budget_mb

        chunk_budget_mb()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    config = getattr(args, "config", None)
    try:
        stored = read_stored(data_dir)
        if config:
            recipe, recipe_path = load_recipe(config), Path(config).resolve()
        elif stored is not None:
            recipe, recipe_path = stored.recipe, stored.path
        else:
            recipe, recipe_path = {}, None
        profile, profile_from = resolve_profile(data_dir, getattr(args, "model_profile", None))
    except RecipeError as exc:
        raise CliError(str(exc)) from exc
    if profile not in PROFILES:
        raise CliError(f"model profile {profile!r} ({profile_from}): expected one of {', '.join(PROFILES)}")
    os.environ[PROFILE_ENV] = profile
    if recipe_path:
        os.environ[RECIPE_ENV] = str(recipe_path)
    else:
        os.environ.pop(RECIPE_ENV, None)
    if dagster_home:
        ensure_dagster_home(data_dir, dep.instance)
    return Setup(data_dir, recipe, recipe_path, stored, profile, profile_from, dep)


def _check_scores() -> None:
    """Every installed score plugin loads and declares a score that can work, or one line says
    which does not, before anything runs."""
    from curation_assets.scores import DeclarationError, PluginError, all_scores

    try:
        all_scores()
    except (PluginError, DeclarationError) as exc:
        raise CliError(str(exc)) from None


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
    from curation_assets.curation.funnel import funnel
    from curation_assets.curation.upkeep import upkeep
    from curation_assets.execution import shard_runner
    from curation_assets.ingest.discover import InputError
    from curation_assets.ingest.inputs import read_input
    from curation_assets.ingest.registry import REGISTRY_TABLE, register
    from curation_assets.orchestration.instance import ensure_dagster_home
    from curation_assets.orchestration.recipe import RECIPE_ENV, shard_code_versions
    from curation_assets.orchestration.staleness import shards_needing_run
    from curation_assets.orchestration.stored_recipe import assets_made_stale, recipe_changes, store_recipe
    from curation_assets.store import ScoreStore
    from curation_assets.store.catalog import refresh_catalog
    from curation_assets.store.location import listings_remembered

    started = time.perf_counter()
    # The Dagster instance (and its storage) is opened only after the pre-flight: a run that
    # cannot start says so at once.
    setup = _setup_env(args, dagster_home=False)
    data_dir, recipe = setup.data_dir, setup.recipe
    print(setup.recipe_line())
    print(setup.profile_line())
    _check_motion_backend(recipe)
    stored = setup.stored
    if stored is not None:
        changes = recipe_changes(stored.recipe, recipe, stored.model_profile, setup.profile)
        if changes:
            print(f"recipe changed since the last run on this data dir ({stored.path}, hash {stored.hash}):")
            print("\n".join("  " + line for line in changes))
            stale = assets_made_stale(stored.recipe, recipe, stored.model_profile, setup.profile)
            print(f"  stale now on every shard: {', '.join(stale) or 'none'}")
    store = ScoreStore(data_dir / settings.DB_FILENAME)
    notes: list[str] = []
    with listings_remembered():  # the bookkeeping before registration: each store folder listed once
        try:
            given = read_input(args.input, store, data_dir, allow_outside=args.allow_outside_paths, notes=notes)
        except InputError as exc:
            raise CliError(str(exc)) from exc
        for note in notes:
            print(note)
        if given.entries.is_empty() and not given.known_count():
            raise CliError(f"no videos found in {args.input}")
        expected = shard_code_versions(recipe, setup.profile)
        unreadable = store.unreadable()
        stale = {} if args.force else shards_needing_run(store, expected, unreadable)
        _preflight_before_register(store, given, stale, args.force, recipe, setup.profile)

    ensure_dagster_home(data_dir, setup.deployment.instance)
    new_shards = register(store, given.to_register(store), args.shard_size or settings.shard_size())
    shard_files = given.shard_files(store)  # (shard, files) over every input file
    files = given.count()
    input_shards = sorted(shard_files["shard"].drop_nulls().to_list())
    if new_shards and not args.force:  # new shards have nothing written: every asset is missing
        stale.update({s: list(expected) for s in new_shards})
    todo = input_shards if args.force else sorted(s for s in stale if s in set(input_shards))
    print(f"{files} videos in {len(input_shards)} shards ({len(new_shards)} new); "
          f"{len(todo)} shards to run; data in {store.db_path}")
    for bad in unreadable:
        print(f"unreadable: {bad.key} ({bad.reason}); its shards run again: {', '.join(bad.shards[:5])}"
              f"{', ...' if len(bad.shards) > 5 else ''}")
    stored = store_recipe(data_dir, str(setup.recipe_path) if setup.recipe_path else None, recipe, setup.profile)
    os.environ[RECIPE_ENV] = str(stored.path)

    shard_runner.ensure_partitions(input_shards)
    done = [0]

    def progress(line: str) -> None:
        print(line, flush=True)
        done[0] += 1
        if done[0] % _COMPACT_EVERY == 0:  # the head node compacts while shards finish (never the workers)
            upkeep(store, catalog=False, report=lambda text: print(text, flush=True))

    failures = shard_runner.run_shards(todo, args.workers, report=progress, stale=None if args.force else stale)
    with listings_remembered():  # the store as the shards left it: each folder listed once more
        upkeep(store, catalog=False, report=print)
        result = funnel(store, **_funnel_scope(store, given, shard_files, files, input_shards),
                        shard_failures=shard_runner.failed_shard_reasons(failures))
        print(f"\nFunnel for {args.input}:")
        for line in result.lines():
            print("  " + line)
        if not args.no_outputs and not failures:
            ok, lines = shard_runner.run_outputs(force=args.force)
            print("\n" + "\n".join(lines))
            if not ok:
                failures.append("build_outputs")
        refresh_catalog(store)  # curation.duckdb shows every table the run wrote, wherever it ran
    print(f"\nwall time {time.perf_counter() - started:.1f} s")
    if failures:
        print(f"{len(failures)} shard runs failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


_COMPACT_EVERY = 64  # shards finished between two compaction checks during a run


def _funnel_scope(store, given, shard_files, files: int, input_shards: list[str]) -> dict:
    """What the run's funnel counts: the input's files. When they are whole shards (every
    member of each input shard is an input file: the usual case), the shards' counts are the
    same and come from the index's summaries without reading rows; otherwise the input shards'
    rows are read and filtered by path (the input's paths are built only then)."""
    import polars as pl

    from curation_assets.ingest.registry import REGISTRY_TABLE

    if REGISTRY_TABLE not in store.tables():
        return {"paths": given.paths()}
    registered = store.winners(REGISTRY_TABLE).select("shard", "rows")
    joined = registered.join(shard_files, on="shard", how="left")
    inside = joined.filter(pl.col("files").is_not_null())
    whole = inside.height == len(input_shards) and bool((inside["files"] == inside["rows"]).all()) \
        and shard_files.filter(pl.col("shard").is_not_null())["files"].sum() == files
    if not whole:
        return {"paths": given.paths(), "shards": input_shards}
    return {} if inside.height == registered.height else {"shards": input_shards}


def _check_motion_backend(recipe) -> None:
    """A requested backend that cannot run here stops the run before anything is decoded."""
    from curation_assets.orchestration.recipe import effective_config
    from curation_assets.scorers.flow_backends import BackendError, resolve_backend

    from curation_assets.scorers.decoders import resolve_decoder

    config = effective_config("motion", recipe)
    try:
        backend = resolve_backend(config.backend)
        resolve_decoder(config.decoder, backend.backend, backend.torch_device)
    except BackendError as exc:
        raise CliError(str(exc)) from exc


def _preflight_before_register(store, given, stale: dict, force: bool, recipe: dict, profile: str) -> None:
    """Check the weights for what this run will score: new files, and files in stale shards."""
    import polars as pl

    from curation_assets.ingest.registry import REGISTRY_TABLE

    # only the entries this run scores (not registered yet, or in a stale shard): a first run
    # over ten million registered files built a frame of them all
    need = pl.repeat(True, given.entries.height, eager=True)
    texts: list = []
    if REGISTRY_TABLE in store.tables() and not force:
        shard = given.placed(store)
        need = shard.is_null() | shard.is_in(list(stale))
        redo = given.known_shards().filter(pl.col("shard").is_in(list(stale)))["shard"].to_list()
        if redo:  # files known registered whose shards are stale: their captions from the registry
            rows = store.query(f"select manifest_text from {REGISTRY_TABLE} where shard in (select unnest(?::varchar[]))",
                               [redo])
            texts += rows["manifest_text"].to_list()
    elif given.known_count():
        texts += store.query(f"select manifest_text from {REGISTRY_TABLE}")["manifest_text"].to_list()
    scored = given.entries.filter(need).unique("path", keep="last", maintain_order=True)
    texts = scored["text"].to_list() + texts
    if texts:
        _preflight(recipe, profile, texts)


def _preflight(recipe: dict, profile: str, manifest_texts: list) -> None:
    """Every weight the shards to run need, checked before the first one starts."""
    from curation_assets.models.registry import ModelSettings
    from curation_assets.orchestration.preflight import MissingWeights, check_weights

    try:
        check_weights(recipe, ModelSettings(profile=profile), manifest_texts)
    except MissingWeights as exc:
        raise CliError(f"{exc}\nNothing was run.") from None


def cmd_demo(args) -> int:
    from curation_assets.samples.synthetic import write_demo_set

    manifest = write_demo_set(Path(args.folder))
    print(f"demo corpus written; manifest: {manifest}")
    return 0


def cmd_status(args) -> int:
    from curation_assets.store import ScoreStore
    from curation_assets.store.location import listings_remembered

    setup = _setup_env(args)
    store = ScoreStore(setup.data_dir / settings.DB_FILENAME)
    print(setup.recipe_line())
    print(setup.profile_line() + "\n")
    with listings_remembered():  # the store as of now: each folder listed once
        _print_status(store, setup)
    return 0


def _print_status(store, setup) -> None:
    from curation_assets.curation.funnel import funnel
    from curation_assets.curation.upkeep import upkeep
    from curation_assets.execution import shard_runner
    from curation_assets.orchestration.recipe import shard_code_versions
    from curation_assets.orchestration.staleness import shards_needing_run

    upkeep(store, report=print)  # compaction when due, and the catalog
    counts = funnel(store)
    if counts.not_curated_by_shard:
        counts = funnel(store, shard_failures=shard_runner.failed_shard_reasons(sorted(counts.not_curated_by_shard)))
    for line in counts.lines():
        print(line)
    unreadable = store.unreadable()
    todo = shards_needing_run(store, shard_code_versions(setup.recipe, setup.profile), unreadable)
    print(f"\n{len(todo)} shards missing or stale (against that recipe and model profile)")
    for shard, assets in sorted(todo.items()):
        print(f"  {shard}: {', '.join(assets)}")
    if unreadable:
        shards = sorted({s for u in unreadable for s in u.shards})
        print(f"\n{len(shards)} shards unreadable (a truncated or damaged object; `run` writes them again):")
        for bad in unreadable:
            print(f"  {bad.table} {', '.join(bad.shards[:8])}{', ...' if len(bad.shards) > 8 else ''}: {bad.key}: {bad.reason}")


def cmd_compact(args) -> int:
    from curation_assets.curation.upkeep import upkeep
    from curation_assets.store import ScoreStore
    from curation_assets.store.compaction import GRACE_ENV

    setup = _setup_env(args, dagster_home=False)
    store = ScoreStore(setup.data_dir / settings.DB_FILENAME)
    if args.grace is not None:
        os.environ[GRACE_ENV] = str(args.grace)
    t0 = time.perf_counter()
    reports = upkeep(store, force=True, report=None, repack=args.repack)
    if not reports:
        print("another compaction is running on this store; nothing done")
        return 0
    for report in reports:
        did = report.absorbed or report.merged or report.rehashed or report.deleted or report.unreadable
        if did or not args.repack:
            print(report.line())
    print(f"compacted {store.location.url} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_calibrate_motion(args) -> int:
    """Exact and fast motion on a sample of the user's clips; exact ~ scale * fast ** power."""
    import yaml

    from curation_assets.ingest.discover import InputError, discover
    from curation_assets.orchestration.recipe import RecipeError, normalize_recipe
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.motion_calibration import calibrate

    if (args.size is not None and args.size < 16) or args.sample < 1 or args.window <= 0:
        raise CliError("--size must be >= 16, --sample >= 1 and --window > 0")
    try:
        entries = [e for e in discover(args.input) if e.error is None]
    except InputError as exc:
        raise CliError(str(exc)) from exc
    paths = sorted(e.path for e in entries)
    if not paths:
        raise CliError(f"no readable videos in {args.input}")
    if len(paths) > args.sample:  # spread over the sorted list, not the first few folders
        paths = [paths[round(i * (len(paths) - 1) / (args.sample - 1))] for i in range(args.sample)] \
            if args.sample > 1 else paths[:1]
    raw: dict = {}
    config = Path(args.config) if args.config else None
    if config and config.exists():
        raw = yaml.safe_load(config.read_text()) or {}
        if not isinstance(raw, dict) or "ops" in raw:
            raise CliError(f"{config}: calibrate-motion updates flat recipes (asset: {{...}}), not run-config 'ops'")
    motion = dict(raw.get("motion") or {})
    base = {k: v for k, v in motion.items() if k in ("sampling_fps", "frame_selection")}
    if args.size is not None:
        mode = {"size": args.size, "scale_to_source": True, "skip_levels": 0}
        label = f"size {args.size}"
    else:
        mode = {"size": None, "scale_to_source": False, "skip_levels": args.skip_levels}
        label = f"skip_levels {args.skip_levels}"
    fast = MotionParams(**base, **mode)
    print(f"comparing exact and fast ({label}) motion on {len(paths)} clips ...", flush=True)
    try:
        result = calibrate(paths, fast, args.window, fit=args.fit)
    except ValueError as exc:
        raise CliError(f"calibration failed: {exc}") from exc
    for clip in result.clips:
        if clip.error:
            print(f"  {Path(clip.path).name}: skipped ({clip.error})")
        else:
            ratio = clip.fast / clip.exact if clip.exact > 0 else float("nan")
            print(f"  {Path(clip.path).name}: exact {clip.exact:.3f}, fast {clip.fast:.3f} (x{ratio:.2f}), "
                  f"calibrated {result.apply(clip.fast):.3f}")
    for key in ("size", "max_size", "relative", "scale_to_source", "skip_levels"):
        motion.pop(key, None)
    motion.update({k: v for k, v in mode.items() if v})
    motion.update(calibration_scale=round(result.scale, 6), calibration_power=round(result.power, 6))
    print(f"map from {result.windows_used} windows of {args.window:g} s: exact ~ {result.scale:.4f} * fast"
          + (f" ^ {result.power:.4f}" if result.power != 1.0 else ""))
    section = yaml.safe_dump({"motion": motion}, sort_keys=False)
    if config is None:
        print("recipe section (pass --config to write it):\n" + section)
        return 0
    raw["motion"] = motion
    try:
        normalize_recipe(raw, source=str(config))
    except RecipeError as exc:
        raise CliError(str(exc)) from exc
    config.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.with_name(config.name + ".tmp")
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    tmp.replace(config)
    print(f"wrote the motion section into {config}:\n" + section)
    return 0


def cmd_migrate_store(args) -> int:
    from curation_assets.store.migrate import migrate_data_dir

    data_dir = _setup_env(args).data_dir
    report = migrate_data_dir(data_dir, settings.store_location() or data_dir)
    for line in report.lines():
        print(line)
    if args.compact:  # absorb every object into segments now (else the next commands do it when due)
        from curation_assets.curation.upkeep import upkeep
        from curation_assets.store import ScoreStore

        for result in upkeep(ScoreStore(data_dir / settings.DB_FILENAME), force=True):
            print("compacted " + result.line())
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
    from curation_assets.scorers.flow_backends import resolve_backend

    motion = resolve_backend("auto")
    print(f"motion backend 'auto' runs {motion.backend} on {motion.device} here (`curation-assets devices` for OpenCL)")
    if missing:
        print(f"\n{missing} missing: see docs/models.md for the download commands, or run with "
              "CURATION_MODEL_PROFILE=tiny (random weights, for tests).")
    return 1 if missing else 0


def cmd_devices(args) -> int:
    from curation_assets.orchestration.recipe import RecipeError, effective_config, load_recipe
    from curation_assets.scorers.decoders import decoder_report, resolve_decoder
    from curation_assets.scorers.flow_backends import BackendError, device_report, resolve_backend

    for line in device_report() + decoder_report():
        print(line)
    if not args.config:
        return 0

    try:
        config = effective_config("motion", load_recipe(args.config))
    except RecipeError as exc:
        raise CliError(str(exc)) from exc
    requested = config.backend
    try:
        r = resolve_backend(requested)
        decoder = resolve_decoder(config.decoder, r.backend, r.torch_device)
    except BackendError as exc:
        raise CliError(str(exc)) from exc
    print(f"\n{args.config}: motion backend {requested} runs {r.backend} on {r.device}; decoder {config.decoder} "
          f"runs {decoder}")
    return 0


def _existing_data_dir(args) -> None:
    """Commands that only read a data dir refuse a missing one (instead of creating it empty)."""
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise CliError(f"no data dir at {args.data_dir}: give the --data-dir a `curation-assets run` wrote")


def _review_server(setup, port: int, recipe_given: bool):
    """The gallery's server on 127.0.0.1:`port` (not yet serving). Without --config it follows
    the data dir's stored recipe as later runs replace it."""
    from curation_assets.review.context import open_context
    from curation_assets.review.server import serve

    context = open_context(setup.data_dir, recipe=setup.recipe if recipe_given else None,
                           recipe_path=setup.recipe_path if recipe_given else None, profile=setup.profile)
    try:
        return serve(context, port)
    except OSError as exc:
        raise CliError(f"cannot serve the gallery on 127.0.0.1:{port}: {exc.strerror or exc} (try --port 0)") from None


def cmd_review(args) -> int:
    _existing_data_dir(args)
    setup = _setup_env(args)
    print(setup.recipe_line())
    if args.write_static:
        from curation_assets.review.clip_detail import shown_details
        from curation_assets.review.context import open_context
        from curation_assets.review.page import write_static_gallery

        context = open_context(setup.data_dir, recipe=setup.recipe, recipe_path=setup.recipe_path, profile=setup.profile)
        data = context.data(limit=args.static_clips or None)
        details = shown_details(context.store, data)
        path = write_static_gallery(context.store, data, details, Path(args.write_static), str(setup.data_dir))
        print(f"wrote {path} ({data['count']} clips; {path.stat().st_size / 1e6:.1f} MB)")
        for problem in data["problems"]:
            print(f"  note: {problem['message']}")
        return 0
    server = _review_server(setup, args.port, bool(args.config))
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"review gallery of {setup.data_dir}: {url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_export(args) -> int:
    from curation_assets.outputs.fiftyone_export import ExportError, export_fiftyone

    _existing_data_dir(args)
    setup = _setup_env(args)
    try:
        result = export_fiftyone(setup.data_dir, name=args.name, python=args.fiftyone_python,
                                 database_dir=args.database_dir, report=lambda line: print(line, flush=True))
    except ExportError as exc:
        raise CliError(str(exc)) from None
    print(result.summary())
    return 0


def cmd_ui(args) -> int:
    from curation_assets.orchestration.instance import launcher_note
    from curation_assets.orchestration.run_launcher import check_settings

    setup = _setup_env(args)
    try:
        check_settings()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(setup.recipe_line() + " (launchpad defaults, code versions, sensor and schedule)")
    print(setup.profile_line())
    note = launcher_note(Path(os.environ["DAGSTER_HOME"]))
    if note:
        print(note)
    if args.review_port >= 0:  # the asset pages link to the gallery: serve it beside the UI
        _start_review_beside_ui(args, setup.data_dir)
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(settings.PROJECT_ROOT / "workspace.yaml"),
           "-h", args.host, "-p", str(args.port)]
    print("starting:", " ".join(cmd), f"(DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    if args.host not in LOCAL_HOSTS:
        print(f"WARNING: the UI has no login and listens on {args.host}:{args.port}: anyone who can reach it can "
              "launch runs and read every asset. Put it behind an authenticating proxy (docs/ui.md).")
    print("Stop with Ctrl-C (once): runs in progress are interrupted and marked failed.", flush=True)
    sys.stderr.flush()
    # dagster dev takes this process's place: a Ctrl-C or a SIGTERM (kill, systemd) reaches it
    # directly and it stops its webserver, daemon and code server in order, instead of a parent
    # killing it half-way and leaving its children behind
    os.chdir(settings.PROJECT_ROOT)
    os.execv(sys.executable, cmd)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _start_review_beside_ui(args, data_dir) -> None:
    """The review gallery as a child process (this process becomes dagster dev by exec): its
    URL goes to the environment dagster dev inherits, so the asset pages link to it; the
    kernel stops it when dagster dev ends (parent-death signal), however dagster dev is stopped."""
    import signal
    import socket
    import subprocess

    from curation_assets.review.server import URL_ENV

    port = args.review_port
    if port == 0:  # any free port, chosen here: the URL must be known before dagster dev starts
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    with socket.socket() as probe:  # a taken port fails here, in one line, not in the child's log
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise CliError(f"cannot serve the review gallery on 127.0.0.1:{port}: {exc.strerror or exc} "
                           "(--review-port 0: any free port; -1: no gallery)") from None
    cmd = [sys.executable, "-m", "curation_assets.cli", "review", "--data-dir", str(data_dir), "--port", str(port)]
    if args.config:
        cmd += ["--config", args.config]

    def die_with_parent() -> None:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    subprocess.Popen(cmd, cwd=settings.PROJECT_ROOT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    os.environ[URL_ENV] = f"http://127.0.0.1:{port}/"
    print(f"review gallery: {os.environ[URL_ENV]}")


if __name__ == "__main__":
    sys.exit(main())
