"""What the store scale benchmark measures: each probe is one child process (wall time, peak RSS).

A probe is an argv built from (python, cli, work dir): the CLI commands themselves where the
issue's table names a command, else a few lines of Python calling the project's own function
(the per-new-shard funnel line, the duplicate lookup, build_outputs, the sensor tick, ...).
The probes import only what a checkout exposes, so `--code OTHER_CHECKOUT` re-measures the
same stores with other code; a later layout change edits the snippets here, nothing else.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# Shard used as "the new shard": the last one (the most shards before it).
_SETUP = """
import os, sys, time
from pathlib import Path
work = Path(sys.argv[1]); data = work / "data"
os.environ["CURATION_DATA_DIR"] = str(data)
os.environ.pop("DAGSTER_HOME", None)
os.environ.setdefault("CURATION_MODEL_PROFILE", "real")
from curation_assets import settings
from curation_assets.store import ScoreStore
store = ScoreStore(data / settings.DB_FILENAME)
last = sorted(store.shards("video_registry"))[-1]
def dagster_home():
    from curation_assets.orchestration.instance import ensure_dagster_home
    ensure_dagster_home(data)
"""

SNIPPETS = {
    # the progress line each shard run prints (shard_runner.run_shard)
    "new_shard_funnel": """
from curation_assets.curation.funnel import funnel
c = funnel(store, shards=[last]); print(last, c.videos_in, dict(c.status))
""",
    # raw_videos' lookup of the shard's content hashes in every other shard
    "new_shard_duplicates": """
from curation_assets.orchestration.assets.raw_videos import _known_primaries
ids = store.read_shard("raw_videos", last)["video_id"].drop_nulls().to_list()
rows = [{"video_id": v} for v in ids]
print(len(ids), "ids,", len(_known_primaries(store, last, rows)), "found elsewhere")
""",
    # staleness as a shard run / the CLI computes it (every shard's footers)
    "staleness": """
from curation_assets.orchestration.recipe import shard_code_versions
from curation_assets.orchestration.staleness import shards_needing_run
print(len(shards_needing_run(store, shard_code_versions({}, "real"))), "stale shards")
""",
    "build_outputs": """
dagster_home()
from curation_assets.execution.shard_runner import run_outputs
ok, lines = run_outputs(); print(ok, *lines, sep="\\n")
""",
    "refresh_catalog": """
print(len(store.refresh_catalog()), "tables")
""",
    # the README's DuckDB queries, on the catalog file the user opens (views over the objects)
    "duckdb_count": """
import duckdb
con = duckdb.connect(str(data / settings.DB_FILENAME), read_only=True)
print(con.execute("select status, count(*) from curated_videos group by status order by 1").fetchall())
""",
    "duckdb_join": """
import duckdb
con = duckdb.connect(str(data / settings.DB_FILENAME), read_only=True)
print(con.execute('''select c.status, count(*), avg(r.duration_s), avg(a.aesthetics_score)
    from curated_videos c join raw_videos r on r.path = c.path and r.shard = c.shard
    left join aesthetics a on a.video_id = c.video_id and a.shard = c.shard group by 1 order by 1''').fetchall())
""",
    "sensor_tick": """
os.environ["CURATION_INPUT_DIR"] = str(work / "videos")
dagster_home()
from dagster import DagsterInstance, build_sensor_context
from curation_assets.orchestration.sensors import new_video_files
with DagsterInstance.get() as instance:
    result = new_video_files(build_sensor_context(instance=instance))
print(type(result).__name__, getattr(result, "skip_message", None) or getattr(result, "skip_reason", None))
""",
    # ---- where status / no-op run spend their time beyond the store (cheap fixes) ----
    "discover_corpus": """
from curation_assets.ingest.discover import discover
print(len(discover(work / "videos")), "entries")
""",
    # cli.cmd_run rebuilds set(paths) for every registry row: timed on the first 500 rows and
    # scaled to all of them (the full loop takes hours at 1M clips), against the set built once
    "quadratic_loop": """
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import REGISTRY_TABLE
paths = sorted({e.path for e in discover(work / "videos")})
registry = store.query(f"select path, shard from {REGISTRY_TABLE}")
head = registry.head(500)
t = time.perf_counter(); n = len({s for p, s in head.iter_rows() if p in set(paths)})
per_row = (time.perf_counter() - t) / head.height
print("quadratic: %.2f ms per row -> %.1f s for %d rows" % (1000 * per_row, per_row * registry.height, registry.height))
t = time.perf_counter(); wanted = set(paths); n = len({s for p, s in registry.iter_rows() if p in wanted})
print("set built once: %.3f s, %d shards" % (time.perf_counter() - t, n))
""",
    "registry_paths": """
from curation_assets.orchestration.sensors import registered_paths
print(len(registered_paths(store)), "paths")
""",
    "partition_listing": """
dagster_home()
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    t = time.perf_counter(); keys = instance.get_dynamic_partitions("shards")
    print(len(keys), "partitions in", round(time.perf_counter() - t, 3), "s")
""",
    "failed_shard_lookup": """
dagster_home()
from curation_assets.execution.shard_runner import failed_shard_reasons
shards = sorted(store.shards("video_registry"))
t = time.perf_counter(); out = failed_shard_reasons(shards)
print(len(shards), "shards looked up in", round(time.perf_counter() - t, 2), "s;", len(out), "failed")
""",
    "list_objects": """
t = time.perf_counter(); n = sum(len(store.shards(t)) for t in store.tables() if t != "shard_writes")
print(n, "objects listed in", round(time.perf_counter() - t, 2), "s")
""",
}

COMMANDS = ("status", "run_noop_corpus", "run_noop_one_shard")
# the table, in order; the rest are the "where does the time go" probes
TABLE = ("status", "run_noop_corpus", "run_noop_one_shard", "new_shard_funnel", "new_shard_duplicates", "staleness",
         "build_outputs", "duckdb_count", "duckdb_join", "sensor_tick", "refresh_catalog")
PIECES = ("discover_corpus", "quadratic_loop", "registry_paths", "partition_listing", "failed_shard_lookup",
          "list_objects")


def argv(probe: str, python: str, cli: str, work: Path, store: str | None = None) -> list[str]:
    data = str(work / "data")
    extra = ["--store", store] if store else []
    if probe == "status":
        return [cli, "status", "--data-dir", data, *extra]
    if probe == "run_noop_corpus":
        return [cli, "run", "--input", str(work / "videos"), "--data-dir", data, "--workers", "1", *extra]
    if probe == "run_noop_one_shard":
        return [cli, "run", "--input", str(work / "manifests" / "one-shard.jsonl"), "--data-dir", data,
                "--workers", "1", "--allow-outside-paths", *extra]
    return [python, "-c", textwrap.dedent(_SETUP) + textwrap.dedent(SNIPPETS[probe]), str(work)]
