"""Recipes: one YAML file holding every scorer parameter and threshold.

A recipe uses the Dagster run-config keys, either in full
(`ops: {motion: {config: {sampling_fps: 2}}}`) or flat (`motion: {sampling_fps: 2}`).
The recipe named by CURATION_RECIPE becomes the defaults of each asset's config and feeds
its code_version, so editing a threshold marks exactly the dependent assets stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, create_model

from curation_assets.orchestration.configs import ASSET_CONFIGS, SHARED_OPS

RECIPE_ENV = "CURATION_RECIPE"

# Bump when a scorer's code changes its output; parameters are hashed in separately.
CODE_REVISIONS = {
    "shots": "1",
    "raw_videos": "3",  # 3: clips of split sources, with lineage columns
    "resolution": "1",
    "motion": "2",
    "sampled_frames": "1",
    "captions": "2",
    "caption_repetition": "1",
    "clip_similarity": "1",
    "aesthetics": "1",
    "ocr_area": "2",  # 2: bfloat16 detection by default on CPUs that do it natively
    "curated_videos": "3",  # 3: split sources, clip lineage, near-duplicates
    "video_hashes": "1",
    "near_duplicates": "1",
    "accelerated_videos": "1",
    "lora_training_set": "1",
    "score_report": "1",
}
# Assets over all shards at once: no per-shard rows, so not part of shard staleness.
UNPARTITIONED_ASSETS = {"lora_training_set", "score_report"}
# Their scores depend on the model profile (real weights or tiny random ones).
MODEL_ASSETS = {"captions", "clip_similarity", "aesthetics", "ocr_area"}


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


def recipe_from_env() -> Recipe:
    return load_recipe(os.environ.get(RECIPE_ENV))


def normalize_recipe(raw: Any, source: str = "recipe") -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: expected a mapping at the top level")
    if "ops" in raw:
        flat = {}
        shared_ops = {op for op, _ in SHARED_OPS.values()}
        for name, body in (raw["ops"] or {}).items():
            if not isinstance(body, dict) or set(body) - {"config"}:
                raise RecipeError(f"{source}: ops.{name} must hold only 'config'")
            if name in shared_ops:
                flat.update(body.get("config") or {})  # e.g. video_pass: {motion: ..., sampled_frames: ...}
            else:
                flat[name] = body.get("config") or {}
        extra = set(raw) - {"ops", "resources", "loggers", "execution"}
        if extra:
            raise RecipeError(f"{source}: unexpected top-level keys {sorted(extra)}")
        raw = flat
    recipe: Recipe = {}
    for name, body in raw.items():
        if name not in ASSET_CONFIGS:
            raise RecipeError(f"{source}: no configurable asset {name!r} (known: {sorted(ASSET_CONFIGS)})")
        if not isinstance(body, dict):
            raise RecipeError(f"{source}: {name} must be a mapping")
        try:
            ASSET_CONFIGS[name](**body)  # validate now, not mid-run
        except Exception as exc:
            raise RecipeError(f"{source}: invalid {name} config: {exc}") from exc
        recipe[name] = body
    return recipe


def effective_config(asset: str, recipe: Recipe):
    return ASSET_CONFIGS[asset](**recipe.get(asset, {}))


def config_class(asset: str, recipe: Recipe):
    """The asset's Config class with the recipe's values as defaults (shown in the launchpad)."""
    base = ASSET_CONFIGS[asset]
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
    version = CODE_REVISIONS[asset]
    if asset in ASSET_CONFIGS:
        params = effective_config(asset, recipe).model_dump(mode="json")
        version += "-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    if asset in MODEL_ASSETS:
        version += f"-{profile}"
    return version


def run_config(recipe: Recipe) -> dict:
    ops: dict[str, dict] = {}
    for name, body in recipe.items():
        if name in SHARED_OPS:
            op, key = SHARED_OPS[name]
            ops.setdefault(op, {"config": {}})["config"][key] = body
        else:
            ops[name] = {"config": body}
    return {"ops": ops}
