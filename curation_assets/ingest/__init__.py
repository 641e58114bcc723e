"""Finding input videos (folders, manifests) and cutting them into shard partitions."""
