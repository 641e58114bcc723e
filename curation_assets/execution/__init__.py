"""Where shard work runs: the deployment switch, the local process pool, the in-process shard runner, and the Ray engine."""
