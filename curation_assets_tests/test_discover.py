"""discover(): folders and manifests become candidate entries; nothing is silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curation_assets.ingest.discover import InputEntry, InputError, discover
from curation_assets.samples import synthetic


def _video(path: Path) -> Path:
    # Discovery never decodes, but use real (tiny) clips anyway.
    return synthetic.write_moving_pattern(path, width=32, height=32, n_frames=2)


def _jsonl(path: Path, *records, raw_lines: list[bytes] | None = None) -> Path:
    with path.open("wb") as fh:
        for record in records:
            fh.write(json.dumps(record).encode("utf-8") + b"\n")
        for line in raw_lines or []:
            fh.write(line + b"\n")
    return path


# --------------------------------------------------------------------------- folders


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "videos"
    _video(root / "b.mp4")
    _video(root / "a.mp4")
    (root / "a.txt").write_text("a caption for a", encoding="utf-8")
    _video(root / "nested" / "deeper" / "c.MOV")  # extension case does not matter
    (root / "nested" / "deeper" / "c.txt").write_bytes(b"caf\xe9 caption")  # not UTF-8
    _video(root / "nested" / "d.mkv")
    _video(root / ".hidden.mp4")
    _video(root / ".cache" / "e.mp4")  # inside a hidden folder
    (root / "notes.txt").write_text("not a video")
    (root / "image.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "nested" / "data.json").write_text("{}")
    return root


def test_folder_recursive_in_stable_order(folder):
    entries = discover(folder)
    root = folder.resolve()
    assert [e.path for e in entries] == [
        str(root / "a.mp4"),
        str(root / "b.mp4"),
        str(root / "nested" / "d.mkv"),
        str(root / "nested" / "deeper" / "c.MOV"),
    ]
    assert all(e.origin == str(root) for e in entries)
    assert all(e.error is None for e in entries)
    assert discover(folder) == entries  # deterministic


def test_folder_sidecar_captions(folder):
    by_name = {Path(e.path).name: e for e in discover(folder)}
    assert by_name["a.mp4"].text == "a caption for a"
    assert by_name["b.mp4"].text is None
    assert by_name["c.MOV"].text == "caf\ufffd caption"  # bad byte replaced, caption kept
    assert by_name["d.mkv"].text is None


def test_folder_ignores_hidden_and_non_video(folder):
    names = {Path(e.path).name for e in discover(folder)}
    assert ".hidden.mp4" not in names and "e.mp4" not in names
    assert not names & {"notes.txt", "image.jpg", "data.json", "a.txt"}


def test_empty_folder(tmp_path):
    assert discover(tmp_path) == []


def test_single_video_file_with_sidecar(tmp_path):
    video = _video(tmp_path / "solo.mp4")
    (tmp_path / "solo.txt").write_text("solo caption")
    assert discover(video) == [InputEntry(str(video.resolve()), "solo caption", str(tmp_path.resolve()))]


def test_missing_input_raises(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover(tmp_path / "absent")


def test_unsupported_file_raises(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a folder, a video, or a manifest"):
        discover(path)


# --------------------------------------------------------------------------- jsonl manifests


def test_jsonl_datajuicer_format_relative_to_manifest(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _video(data / "clips" / "one.mp4")
    manifest = _jsonl(
        data / "manifest.jsonl",
        {"videos": ["clips/one.mp4"], "text": "<__dj__video> a dog <|__dj__eoc|>"},
        {"videos": ["clips/two.mp4", "clips/three.mp4"], "text": "two videos"},
        {"video": "clips/four.mp4", "caption": "alt keys"},
        {"path": "five.mp4"},
        {"videos": ["six.mp4"], "text": 42},  # non-text caption -> None
    )
    monkeypatch.chdir(tmp_path)  # resolution is against the manifest's folder, not the cwd
    entries = discover(manifest)
    base = data.resolve()
    origin = str(manifest.resolve())
    assert entries == [
        InputEntry(str(base / "clips" / "one.mp4"), "<__dj__video> a dog <|__dj__eoc|>", origin),
        InputEntry(str(base / "clips" / "two.mp4"), "two videos", origin),
        InputEntry(str(base / "clips" / "three.mp4"), "two videos", origin),
        InputEntry(str(base / "clips" / "four.mp4"), "alt keys", origin),
        InputEntry(str(base / "five.mp4"), None, origin),
        InputEntry(str(base / "six.mp4"), None, origin),
    ]


def test_json_extension_is_read_as_jsonl(tmp_path):
    manifest = _jsonl(tmp_path / "m.json", {"videos": ["x.mp4"]})
    assert [e.path for e in discover(manifest)] == [str(tmp_path.resolve() / "x.mp4")]


def test_jsonl_bad_lines_become_error_entries(tmp_path):
    manifest = _jsonl(
        tmp_path / "m.jsonl",
        {"videos": ["ok.mp4"]},
        raw_lines=[
            b"this is not json",
            b"",  # blank lines are skipped, not errors
            b"   ",
            b'["a", "list"]',
            b'{"text": "no video key"}',
            b'{"videos": []}',
            b'{"videos": [""]}',
            b'{"videos": [7], "text": "numeric path"}',
            b'{"videos": ["after.mp4"]}',
        ],
    )
    entries = discover(manifest)
    origin = str(manifest.resolve())
    assert [e.path for e in entries] == [
        str(tmp_path.resolve() / "ok.mp4"),
        f"{origin}:2",
        f"{origin}:5",
        f"{origin}:6",
        f"{origin}:7",
        f"{origin}:8",
        f"{origin}:9",
        str(tmp_path.resolve() / "after.mp4"),
    ]
    errors = [e.error for e in entries]
    assert errors[0] is None and errors[-1] is None
    assert "not valid JSON" in errors[1]
    assert "not a JSON object" in errors[2]
    assert "names no video" in errors[3] and "names no video" in errors[4]
    assert "empty or non-text video path" in errors[5] and "empty or non-text video path" in errors[6]
    assert entries[6].text == "numeric path"
    assert all(e.origin == origin for e in entries)


def test_jsonl_path_escaping_the_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    manifest = _jsonl(
        data / "m.jsonl",
        {"videos": ["../outside.mp4"], "text": "escapes"},
        {"videos": ["sub/../../outside2.mp4"]},
        {"videos": ["sub/../inside.mp4"]},
    )
    entries = discover(manifest)
    origin = str(manifest.resolve())
    assert entries[0].path == f"{origin}:1"
    assert "escapes the manifest's folder" in entries[0].error
    assert entries[0].text == "escapes"  # the caption survives with the error
    assert entries[1].path == f"{origin}:2" and "escapes" in entries[1].error
    assert entries[2] == InputEntry(str(data.resolve() / "inside.mp4"), None, origin)

    allowed = discover(manifest, allow_outside=True)
    assert [e.error for e in allowed] == [None, None, None]
    assert [e.path for e in allowed] == [
        str(tmp_path.resolve() / "outside.mp4"),
        str(tmp_path.resolve() / "outside2.mp4"),
        str(data.resolve() / "inside.mp4"),
    ]


def test_jsonl_absolute_paths_accepted(tmp_path):
    elsewhere = _video(tmp_path / "elsewhere" / "abs.mp4").resolve()
    (tmp_path / "data").mkdir()
    manifest = _jsonl(tmp_path / "data" / "m.jsonl", {"videos": [str(elsewhere)], "text": "abs"})
    assert discover(manifest) == [InputEntry(str(elsewhere), "abs", str(manifest.resolve()))]


def test_jsonl_invalid_utf8_in_caption_keeps_the_entry(tmp_path):
    manifest = _jsonl(
        tmp_path / "m.jsonl",
        raw_lines=[b'{"videos": ["v.mp4"], "text": "caf\xe9 \xff\xfe ok"}', b'{"videos": ["w.mp4"], "text": "fine"}'],
    )
    entries = discover(manifest)
    assert [e.error for e in entries] == [None, None]
    assert entries[0].path == str(tmp_path.resolve() / "v.mp4")
    assert entries[0].text == "caf\ufffd \ufffd\ufffd ok"
    assert entries[1].text == "fine"


def test_jsonl_unicode_captions_round_trip(tmp_path):
    text = "<__dj__video> \u65e5\u672c\u8a9e caf\u00e9 \U0001F600 <|__dj__eoc|>"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"videos": ["v.mp4"], "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert discover(manifest)[0].text == text


def test_jsonl_with_utf8_bom(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'\xef\xbb\xbf{"videos": ["a.mp4"], "text": "first"}\n{"videos": ["b.mp4"]}\n')
    entries = discover(manifest)
    assert [e.error for e in entries] == [None, None]
    assert entries[0].path == str(tmp_path.resolve() / "a.mp4")


# --------------------------------------------------------------------------- table manifests


def _table_rows(base: Path) -> dict:
    return {
        "path": ["a.mp4", "sub/b.mp4", "../out.mp4", str(base.resolve() / "abs.mp4"), None],
        "text": ["caption a", None, "outside", "absolute", "no path"],
    }


def _check_table_entries(entries: list[InputEntry], manifest: Path, base: Path) -> None:
    origin = str(manifest.resolve())
    b = base.resolve()
    assert entries[0] == InputEntry(str(b / "a.mp4"), "caption a", origin)
    assert entries[1] == InputEntry(str(b / "sub" / "b.mp4"), None, origin)
    assert entries[2].path == f"{origin}:row3" and "escapes" in entries[2].error and entries[2].text == "outside"
    assert entries[3] == InputEntry(str(b / "abs.mp4"), "absolute", origin)
    assert entries[4].path == f"{origin}:row5" and "empty or non-text video path" in entries[4].error
    assert len(entries) == 5


def test_csv_manifest(tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    manifest = base / "m.csv"
    pl.DataFrame(_table_rows(base)).write_csv(manifest)
    _check_table_entries(discover(manifest), manifest, base)


def test_parquet_manifest(tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    manifest = base / "m.parquet"
    pl.DataFrame(_table_rows(base)).write_parquet(manifest)
    _check_table_entries(discover(manifest), manifest, base)


def test_table_manifest_text_column_optional(tmp_path):
    manifest = tmp_path / "m.parquet"
    pl.DataFrame({"path": ["x.mp4", "y.mp4"]}).write_parquet(manifest)
    entries = discover(manifest)
    assert [(Path(e.path).name, e.text, e.error) for e in entries] == [("x.mp4", None, None), ("y.mp4", None, None)]


def test_csv_numeric_looking_values_stay_text(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,text\n001.mp4,123\n")
    assert discover(manifest) == [InputEntry(str(tmp_path.resolve() / "001.mp4"), "123", str(manifest.resolve()))]


def test_table_manifest_allow_outside(tmp_path):
    base = tmp_path / "data"
    base.mkdir()
    manifest = base / "m.csv"
    pl.DataFrame({"path": ["../out.mp4"]}).write_csv(manifest)
    assert discover(manifest, allow_outside=True)[0] == InputEntry(
        str(tmp_path.resolve() / "out.mp4"), None, str(manifest.resolve())
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_manifest_without_path_column_raises(tmp_path, suffix):
    manifest = tmp_path / f"m{suffix}"
    frame = pl.DataFrame({"video": ["a.mp4"], "text": ["t"]})
    frame.write_csv(manifest) if suffix == ".csv" else frame.write_parquet(manifest)
    with pytest.raises(InputError, match="'path' column"):
        discover(manifest)


# --------------------------------------------------------------------------- a manifest inside a folder


def test_folder_with_one_manifest_uses_it_and_keeps_unlisted_videos(folder):
    _jsonl(folder / "manifest.jsonl",
           {"videos": ["a.mp4"], "text": "<__dj__video> the manifest's caption <|__dj__eoc|>"},
           {"videos": ["nested/d.mkv"], "text": "d from the manifest"})
    notes = []
    entries = discover(folder, notes=notes)
    by_name = {Path(e.path).name: e for e in entries}
    manifest = str((folder / "manifest.jsonl").resolve())
    # the manifest's entries first, with its captions (not a.txt's), its origin
    assert [Path(e.path).name for e in entries[:2]] == ["a.mp4", "d.mkv"]
    assert by_name["a.mp4"].text == "<__dj__video> the manifest's caption <|__dj__eoc|>"
    assert by_name["a.mp4"].origin == by_name["d.mkv"].origin == manifest
    # the videos it does not list: read as a plain scan would, and the user is told
    assert set(by_name) == {"a.mp4", "b.mp4", "c.MOV", "d.mkv"}
    assert by_name["b.mp4"].origin == str(folder.resolve()) and by_name["c.MOV"].text == "caf\ufffd caption"
    assert notes[0] == f"using the manifest manifest.jsonl found in {folder.resolve()}: 2 entries, captions from it"
    assert notes[1].startswith(f"2 video(s) in {folder.resolve()} are not in manifest.jsonl: curated as plain folder videos")
    assert f"pass --input {manifest} to curate only the manifest's videos" in notes[1]


def test_folder_fully_covered_by_a_csv_manifest_says_nothing_more(tmp_path):
    root = tmp_path / "clips"
    _video(root / "x.mp4")
    _video(root / "y.mp4")
    pl.DataFrame({"path": ["x.mp4", "y.mp4"], "text": ["x caption", None]}).write_csv(root / "list.csv")
    (root / "scores.csv").write_text("video,score\nx.mp4,1\n")  # no `path` column: not a manifest
    notes = []
    entries = discover(root, notes=notes)
    assert [(Path(e.path).name, e.text) for e in entries] == [("x.mp4", "x caption"), ("y.mp4", None)]
    assert len(notes) == 1 and "using the manifest list.csv" in notes[0]


def test_folder_with_several_manifests_is_refused_naming_them(folder):
    _jsonl(folder / "manifest.jsonl", {"videos": ["a.mp4"]})
    pl.DataFrame({"path": ["b.mp4"]}).write_parquet(folder / "more.parquet")
    with pytest.raises(InputError, match=r"holds manifests \(manifest.jsonl, more.parquet\); pass the one to use"):
        discover(folder)


def test_manifest_in_a_subfolder_is_refused_not_ignored(folder):
    _jsonl(folder / "nested" / "manifest.jsonl", {"videos": ["d.mkv"], "text": "d"})
    with pytest.raises(InputError, match=r"a manifest in a subfolder \(nested/manifest.jsonl\).*--input .*nested/manifest.jsonl"):
        discover(folder)


def test_json_files_that_are_not_manifests_leave_the_folder_scan_alone(folder):
    # the training set's metadata.json (a JSON list) and an unrelated object are not manifests
    (folder / "metadata.json").write_text(json.dumps([{"file_path": "a.mp4", "text": "t", "type": "video"}]))
    (folder / "nested" / "data.json").write_text('{"fps": 24}')
    notes = []
    assert {Path(e.path).name for e in discover(folder, notes=notes)} == {"a.mp4", "b.mp4", "c.MOV", "d.mkv"}
    assert notes == []
