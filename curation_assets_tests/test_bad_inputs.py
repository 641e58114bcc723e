"""Every bad input ends as exactly one recorded row with a readable reason; the shard goes on.

The bad-input set (curation_assets.samples.bad_inputs) is registered from its manifest, one
file is deleted after registration, and the whole `curate_shards` job runs in-process, once
for the module (OCR runs for real on CPU; the clips are small so this stays well under a minute).
"""

import os
import threading

import polars as pl
import pytest
from dagster import instance_for_test

from curation_assets.orchestration.definitions import build_definitions
from curation_assets.ingest.discover import discover, discover_folder
from curation_assets.ingest.registry import register
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.samples.bad_inputs import (
    BAD_INPUT_CASES, LONG_CAPTION_CHARS, REMOVED_NAME, UNREADABLE_NAME, expected_outcomes, is_root,
    write_bad_input_set,
)
from curation_assets.scorers.probe import probe_video
from curation_assets.store import ScoreStore

SHARD = "shard-00000"


@pytest.fixture(scope="module")
def curated_bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    manifest = write_bad_input_set(root / "corpus")
    store = ScoreStore(root / "data" / "curation.duckdb")
    assert register(store, discover(manifest), shard_size=1000) == [SHARD]
    (manifest.parent / REMOVED_NAME).unlink()  # gone between registration and scoring
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        job = build_definitions(recipe={}, data_dir=str(root / "data")).resolve_job_def(CURATE_SHARDS_JOB)
        result = job.execute_in_process(partition_key=SHARD, instance=instance, raise_on_error=False)
        checks = result.get_asset_check_evaluations()
    curated = store.read_shard("curated_videos", SHARD)
    return {"result": result, "checks": checks, "store": store, "manifest": manifest, "curated": curated,
            "by_path": {r["path"]: r for r in curated.iter_rows(named=True)},
            "expected": expected_outcomes(manifest)}


def _row(curated_bad, label: str) -> dict:
    (path,) = [p for p, case in curated_bad["expected"].items() if case.label == label]
    return curated_bad["by_path"][path]


def _reasons(row: dict) -> str:
    return " | ".join(row["reasons"] or [])


def test_run_succeeds_and_checks_pass(curated_bad):
    result = curated_bad["result"]
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [(c.check_name, c.metadata) for c in curated_bad["checks"] if not c.passed]
    assert not failed
    assert {"every_video_accounted", "reasons_match_status"} <= {c.check_name for c in curated_bad["checks"]}


def test_every_manifest_line_is_recorded_exactly_once(curated_bad):
    curated, expected = curated_bad["curated"], curated_bad["expected"]
    assert len(expected) == len(BAD_INPUT_CASES)  # the expectation itself names each line once
    assert curated.height == len(BAD_INPUT_CASES)
    assert curated["path"].n_unique() == curated.height
    assert set(curated["path"]) == set(expected)
    assert set(curated["status"]) <= {"kept", "rejected", "failed"}


def test_failure_matrix(curated_bad):
    """Each case's status and the readable words of its reason; prints the matrix (-s)."""
    lines = ["| input | status | reason |", "|---|---|---|"]
    wrong = []
    for path, case in curated_bad["expected"].items():
        row = curated_bad["by_path"][path]
        reasons = _reasons(row)
        lines.append(f"| {case.label} | {row['status']} | {reasons.replace('|', '/')[:160] or '-'} |")
        want = case.expected
        if want.status is None:
            continue  # see the case's note (root reads a mode-000 file)
        if row["status"] != want.status:
            wrong.append((case.label, want.status, row["status"], reasons))
        elif want.reason and want.reason.lower() not in reasons.lower():
            wrong.append((case.label, want.reason, reasons))
        elif want.status == "kept" and row["reasons"]:
            wrong.append((case.label, "no reasons", reasons))
    print("\n" + "\n".join(lines))
    assert not wrong, wrong


def test_failures_are_readable_not_tracebacks(curated_bad):
    failed = curated_bad["curated"].filter(pl.col("status") == "failed")
    assert failed.height >= 15
    for row in failed.iter_rows(named=True):
        text = _reasons(row)
        assert text and "Traceback" not in text and len(text) < 400, row
        assert not any(name in text for name in ("FFmpegError", "InvalidDataError", "RuntimeError")), text


def test_rotated_clip_reports_display_dims(curated_bad):
    row = _row(curated_bad, "rotated phone video (90 degrees)")
    raw = curated_bad["store"].read_shard("raw_videos", SHARD).filter(pl.col("path") == row["path"]).row(0, named=True)
    assert (raw["width"], raw["height"], raw["rotation"]) == (320, 256, 90)
    assert (raw["display_width"], raw["display_height"]) == (256, 320)
    assert (row["width"], row["height"]) == (256, 320)
    assert row["status"] == "kept"


def test_vfr_clip_is_scored_at_its_average_rate(curated_bad):
    row = _row(curated_bad, "variable frame rate")
    store = curated_bad["store"]
    raw = store.read_shard("raw_videos", SHARD).filter(pl.col("path") == row["path"]).row(0, named=True)
    # 25 frames over ~1.24 s: ~20 fps, not the 2000 "tick rate" r_frame_rate reports
    assert 15 < raw["fps"] < 25, raw["fps"]
    motion = store.read_shard("motion", SHARD).filter(pl.col("video_id") == row["video_id"]).row(0, named=True)
    assert motion["error"] is None and motion["motion_score"] > 0.25
    assert len(motion["frame_indices"]) >= 3  # sampled across the clip, not just frames 0 and 1
    assert row["status"] == "rejected" and row["reasons"] == ["width<256", "height<256"]  # tiny, but scored


@pytest.mark.parametrize("label", ["name with spaces", "name starting with ~", "unicode name", "quotes in name",
                                   "leading '-' in name", "shell metacharacters in name"])
def test_awkward_names_are_scored(curated_bad, label):
    row = _row(curated_bad, label)
    case = next(c for c in BAD_INPUT_CASES if c.label == label)
    assert row["path"].endswith("/" + case.video)
    assert row["status"] != "failed" and row["video_id"] and row["motion_score"] is not None, row
    assert os.path.exists(row["path"])


def test_captions_are_stored(curated_bad):
    long_row = _row(curated_bad, "100k-character caption")
    assert long_row["caption_source"] == "original"
    assert LONG_CAPTION_CHARS - 10 <= len(long_row["caption"]) <= LONG_CAPTION_CHARS
    assert long_row["char_rep_ratio"] is not None and long_row["clip_similarity"] is not None

    bad = _row(curated_bad, "invalid UTF-8 caption")
    assert bad["caption_source"] == "original"
    assert "\ufffd" in bad["caption"] and "bad bytes" in bad["caption"] and "<__dj__video>" not in bad["caption"]

    for label in ("empty caption", "whitespace caption"):
        row = _row(curated_bad, label)
        # no usable caption: one is generated (tiny VideoBLIP here) and stored
        assert row["caption_source"] == "generated" and row["caption"] and row["caption"].strip(), row
        assert row["status"] in ("kept", "rejected")


def test_unreadable_file_is_a_recorded_failure(curated_bad):
    row = curated_bad["by_path"][str((curated_bad["manifest"].parent / UNREADABLE_NAME).resolve())]
    if is_root():
        pytest.skip("running as root: a mode-000 file is still readable (the row exists, exactly once)")
    assert row["status"] == "failed" and "permission denied" in _reasons(row)


def test_folder_discovery_and_probe_survive_the_set(curated_bad):
    """Folder mode lists the same hostile files (pipe, symlink loop, dangling link) without hanging.

    The folder holds the manifest, so `discover(folder)` reads that; the plain scan is
    `discover_folder`, what the sensor runs on its input folder."""
    folder = curated_bad["manifest"].parent
    notes = []
    assert discover(folder, notes=notes)[:len(discover(curated_bad["manifest"]))] == discover(curated_bad["manifest"])
    assert "using the manifest manifest.jsonl" in notes[0]
    entries = discover_folder(folder)
    names = {os.path.basename(e.path) for e in entries}
    assert {"named_pipe.mp4", "symlink_loop.mp4", "dangling_link.mp4", "~tilde name.mp4", "-leading-dash.mp4"} <= names
    assert "folder.mp4" not in names  # a folder is walked into, not listed
    errors = {}

    def probe_all():
        for entry in entries:
            errors[os.path.basename(entry.path)] = probe_video(entry.path).error

    worker = threading.Thread(target=probe_all, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "probe blocked (a named pipe?)"
    assert "not a regular file" in errors["named_pipe.mp4"]
    assert errors["dangling_link.mp4"] == "file not found"
    assert "Too many levels of symbolic links" in errors["symlink_loop.mp4"]


def test_single_video_argument_starting_with_tilde(tmp_path, monkeypatch):
    """`curation-assets run --input "~draft.mp4"` is a relative file, not a home directory."""
    from curation_assets.samples.synthetic import write_low_res

    write_low_res(tmp_path / "~draft.mp4", n_frames=4)
    monkeypatch.chdir(tmp_path)
    (entry,) = discover("~draft.mp4")
    assert entry.path == str(tmp_path / "~draft.mp4") and entry.error is None


def test_a_file_named_on_two_manifest_lines_is_accounted_for_twice(tmp_path):
    from curation_assets.ingest.registry import shard_members
    from curation_assets.samples.synthetic import write_low_res

    write_low_res(tmp_path / "a.mp4", n_frames=4)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"videos": ["a.mp4"], "text": "first"}\n{"videos": ["./a.mp4"], "text": "second"}\n')
    store = ScoreStore(tmp_path / "curation.duckdb")
    register(store, discover(manifest), shard_size=10)
    members = shard_members(store, SHARD)
    assert members.height == 2
    assert members["registration_error"].to_list()[1].startswith("same file as an earlier manifest entry")
    assert register(store, discover(manifest), shard_size=10) == []  # idempotent
