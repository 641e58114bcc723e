"""The input folder's listing cache (ingest/listing_cache.py): unchanged directories are not
listed, their files are counted and named from the cache file without holding it in memory,
and a scan that lists nothing leaves the file as it is."""

import os
import time

import polars as pl

from curation_assets.ingest import listing_cache


def _tree(root, dirs=3, per_dir=4):
    for d in range(dirs):
        folder = root / f"d{d}"
        folder.mkdir(parents=True)
        for i in range(per_dir):
            (folder / f"v{i}.mp4").write_bytes(b"x")
    (root / "d0" / "v0.txt").write_text("a caption")
    _age(root)


def _age(root, seconds=60):
    """Directories modified well before the scan (a scan trusts a time 2 s older than its save)."""
    past = time.time() - seconds
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        os.utime(folder, (past, past))


def _register_all(scan):
    def shard(path):
        folder = os.path.basename(os.path.dirname(path))
        return "shard-00009" if folder == "videos" else f"shard-{int(folder[1:]):05d}"  # the root's own files: 9

    return {path: shard(path) for path in scan.fresh["path"]}


def _shards(scan, shard_of: dict) -> pl.Series:
    """Each listed file's shard in the listing's order, null when not registered (what `save` is given)."""
    return pl.Series("shard", [shard_of.get(path) for path in scan.fresh["path"]], dtype=pl.Utf8)


def test_unchanged_directories_are_counted_not_listed_and_a_new_file_lists_its_directory_only(tmp_path):
    root, data = tmp_path / "videos", tmp_path / "data"
    _tree(root)
    (root / "top.mp4").write_bytes(b"x")  # a file in the root itself
    _age(root)
    first = listing_cache.scan(root, data, "store")
    assert first.fresh.height == 13 and not first.known
    assert dict(first.fresh.select("path", "text").iter_rows())[str(root / "d0" / "v0.mp4")] == "a caption"
    assert first.fresh["path"].to_list() == sorted(first.fresh["path"]) and set(first.fresh["origin"]) == {str(root)}
    first.save(_shards(first, _register_all(first)))
    shards = {f"shard-{d:05d}" for d in range(3)} | {"shard-00009"}

    again = listing_cache.scan(root, data, "store", shards)
    assert not again.listed and again.fresh.is_empty()
    assert again.known_count() == 13
    assert dict(again.known_shards().iter_rows()) == {**{f"shard-{d:05d}": 4 for d in range(3)}, "shard-00009": 1}
    paths = again.known_paths()
    assert sorted(paths["path"].to_list()) == sorted(str(p) for p in root.rglob("*.mp4"))
    assert set(paths.filter(pl.col("path").str.contains("/d1/"))["shard"]) == {"shard-00001"}

    # nothing listed: the cache file is not rewritten
    cache = listing_cache.cache_path(data, root, "store")
    before = cache.stat().st_mtime_ns
    again.save(_shards(again, {}))
    assert cache.stat().st_mtime_ns == before

    (root / "d2" / "v9.mp4").write_bytes(b"x")  # d2's time changes
    past = time.time() - 30
    os.utime(root / "d2", (past, past))  # ... and is old enough to be trusted once listed
    third = listing_cache.scan(root, data, "store", shards)
    assert set(third.listed) == {"d2"}
    assert [os.path.basename(p) for p in third.fresh["path"]] == ["v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4", "v9.mp4"]
    assert third.known_count() == 9
    third.save(_shards(third, {path: "shard-00002" for path in third.fresh["path"]}))
    fourth = listing_cache.scan(root, data, "store", shards)
    assert not fourth.listed and fourth.known_count() == 14
    assert dict(fourth.known_shards().iter_rows())["shard-00002"] == 5


def test_a_directory_not_all_registered_is_listed_again_and_a_reset_store_ignores_the_cache(tmp_path):
    root, data = tmp_path / "videos", tmp_path / "data"
    _tree(root, dirs=2)
    first = listing_cache.scan(root, data, "store")
    registered = _register_all(first)
    registered.pop(str(root / "d1" / "v3.mp4"))  # the sensor's per-tick cap left one for later
    first.save(_shards(first, registered))
    shards = {"shard-00000", "shard-00001"}
    again = listing_cache.scan(root, data, "store", shards)
    assert set(again.listed) == {"d1"} and set(again.known) == {"", "d0"}
    assert again.known_count() == 4
    # a store that no longer has the cache's shards (reset under it): everything is listed
    reset = listing_cache.scan(root, data, "store", {"shard-00001"})
    assert not reset.known and reset.fresh.height == 8 and reset.known_count() == 0


def test_files_come_in_the_order_of_their_paths_without_sorting_them(tmp_path):
    """Files and subdirectories interleave as their paths sort ('a-b/' before 'a/', 'a.mp4'
    before both, 'a/b/...' before 'a/zzz.mp4'), non-ASCII last; registration numbers files in
    this order, so it must equal a sort of the paths."""
    root = tmp_path / "videos"
    names = ["a.mp4", "a/x.mp4", "a/zzz.mp4", "a/b/c.mp4", "a/b.mp4", "a-b/y.mp4", "a b.mp4", "Z.mp4", "ä/z.mp4",
             "a/b/d/e.mp4", "a/b0.mp4", "b.MP4", "c/.hidden.mp4", ".h/x.mp4"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "a" / "b" / "c.txt").write_text("caption of a/b/c")
    scan = listing_cache.scan(root, tmp_path / "data", "store")
    paths = scan.fresh["path"].to_list()
    expected = sorted(str(root / n) for n in names if not any(part.startswith(".") for part in n.split("/")))
    assert paths == expected and len(paths) == 12
    assert dict(scan.fresh.select("path", "text").iter_rows())[str(root / "a/b/c.mp4")] == "caption of a/b/c"
