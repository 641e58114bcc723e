"""What the Dagster run history says about shards: whose latest curation run failed, and why."""

from __future__ import annotations

_BATCH = 500  # partitions per run-history query (SQLite's bound-parameter limits)


def failed_shards(instance, shards: list[str]) -> dict[str, str]:
    """shard -> 'reason (run abcd1234)' for shards whose latest run (CLI, job or asset launch) failed.

    One run-history query per 500 shards (the runs of any of them, newest first), not one per
    shard: at 16,000 shards that was ~56 s here."""
    from dagster import DagsterRunStatus, RunsFilter

    latest = {}
    for i in range(0, len(shards), _BATCH):
        batch = shards[i:i + _BATCH]
        wanted = set(batch)
        for run in instance.get_runs(RunsFilter(tags={"dagster/partition": batch})):  # newest first
            shard = run.tags.get("dagster/partition")
            if shard in latest or shard not in wanted:
                continue
            latest[shard] = run
    out = {}
    for shard in shards:
        run = latest.get(shard)
        if run is not None and run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            out[shard] = f"{failure_reason(instance, run.run_id)} (run {run.run_id[:8]})"
    return out


def failure_reason(instance, run_id: str, limit: int = 240) -> str:
    """The first failed step and the first line of its error, short enough for one funnel line."""
    from dagster import DagsterEventType

    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        data = event.step_failure_data
        text = ""
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description
        elif data.error is not None:
            text = data.error.cause.message if data.error.cause else data.error.message
        first = next((line.strip() for line in text.splitlines() if line.strip()), "no message")
        return f"step {event.step_key} failed: {first[:limit]}"
    for record in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        return (record.dagster_event.message or "run failed")[:limit]
    return "the run failed"
