"""A per-directory listing cache of an input folder: re-list only the directories that changed.

A full walk of a million-file corpus costs a minute here (one listing per directory plus, for
captions, a stat per file); a directory's modification time changes whenever an entry is
added, removed or renamed in it, so a directory whose time is what it was when every file in
it was registered needs no listing: one `stat` per directory instead. The sensor's tick and
`run --input FOLDER` share this.

The cache (DATA_DIR/listings/<key>.parquet, one per input folder and store location) records,
per directory, its time, its subdirectories, and its video files with the shard each was
registered into. It only ever lists directories all of whose files were registered, so
"unchanged" means "nothing new here". Directories modified within two seconds of the scan are
re-listed next time too (two changes within one timestamp tick would look like none). It is
ignored when it names a shard the store does not have (a store reset under it), and a folder
holding manifest-like files is always walked in full (a manifest can change in place without
touching its directory).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curation_assets.ingest.discover import MANIFEST_EXTENSIONS, SIDECAR_CAPTION_SUFFIX, VIDEO_EXTENSIONS

CACHE_DIR = "listings"
_TRUST_MARGIN_NS = 2_000_000_000  # a directory modified this close to a scan is listed again next time
_SCHEMA = {"dir": pl.Utf8, "name": pl.Utf8, "shard": pl.Utf8, "mtime_ns": pl.Int64, "subdirs": pl.List(pl.Utf8),
           "manifest": pl.Boolean}


@dataclass
class DirRecord:
    mtime_ns: int
    subdirs: list[str]
    manifest: bool = False  # holds a manifest-like file (.jsonl, .json, .csv, .parquet)


_FILE_SCHEMA = {"dir": pl.Utf8, "name": pl.Utf8, "text": pl.Utf8}


class _FileRows:
    """The listed video files as columns (dir, name, sidecar caption), made a chunk at a time:
    ten million InputEntry objects (and their names again, per directory) held gigabytes."""

    CHUNK = 65_536

    def __init__(self) -> None:
        self.chunks: list[pl.DataFrame] = []
        self.dirs: list[str] = []
        self.names: list[str] = []
        self.texts: list[str | None] = []

    def add(self, rel: str, names: list[str], texts: list[str | None]) -> None:
        """A directory's files (or a run of them), in order."""
        self.dirs.extend([rel] * len(names))
        self.names.extend(names)
        self.texts.extend(texts)
        if len(self.names) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.names:
            self.chunks.append(pl.DataFrame({"dir": self.dirs, "name": self.names, "text": self.texts}, schema=_FILE_SCHEMA))
            self.dirs, self.names, self.texts = [], [], []

    def frame(self) -> pl.DataFrame:
        self._flush()
        return pl.concat(self.chunks) if self.chunks else pl.DataFrame(schema=_FILE_SCHEMA)


@dataclass
class FolderScan:
    root: Path
    cache_file: Path
    started_ns: int
    known: dict[str, DirRecord]  # unchanged directories (relative): every file registered
    listed: dict[str, DirRecord]  # directories listed now
    files: pl.DataFrame  # the video files of the listed directories (dir, name, text: sidecar caption), path order
    has_manifests: bool = False
    usable_cache: bool = False  # the cache file's rows describe this store (cached_files reads them)

    @property
    def fresh(self) -> pl.DataFrame:
        """The listed files as entries to register (discover.ENTRY_SCHEMA columns), in path order.
        `origin`, the same for every file, is categorical (as text: 210 MB at ten million files);
        registration writes it as text."""
        origin = pl.lit(str(self.root)).cast(pl.Categorical).alias("origin")
        return self.files.select(_file_path(self.root), "text", origin, pl.lit(None, pl.Utf8).alias("error"),
                                 pl.lit(None, pl.Utf8).alias("locator"))

    def cached_files(self) -> pl.LazyFrame:
        """The cache's file rows of the unchanged directories, read lazily: at ten million files
        a tick that lists nothing new needs their count only, not their names in memory."""
        if not self.usable_cache:
            return pl.LazyFrame(schema=_SCHEMA)
        return (pl.scan_parquet(self.cache_file).select(list(_SCHEMA))
                .filter(pl.col("name").is_not_null() & pl.col("dir").is_in(list(self.known))))

    def known_count(self) -> int:
        return int(self.cached_files().select(pl.len()).collect().item()) if self.known else 0

    def known_shards(self) -> pl.DataFrame:
        """(shard, files) of the unchanged directories' files."""
        return self.cached_files().group_by("shard").agg(pl.len().alias("files")).collect()

    def known_paths(self) -> pl.DataFrame:
        """(path, shard) of the unchanged directories' files (vectorized: no per-file Python)."""
        return self.cached_files().select(_file_path(self.root), "shard").collect()

    def save(self, shards: pl.Series) -> None:
        """Record the listed directories whose files are all registered now (`shards`: each
        listed file's shard, in `files`' order; null: not registered), beside the unchanged ones.
        Nothing listed, nothing to record: the file stays as it is (a tick over ten million
        unchanged files rewrote them all). Columns in the listing's order, not a dict per file or
        a join by path: a first run over ten million files held each twice."""
        if not self.listed and self.usable_cache:
            return
        if len(shards) != self.files.height:
            raise ValueError(f"{len(shards)} shards for {self.files.height} listed files")
        files = self.files.lazy().select("dir", "name").with_columns(shards.alias("shard"))
        # a directory not all registered yet (the sensor's per-tick cap) is listed again next time
        incomplete = set(files.filter(pl.col("shard").is_null()).select(pl.col("dir").unique()).collect()["dir"])
        done = {rel: rec for rel, rec in self.listed.items() if rel not in incomplete}
        # lazy, to the file: ten million rows filtered and written a batch at a time
        listed_files = files.filter(pl.col("dir").is_in(list(done))).select(
            "dir", "name", "shard", pl.lit(None, pl.Int64).alias("mtime_ns"),
            pl.lit(None, pl.List(pl.Utf8)).alias("subdirs"), pl.lit(None, pl.Boolean).alias("manifest"))
        rows = pl.concat([_heads(done), listed_files])
        frame = pl.concat([_heads(self.known), self.cached_files(), rows])
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(f".{self.cache_file.name}.{uuid.uuid4().hex}.tmp")
        # streamed from the old file to the new one: the cached names never all sit in memory
        frame.with_columns(pl.lit(self.started_ns).alias("saved_ns")).sink_parquet(tmp)
        os.replace(tmp, self.cache_file)


def _file_path(root: Path) -> pl.Expr:
    """`path`: a cached file's absolute path from its directory (relative to `root`) and name."""
    base = pl.lit(str(root))
    return pl.when(pl.col("dir") == "").then(base + "/" + pl.col("name")).otherwise(
        base + "/" + pl.col("dir") + "/" + pl.col("name")).alias("path")


def _heads(dirs: dict[str, DirRecord]) -> pl.LazyFrame:
    """One row per directory: its time, subdirectories and whether it holds a manifest."""
    return pl.LazyFrame({"dir": list(dirs), "name": [None] * len(dirs), "shard": [None] * len(dirs),
                         "mtime_ns": [r.mtime_ns for r in dirs.values()], "subdirs": [r.subdirs for r in dirs.values()],
                         "manifest": [r.manifest for r in dirs.values()]}, schema=_SCHEMA)


def cache_path(data_dir: Path, root: Path, store_url: str) -> Path:
    key = hashlib.sha256(f"{root}\n{store_url}".encode()).hexdigest()[:16]
    return Path(data_dir) / CACHE_DIR / f"{key}.parquet"


def scan(root: Path, data_dir: Path, store_url: str, registered_shards: set[str] | None = None) -> FolderScan:
    """List what changed under `root` since the cache was saved (everything without a cache)."""
    root = Path(root).resolve()
    started = time.time_ns()
    file = cache_path(data_dir, root, store_url)
    cached, saved_ns = _load(file)
    if cached and registered_shards is not None:
        shards = pl.scan_parquet(file).select(pl.col("shard").drop_nulls().unique()).collect()["shard"]
        if not set(shards.to_list()) <= registered_shards:  # the store no longer has what the cache says: ignore it
            cached = {}
    out = FolderScan(root, file, started, {}, {}, pl.DataFrame(schema=_FILE_SCHEMA), usable_cache=bool(cached))
    rows = _FileRows()
    trust_before = (saved_ns or 0) - _TRUST_MARGIN_NS

    def open_dir(rel: str) -> list:
        """What a directory holds, in path order: runs of its files (rel, names, captions) to
        list, its subdirectories (rel) to visit; a directory unchanged since the cache only the
        latter."""
        path = root / rel if rel else root
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return []
        rec = cached.get(rel)
        if rec is not None and rec.mtime_ns == mtime and mtime < trust_before:
            out.known[rel] = rec
            out.has_manifests |= rec.manifest
            names, captions = [], []
        else:
            rec, names, captions = _list_dir(path, mtime)
            out.listed[rel] = rec
            out.has_manifests |= rec.manifest
        # path order without a sort of every path afterwards: a subdirectory's files all come
        # where "<name>/" sorts among the directory's (sorted) file names
        items, at = [], 0
        for sub in sorted(rec.subdirs, key=lambda d: d + "/"):  # "a-b/" sorts before "a/"
            cut = bisect.bisect_left(names, sub + "/", at)
            if cut > at:
                items.append((rel, names[at:cut], captions[at:cut]))
            items.append(f"{rel}/{sub}" if rel else sub)
            at = cut
        if at < len(names):
            items.append((rel, names[at:], captions[at:]))
        return items

    # os.walk's names sorted at every level: the files in the order of their paths (the order
    # they are registered in), as sorting the paths would give, without holding them twice
    stack = [iter(open_dir(""))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, str):
            stack.append(iter(open_dir(item)))
        else:
            rows.add(*item)
    out.files = rows.frame()
    return out


def _list_dir(path: Path, mtime: int) -> tuple[DirRecord, list[str], list[str | None]]:
    """The directory's record, its video files' names (sorted) and their sidecar captions.
    A loop as lean as it can be: at ten million files every operation per name is seconds."""
    entries = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    entries.append((name, entry.is_dir()))
                except OSError:
                    continue
    except OSError:
        pass
    subdirs, videos, others, manifest = [], [], set(), False
    for name, is_dir in entries:
        if is_dir:
            subdirs.append(name)
            continue
        dot = name.rfind(".")  # os.path.splitext's suffix for a name without a leading dot
        suffix = name[dot:].lower() if dot > 0 else ""
        if suffix in VIDEO_EXTENSIONS:
            videos.append(name)
        else:
            others.add(name)
            manifest = manifest or suffix in MANIFEST_EXTENSIONS
    videos.sort()
    captions: list[str | None] = [None] * len(videos)
    if others:  # sidecar captions: <stem>.txt beside <stem>.mp4
        for i, name in enumerate(videos):
            sidecar = name[:name.rfind(".")] + SIDECAR_CAPTION_SUFFIX
            if sidecar in others:
                captions[i] = _read_caption(os.path.join(str(path), sidecar))
    return DirRecord(mtime, sorted(subdirs), manifest), videos, captions


def _read_caption(sidecar: str) -> str | None:
    try:
        if not os.path.isfile(sidecar):  # a named pipe would block the read forever
            return None
        with open(sidecar, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _load(file: Path) -> tuple[dict[str, DirRecord], int | None]:
    """The cache's directories and when it was saved (its file rows stay on disk: FolderScan
    reads them lazily)."""
    if not file.is_file():
        return {}, None
    try:
        heads = pl.scan_parquet(file).filter(pl.col("name").is_null()).collect()
    except Exception:  # a cache we cannot read is no cache
        return {}, None
    if not heads.height:
        return {}, None
    saved = int(heads["saved_ns"][0])
    dirs = {rel: DirRecord(int(mtime), list(subdirs or []), manifest=bool(manifest))
            for rel, mtime, subdirs, manifest in heads.select("dir", "mtime_ns", "subdirs", "manifest").iter_rows()}
    return dirs, saved
