"""The review gallery's parts without a browser: previews from the decode pass, the pins that
let the page re-judge exactly as curated_videos does, the page's data from the store (and what
it says is missing), the server's refusals, the recipe it saves, the contact sheet.

The page itself, in Chromium, against a curated data dir: test_review_e2e.py.
"""

from __future__ import annotations

import io
import json
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from curation_assets.samples import synthetic


# --------------------------------------------------------------------------- previews


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("review_clip") / "pan.mp4"
    return synthetic.write_moving_pattern(path, shift_px_per_frame=(1.0, 0), seed=3, width=320, height=180, fps=24,
                                          n_frames=120)


def test_preview_comes_from_the_decode_pass(clip, tmp_path):
    """The preview takes frames on motion's 2 fps grid during the one decode: the scores and
    the sampled frames are the same with it, no frame more is decoded, and the WebP loops over
    at most max_frames frames of at most max_side pixels."""
    from PIL import Image

    from curation_assets.scorers import video_pass as vp
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.previews import PreviewParams, preview_key, write_preview

    passes = vp.decode_passes()
    plain = vp.video_pass(clip, MotionParams(), FrameSamplingParams())
    params = PreviewParams(max_frames=4)
    with_preview = vp.video_pass(clip, MotionParams(), FrameSamplingParams(), preview=params)
    assert vp.decode_passes() == passes + 2
    assert with_preview.motion == plain.motion and with_preview.frame_indices == plain.frame_indices
    assert with_preview.frames_decoded == plain.frames_decoded
    assert all((a == b).all() for a, b in zip(with_preview.frames, plain.frames))
    assert plain.preview == []
    indices = [i for i, _ in with_preview.preview]
    assert len(indices) == 4 and indices[0] == 0
    assert all(i % 12 == 0 for i in indices)  # 24 fps / 2 fps: motion's grid
    assert set(indices) <= set(with_preview.motion.frame_indices)
    assert all(rgb.shape == (108, 192, 3) for _, rgb in with_preview.preview)

    key = write_preview(tmp_path, "abcdef0123", with_preview.preview, with_preview.fps, params)
    assert key == preview_key("abcdef0123") == "previews/ab/abcdef0123.webp"
    image = Image.open(tmp_path / key)
    assert image.format == "WEBP" and image.n_frames == 4 and image.size == (192, 108)


def test_preview_collector_without_a_frame_count():
    """A header without a frame count: every step-th frame, thinned evenly to max_frames, and
    never the reason the decode goes on."""
    import numpy as np

    from curation_assets.scorers.previews import PreviewCollector, PreviewParams

    class Frame:
        width, height = 640, 360

        def to_ndarray(self, **kw):
            return np.zeros((kw["height"], kw["width"], 3), np.uint8)

    collector = PreviewCollector(25.0, 0, PreviewParams(max_frames=5))
    for index in range(1000):
        assert collector.done(index)
        if collector.wants(index):
            collector.add(index, Frame())
    kept = [i for i, _ in collector.result()]
    assert len(kept) == 5 and kept[0] == 0 and kept[-1] >= 950
    assert all(i % 12 == 0 or i % 13 == 0 for i in kept)  # round(25 / 2) = 12


def test_run_pass_job_records_the_preview_key(clip, tmp_path):
    from curation_assets.scorers.frame_sampling import FrameSamplingParams
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import PassJob, run_pass_job

    out = run_pass_job(PassJob("ff00aa", str(clip), None, None, MotionParams(), FrameSamplingParams(), str(tmp_path)))
    assert out["error"] is None and out["preview_path"] == "previews/ff/ff00aa.webp"
    assert (tmp_path / out["preview_path"]).stat().st_size > 0
    off = run_pass_job(PassJob("ff00ab", str(clip), None, None, MotionParams(), FrameSamplingParams(), str(tmp_path),
                               preview=None))
    assert off["preview_path"] is None and not (tmp_path / "previews/ff/ff00ab.webp").exists()


# --------------------------------------------------------------------------- thresholds


RECIPE = {
    "curated_videos": {"per_source": {"generated": {"char_rep_ratio_max": 0.05}}, "thresholds": {"motion_min": 0.3}},
    "scorers": {"aesthetics": False},
}


def _random_shared(rng: random.Random) -> dict:
    from curation_assets.review.thresholds import controls

    shared = {}
    for c in controls():
        if c.kind == "bool":
            shared[c.key] = rng.random() < 0.5
        elif rng.random() < 0.2:
            shared[c.key] = None
        else:
            shared[c.key] = rng.randint(1, 2000) if c.kind == "int" else rng.uniform(-1, 3)
    return shared


@pytest.mark.parametrize("source", ["original", "generated", None])
@pytest.mark.parametrize("profile", ["real", "tiny", None])
def test_pins_reproduce_what_curated_videos_passes_judge(source, profile):
    """The page judges a clip with {shared controls, then its pins}: for any shared thresholds
    that must equal what curated_videos computes (thresholds_for + without_scorers)."""
    from curation_assets.review.thresholds import effective_thresholds, pinned_keys

    pins = pinned_keys(RECIPE, source, profile)
    rng = random.Random(f"{source}-{profile}")
    for _ in range(40):
        shared = _random_shared(rng)
        assert {**shared, **pins} == effective_thresholds(RECIPE, shared, source, profile)
    assert pins.get("aesthetics_score_min", "follows") is None  # switched off: never applied
    if profile == "tiny":
        assert pins["clip_similarity_min"] is None
    if source == "generated":
        assert pins["char_rep_ratio_max"] == (None if profile == "tiny" else 0.05)
    if source == "original" and profile == "real":
        assert set(pins) == {"aesthetics_score_min"}


def test_saved_recipe_changes_only_the_thresholds(tmp_path):
    from curation_assets.orchestration.recipe import load_recipe
    from curation_assets.orchestration.stored_recipe import assets_made_stale
    from curation_assets.review.thresholds import ThresholdError, recipe_with_thresholds, recipe_yaml

    new, changes = recipe_with_thresholds(RECIPE, {"motion_min": 0.5, "width_min": 300.0, "ocr_area_ratio_max": None,
                                                   "require_caption": True})
    assert changes == ["motion_min: 0.3 -> 0.5", "width_min: 256 -> 300", "ocr_area_ratio_max: 0.1 -> null"]
    path = tmp_path / "r.yaml"
    path.write_text(recipe_yaml(new))
    loaded = load_recipe(path)
    assert loaded["curated_videos"]["per_source"] == RECIPE["curated_videos"]["per_source"]
    assert loaded["curated_videos"]["thresholds"] == {"motion_min": 0.5, "width_min": 300, "ocr_area_ratio_max": None}
    assert loaded["scorers"] == {"aesthetics": False}
    # the scores stay fresh: only the verdicts go stale
    assert assets_made_stale(RECIPE, loaded, "tiny", "tiny") == ["curated_videos"]
    for bad, message in (({"motion_min": "high"}, "number or null"), ({"nope": 1}, "unknown threshold"),
                         ({"width_min": 2.5}, "whole number"), ({"require_caption": 1}, "true or false"),
                         ([1], "mapping")):
        with pytest.raises(ThresholdError, match=message):
            recipe_with_thresholds(RECIPE, bad)


# --------------------------------------------------------------------------- the page's data


def _curated_row(**kw) -> dict:
    row = {"path": None, "video_id": None, "status": "kept", "reasons": [], "caption_source": "original",
           "caption": "a caption", "model_profile": "real", "scorers_off": [], "thresholds": "{}", "error": None}
    row.update(kw)
    return row


@pytest.fixture
def old_store(tmp_path):
    """A data dir written before previews (sampled_frames without preview_path), one shard
    curated, a second registered and not curated."""
    from curation_assets.ingest.registry import REGISTRY_SCHEMA
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    curated = [
        _curated_row(path="/v/a.mp4", video_id="aa01", motion_score=1.0, width=640, height=360),
        _curated_row(path="/v/b.mp4", video_id="bb02", status="rejected", reasons=["motion_score<0.25"],
                     motion_score=0.1, width=640, height=360, ocr_area_ratio=float("nan")),
        _curated_row(path="/v/c.mp4", video_id=None, status="failed", reasons=["unreadable: empty file (0 bytes)"],
                     caption=None, caption_source=None),
    ]
    store.replace_shard("curated_videos", "shard-00000", pl.DataFrame(curated, schema=schema(), orient="row"))
    frames = pl.DataFrame({"video_id": ["aa01", "bb02"], "frame_paths": [["frames/aa/aa01/0000000.png",
                                                                          "frames/aa/aa01/0000012.png"],
                                                                         ["frames/bb/bb02/0000000.png"]],
                           "error": [None, None]}, schema={"video_id": pl.Utf8, "frame_paths": pl.List(pl.Utf8),
                                                           "error": pl.Utf8})
    store.replace_shard("sampled_frames", "shard-00000", frames)
    reg = pl.DataFrame([{"seq": i, "path": p, "shard": s, "manifest_text": None, "origin": "test",
                         "registration_error": None, "registered_at": None}
                        for i, (p, s) in enumerate([("/v/a.mp4", "shard-00000"), ("/v/b.mp4", "shard-00000"),
                                                    ("/v/c.mp4", "shard-00000"), ("/v/d.mp4", "shard-00001"),
                                                    ("/v/e.mp4", "shard-00002")])], schema=REGISTRY_SCHEMA)
    for shard in ("shard-00000", "shard-00001", "shard-00002"):
        store.replace_shard("video_registry", shard, reg.filter(pl.col("shard") == shard))
    return store


def test_page_data_says_what_is_missing_and_shows_the_rest(old_store):
    from curation_assets.review.gallery_data import gallery_data

    data = gallery_data(old_store, {}, "real", shard_failures={"shard-00001": "step image_scores failed: boom"})
    clips = data["clips"]
    assert data["count"] == 5
    assert clips["path"] == ["/v/a.mp4", "/v/b.mp4", "/v/c.mp4", "/v/d.mp4", "/v/e.mp4"]
    status = [clips["status"]["values"][c] for c in clips["status"]["codes"]]
    assert status == ["kept", "rejected", "failed", "not curated", "not curated"]
    # no preview column at all (older data dir): a sampled frame instead, and said so
    assert clips["preview"][:2] == [None, None]
    assert clips["still"][:2] == ["frames/aa/aa01/0000000.png", "frames/bb/bb02/0000000.png"]
    kinds = {p["kind"]: p["message"] for p in data["problems"]}
    assert "2 clips have no preview" in kinds["no_preview"]
    assert "shard-00001 (1 videos): not curated, its last run FAILED: step image_scores failed: boom" \
        == kinds["shard_failed"]
    assert "shard-00002 (1 videos): not curated yet" in kinds["not_run"]
    assert clips["reasons"][3] == ["shard run failed: step image_scores failed: boom"]
    # the verdicts no threshold changes are fixed; NaN scores travel as null
    assert clips["fixed"] == [False, False, True, True, True]
    assert clips["values"]["ocr_area_ratio"][1] is None
    json.dumps(data, allow_nan=False)


def test_a_large_store_is_sampled_across_verdicts_for_the_static_copy(tmp_path):
    """Past `limit` curated clips the page data is a sample chosen in SQL, every verdict in it
    (a rare one too), the registered-but-not-curated videos still all there, the details only
    the shown clips', and the page says it is a sample."""
    from curation_assets.ingest.registry import REGISTRY_SCHEMA
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.review.clip_detail import all_details
    from curation_assets.review.gallery_data import gallery_data, sample_quotas
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    status = ["kept"] * 150 + ["rejected"] * 45 + ["failed"] * 5
    rows = [_curated_row(path=f"/v/{i:03d}.mp4", video_id=f"id{i:03d}", status=s, motion_score=float(i))
            for i, s in enumerate(status)]
    store.replace_shard("curated_videos", "shard-00000", pl.DataFrame(rows, schema=schema(), orient="row"))
    store.replace_shard("sampled_frames", "shard-00000", pl.DataFrame(
        {"video_id": [r["video_id"] for r in rows], "frame_paths": [[f"frames/{r['video_id']}.png"] for r in rows],
         "error": [None] * len(rows)}, schema={"video_id": pl.Utf8, "frame_paths": pl.List(pl.Utf8), "error": pl.Utf8}))
    reg = pl.DataFrame([{"seq": i, "path": f"/v/{i:03d}.mp4", "shard": "shard-00000" if i < 200 else "shard-00001",
                         "manifest_text": None, "origin": "test", "registration_error": None, "registered_at": None}
                        for i in range(203)], schema=REGISTRY_SCHEMA)
    for shard in ("shard-00000", "shard-00001"):
        store.replace_shard("video_registry", shard, reg.filter(pl.col("shard") == shard))

    assert sample_quotas({"kept": 150, "rejected": 45, "failed": 5}, 40) == {"kept": 24, "rejected": 10, "failed": 5}
    data = gallery_data(store, {}, "real", limit=40)
    clips = data["clips"]
    shown = [clips["status"]["values"][c] for c in clips["status"]["codes"]]
    assert data["sampled"] and data["total"] == 203 and data["count"] == len(shown) == 39 + 3
    assert {s: shown.count(s) for s in set(shown)} == {"kept": 24, "rejected": 10, "failed": 5, "not curated": 3}
    assert clips["path"][-3:] == ["/v/200.mp4", "/v/201.mp4", "/v/202.mp4"]
    assert data == gallery_data(store, {}, "real", limit=40) | {"generated_at": data["generated_at"]}  # stable
    sampled = next(p["message"] for p in data["problems"] if p["kind"] == "sampled")
    assert sampled.startswith("this copy shows 39 of 200 clips") and "`curation-assets review`" in sampled
    ids = [v for v in clips["video_id"] if v]
    assert all(clips["still"][i] == f"frames/{v}.png" for i, v in enumerate(clips["video_id"]) if v)
    assert sorted(all_details(store, ids)) == sorted(ids)
    full = gallery_data(store, {}, "real", limit=500)
    assert not full["sampled"] and full["count"] == full["total"] == 203


def test_a_sample_of_a_store_of_many_shards_is_drawn_from_runs_of_shards_spread_over_it(tmp_path):
    """Past SAMPLE_FROM x limit clips the sample comes from SAMPLE_WINDOWS runs of consecutive
    shards spread evenly (DuckDB skips the other row groups by their shard statistics), every
    verdict of those shards in it, its details read there, and the page says where it came from."""
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.review.clip_detail import shown_details
    from curation_assets.review.gallery_data import gallery_data, sample_windows
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    for n in range(40):
        shard = f"shard-{n:05d}"
        rows = [_curated_row(path=f"/v/{n:02d}-{i}.mp4", video_id=f"id{n:02d}-{i}", shard=shard,
                             status="failed" if i == 0 else "kept" if i % 2 else "rejected") for i in range(10)]
        store.replace_shard("curated_videos", shard, pl.DataFrame(rows, schema=schema(), orient="row"))
        store.replace_shard("sampled_frames", shard, pl.DataFrame(
            {"video_id": [r["video_id"] for r in rows], "frame_paths": [[f"f/{r['video_id']}.png"] for r in rows],
             "error": [None] * 10}, schema={"video_id": pl.Utf8, "frame_paths": pl.List(pl.Utf8), "error": pl.Utf8}))
    shard_rows = store.winners("curated_videos").select("shard", "rows")
    within, used = sample_windows(shard_rows, 80)
    assert used == 8 and within.count("between") == 8
    assert sample_windows(shard_rows, 400) == ("true", 40)

    data = gallery_data(store, {}, "real", limit=20)
    clips = data["clips"]
    shards = {clips["shard"]["values"][c] for c in clips["shard"]["codes"]} if isinstance(clips["shard"], dict) \
        else set(clips["shard"])
    assert shards <= {f"shard-{n:05d}" for n in range(0, 40, 5)} and len(shards) > 1
    shown = [clips["status"]["values"][c] for c in clips["status"]["codes"]]
    assert data["sampled"] and data["total"] == 400 and data["count"] == 18 and "failed" in shown  # quotas round down
    sampled = next(p["message"] for p in data["problems"] if p["kind"] == "sampled")
    assert sampled.startswith("this copy shows 18 of 400 clips") and "drawn from 8 shards" in sampled
    assert sorted(shown_details(store, data)) == sorted(clips["video_id"])


def test_a_sample_shows_the_videos_without_a_verdict_of_partly_and_never_curated_shards(tmp_path):
    """A sampled page asks the store which registered videos have no verdict, in the shards the
    funnel's per-shard counts say lack some: one missing from a curated shard, a whole shard not
    run, and none from the complete shards."""
    from curation_assets.ingest.registry import REGISTRY_SCHEMA
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.review.gallery_data import gallery_data
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    registered = {"shard-00000": 30, "shard-00001": 31, "shard-00002": 2}  # 00001: one without a verdict; 00002: not run
    curated = {"shard-00000": 30, "shard-00001": 30}
    for shard, n in registered.items():
        store.replace_shard("video_registry", shard, pl.DataFrame(
            [{"seq": i, "path": f"/v/{shard}/{i:02d}.mp4", "shard": shard, "manifest_text": None, "origin": "test",
              "registration_error": None, "registered_at": None} for i in range(n)], schema=REGISTRY_SCHEMA))
    for shard, n in curated.items():
        rows = [_curated_row(path=f"/v/{shard}/{i:02d}.mp4", video_id=f"{shard}-{i}", shard=shard) for i in range(n)]
        store.replace_shard("curated_videos", shard, pl.DataFrame(rows, schema=schema(), orient="row"))

    data = gallery_data(store, {}, "real", limit=10)
    clips = data["clips"]
    status = [clips["status"]["values"][c] for c in clips["status"]["codes"]]
    lacking = [path for path, s in zip(clips["path"], status) if s == "not curated"]
    assert data["sampled"] and data["total"] == 63
    assert lacking == ["/v/shard-00001/30.mp4", "/v/shard-00002/00.mp4", "/v/shard-00002/01.mp4"]
    assert {p["shard"] for p in data["problems"] if p["kind"] == "not_run"} == {"shard-00001", "shard-00002"}


def test_page_data_of_a_data_dir_without_scores(tmp_path):
    from curation_assets.review.gallery_data import gallery_data
    from curation_assets.store import ScoreStore

    data = gallery_data(ScoreStore(tmp_path / "curation.duckdb"), {}, None)
    assert data["count"] == 0
    assert [p["kind"] for p in data["problems"]] == ["no_data"]


# --------------------------------------------------------------------------- the server


@pytest.fixture
def server(old_store, tmp_path):
    """`review`'s server in a thread on a free port, over the old store plus a few files."""
    from curation_assets.review.context import ReviewContext
    from curation_assets.review.server import serve

    (tmp_path / "frames/aa/aa01").mkdir(parents=True)
    (tmp_path / "frames/aa/aa01/0000000.png").write_bytes(b"\x89PNG fake")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (tmp_path / "frames/aa/link").symlink_to(outside)
    (tmp_path / "recipe.yaml").write_text("{}\n")
    context = ReviewContext(tmp_path, old_store, {}, None, "real")
    httpd = serve(context, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_server_serves_the_store_and_refuses_what_is_outside(server):
    assert _get(f"{server}/store/frames/aa/aa01/0000000.png") == (200, b"\x89PNG fake")
    assert _get(f"{server}/store/frames/aa/aa01/0000099.png")[0] == 404
    for path in ("/store/frames/../recipe.yaml", "/store/frames/%2e%2e/%2e%2e/recipe.yaml", "/store//etc/passwd",
                 "/store/tables/curated_videos/shard-00000.parquet", "/store/recipe.yaml",
                 "/store/frames/aa/link/secret.txt", "/store/frames/aa\\..\\x"):
        status, body = _get(server + path)
        assert status == 403, (path, status, body)
        assert body.startswith(b"refused: ")
    # urllib would normalize '..' itself: send it raw
    import http.client

    conn = http.client.HTTPConnection(server.split("//")[1], timeout=20)
    conn.request("GET", "/store/../recipe.yaml")
    assert conn.getresponse().status in (403, 404)
    conn.close()
    # another name for this machine (a rebound DNS name) is not served
    status, body = _get(server + "/", headers={"Host": "attacker.example:80"})
    assert status == 403 and b"Host" in body


def test_server_serves_the_score_report_and_nothing_else_there(server, tmp_path):
    """/report/: the score report page (reports/score_report.html) and the charts beside it."""
    import http.client

    status, body = _get(f"{server}/report/")
    assert status == 404 and b"no score report yet" in body
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "score_report.html").write_text("<h1>Score report</h1><img src=\"funnel.png\">")
    (reports / "funnel.png").write_bytes(b"\x89PNG chart")
    (reports / "notes.txt").write_text("not served")
    assert _get(f"{server}/report/") == (200, b"<h1>Score report</h1><img src=\"funnel.png\">")
    assert _get(f"{server}/report") == _get(f"{server}/report/")  # redirected: relative chart links resolve
    assert _get(f"{server}/report/funnel.png") == (200, b"\x89PNG chart")
    for path in ("/report/notes.txt", "/report/..%2frecipe.yaml", "/report/.hidden.png"):
        status, body = _get(server + path)
        assert status == 403 and body.startswith(b"refused: "), (path, status, body)
    conn = http.client.HTTPConnection(server.split("//")[1], timeout=20)
    conn.request("GET", "/report/../recipe.yaml")
    assert conn.getresponse().status in (403, 404)
    conn.close()


def test_server_page_data_detail_and_recipe(server, tmp_path):
    from curation_assets.orchestration.recipe import load_recipe

    status, page = _get(server + "/")
    assert status == 200 and b'"mode":"server"' in page and b"judgeOne" in page
    status, body = _get(server + "/api/gallery", headers={"Accept-Encoding": "gzip"})
    import gzip

    assert status == 200 and json.loads(gzip.decompress(body))["count"] == 5
    status, body = _get(server + "/api/clip/aa01?shard=shard-00000")
    assert status == 200 and json.loads(body)["frames"][0]["key"] == "frames/aa/aa01/0000000.png"
    assert _get(server + "/api/clip/aa01")[0] == 400

    def post(payload, ctype="application/json"):
        request = urllib.request.Request(server + "/api/recipe", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": ctype}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=20) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post({"thresholds": {"motion_min": "x"}}) == (400, {"error": "motion_min must be a number or null, not 'x'"})
    assert post({"thresholds": {}}, ctype="text/plain")[0] == 415
    status, saved = post({"thresholds": {"motion_min": 0.5}})
    assert status == 200, saved
    assert saved["path"] == str(tmp_path / "reports" / "review_recipe.yaml")
    assert saved["changes"] == ["motion_min: 0.25 -> 0.5"] and saved["stale"][0] == "curated_videos"
    assert load_recipe(saved["path"]) == {"curated_videos": {"thresholds": {"motion_min": 0.5}}}
    assert f"--config {saved['path']}" in saved["command"]


def test_static_copy_is_self_contained(old_store, tmp_path):
    """One file: data, details, CSS and JavaScript inline; media linked relative to it."""
    from curation_assets.review.clip_detail import all_details
    from curation_assets.review.gallery_data import gallery_data
    from curation_assets.review.page import write_static_gallery

    data = gallery_data(old_store, {}, "real")
    data["clips"]["caption"][0] = "</script><script>alert(1)</script>"
    out = write_static_gallery(old_store, data, all_details(old_store), tmp_path / "reports" / "gallery.html", "t")
    html = out.read_text()
    assert '"mode":"static"' in html and '"media_base":"../"' in html
    assert "</script><script>alert(1)" not in html  # a caption cannot end the data early
    assert "<script src" not in html and "<link rel=\"stylesheet\"" not in html and "fetch('api/" in html


def test_contact_sheet(old_store, tmp_path):
    from PIL import Image

    from curation_assets.review.contact_sheet import contact_sheet_png

    for name in ("aa/aa01/0000012.png", "bb/bb02/0000000.png"):
        (tmp_path / "frames" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (320, 180), (200, 30, 30)).save(tmp_path / "frames" / name)
    curated = old_store.read_shard("curated_videos", "shard-00000")
    frames = old_store.read_shard("sampled_frames", "shard-00000")
    png = contact_sheet_png(old_store, curated, frames)
    sheet = Image.open(io.BytesIO(png))
    assert sheet.format == "PNG" and sheet.width == 6 * 166 + 6
    # red thumbnails of both clips are on it (the middle frame of a clip without a preview)
    import numpy as np

    reds = int((np.asarray(sheet.convert("RGB")) == (200, 30, 30)).all(axis=2).sum())
    assert reds >= 2 * 160 * 90 * 0.9
    assert contact_sheet_png(old_store, curated.filter(pl.col("status") == "failed"), frames) is None
