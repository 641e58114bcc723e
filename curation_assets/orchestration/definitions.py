"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here."""

from __future__ import annotations

from dagster import Definitions

from curation_assets.orchestration.assets.captions import build_captions
from curation_assets.orchestration.assets.curated_videos import build_curated_videos
from curation_assets.orchestration.assets.accelerated_videos import build_accelerated_videos
from curation_assets.orchestration.assets.score_report import build_score_report
from curation_assets.orchestration.assets.training_set import build_training_set
from curation_assets.orchestration.assets.image_scores import build_image_scores
from curation_assets.orchestration.assets.video_pass import build_video_pass
from curation_assets.orchestration.assets.raw_videos import build_raw_videos
from curation_assets.orchestration.assets.shots import build_shots
from curation_assets.orchestration.assets.video_hashes import build_video_hashes
from curation_assets.orchestration.assets.near_duplicates import build_near_duplicates
from curation_assets.orchestration.assets.score_assets import build_score_assets
from curation_assets.orchestration.executor import in_process_or_multiprocess_executor
from curation_assets.orchestration.jobs import build_outputs_job, curate_shards_job
from curation_assets.orchestration.recipe import Recipe, recipe_from_env, run_config, shard_code_versions
from curation_assets import settings
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets.orchestration.schedules import build_rescore_schedule
from curation_assets.orchestration.sensors import new_video_files

# The pipeline's assets; each declared score's asset comes from its declaration
# (build_score_assets: PROBE and CAPTION scores, build_image_scores: FRAMES, build_video_pass: motion).
ASSET_BUILDERS = [
    build_shots, build_raw_videos, build_video_pass, build_curated_videos,
    build_accelerated_videos, build_training_set, build_score_report, build_video_hashes, build_near_duplicates,
]
MODEL_ASSET_BUILDERS = [build_captions, build_image_scores]


def data_dir_profile() -> str:
    """$CURATION_MODEL_PROFILE, else the profile stored with the data dir's recipe, else real."""
    from curation_assets.orchestration.stored_recipe import resolve_profile

    from curation_assets.models.registry import PROFILE_ENV, PROFILES

    profile, origin = resolve_profile(settings.data_dir())
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r} ({origin}): expected one of {PROFILES}")
    return profile


def expected_code_versions(recipe: Recipe, profile: str | None = None) -> dict[str, str]:
    return shard_code_versions(recipe, profile or data_dir_profile())


def build_definitions(recipe: Recipe | None = None, data_dir: str | None = None, profile: str | None = None) -> Definitions:
    """`recipe`: default $CURATION_RECIPE, else the data dir's stored recipe (recipe_from_env).
    `profile` (real | tiny): default $CURATION_MODEL_PROFILE, else the data dir's, else real."""
    recipe = recipe_from_env() if recipe is None else recipe
    profile = profile or data_dir_profile()
    store = CurationStore(data_dir=data_dir) if data_dir else CurationStore()
    if store.store_location:  # an explicit store location: a bad one fails the load, in one line
        from curation_assets.store import StoreLocation

        StoreLocation(store.store_location).check()
    return Definitions(
        assets=[build(recipe) for build in ASSET_BUILDERS] + build_score_assets(recipe)
        + [build(recipe, profile) for build in MODEL_ASSET_BUILDERS],
        jobs=[curate_shards_job, build_outputs_job],
        sensors=[new_video_files],
        schedules=[build_rescore_schedule(expected_code_versions(recipe, profile), run_config(recipe))],
        resources={"curation_store": store, "models": ModelResource(profile=profile)},
        # A shard's steps in one process, as `curation-assets run` runs them: no process start
        # and code-location import per step, and the models stay in the run worker that runs
        # the next shard (orchestration/run_launcher.py). Shards run side by side as runs
        # (the run queue's max_concurrent_runs). Measured against the multiprocess executor
        # (spawn and forkserver): docs/ui.md.
        executor=in_process_or_multiprocess_executor,
    )


defs = build_definitions()
