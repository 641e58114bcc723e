"""One recipe per data dir: the recipe and model profile the last `curation-assets run` used.

`DIR/recipe.yaml` is the recipe file as given (a header comment added), loadable with
`--config`; `DIR/recipe_state.json` holds its hash, the model profile and where it came
from. `status`, `curation-assets ui` (and so the sensor, the schedule and the launchpad)
use them unless told otherwise, so every entry point compares against the same settings.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation_assets.orchestration.recipe import (
    STORED_RECIPE_FILE, UNPARTITIONED_ASSETS, Recipe, code_revisions, code_version, effective_view, load_recipe,
    recipe_hash,
)

STATE_FILE = "recipe_state.json"
PROFILE_ENV = "CURATION_MODEL_PROFILE"
_HEADER = "# stored by curation-assets run"


@dataclass
class StoredRecipe:
    path: Path
    recipe: Recipe
    hash: str
    model_profile: str
    source: str  # the file the run was given, or "defaults"
    stored_at: str


def read_stored(data_dir: Path) -> StoredRecipe | None:
    path = Path(data_dir) / STORED_RECIPE_FILE
    if not path.is_file():
        return None
    recipe = load_recipe(path)
    state: dict[str, Any] = {}
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        pass  # a hand-placed recipe.yaml: still the data dir's recipe
    return StoredRecipe(path, recipe, recipe_hash(recipe), state.get("model_profile") or "real",
                        state.get("source") or str(path), state.get("stored_at") or "")


def store_recipe(data_dir: Path, source: str | None, recipe: Recipe, profile: str) -> StoredRecipe:
    """Write the recipe (as given) and its state; `source` None means the defaults."""
    data_dir = Path(data_dir)
    path = data_dir / STORED_RECIPE_FILE
    if source is None:
        body = "{}\n"
    elif Path(source).resolve() == path.resolve():
        body = _strip_header(path.read_text())
    else:
        body = _strip_header(Path(source).read_text())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    digest = recipe_hash(recipe)
    header = (f"{_HEADER} at {stamp} from {source or 'the defaults'}; recipe hash {digest}; "
              f"model profile {profile}.\n# status, `curation-assets ui`, the sensor and the schedule use this "
              "recipe for this data dir; `run --config other.yaml` replaces it.\n")
    _write_atomic(path, header + body)
    state = {"recipe_hash": digest, "model_profile": profile, "source": source or "defaults", "stored_at": stamp}
    _write_atomic(data_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")
    return StoredRecipe(path, recipe, digest, profile, state["source"], stamp)


def resolve_profile(data_dir: Path, explicit: str | None = None) -> tuple[str, str]:
    """(profile, where it came from): --model-profile, else $CURATION_MODEL_PROFILE, else the
    data dir's stored profile, else real."""
    if explicit:
        return explicit, "--model-profile"
    if os.environ.get(PROFILE_ENV):
        return os.environ[PROFILE_ENV], f"${PROFILE_ENV}"
    stored = read_stored(data_dir) if (Path(data_dir) / STORED_RECIPE_FILE).is_file() else None
    if stored:
        return stored.model_profile, f"stored with the data: {STATE_FILE}"
    return "real", "default"


def recipe_changes(old: Recipe, new: Recipe, old_profile: str, new_profile: str) -> list[str]:
    """'key: old -> new' for every effective setting that differs."""
    before, after = effective_view(old), effective_view(new)
    lines = [f"{key}: {_fmt(before.get(key))} -> {_fmt(after.get(key))}"
             for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if old_profile != new_profile:
        lines.append(f"model profile: {old_profile} -> {new_profile}")
    return lines


def assets_made_stale(old: Recipe, new: Recipe, old_profile: str, new_profile: str) -> list[str]:
    """Shard assets whose code version changes (the job re-runs everything downstream of them)."""
    return [asset for asset in code_revisions() if asset not in UNPARTITIONED_ASSETS
            and code_version(asset, old, old_profile) != code_version(asset, new, new_profile)]


def _fmt(value: Any) -> str:
    return json.dumps(value)  # the YAML/JSON spelling: null, true, 0.25, ["en"]


def _strip_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and (lines[0].startswith(_HEADER) or lines[0].startswith("# status, `curation-assets ui`")):
        lines.pop(0)
    return "".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
