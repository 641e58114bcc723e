"""Data written by earlier code stays valid: no shard turns stale, the recipe hash is unchanged.

The fixtures are data dirs written by the code before scores became declarations (see
fixtures/data_dirs_v1/README.md). If a refactoring changes a code version or the recipe hash
by accident, every user's data dir would re-score from scratch: this fails first.
"""

import json
import shutil
from pathlib import Path

import pytest

from curation_assets.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "data_dirs_v1"


@pytest.mark.parametrize("name", ["demo", "no_weights"])
def test_old_data_dir_has_no_stale_shard_and_the_same_recipe_hash(name, tmp_path, monkeypatch, capsys):
    data = tmp_path / name
    shutil.copytree(FIXTURES / name, data)
    # the profile stored with the data decides (the suite's default is tiny)
    monkeypatch.delenv("CURATION_MODEL_PROFILE", raising=False)
    monkeypatch.delenv("CURATION_RECIPE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["status", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    stored_hash = json.loads((FIXTURES / name / "recipe_state.json").read_text())["recipe_hash"]
    assert f"hash {stored_hash}" in out.splitlines()[0]
    assert "\n0 shards missing or stale" in out, out


@pytest.mark.parametrize("name", ["demo", "no_weights"])
def test_every_written_code_version_is_the_expected_one(name):
    """The per-(asset, shard) code versions in the objects' footers equal what the code expects now."""
    from curation_assets.orchestration.recipe import load_recipe, shard_code_versions
    from curation_assets.store import SHARD_WRITES, ScoreStore

    data = FIXTURES / name
    profile = json.loads((data / "recipe_state.json").read_text())["model_profile"]
    expected = shard_code_versions(load_recipe(data / "recipe.yaml"), profile)
    store = ScoreStore(Path("/nonexistent/curation.duckdb"), location=data)
    written = store.query(f"select asset, shard, code_version from {SHARD_WRITES}")
    by_asset = {}
    for row in written.iter_rows(named=True):
        by_asset.setdefault(row["asset"], set()).add(row["code_version"])
    for asset, version in expected.items():
        assert by_asset.get(asset) == {version}, (asset, by_asset.get(asset), version)
