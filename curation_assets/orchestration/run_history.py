"""What the Dagster run history says about shards: whose latest curation run failed, and why."""

from __future__ import annotations



def failed_shards(instance, shards: list[str]) -> dict[str, str]:
    """shard -> 'reason (run abcd1234)' for shards whose latest run (CLI, job or asset launch) failed."""
    from dagster import DagsterRunStatus, RunsFilter

    out = {}
    for shard in shards:
        runs = instance.get_runs(RunsFilter(tags={"dagster/partition": shard}), limit=1)
        if runs and runs[0].status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            out[shard] = f"{failure_reason(instance, runs[0].run_id)} (run {runs[0].run_id[:8]})"
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
