"""The review gallery at scale: 100,000 clips open, scroll, re-judge and regroup without waiting.

    .venv/bin/python benchmarks/gallery_scale.py [--clips 100000] [--shard-size 64]

Builds a data dir of `--clips` synthetic clips once (reused by later runs under --work-dir):
curated_videos, sampled_frames and video_registry shards written through ScoreStore as the
pipeline writes them (shards of 64), scores drawn from plausible distributions and the
verdicts made by `judge` under the default thresholds, a preview and a frame per clip (hard
links to a few real WebP/PNG files, so every card has its own URL as in a real store). Then
`curation-assets review`'s server (in this process) and headless Chromium (Debian's, as the
tests use) measure: the server building the gallery data and its size (raw, gzip); the
page from navigation to ready (data fetched, parsed, every clip judged, the first cards
drawn) and to the first screen of previews loaded; scrolling through the whole list (frame
times while it jumps screen by screen); a threshold moved (every clip re-judged, funnel and
grid redrawn); regrouping by rule and sorting by a score; the JS heap; and the static copy
(its size, and ready from file://). The machine and its load are printed with the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CHROMIUM = os.environ.get("CURATION_CHROMIUM", "/usr/bin/chromium")
WORDS = ("a person walks slowly across the busy city street while the camera pans over cars trees and "
         "buildings in warm evening light near the river with birds flying above a small boat").split()


def build(data: Path, n: int, shard_size: int, seed: int = 0) -> None:
    import numpy as np
    import polars as pl

    from curation_assets.curation.rules import judge
    from curation_assets.ingest.registry import REGISTRY_SCHEMA, shard_key
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.review.thresholds import effective_thresholds
    from curation_assets.scorers.previews import encode_webp
    from curation_assets.store import ScoreStore

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    data.mkdir(parents=True, exist_ok=True)
    store = ScoreStore(data / "curation.duckdb")
    # a few real files every clip links to (hard links: one inode, a URL per clip)
    seeds_dir = data / "bench_seed"
    seeds_dir.mkdir(exist_ok=True)
    seeds = []
    for k in range(16):
        frames = [(i * 12, (nprng.random((108, 192, 3)) * 255).astype("uint8")) for i in range(8)]
        webp = seeds_dir / f"p{k}.webp"
        webp.write_bytes(encode_webp(frames, 24.0))
        png = seeds_dir / f"f{k}.png"
        from PIL import Image

        Image.fromarray((nprng.random((360, 640, 3)) * 255).astype("uint8")).save(png)
        seeds.append((webp, png))
    thresholds = {src: effective_thresholds({}, {}, src, "real") for src in ("original", "generated")}
    columns = schema()
    t0 = time.perf_counter()
    for s, start in enumerate(range(0, n, shard_size)):
        shard = shard_key(s)
        rows, frames, reg = [], [], []
        for i in range(start, min(n, start + shard_size)):
            vid = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()[:20]  # spread over 256 folders, as content hashes are
            source = f"/data/videos/source_{i // 40:05d}.mp4"
            path = f"clips/{vid[:2]}/{vid}/clip{i % 40:05d}.mp4"
            src = "original" if rng.random() < 0.7 else "generated"
            row = {
                "path": path, "video_id": vid, "caption_source": src, "model_profile": "real", "scorers_off": [],
                "caption": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))),
                "motion_score": float(nprng.lognormal(0.3, 0.9)), "width": rng.choice([1280, 1920, 640, 240]),
                "height": rng.choice([720, 1080, 360, 180]), "char_rep_ratio": float(nprng.beta(1, 12)),
                "clip_similarity": float(nprng.normal(0.27, 0.04)), "aesthetics_score": float(nprng.normal(0.5, 0.08)),
                "ocr_area_ratio": float(nprng.exponential(0.03)), "error": None, "source_video_id": None,
                "source_path": source, "near_duplicate_of": None, "start_s": (i % 40) * 6.0, "end_s": (i % 40) * 6.0 + 5.5,
            }
            verdict = judge(row, thresholds[src], required=(), caption_scores=())
            row.update(status=verdict.status, reasons=verdict.reasons, thresholds="{}")
            rows.append(row)
            webp, png = seeds[i % len(seeds)]
            preview = f"previews/{vid[:2]}/{vid}.webp"
            frame = f"frames/{vid[:2]}/{vid}/0000000.png"
            for key, target in ((preview, webp), (frame, png)):
                (data / key).parent.mkdir(parents=True, exist_ok=True)
                if not (data / key).exists():
                    os.link(target, data / key)
            frames.append({"video_id": vid, "frame_indices": [0], "timestamps": [0.0], "frame_paths": [frame],
                           "preview_path": preview, "width": 640, "height": 360, "params": "{}", "error": None})
            reg.append({"seq": i, "path": path, "shard": shard, "manifest_text": None, "origin": "bench",
                        "registration_error": None, "registered_at": None})
        store.replace_shard("curated_videos", shard, pl.DataFrame(rows, schema=columns, orient="row"))
        store.replace_shard("sampled_frames", shard, pl.DataFrame(frames))
        store.replace_shard("video_registry", shard, pl.DataFrame(reg, schema=REGISTRY_SCHEMA, orient="row"))
        if s % 200 == 0:
            print(f"  built {min(n, start + shard_size)} of {n} clips ({time.perf_counter() - t0:.0f} s)", flush=True)
    # as `curation-assets run` leaves a data dir: its head node compacts the shards' objects
    # (docs/store.md), so the gallery reads a few segments, not thousands of small objects
    from curation_assets.curation.upkeep import upkeep

    upkeep(store, force=True)
    (data / "bench_complete").write_text(str(n))


def measure(data: Path, out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    from curation_assets.review.clip_detail import all_details
    from curation_assets.review.context import open_context
    from curation_assets.review.page import write_static_gallery
    from curation_assets.review.server import serve

    results: dict = {}
    context = open_context(data, with_run_history=False)
    httpd = serve(context, 0, prewarm=False)  # measured below: the build, then the page building it again
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        t0 = time.perf_counter()
        body, zipped = httpd.app.gallery()
        results["server_gallery_build_s"] = time.perf_counter() - t0
        results["gallery_json_mb"] = len(body) / 1e6
        results["gallery_gzip_mb"] = len(zipped) / 1e6
        httpd.app._gallery = None  # the page's own first request builds it again, as a fresh server would
        t0 = time.perf_counter()
        with urllib.request.urlopen(url + "api/clip/" + json.loads(body)["clips"]["video_id"][500] + "?shard=shard-00007") as r:
            r.read()
        results["clip_detail_ms"] = (time.perf_counter() - t0) * 1e3
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                               "--enable-precise-memory-info"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(300_000)
            results.update(_page_numbers(page, url, out, "server"))
            page.close()
            # the static copy: one file, opened from disk
            t0 = time.perf_counter()
            static = write_static_gallery(context.store, context.data(), all_details(context.store),
                                          data / "reports" / "gallery.html", str(data))
            results["static_write_s"] = time.perf_counter() - t0
            results["static_mb"] = static.stat().st_size / 1e6
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(300_000)
            t0 = time.perf_counter()
            page.goto(static.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            results["static_ready_s"] = time.perf_counter() - t0
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return results


def _page_numbers(page, url: str, out: Path, label: str) -> dict:
    r: dict = {}
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    r["page_ready_s"] = time.perf_counter() - t0
    page.wait_for_function("[...document.querySelectorAll('.card img')].every(i => i.complete)")
    r["first_previews_loaded_s"] = time.perf_counter() - t0
    r["cards_in_dom"] = page.locator(".card").count()
    r["page_init_ms"] = page.evaluate("window.reviewTimings.init_ms")  # parse done: judge all, funnel, first grid
    r["clips"] = int(page.get_by_test_id("showing").get_attribute("data-count"))
    page.screenshot(path=str(out / f"{label}_ready.png"))
    # scroll through everything a screen at a time: each step's frame (two animation frames,
    # >= 33 ms at 60 Hz, so the cards are surely drawn) and the page's own render time
    r["scroll"] = page.evaluate("""async () => {
        const grid = document.getElementById('grid');
        const times = []; const total = grid.scrollHeight; let last = performance.now();
        for (let y = 0; y < total; y += grid.clientHeight) {
          grid.scrollTop = y;
          await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
          const now = performance.now(); times.push(now - last); last = now;
        }
        times.sort((a, b) => a - b);
        const renders = window.reviewTimings.renders.slice(-times.length).sort((a, b) => a - b);
        return {screens: times.length, frame_median_ms: times[times.length >> 1],
                frame_p95_ms: times[Math.floor(times.length * 0.95)], frame_max_ms: times[times.length - 1],
                render_median_ms: renders[renders.length >> 1], render_max_ms: renders[renders.length - 1],
                cards_in_dom_at_end: document.querySelectorAll('.card').length};
    }""")
    page.screenshot(path=str(out / f"{label}_scrolled_to_end.png"))
    # a threshold moved: every clip re-judged, funnel and grid redrawn
    r["threshold_change"] = page.evaluate("""async () => {
        const box = document.querySelector(".control[data-key='aesthetics_score_min'] input[data-role=number]");
        const t0 = performance.now();
        box.value = '0.55'; box.dispatchEvent(new Event('change'));
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        return {until_drawn_ms: performance.now() - t0, rejudge_ms: window.reviewTimings.judge_ms,
                rejudge_funnel_grid_ms: window.reviewTimings.threshold_ms};
    }""")
    r["flips_after_change"] = page.get_by_test_id("flips").inner_text()
    page.screenshot(path=str(out / f"{label}_threshold_moved.png"))
    r["regroup_by_rule_and_sort"] = page.evaluate("""async () => {
        const t0 = performance.now();
        const g = document.getElementById('group'); g.value = 'rule'; g.dispatchEvent(new Event('change'));
        const s = document.getElementById('sort'); s.value = 'aesthetics_score'; s.dispatchEvent(new Event('change'));
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        return {until_drawn_ms: performance.now() - t0, last_rebuild_ms: window.reviewTimings.rebuild_ms};
    }""")
    r["js_heap_mb"] = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null")
    return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "curation_gallery_bench")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "gallery_scale")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = args.work_dir / f"data_{args.clips}_{args.shard_size}"
    args.out.mkdir(parents=True, exist_ok=True)
    if not (data / "bench_complete").exists():
        print(f"building {args.clips} clips in {data} ...", flush=True)
        t0 = time.perf_counter()
        build(data, args.clips, args.shard_size)
        print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)
    load_before = os.getloadavg()
    results = {"clips": args.clips, "shard_size": args.shard_size, "cpu": _cpu_model(), "load_before": load_before}
    results.update(measure(data, args.out))
    results["load_after"] = os.getloadavg()
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
