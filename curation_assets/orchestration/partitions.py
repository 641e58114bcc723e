from dagster import DynamicPartitionsDefinition

# One partition per shard of N videos, never per video: Dagster advises < 100k partitions
# per asset and a run per video would be mostly overhead.
shard_partitions = DynamicPartitionsDefinition(name="shards")
