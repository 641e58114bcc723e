"""Recipes: one YAML file holding every scorer parameter and threshold.

A recipe uses the Dagster run-config keys, either in full
(`ops: {motion: {config: {sampling_fps: 2}}}`) or flat (`motion: {sampling_fps: 2}`), plus
one section that is not run config: `scorers: {aesthetics: false, ...}` switches learned
scorers off (their assets then write nothing and load no model; see `scorer_enabled`).
The recipe named by CURATION_RECIPE (else the one stored in the data dir by the last
`curation-assets run`) becomes the defaults of each asset's config and feeds its
code_version, so editing a threshold marks exactly the dependent assets stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, create_model

from curation_assets import settings
from curation_assets.orchestration.configs import asset_configs, shared_ops
from curation_assets.scores import CAPTION, DECODE_PASS, FRAMES, PROBE, all_scores

RECIPE_ENV = "CURATION_RECIPE"
# The file `curation-assets run` stores in the data dir (see stored_recipe.py).
STORED_RECIPE_FILE = "recipe.yaml"
SCORERS_KEY = "scorers"
# The captioner can be switched off like a learned score: `captions: false` keeps manifest
# captions and gives clips without one none. Motion cannot be (it needs no weights and shares
# the frames' decode); set its bounds to null to stop filtering on it.
CAPTIONER = "captions"

# Bump when a pipeline asset's code changes its output; parameters are hashed in separately.
# (A score's revision is declared with the score.)
PIPELINE_REVISIONS = {
    "shots": "1",
    "raw_videos": "3",  # 3: clips of split sources, with lineage columns
    "sampled_frames": "2",  # 2: uniform = data-juicer's exact frames
    "captions": "4",  # 3: tensor preprocessing (within PIL's rounding), batch by device; 4: sampled_frames v2
    "curated_videos": "3",  # 3: split sources, clip lineage, near-duplicates, scorers_off
    "video_hashes": "1",
    "near_duplicates": "1",
    "accelerated_videos": "1",
    "lora_training_set": "1",
    "score_report": "1",
}
# Config keys that choose how a score is computed, not what it is: left out of the code
# version so switching them does not re-score every shard (the rows record what ran).
EXECUTION_KEYS = {"motion": {"backend", "decoder"}}
# Settings added after data dirs were first written, with their defaults: left out of the
# effective view (and so of the recipe hash) while at their default, so adding a setting keeps
# the hash of every stored recipe that does not use it.
LATER_DEFAULTS = {"motion.decoder": "auto"}
# Assets over all shards at once: no per-shard rows, so not part of shard staleness.
UNPARTITIONED_ASSETS = {"lora_training_set", "score_report"}


def switchable_scorers() -> tuple[str, ...]:
    """What a recipe's `scorers:` section may switch off: the captioner and the learned scores."""
    return (CAPTIONER, *(decl.name for decl in all_scores() if decl.switchable))


def code_revisions() -> dict[str, str]:
    """asset -> its code revision, in pipeline order (each score after the step it reads)."""
    scores_after = {"raw_videos": (PROBE, DECODE_PASS), "captions": (CAPTION, FRAMES)}
    revisions: dict[str, str] = {}
    for asset, revision in PIPELINE_REVISIONS.items():
        revisions[asset] = revision
        for reads in scores_after.get(asset, ()):
            revisions.update({decl.name: decl.revision for decl in all_scores() if decl.reads == reads})
    return revisions


def model_assets() -> set[str]:
    """Assets whose output depends on the model profile (real weights or tiny random ones)."""
    return {CAPTIONER, *(decl.name for decl in all_scores() if decl.model)}


class RecipeError(ValueError):
    pass


Recipe = dict[str, dict[str, Any]]


def load_recipe(path: str | Path | None) -> Recipe:
    if not path:
        return {}
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc}") from exc
    return normalize_recipe(raw, source=str(path))


def recipe_path_from_env() -> Path | None:
    """$CURATION_RECIPE, else the recipe stored in the data dir by the last run, else None."""
    if os.environ.get(RECIPE_ENV):
        return Path(os.environ[RECIPE_ENV])
    stored = settings.data_dir() / STORED_RECIPE_FILE
    return stored if stored.is_file() else None


def recipe_from_env() -> Recipe:
    return load_recipe(recipe_path_from_env())


def scorer_enabled(recipe: Recipe, name: str) -> bool:
    """False when the recipe switches this learned scorer off (`scorers: {name: false}`)."""
    return bool(recipe.get(SCORERS_KEY, {}).get(name, True))


def scorers_off(recipe: Recipe) -> list[str]:
    return [name for name in switchable_scorers() if not scorer_enabled(recipe, name)]


def _normalize_scorers(body: Any, source: str) -> dict[str, bool]:
    if not isinstance(body, dict):
        raise RecipeError(f"{source}: {SCORERS_KEY} must be a mapping like {{aesthetics: false}}")
    for name, value in body.items():
        if name == "motion":
            raise RecipeError(f"{source}: {SCORERS_KEY}.motion cannot be switched off (it needs no weights); "
                              "set curated_videos.thresholds.motion_min/motion_max to null to stop filtering on it")
        if name not in switchable_scorers():
            raise RecipeError(f"{source}: {SCORERS_KEY}: unknown scorer {name!r} (known: {', '.join(switchable_scorers())})")
        if not isinstance(value, bool):
            raise RecipeError(f"{source}: {SCORERS_KEY}.{name} must be true or false, not {value!r}")
    return dict(body)


def normalize_recipe(raw: Any, source: str = "recipe") -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: expected a mapping at the top level")
    raw = dict(raw)
    scorers = raw.pop(SCORERS_KEY, None)
    if "ops" in raw:
        flat = {}
        merged_ops = {op for op, _ in shared_ops().values()}
        for name, body in (raw["ops"] or {}).items():
            if not isinstance(body, dict) or set(body) - {"config"}:
                raise RecipeError(f"{source}: ops.{name} must hold only 'config'")
            if name in merged_ops:
                flat.update(body.get("config") or {})  # e.g. video_pass: {motion: ..., sampled_frames: ...}
            else:
                flat[name] = body.get("config") or {}
        extra = set(raw) - {"ops", "resources", "loggers", "execution"}
        if extra:
            raise RecipeError(f"{source}: unexpected top-level keys {sorted(extra)}")
        raw = flat
    recipe: Recipe = {}
    for name, body in raw.items():
        if name not in asset_configs():
            raise RecipeError(f"{source}: no configurable asset {name!r} (known: {sorted(asset_configs())})")
        if not isinstance(body, dict):
            raise RecipeError(f"{source}: {name} must be a mapping")
        try:
            asset_configs()[name](**body)  # validate now, not mid-run
        except Exception as exc:
            raise RecipeError(f"{source}: invalid {name} config: {exc}") from exc
        recipe[name] = body
    if scorers:
        recipe[SCORERS_KEY] = _normalize_scorers(scorers, source)
    return recipe


def effective_config(asset: str, recipe: Recipe):
    return asset_configs()[asset](**recipe.get(asset, {}))


def config_class(asset: str, recipe: Recipe):
    """The asset's Config class with the recipe's values as defaults (shown in the launchpad)."""
    base = asset_configs()[asset]
    overrides = recipe.get(asset, {})
    if not overrides:
        return base
    effective = base(**overrides)
    fields = {}
    for key in overrides:
        info = base.model_fields[key]
        value = getattr(effective, key)
        fields[key] = (info.annotation, Field(default=value, description=info.description))
    return create_model(base.__name__, __base__=base, **fields)


def code_version(asset: str, recipe: Recipe, profile: str = "real") -> str:
    version = code_revisions()[asset]
    if asset in asset_configs():
        params = effective_config(asset, recipe).model_dump(mode="json", exclude=EXECUTION_KEYS.get(asset))
        version += "-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    if asset in switchable_scorers() and not scorer_enabled(recipe, asset):
        return version + "-off"  # no model ran: the profile does not matter
    if asset in model_assets():
        version += f"-{profile}"
    if asset == "curated_videos" and scorers_off(recipe):
        version += "-off:" + ",".join(scorers_off(recipe))  # other verdicts without those scores
    return version


def shard_code_versions(recipe: Recipe, profile: str) -> dict[str, str]:
    """asset -> the code version its shard rows must carry to be up to date (no Dagster needed)."""
    return {asset: code_version(asset, recipe, profile) for asset in code_revisions() if asset not in UNPARTITIONED_ASSETS}


def effective_view(recipe: Recipe) -> dict[str, Any]:
    """Every setting the recipe decides, defaults filled in, as dotted keys (for diffs and the hash)."""
    view: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}", value[key])
        else:
            view[prefix] = value

    for asset in asset_configs():
        walk(asset, effective_config(asset, recipe).model_dump(mode="json"))
    for name in switchable_scorers():
        view[f"{SCORERS_KEY}.{name}"] = scorer_enabled(recipe, name)
    for key, default in LATER_DEFAULTS.items():
        if view.get(key) == default:
            del view[key]
    return view


def recipe_hash(recipe: Recipe) -> str:
    """Hash of the effective settings: two files that mean the same recipe hash the same."""
    return hashlib.sha256(json.dumps(effective_view(recipe), sort_keys=True).encode()).hexdigest()[:12]


def run_config(recipe: Recipe) -> dict:
    ops: dict[str, dict] = {}
    for name, body in recipe.items():
        if name == SCORERS_KEY:
            continue  # not run config: it shapes the definitions (see scorer_enabled)
        if name in shared_ops():
            op, key = shared_ops()[name]
            ops.setdefault(op, {"config": {}})["config"][key] = body
        else:
            ops[name] = {"config": body}
    return {"ops": ops}
