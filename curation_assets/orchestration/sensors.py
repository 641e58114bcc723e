import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from curation_assets import settings
from curation_assets.ingest import listing_cache
from curation_assets.ingest.inputs import RunInput
from curation_assets.ingest.registry import REGISTRY_TABLE, register, registered_shards
from curation_assets.orchestration.jobs import curate_shards_job
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.store import ScoreStore
from curation_assets.store.location import listings_remembered

# A huge drop is registered over several ticks so one evaluation stays well under the
# sensor timeout.
MAX_NEW_FILES_PER_TICK = 2048


@sensor(
    job=curate_shards_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers new video files under $CURATION_INPUT_DIR (default data/raw) as new shards "
    "and requests a curation run for each; compacts the store when due (docs/store.md).",
)
def new_video_files(context: SensorEvaluationContext):
    input_dir = settings.input_dir()
    # Every tick that requests nothing says why on the tick itself (the UI's tick history),
    # not only in the daemon's terminal.
    if not input_dir.is_dir():
        return SkipReason(f"{input_dir} does not exist: create it and drop videos there "
                          f"(or set ${settings.INPUT_DIR_ENV})")
    with listings_remembered():  # one tick sees the store as of its start: each folder listed once
        return _tick(context, input_dir)


def _tick(context: SensorEvaluationContext, input_dir):
    store = ScoreStore(settings.data_dir() / settings.DB_FILENAME)
    shards = set(registered_shards(store))
    # Only the directories that changed since the last tick are listed (listing_cache.py): a
    # tick costs one stat per directory, not a walk of every file plus the whole registry.
    scan = listing_cache.scan(input_dir, settings.data_dir(), store.location.url, shards)
    given = RunInput(scan.fresh, scan)  # what `run --input` reads, looked up the same way
    entries = given.entries
    fresh = given.to_register(store).head(MAX_NEW_FILES_PER_TICK)
    new_shards = register(store, fresh, settings.shard_size()) if fresh.height else []
    shards |= set(new_shards)
    given.record(store)  # the listing cache: directories all registered now are not listed next time
    from curation_assets.curation.upkeep import upkeep

    upkeep(store, report=context.log.info)  # the head node compacts when due; the catalog follows
    cursor = json.loads(context.cursor) if context.cursor else {}
    # Shards registered by the CLI or a lost instance must exist as partitions too.
    existing = set(context.instance.get_dynamic_partitions(shard_partitions.name))
    to_add = sorted(shards - existing)
    files_known = scan.known_count() + entries.height
    context.update_cursor(json.dumps({"files_seen": files_known, "registered_now": fresh.height,
                                      "last_new_shards": new_shards or cursor.get("last_new_shards", [])}))
    if not to_add and not new_shards:
        return SkipReason(f"no new files in {input_dir} ({files_known} known)")
    partitions = [shard_partitions.build_add_request(to_add)] if to_add else []
    if not new_shards:
        # only partitions to add (shards registered by the CLI): a tick without runs, with its reason
        return SensorResult(dynamic_partitions_requests=partitions,
                            skip_reason=f"no new files in {input_dir}; added {len(to_add)} shard partitions "
                            f"registered elsewhere ({', '.join(to_add[:5])}{', ...' if len(to_add) > 5 else ''})")
    return SensorResult(
        run_requests=[RunRequest(partition_key=shard, run_key=f"register-{shard}") for shard in new_shards],
        dynamic_partitions_requests=partitions,
    )


def registered_paths(store: ScoreStore) -> list[str]:
    """Every registered path (reads the whole registry: not for ticks; kept for tools)."""
    if REGISTRY_TABLE not in store.tables():
        return []
    return store.query(f"select path from {REGISTRY_TABLE}")["path"].to_list()
