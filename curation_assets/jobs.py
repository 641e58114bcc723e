from dagster import AssetSelection, define_asset_job

CURATE_SHARDS_JOB = "curate_shards"

# Every shard-partitioned asset: one run per shard does the whole curation of that shard.
curate_shards_job = define_asset_job(
    CURATE_SHARDS_JOB,
    selection=AssetSelection.all(),
    description="Probe, score and judge the videos of one shard.",
)
