"""What the store scale benchmark measures: each probe is one child process (wall time, peak RSS).

A probe is an argv built from (python, cli, work dir): the CLI commands themselves where the
issue's table names a command, else a few lines of Python calling the project's own function
(the per-new-shard funnel line, the duplicate lookup, build_outputs, the sensor tick, ...).
Snippets print `TIMED <s>` around the call itself (no interpreter start-up, no imports): the
benchmark records it beside the child's wall time. The probes import only what a checkout
exposes, so `--code OTHER_CHECKOUT` re-measures the same stores with other code.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# Shard used as "the new shard": the last one (the most shards before it).
_SETUP = '''
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
def timed(t0):  # the call itself, without interpreter start-up and imports
    print("TIMED %.3f" % (time.perf_counter() - t0), flush=True)
'''

_JOIN = ("select c.status, count(*), avg(r.duration_s), avg(a.aesthetics_score) "
         "from curated_videos c join raw_videos r on r.path = c.path and r.shard = c.shard "
         "left join aesthetics a on a.video_id = c.video_id and a.shard = c.shard group by 1 order by 1")

SNIPPETS = {
    # the progress line each shard run prints (shard_runner.run_shard)
    "new_shard_funnel": '''
from curation_assets.curation.funnel import funnel
t = time.perf_counter(); c = funnel(store, shards=[last]); timed(t)
print(last, c.videos_in, dict(c.status))
''',
    # raw_videos' lookup of the shard's content hashes in every other shard
    "new_shard_duplicates": '''
from curation_assets.orchestration.assets.raw_videos import _known_primaries
ids = store.read_shard("raw_videos", last)["video_id"].drop_nulls().to_list()
rows = [{"video_id": v} for v in ids]
t = time.perf_counter(); found = _known_primaries(store, last, rows); timed(t)
print(len(ids), "ids,", len(found), "found elsewhere")
''',
    # staleness as a shard run / the CLI computes it
    "staleness": '''
from curation_assets.orchestration.recipe import shard_code_versions
from curation_assets.orchestration.staleness import shards_needing_run
t = time.perf_counter(); n = len(shards_needing_run(store, shard_code_versions({}, "real"))); timed(t)
print(n, "stale shards")
''',
    # the outputs as `run` builds them: skipped when nothing they read changed (today: always built)
    "build_outputs": '''
dagster_home()
from curation_assets.execution.shard_runner import run_outputs
t = time.perf_counter(); ok, lines = run_outputs(); timed(t)
print(ok, *lines, sep="\\n")
''',
    # ... and built (a shard changed, or --force)
    "build_outputs_force": '''
dagster_home()
from curation_assets.execution.shard_runner import run_outputs
t = time.perf_counter(); ok, lines = run_outputs(force=True); timed(t)
print(ok, *lines, sep="\\n")
''',
    "refresh_catalog": '''
try:
    from curation_assets.store.catalog import refresh_catalog
except ImportError:
    refresh_catalog = lambda s: s.refresh_catalog()
t = time.perf_counter(); n = len(refresh_catalog(store)); timed(t)
print(n, "tables")
''',
    # the README's DuckDB queries, on the catalog file the user opens (views over the objects)
    "duckdb_count": '''
import duckdb
con = duckdb.connect(str(data / settings.DB_FILENAME), read_only=True)
t = time.perf_counter()
rows = con.execute("select status, count(*) from curated_videos group by status order by 1").fetchall()
timed(t)
print(rows)
''',
    "duckdb_join": f'''
import duckdb
con = duckdb.connect(str(data / settings.DB_FILENAME), read_only=True)
t = time.perf_counter(); rows = con.execute("{_JOIN}").fetchall(); timed(t)
print(rows)
''',
    "sensor_tick": '''
os.environ["CURATION_INPUT_DIR"] = str(work / "videos")
dagster_home()
from dagster import DagsterInstance, build_sensor_context
from curation_assets.orchestration.sensors import new_video_files
with DagsterInstance.get() as instance:
    t = time.perf_counter(); result = new_video_files(build_sensor_context(instance=instance)); timed(t)
print(type(result).__name__, getattr(result, "skip_message", None) or getattr(result, "skip_reason", None))
''',
    # a compaction pass when nothing is due (what status, run and each sensor tick add)
    "compact_pass": '''
from curation_assets.curation.upkeep import upkeep
t = time.perf_counter(); reports = upkeep(store, catalog=False); timed(t)
print(sum(r.absorbed for r in reports), "absorbed,", sum(len(r.deleted) for r in reports), "deleted")
''',
    # the tail check of every winning object (status lists unreadable shards)
    "unreadable_check": '''
t = time.perf_counter(); bad = store.unreadable(); timed(t)
print(len(bad), "unreadable objects")
''',
    # ---- where status / no-op run spend their time beyond the store (cheap fixes) ----
    "discover_corpus": '''
from curation_assets.ingest.discover import discover
t = time.perf_counter(); n = len(discover(work / "videos")); timed(t)
print(n, "entries")
''',
    "registry_paths": '''
from curation_assets.orchestration.sensors import registered_paths
t = time.perf_counter(); n = len(registered_paths(store)); timed(t)
print(n, "paths")
''',
    "partition_listing": '''
dagster_home()
from dagster import DagsterInstance
with DagsterInstance.get() as instance:
    t = time.perf_counter(); keys = instance.get_dynamic_partitions("shards"); timed(t)
    print(len(keys), "partitions")
''',
    "failed_shard_lookup": '''
dagster_home()
from curation_assets.execution.shard_runner import failed_shard_reasons
shards = sorted(store.shards("video_registry"))
t = time.perf_counter(); out = failed_shard_reasons(shards); timed(t)
print(len(shards), "shards looked up;", len(out), "failed")
''',
    "list_objects": '''
t = time.perf_counter(); n = sum(len(store.shards(x)) for x in store.tables() if x != "shard_writes"); timed(t)
print(n, "shard objects")
''',
}

COMMANDS = ("status", "run_noop_corpus_cold", "run_noop_corpus", "run_noop_one_shard", "compact")
# the table, in order; the rest are the "where does the time go" probes
TABLE = ("status", "run_noop_corpus_cold", "run_noop_corpus", "run_noop_one_shard", "new_shard_funnel",
         "new_shard_duplicates", "staleness", "build_outputs", "build_outputs_force", "duckdb_count", "duckdb_join",
         "sensor_tick", "refresh_catalog")
PIECES = ("compact_pass", "unreadable_check", "discover_corpus", "registry_paths", "partition_listing",
          "failed_shard_lookup", "list_objects")


def argv(probe: str, python: str, cli: str, work: Path, store: str | None = None) -> list[str]:
    data = str(work / "data")
    extra = ["--store", store] if store else []
    if probe == "status":
        return [cli, "status", "--data-dir", data, *extra]
    if probe == "run_noop_corpus_cold":  # no listing cache: the folder is walked in full
        import shutil

        shutil.rmtree(Path(data) / "listings", ignore_errors=True)
        return [cli, "run", "--input", str(work / "videos"), "--data-dir", data, "--workers", "1", *extra]
    if probe == "run_noop_corpus":
        return [cli, "run", "--input", str(work / "videos"), "--data-dir", data, "--workers", "1", *extra]
    if probe == "run_noop_one_shard":
        return [cli, "run", "--input", str(work / "manifests" / "one-shard.jsonl"), "--data-dir", data,
                "--workers", "1", "--allow-outside-paths", *extra]
    if probe == "compact":  # every table compacted now (a store of today's layout: its first compaction)
        return [cli, "compact", "--data-dir", data, *extra]
    return [python, "-c", textwrap.dedent(_SETUP) + textwrap.dedent(SNIPPETS[probe]), str(work)]
