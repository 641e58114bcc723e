"""A data dir as the gallery sees it: its store, its recipe and model profile, and the
recipe file the page saves.

The recipe is the one the data dir's clips were judged with (the one `run` stored, or the
file given); the page's controls start from its shared thresholds, and "save" writes that
recipe with the moved thresholds to <data_dir>/reports/review_recipe.yaml, for
`curation-assets run --config` (which then re-runs only curated_videos and what follows it).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from curation_assets.review.thresholds import ThresholdError, recipe_with_thresholds, recipe_yaml

SAVED_RECIPE = "review_recipe.yaml"


@dataclass
class ReviewContext:
    data_dir: Path
    store: object  # ScoreStore
    recipe: dict
    recipe_path: Path | None
    profile: str
    shard_failures: dict[str, str] = field(default_factory=dict)
    # the recipe was given (--config): kept; else the data dir's stored one, re-read on refresh()
    recipe_given: bool = True

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def input_hint(self) -> str:
        from curation_assets.review.gallery_data import input_hint

        return input_hint(self.store) or "<your videos>"

    def command(self, config: Path | str) -> str:
        return (f"{_cli_name()} run --input {shlex.quote(self.input_hint())} --data-dir {shlex.quote(str(self.data_dir))} "
                f"--config {shlex.quote(str(config))}")

    def recipe_info(self) -> dict:
        from curation_assets.orchestration.recipe import recipe_hash

        return {"path": str(self.recipe_path) if self.recipe_path else None, "hash": recipe_hash(self.recipe),
                "recipe": self.recipe, "command_template": self.command(self.reports_dir / SAVED_RECIPE)}

    def data(self, limit: int | None = None) -> dict:
        from curation_assets.review.gallery_data import gallery_data

        return gallery_data(self.store, self.recipe, self.profile, self.recipe_info(), self.shard_failures, limit)

    def refresh(self) -> None:
        """Catch up with runs since this context was opened: the stored recipe and profile
        (unless the recipe was given) and the failed shards."""
        if not self.recipe_given:
            from curation_assets.orchestration.stored_recipe import read_stored

            stored = read_stored(self.data_dir)
            if stored is not None:
                self.recipe, self.recipe_path, self.profile = stored.recipe, stored.path, stored.model_profile
        self.shard_failures = _failed_shards(self.store)

    def save_recipe(self, thresholds: dict) -> dict:
        """Write the recipe with these shared thresholds; raises ThresholdError on bad values."""
        from curation_assets.orchestration.stored_recipe import assets_made_stale

        new, changes = recipe_with_thresholds(self.recipe, thresholds)
        header = (f"# written by the review gallery at {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from "
                  f"{self.recipe_path or 'the default recipe'}\n# apply: {self.command(self.reports_dir / SAVED_RECIPE)}\n")
        text = recipe_yaml(new, header)
        path = self.reports_dir / SAVED_RECIPE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        stale = assets_made_stale(self.recipe, new, self.profile, self.profile)
        return {"path": str(path), "yaml": text, "changes": changes, "stale": stale, "command": self.command(path)}


def _cli_name() -> str:
    """How to call the CLI: this venv's console script (what the user ran, copy-pastable
    without an activated venv), else the bare name."""
    import sys

    script = Path(sys.executable).parent / "curation-assets"
    return shlex.quote(str(script)) if script.is_file() else "curation-assets"


def open_context(data_dir: Path, recipe: dict | None = None, recipe_path: Path | None = None,
                 profile: str | None = None, with_run_history: bool = True) -> ReviewContext:
    """The data dir's store and (unless given) its stored recipe and profile; the run history
    (when a Dagster instance is set up) names the shards whose last run failed."""
    from curation_assets import settings
    from curation_assets.orchestration.stored_recipe import read_stored
    from curation_assets.store import ScoreStore

    data_dir = Path(data_dir)
    store = ScoreStore(data_dir / settings.DB_FILENAME)
    given = recipe is not None
    if not given:
        stored = read_stored(data_dir)
        recipe = stored.recipe if stored else {}
        recipe_path = stored.path if stored else None
        profile = profile or (stored.model_profile if stored else None)
    context = ReviewContext(data_dir, store, recipe, recipe_path, profile or "real", recipe_given=given)
    if with_run_history:
        context.shard_failures = _failed_shards(store)
    return context


def _failed_shards(store) -> dict[str, str]:
    """shard -> why its last run failed, for the registered shards without verdicts."""
    from curation_assets.curation.funnel import funnel

    try:
        missing = sorted(funnel(store).not_curated_by_shard)
        if not missing:
            return {}
        from dagster import DagsterInstance

        from curation_assets.orchestration.run_history import failed_shards

        with DagsterInstance.get() as instance:
            return failed_shards(instance, missing)
    except Exception:  # no Dagster instance here (e.g. a copied store): shards read "not run yet"
        return {}


__all__ = ["SAVED_RECIPE", "ReviewContext", "ThresholdError", "open_context"]
