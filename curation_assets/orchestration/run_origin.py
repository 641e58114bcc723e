"""Runs created outside the UI that the UI files like its own.

A run made by `execute_in_process` has no code-location origin: the UI lists it under Runs
but not in the job's run history nor on the Overview timeline, and cannot re-execute it.
`create_run` gives a run the origins a launch from the UI gives it (the code location of
workspace.yaml, by the same name, and the module pointer its code server uses), so a
`curation-assets run` shard shows up wherever a UI-launched one does.
"""

from __future__ import annotations

from typing import Mapping

from curation_assets.settings import PROJECT_ROOT

WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"
DEFINITIONS_ATTRIBUTE = "defs"  # what the code server finds in the module: a Definitions object


def code_location_origin():
    """The one code location of workspace.yaml, as `dagster dev -w workspace.yaml` loads it."""
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    origins = location_origins_from_yaml_paths([str(WORKSPACE_YAML)])
    if len(origins) != 1:
        raise ValueError(f"{WORKSPACE_YAML}: expected one code location, found {len(origins)}")
    return origins[0]


def reconstructable_job(job_name: str):
    """The job as a run worker loads it: the code location's module, imported in this process."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    target = code_location_origin().loadable_target_origin
    # the workspace's working directory is relative to where `dagster dev` starts (the project
    # root); a run worker may start elsewhere
    working_directory = (WORKSPACE_YAML.parent / (target.working_directory or ".")).resolve()
    repo = ReconstructableRepository.for_module(
        target.module_name, target.attribute or DEFINITIONS_ATTRIBUTE, working_directory=str(working_directory))
    return repo.get_reconstructable_job(job_name)


def create_run(instance, job_name: str, run_config: Mapping, tags: Mapping[str, str], asset_selection=None):
    """A NOT_STARTED run of `job_name` (of its `asset_selection`, AssetKeys, when given) with
    the origins of a UI launch (execute it with execution.dagster_run.execute_run)."""
    from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin

    from curation_assets.execution.dagster_run import reload_code_location

    recon_job = reconstructable_job(job_name)
    reload_code_location(recon_job.get_python_origin())  # the recipe as it is now, as a run worker reads it
    job_def = recon_job.get_definition()
    remote_origin = RemoteJobOrigin(RemoteRepositoryOrigin(code_location_origin(), SINGLETON_REPOSITORY_NAME), job_name)
    return instance.create_run_for_job(job_def=job_def, run_config=dict(run_config), tags=dict(tags),
                                       asset_selection=set(asset_selection) if asset_selection else None,
                                       remote_job_origin=remote_origin, job_code_origin=recon_job.get_python_origin())
