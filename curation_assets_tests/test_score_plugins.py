"""Score plugins: a package installed beside the project adds a score through an entry point.

The example plugin (examples/letterbox_score) is installed with pip into a folder on
PYTHONPATH, then used through the real CLI (scored, judged, counted in the funnel, switched
and thresholded by the recipe) and the Dagster definitions the UI loads (an asset with its
lineage). A plugin that fails to import or declares a score that cannot work stops every
entry point at start-up, in one line naming it.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "letterbox_score"
CLI = [sys.executable, "-m", "curation_assets.cli"]


def _install(source: Path, target: Path) -> None:
    # no build isolation: setuptools comes with the project's venv, nothing is downloaded
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site, source = tmp_path_factory.mktemp("plugin_site"), tmp_path_factory.mktemp("plugin_src") / "letterbox_score"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # pip builds in the tree
    _install(source, site)
    return site


def _env(site: Path, tmp_path: Path, **extra) -> dict:
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "HF_HUB_OFFLINE": "1",
           "CURATION_MODEL_PROFILE": "tiny", "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    env.pop("CURATION_RECIPE", None)
    env.update(extra)
    return env


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_letterbox_scorer_measures_the_bars():
    """The plugin's scorer on frames with a known answer (no install needed)."""
    import numpy as np

    sys.path.insert(0, str(PLUGIN))
    try:
        from letterbox_score import bar_ratio
    finally:
        sys.path.remove(str(PLUGIN))
    frame = np.full((120, 200, 3), 140, np.uint8)
    assert bar_ratio(frame) == 0.0
    frame[:20], frame[-20:] = 0, 0
    assert bar_ratio(frame) == pytest.approx(40 / 120)
    frame[:, :25], frame[:, -25:] = 12, 12  # pillarbox too, not quite black
    assert bar_ratio(frame) == pytest.approx(1 - (80 * 150) / (120 * 200))
    assert bar_ratio(np.zeros((8, 8, 3), np.uint8)) == 1.0


@pytest.mark.slow
def test_plugin_is_scored_judged_switched_and_thresholded_through_the_cli(plugin_site, tmp_path):
    from curation_assets.samples.synthetic import write_letterboxed, write_moving_pattern

    videos = tmp_path / "videos"
    write_letterboxed(videos / "letterboxed.mp4", bar_height=64)  # bars: 128 of 256 rows = 0.5
    write_moving_pattern(videos / "plain.mp4", width=320, height=256, seed=1)
    manifest = videos / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"videos": [name], "text": f"<__dj__video> {text} <|__dj__eoc|>"}) + "\n"
                                for name, text in [("letterboxed.mp4", "a film scene with black bars"),
                                                   ("plain.mp4", "a texture sliding to the right")]))
    data, env = tmp_path / "data", _env(plugin_site, tmp_path)
    run = _run(["run", "--input", str(manifest), "--data-dir", str(data)], env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "letterbox_ratio>0.3" in run.stdout  # the funnel counts the plugin's rule
    report = (data / "reports" / "score_report.md").read_text()
    assert "rejected by letterbox_ratio>0.3" in report and "### letterbox_ratio" in report  # funnel row, histogram

    import duckdb

    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    rows = {Path(p).name: (s, r, v) for p, s, r, v in con.execute(
        "select path, status, reasons, letterbox_ratio from curated_videos").fetchall()}
    scored = dict(con.execute("select r.path, l.letterbox_ratio from letterbox l join raw_videos r "
                              "using (video_id)").fetchall())
    con.close()
    assert rows["letterboxed.mp4"][2] == pytest.approx(0.5, abs=0.02)
    assert "letterbox_ratio>0.3" in rows["letterboxed.mp4"][1]
    assert rows["plain.mp4"][2] == pytest.approx(0.0, abs=0.02)
    assert not any(r.startswith("letterbox") for r in rows["plain.mp4"][1])
    assert sorted(Path(p).name for p in scored) == ["letterboxed.mp4", "plain.mp4"]

    # a threshold from the recipe re-judges only: curated_videos is what goes stale
    lax = tmp_path / "lax.yaml"
    lax.write_text("curated_videos:\n  thresholds:\n    letterbox_ratio_max: 0.6\n")
    status = _run(["status", "--data-dir", str(data), "--config", str(lax)], env)
    assert status.returncode == 0, status.stderr
    assert "  shard-00000: curated_videos\n" in status.stdout, status.stdout
    rerun = _run(["run", "--input", str(manifest), "--data-dir", str(data), "--no-outputs", "--config", str(lax)], env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "letterbox_ratio>" not in rerun.stdout.split("Funnel for")[1]

    # switched off: the plugin's asset and curated_videos re-run, its bound is not applied
    off = tmp_path / "off.yaml"
    off.write_text("scorers:\n  letterbox: false\n")
    status = _run(["status", "--data-dir", str(data), "--config", str(off)], env)
    assert "  shard-00000: letterbox, curated_videos\n" in status.stdout, status.stdout


@pytest.mark.slow
def test_plugin_asset_in_the_ui_definitions_with_lineage(plugin_site, tmp_path):
    code = textwrap.dedent("""
        from curation_assets.orchestration.definitions import build_definitions
        defs = build_definitions(recipe={}, profile="tiny")
        graph = defs.resolve_asset_graph()
        from dagster import AssetKey
        node = graph.get(AssetKey("letterbox"))
        print(sorted(k.to_user_string() for k in node.parent_keys))
        print(sorted(k.to_user_string() for k in node.child_keys))
        print(sorted(node.kinds))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_env(plugin_site, tmp_path), capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    parents, children, kinds = out.stdout.strip().splitlines()
    assert parents == "['sampled_frames']" and "curated_videos" in children and "numpy" in kinds
    # the Dagster CLI loads the same code location
    validate = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                              env=_env(plugin_site, tmp_path), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert validate.returncode == 0, validate.stdout + validate.stderr


def _fake_plugin(site: Path, module: str, body: str, entry: str) -> None:
    """A plugin installed the way pip installs one: a module and a dist-info with its entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[curation_assets.scores]\n{entry}\n")


@pytest.mark.parametrize(("body", "expected"), [
    ("import not_a_module_anywhere\n",
     "score plugin 'broken' (broken_plugin:SCORE in broken_plugin 0.1): cannot be imported: ModuleNotFoundError"),
    ("""
     import polars as pl
     from curation_assets.scores import FRAMES, Bound, ScoreDeclaration
     SCORE = ScoreDeclaration(name="broken", description="x", reads=FRAMES, columns={"b": pl.Float64},
                              revision="1", bounds=(Bound("motion_min", "min", 0.1),), compute=lambda *a: [])
     """, "threshold key 'motion_min' is taken by score 'motion'"),
    ("""
     import polars as pl
     from curation_assets.scores import FRAMES, ScoreDeclaration
     SCORE = ScoreDeclaration(name="broken", description="x", reads=FRAMES, columns={"b": pl.Float64}, revision="1")
     """, "compute must be the scorer function"),
])
def test_a_bad_plugin_stops_start_up_in_one_line_naming_it(body, expected, tmp_path):
    site = tmp_path / "site"
    _fake_plugin(site, "broken_plugin", body, "broken = broken_plugin:SCORE")
    env = _env(site, tmp_path)
    status = _run(["status", "--data-dir", str(tmp_path / "data")], env)
    assert status.returncode == 2
    error = status.stderr.strip()
    assert error.startswith("error: ") and "\n" not in error and expected in error and "'broken'" in error, error
    # the code location the UI loads fails on the same line
    load = subprocess.run([sys.executable, "-c", "import curation_assets.orchestration.definitions"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert load.returncode != 0 and expected in load.stderr
