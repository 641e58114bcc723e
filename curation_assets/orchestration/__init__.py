"""The Dagster layer: assets (thin wiring over scorers/, models/, outputs/, store/), jobs,
partitions, sensors, schedules, resources, run configuration and the instance.

Nothing outside this package imports Dagster, so the scoring code runs anywhere (a worker
process, a Ray task, a benchmark) without it.
"""
