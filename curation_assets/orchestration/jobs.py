from dagster import AssetSelection, define_asset_job

CURATE_SHARDS_JOB = "curate_shards"
BUILD_OUTPUTS_JOB = "build_outputs"
OUTPUT_GROUP = "outputs"

# Every shard-partitioned asset: one run per shard does the whole curation of that shard.
curate_shards_job = define_asset_job(
    CURATE_SHARDS_JOB,
    selection=AssetSelection.all() - AssetSelection.groups(OUTPUT_GROUP),
    description="Probe, score, judge and accelerate the videos of one shard.",
)

# The unpartitioned outputs over all shards: the training set and the score report.
build_outputs_job = define_asset_job(
    BUILD_OUTPUTS_JOB,
    selection=AssetSelection.groups(OUTPUT_GROUP),
    description="Select the LoRA training set under the pixel budget and write the score report.",
)
