from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from curation_assets import settings
from curation_assets.orchestration.jobs import curate_shards_job
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.staleness import shards_needing_run
from curation_assets.store import ScoreStore


def build_rescore_schedule(expected_versions: dict[str, str], run_config: dict):
    @schedule(
        job=curate_shards_job,
        cron_schedule="0 3 * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Nightly backfill: re-runs every shard whose scores are missing or were written "
        "by another code version (a changed threshold, parameter or model).",
    )
    def rescore_stale_shards(context: ScheduleEvaluationContext):
        store = ScoreStore(settings.data_dir() / settings.DB_FILENAME)
        todo = shards_needing_run(store, expected_versions)
        known = set(context.instance.get_dynamic_partitions(shard_partitions.name))
        todo = {shard: assets for shard, assets in todo.items() if shard in known}
        if not todo:
            return SkipReason("every shard is up to date")
        version_key = "-".join(sorted(set(expected_versions.values())))
        return [
            RunRequest(partition_key=shard, run_key=f"rescore-{shard}-{hash(version_key) & 0xffffffff:08x}",
                       run_config=run_config, tags={"curation/stale_assets": ",".join(assets)})
            for shard, assets in sorted(todo.items())
        ]

    return rescore_stale_shards
