"""image_scores' peak memory against the number of clips in one shard, the step alone.

    PYTHONPATH=$PWD $VENV/bin/python benchmarks/image_scores_memory.py --clips 60 600 \
        [--size 640x360] [--code DIR ...] [--work-dir DIR]

For each N it writes one shard of N clips x 3 sampled frames (synthetic PNGs, --size) straight
into a store (sampled_frames rows as video_pass writes them), then runs ONLY the image_scores
step for `aesthetics` (tiny profile: the model is small, so what grows is the step's own frame
handling) in a fresh process per (code, N), and reports that process's peak RSS (ru_maxrss)
and, where the code reports them, its frame_chunks / frames_resident_peak. `--code` names
source trees to compare (default: this one), e.g. an export of the code before chunking
(`git archive <commit> | tar -x -C DIR`); each run is back to back with the same store.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARD = "shard-00000"

CHILD = r"""
import json, resource, sys, time
from dagster import AssetKey, DagsterInstance
from curation_assets.orchestration.definitions import build_definitions
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions

data = sys.argv[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with DagsterInstance.ephemeral() as instance:
    instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
    job = build_definitions(recipe={}, data_dir=data, profile="tiny").resolve_job_def(CURATE_SHARDS_JOB)
    t = time.perf_counter()
    result = job.execute_in_process(partition_key="shard-00000", instance=instance,
                                    asset_selection=[AssetKey("aesthetics")])
    seconds = time.perf_counter() - t
    assert result.success
    meta = result.asset_materializations_for_node("image_scores")[0].metadata
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_step_mb": before / 1024, "seconds": seconds,
                  **{k: meta[k].value for k in ("frames_decoded", "frame_chunks", "frames_resident_peak") if k in meta}}))
"""


def build_store(data: Path, clips: int, width: int, height: int) -> None:
    import numpy as np
    import polars as pl

    from curation_assets.frames.files import save_frames
    from curation_assets.store import ScoreStore

    store = ScoreStore(data / "curation.duckdb")
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    rows = []
    for n in range(clips):
        vid = f"{n:064x}"
        frames = [np.broadcast_to((ramp * (0.3 + 0.1 * i) + n) % 256, (height, width, 3)).astype(np.uint8)
                  for i in range(3)]
        keys = save_frames(data, vid, [0, 10, 20], frames)
        rows.append({"video_id": vid, "frame_indices": [0, 10, 20], "frame_paths": keys, "width": width,
                     "height": height, "error": None})
    schema = {"video_id": pl.Utf8, "frame_indices": pl.List(pl.Int64), "frame_paths": pl.List(pl.Utf8),
              "width": pl.Int64, "height": pl.Int64, "error": pl.Utf8}
    store.replace_shard("sampled_frames", SHARD, pl.DataFrame(rows, schema=schema), code_version="bench")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--code", nargs="+", default=[str(REPO)])
    parser.add_argument("--work-dir", default="/tmp/image_scores_memory")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = Path(args.work_dir)
    print(f"machine: {os.cpu_count()} cores; load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; "
          f"{args.size}, 3 frames per clip ({width * height * 3 * 3 / 2**20:.1f} MiB decoded per clip)\n")
    print("| code | clips | frames | peak RSS MB | step s | frame_chunks | frames_resident_peak |")
    print("|---|---|---|---|---|---|---|")
    for clips in args.clips:
        data = work / f"store_{clips}_{args.size}"
        if not (data / "tables" / "sampled_frames").is_dir():
            t = time.perf_counter()
            build_store(data, clips, width, height)
            print(f"(built {clips} clips in {time.perf_counter() - t:.0f} s)", flush=True)
        for code in args.code:
            env = {**os.environ, "PYTHONPATH": code, "HF_HUB_OFFLINE": "1", "CURATION_MODEL_PROFILE": "tiny",
                   "DAGSTER_HOME": str(work / "dagster_home")}
            (work / "dagster_home").mkdir(parents=True, exist_ok=True)
            out = subprocess.run([sys.executable, "-c", CHILD, str(data)], env=env, capture_output=True, text=True,
                                 cwd=code)
            if out.returncode:
                print(out.stderr[-3000:])
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {code} | {clips} | {r['frames_decoded']} | {r['peak_rss_mb']:.0f} | {r['seconds']:.1f} | "
                  f"{r.get('frame_chunks', '-')} | {r.get('frames_resident_peak', '-')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
