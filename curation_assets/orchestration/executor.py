"""The definitions' executor: a shard's steps in one process unless a run asks for more.

Dagster's default executor runs every step in a process of its own (multiprocess); each
imports the code location and, for a model step, loads its model again. Measured on the
demo shard that cost ~2x the CPU of `curation-assets run`, which runs the steps in one
process (docs/ui.md). This is Dagster's own executor pair with the other default: in
process, as the CLI; a run can still choose `execution: {config: {multiprocess: {...}}}`
(steps side by side within one shard) from the launchpad or a run config, with every
option of Dagster's multiprocess executor (max_concurrent, start_method forkserver with
preload_modules, ...).
"""

from dagster import ExecutorDefinition, Field, Selector, multi_or_in_process_executor
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, MULTI_PROC_CONFIG

in_process_or_multiprocess_executor = ExecutorDefinition(
    name="in_process_or_multiprocess_executor",
    config_schema=Field(Selector({"in_process": IN_PROC_CONFIG, "multiprocess": MULTI_PROC_CONFIG}),
                        default_value={"in_process": {}}),
    requirements=multi_or_in_process_executor.get_requirements,
    executor_creation_fn=multi_or_in_process_executor.executor_creation_fn,
    description="In process by default (the steps of a shard in one process, as `curation-assets run`); "
    "`multiprocess:` runs them in processes of their own.",
)
