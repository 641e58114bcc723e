"""The Dagster UI with many shard partitions: `dagster dev` + headless Debian Chromium.

    python benchmarks/ui_partitions_benchmark.py --partitions 16000 [--materialized 16000] [--home /work/scale/ui16000]

Makes (or reuses) a Dagster home with N dynamic partitions of `shards` (added as the CLI adds
them) and, optionally, M of them materialized for `curated_videos` (runless materialization
events, so the partition status has something to compute), starts `dagster dev` on it and
times, cold and warm:
  - GraphQL: the partition keys and the partition statuses of curated_videos (what the
    Partitions tab asks for);
  - the browser: the asset's Partitions tab until the last partition key is listed; the
    `curate_shards` job's "Materialize all..." dialog until the partition picker lists keys.
Screenshots and the log go to <home>/ui-shots. Needs scripts/install_browser.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "curation_assets_tests"))

STATUS_QUERY = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename ... on AssetNode {
  partitionKeysByDimension { partitionKeys }
  assetPartitionStatuses { __typename ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }"""


def prepare(home: Path, partitions: int, materialized: int) -> dict:
    from dagster import AssetMaterialization, DagsterInstance

    from curation_assets.orchestration.partitions import shard_partitions

    home.mkdir(parents=True, exist_ok=True)
    repo = HERE.parent
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(repo / "dagster.yaml", home / "dagster.yaml")
    (home / ".nux").mkdir(exist_ok=True)
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    os.environ["DAGSTER_HOME"] = str(home)
    keys = [f"shard-{n:05d}" for n in range(partitions)]
    out = {}
    with DagsterInstance.get() as instance:
        t0 = time.perf_counter()
        have = set(instance.get_dynamic_partitions(shard_partitions.name))
        missing = [k for k in keys if k not in have]
        for i in range(0, len(missing), 5000):
            instance.add_dynamic_partitions(shard_partitions.name, missing[i:i + 5000])
        out["add_partitions_s"] = round(time.perf_counter() - t0, 1)
        marker = home / f".materialized-{materialized}"
        if materialized and not marker.exists():
            t0 = time.perf_counter()
            for k in keys[:materialized]:
                instance.report_runless_asset_event(AssetMaterialization(asset_key="curated_videos", partition=k))
            marker.touch()
            out["report_materializations_s"] = round(time.perf_counter() - t0, 1)
    return out


def measure(home: Path, partitions: int) -> dict:
    from playwright.sync_api import expect

    import test_ui_browser as ui

    timings: dict[str, float] = {}
    env = dict(os.environ, DAGSTER_HOME=str(home), CURATION_DATA_DIR=str(home / "data"), CURATION_MODEL_PROFILE="tiny",
               HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1", CURATION_INPUT_DIR=str(home / "no-input"),
               PYTHONUNBUFFERED="1")
    (home / "data").mkdir(exist_ok=True)
    shots = home / "ui-shots"
    shots.mkdir(exist_ok=True)
    last = f"shard-{partitions - 1:05d}"
    expect.set_options(timeout=120_000)
    t0 = time.perf_counter()
    with ui._curation_ui(home, env, home / "data") as server:  # `curation-assets ui`, as a user starts it
        timings["dagster_dev_ready_s"] = time.perf_counter() - t0
        for attempt in ("cold", "warm"):
            t0 = time.perf_counter()
            data = server.graphql(STATUS_QUERY, {"key": {"path": ["curated_videos"]}})["assetNodeOrError"]
            timings[f"graphql_keys_and_statuses_{attempt}_s"] = time.perf_counter() - t0
            timings["partition_keys"] = len(data["partitionKeysByDimension"][0]["partitionKeys"])
            mat = data["assetPartitionStatuses"].get("materializedPartitions")
            timings["materialized_partitions"] = len(mat) if mat is not None else None
        with ui._browser_page(home, server, shots) as page:
            page.set_default_timeout(120_000)
            for attempt in ("cold", "warm"):
                t0 = time.perf_counter()
                page.goto(f"{server.url}/assets/curated_videos?view=partitions")
                expect(page.get_by_text(re.compile(r"[\d,]+ [Pp]artitions")).first).to_be_visible()
                timings[f"partitions_tab_count_{attempt}_s"] = time.perf_counter() - t0
                box = page.get_by_placeholder(re.compile("Filter", re.I)).first
                if box.count():
                    box.fill(last)
                expect(page.get_by_text(last, exact=True).first).to_be_visible()
                timings[f"partitions_tab_find_last_{attempt}_s"] = time.perf_counter() - t0
                page.screenshot(animations="disabled", path=str(shots / f"partitions_{attempt}.png"))
            t0 = time.perf_counter()
            page.goto(f"{server.url}/jobs")
            page.get_by_role("link", name=re.compile(r"\bcurate_shards$")).first.click()
            page.get_by_role("button", name=re.compile(r"Materialize all")).click()
            dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
            dialog.get_by_text("Select a partition or create one").click()
            expect(page.get_by_role("menuitem").first).to_be_visible()
            timings["launch_dialog_partition_picker_s"] = time.perf_counter() - t0
            page.screenshot(animations="disabled", path=str(shots / "launch_picker.png"))
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in timings.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--materialized", type=int, default=0)
    p.add_argument("--home", default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    home = Path(a.home or f"/work/scale/ui{a.partitions}")
    result = {"partitions": a.partitions, "materialized": a.materialized, "load_before": os.getloadavg()[0]}
    result.update(prepare(home, a.partitions, a.materialized))
    result.update(measure(home, a.partitions))
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))
    out = Path(a.out or HERE / "results" / f"ui_partitions_{a.partitions}_{a.materialized}.json")
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
