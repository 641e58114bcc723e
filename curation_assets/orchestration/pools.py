"""Concurrency pools of the model steps.

The steps that run a model (captions, image_scores) are in the pool "gpu". dagster.yaml gives
every pool a limit of 1 (`concurrency: pools: default_limit: 1`), so when shards run side by
side (the CLI's `--workers`, or several runs in `dagster dev`) one model step holds the
accelerator at a time while the other shards' CPU steps (probe, the decode pass of video_pass)
go on: a shard's decoding overlaps the previous shard's scoring, and two model steps never
compete for the same GPU memory. Raise it with `dagster instance concurrency set gpu N` (or
`pools: default_limit`) on a machine with N accelerators or plenty of memory.
"""

MODEL_POOL = "gpu"
