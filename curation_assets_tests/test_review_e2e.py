"""The review gallery end to end: a curated data dir, `curation-assets review`, Chromium.

One data dir, built once for the module by `curation-assets run` on the demo corpus (every
rule exercised), then:
- the page's counts and cards equal the funnel; thresholds moved in the page flip exactly the
  clips `judge` flips (per clip, reasons included); the saved recipe, applied by
  `curation-assets run --config`, re-judges without re-scoring to the counts the page showed;
  the detail view shows the frames with their OCR boxes and the motion plot;
- a copy made to look older and partly failed (no previews, no OCR boxes, a shard whose run
  failed): the page says what is missing and shows the rest;
- the FiftyOne export, loaded back through FiftyOne.

Needs Debian's Chromium + playwright (as test_ui_browser.py) and, for the export, the FiftyOne
venv (scripts/install_fiftyone.sh); each test skips with the reason when its part is
missing, except in CI: .ci/run installs both and sets CURATION_REQUIRE_BROWSER=1 and
CURATION_REQUIRE_FIFTYONE=1, so a missing part fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from review_fixtures import ReviewServer
from test_ui_browser import CHROMIUM, CHROMIUM_FLAGS, _require_browser

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI_TIMEOUT_S = 600

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass
class Curated:
    root: Path
    inputs: Path
    data: Path
    env: dict


def _env() -> dict:
    env = dict(os.environ, CURATION_MODEL_PROFILE="tiny", HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1",
               PYTHONUNBUFFERED="1")
    for name in ("CURATION_RECIPE", "DAGSTER_HOME", "CURATION_DATA_DIR", "CURATION_STORE"):
        env.pop(name, None)
    return env


def _cli(args: list, env: dict) -> str:
    done = subprocess.run([str(BIN / "curation-assets"), *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, f"curation-assets {args[0]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def curated(tmp_path_factory, demo_corpus) -> Curated:
    root = tmp_path_factory.mktemp("review_e2e")
    inputs = root / "inputs"
    shutil.copytree(demo_corpus, inputs)
    env = _env()
    _cli(["run", "--input", inputs, "--data-dir", root / "data", "--model-profile", "tiny"], env)
    return Curated(root, inputs, root / "data", env)


def _browser(pw, tmp_path: Path):
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return browser, page, errors


def _open_gallery(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def _page_funnel(page) -> dict[str, int]:
    return {row.get_attribute("data-count"): int(row.get_attribute("data-value"))
            for row in page.locator("#funnel tr[data-count]").all()}


def _funnel_counts(data_dir: Path) -> dict[str, int]:
    """The counts `curation-assets run` / `status` print (curation/funnel.py)."""
    from curation_assets.curation.funnel import funnel
    f = funnel(_store(data_dir))
    out = {"in": f.videos_in, "kept": f.status["kept"], "rejected": f.status["rejected"], "failed": f.status["failed"]}
    out.update({f"rule:{rule}": n for rule, n in f.rejected_by_rule.items()})
    return out


def _store(data_dir: Path):
    from curation_assets.store import ScoreStore

    return ScoreStore(data_dir / "curation.duckdb")


def _curated_rows(data_dir: Path) -> pl.DataFrame:
    return _store(data_dir).query("select * from curated_videos")


def _comparable(page_funnel: dict[str, int]) -> dict[str, int]:
    """The page's funnel as _funnel_counts spells it (no failure stages, no rule at zero)."""
    return {k: v for k, v in page_funnel.items() if not k.startswith("stage:") and not (k.startswith("rule:") and v == 0)}


def _expected_verdicts(rows: pl.DataFrame, shared: dict) -> dict[str, list]:
    """path -> [status, reasons] that curated_videos would give under these shared thresholds:
    the stored verdict where no threshold decides, else judge() on the stored scores."""
    from curation_assets.curation.rules import judge
    from curation_assets.review.thresholds import effective_thresholds

    out = {}
    for row in rows.iter_rows(named=True):
        reasons = list(row["reasons"] or [])
        if row["status"] not in ("kept", "rejected") or any(r.startswith("duplicate_of:") for r in reasons):
            out[row["path"]] = [row["status"], reasons]
            continue
        thresholds = effective_thresholds({}, shared, row["caption_source"], row["model_profile"])
        verdict = judge(row, thresholds, required=(), caption_scores=())  # every score present: it was judged
        out[row["path"]] = [verdict.status, verdict.reasons]
    return out


def _shard_writes(data_dir: Path) -> dict[str, str]:
    return {a: str(w) for a, w in _store(data_dir).query("select asset, written_at from shard_writes").iter_rows()}


def test_export_to_fiftyone_loads_back(curated, tmp_path):
    """`curation-assets export fiftyone`: one sample per clip, read back through FiftyOne."""
    from curation_assets.outputs.fiftyone_export import ExportError, fiftyone_python, read_dataset

    try:
        python = fiftyone_python()
    except ExportError as exc:
        if os.environ.get("CURATION_REQUIRE_FIFTYONE"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    db = tmp_path / "fiftyone_db"
    out = _cli(["export", "fiftyone", "--data-dir", curated.data, "--name", "review-e2e", "--database-dir", db],
               curated.env)
    rows = _curated_rows(curated.data)
    counts = _funnel_counts(curated.data)
    assert f"FiftyOne dataset 'review-e2e': {rows.height} samples (kept {counts['kept']}" in out, out
    loaded = read_dataset("review-e2e", python, str(db))
    assert loaded["samples"] == rows.height and loaded["persistent"] and loaded["media_type"] == "video"
    tags = loaded["tags"]
    for status in ("kept", "rejected", "failed"):
        assert tags.get(status, 0) == counts[status]
    for key, n in counts.items():
        if key.startswith("rule:"):
            assert tags[key[len("rule:"):]] == n, key
    from curation_assets.scores import all_scores

    wanted = {"status", "reasons", "rules", "caption", "caption_source", "source_path", "start_s", "end_s",
              "near_duplicate_of", "in_training_set", "accelerated", "video_id", "shard"}
    wanted |= {c for d in all_scores() for c in d.value_columns}
    assert wanted <= set(loaded["fields"]), wanted - set(loaded["fields"])
    assert sorted(loaded["values"]["status"]) == sorted(rows["status"].to_list())
    # the training set's files: its accelerated clip, not the original (this test runs before
    # the thresholds test re-judges the slow clip away)
    training = json.loads((curated.data / "training_sets" / "16x256x256" / "metadata.json").read_text())
    assert {t["file_path"] for t in training} <= set(loaded["values"]["filepath"])
    assert any("/accelerated/" in t["file_path"] for t in training)


def test_thresholds_moved_in_the_page_rejudge_to_its_counts(curated, tmp_path):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    rows = _curated_rows(curated.data)
    stored = _funnel_counts(curated.data)
    server = ReviewServer(curated.data, curated.env, tmp_path / "review.log")
    timings = {}
    try:
        with sync_playwright() as pw:
            browser, page, errors = _browser(pw, tmp_path)
            t0 = time.perf_counter()
            _open_gallery(page, server.url)
            timings["gallery open"] = time.perf_counter() - t0
            # 1. the page's funnel is the CLI's, one card per clip, nothing reported missing or stale
            assert _comparable(_page_funnel(page)) == stored
            expect(page.locator("#problems")).to_be_hidden()
            for status in ("kept", "rejected", "failed"):
                expect(page.locator(f".card[data-status='{status}']")).to_have_count(stored[status])
            page.screenshot(path=str(shots / "01_gallery.png"))

            # 2. move thresholds: a stricter motion_min flips the slowest kept clip, a looser
            # OCR bound keeps the text clip, aesthetics under the tiny profile changes nothing
            kept_motion = sorted(rows.filter(pl.col("status") == "kept")["motion_score"].to_list())
            new = {"motion_min": round((kept_motion[0] + kept_motion[1]) / 2, 4), "ocr_area_ratio_max": 0.2,
                   "aesthetics_score_min": 0.99}
            for key, value in new.items():
                box = page.locator(f".control[data-key='{key}'] input[data-role=number]")
                box.fill(str(value))
                box.press("Tab")
            from curation_assets.review.thresholds import shared_thresholds

            shared = {**shared_thresholds({}), **new}
            page.wait_for_function(f"window.reviewThresholds().motion_min === {new['motion_min']}")
            assert page.evaluate("window.reviewThresholds()") == shared
            expected = _expected_verdicts(rows, shared)
            page_verdicts = page.evaluate("window.reviewVerdicts()")
            assert page_verdicts == expected
            flipped = {p for p, (s, _) in expected.items() if s != rows.filter(pl.col("path") == p)["status"][0]}
            assert len(flipped) == 2  # the slow clip rejected, the text clip kept
            expect(page.locator(".card.flipped")).to_have_count(len(flipped))
            assert {c.get_attribute("data-path") for c in page.locator(".card.flipped").all()} == flipped
            shown = _page_funnel(page)
            page.locator("#only-flipped").check()
            expect(page.locator(".card")).to_have_count(2)
            page.screenshot(path=str(shots / "02_threshold_moved.png"))
            page.locator("#only-flipped").uncheck()

            # 3. save: the recipe file the run applies
            page.get_by_test_id("save").click()
            saved = page.get_by_test_id("saved-path")
            expect(saved).to_contain_text("review_recipe.yaml")
            recipe_path = Path(saved.inner_text().split("written: ")[1].strip())
            expect(page.locator("#save-result")).to_contain_text("goes stale: curated_videos")

            # 4. one clip explained: the text clip's frames with their OCR boxes, the motion plot
            text_clip = page.locator(".card[data-path$='text_overlay.mp4']")
            text_clip.click()
            detail = page.locator("#detail-box")
            expect(detail.get_by_test_id("frames")).to_be_visible()
            frames = detail.locator(".frame img")
            expect(frames).to_have_count(3)
            for k in range(3):
                assert frames.nth(k).evaluate("img => img.complete && img.naturalWidth") > 0
            expect(detail.locator("polygon[data-testid=ocr-box]")).to_have_count(3)
            expect(detail).to_contain_text("ocr_area_ratio 0.145")
            expect(detail.get_by_test_id("motion-plot")).to_be_visible()
            assert detail.locator("[data-testid=motion-plot] circle").count() >= 3
            detail.locator("[data-testid=frames]").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "03_clip_detail.png"))
            page.keyboard.press("Escape")
            expect(page.locator("#detail")).to_be_hidden()
            assert errors == [], errors
            browser.close()
    finally:
        server.stop()

    # 5. the saved recipe through the CLI: only the verdicts are redone, to the page's counts
    before = _shard_writes(curated.data)
    out = _cli(["run", "--input", curated.inputs, "--data-dir", curated.data, "--config", recipe_path], curated.env)
    assert "stale now on every shard: curated_videos\n" in out, out
    after = _shard_writes(curated.data)
    assert after["curated_videos"] != before["curated_videos"]
    for asset in ("motion", "sampled_frames", "ocr_area", "aesthetics", "clip_similarity", "captions", "raw_videos"):
        assert after[asset] == before[asset], f"{asset} was recomputed"
    assert _funnel_counts(curated.data) == _comparable(shown)
    rejudged = {r["path"]: [r["status"], list(r["reasons"])] for r in _curated_rows(curated.data).iter_rows(named=True)}
    assert rejudged == page_verdicts
    print(f"\nreview screenshots in {shots}; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_gallery_of_an_older_partly_failed_data_dir(curated, tmp_path):
    """A copy without previews or OCR boxes (as written before them) and with a shard whose run
    failed: the page names each gap, and still shows every clip it can."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.samples import synthetic
    data = tmp_path / "older"
    shutil.copytree(curated.data, data, ignore=shutil.ignore_patterns("*.lock"))
    store = _store(data)
    for table, column in (("sampled_frames", "preview_path"), ("ocr_area", "frame_boxes")):
        for shard in store.shards(table):
            store.replace_shard(table, shard, store.read_shard(table, shard).drop(column, "shard"))
    shutil.rmtree(data / "previews")
    extra = tmp_path / "extra"
    synthetic.write_static(extra / "late.mp4", seed=5, width=320, height=256, fps=24, n_frames=48)
    [failed_shard] = register(store, discover(extra), 64)
    # its run fails in its first step: real weights asked for, none on this machine
    env = dict(curated.env, CURATION_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster_home"),
               CURATION_MODEL_PROFILE="real", HF_HOME=str(tmp_path / "no_weights"), CURATION_MODEL_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "from curation_assets.execution.shard_runner import run_shard, "
                           f"ensure_partitions; ensure_partitions(['{failed_shard}']); print(run_shard('{failed_shard}'))"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert "FAILED" in done.stdout, done.stdout + done.stderr[-2000:]

    server = ReviewServer(data, dict(curated.env, DAGSTER_HOME=str(data / "dagster_home")), tmp_path / "review.log")
    try:
        with sync_playwright() as pw:
            browser, page, errors = _browser(pw, tmp_path)
            _open_gallery(page, server.url)
            problems = page.locator("#problems")
            expect(problems).to_be_visible()
            expect(problems.locator("[data-kind=shard_failed]")).to_contain_text(
                f"{failed_shard} (1 videos): not curated, its last run FAILED: step")
            expect(problems.locator("[data-kind=no_preview]")).to_contain_text("clips have no preview")
            # every clip still has its card: the failed shard's video too
            n = len(_curated_rows(data))
            expect(page.locator(".card")).to_have_count(n + 1)
            expect(page.locator(".card[data-status='not curated']")).to_have_count(1)
            kept = page.locator(".card[data-status=kept]")
            expect(kept.first.locator(".tag")).to_have_text("no preview: a sampled frame")
            assert kept.first.locator("img").evaluate("img => img.complete && img.naturalWidth") > 0
            page.screenshot(path=str(tmp_path / "older_gallery.png"))
            page.locator(".card[data-path$='text_overlay.mp4']").click()
            detail = page.locator("#detail-box")
            expect(detail.locator(".notes")).to_contain_text("ocr_area: no boxes stored")
            expect(detail.locator(".frame img")).to_have_count(3)
            assert errors == [], errors
            browser.close()
    finally:
        server.stop()
