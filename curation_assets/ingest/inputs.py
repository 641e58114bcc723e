"""What a run's input amounts to: the entries to register, and the files already registered.

A folder is read through the listing cache (listing_cache.py) when that is safe: only the
directories that changed are listed, and the files of the others are known with their shards
without opening the registry. Manifests, single files and folders holding manifest-like files
are discovered in full (discover.py), as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curation_assets.ingest import listing_cache
from curation_assets.ingest.discover import discover, entries_frame, _expand_user
from curation_assets.ingest.registry import REGISTRY_TABLE, registered_shards, shards_by_row
from curation_assets.store import ScoreStore


@dataclass
class RunInput:
    entries: pl.DataFrame  # to register, as columns (discover.ENTRY_SCHEMA; registered ones are skipped by `register`)
    scan: listing_cache.FolderScan | None = None  # files known registered without looking (unchanged folders)
    _placed: pl.Series | None = None

    def entry_paths(self) -> pl.Series:
        """The entries' paths, in order."""
        return self.entries["path"]

    def placed(self, store: ScoreStore) -> pl.Series:
        """Each entry's shard when first asked (null: not registered), in the entries' order.
        Looked up once: the pre-flight, registration and the run's counts each looked up every
        entry (three scans of the registry against ten million paths on a first run over a big
        folder); a path once registered stays so, so later lookups need only the others."""
        if self._placed is None:
            self._placed = shards_by_row(store, self.entry_paths())
        return self._placed

    def to_register(self, store: ScoreStore) -> pl.DataFrame:
        """The entries not registered when first looked up (`register` decides the rest under
        its lock): none of ten million on a run over a folder it has seen."""
        return self.entries.filter(self.placed(store).is_null())

    def known_count(self) -> int:
        return self.scan.known_count() if self.scan is not None else 0

    def known_shards(self) -> pl.DataFrame:
        """(shard, files) of the files known registered without looking."""
        if self.scan is None:
            return pl.DataFrame(schema={"shard": pl.Utf8, "files": pl.UInt32})
        return self.scan.known_shards()

    def shard_files(self, store: ScoreStore) -> pl.DataFrame:
        """(shard, files) over every input file after registration (shard null: a file not
        registered); saves the listing cache. Counts, not paths: at ten million files the
        paths alone held gigabytes."""
        shards = self.record(store)
        if self.scan is None:  # a manifest may name a file twice: each file counts once
            shards = pl.DataFrame([self.entry_paths(), shards]).unique("path")["shard"]
        # an unchanged folder's files and a listed one's are different files
        counts = pl.concat([self.known_shards(), shards.value_counts(name="files").cast({"files": pl.UInt32})])
        return counts.group_by("shard").agg(pl.col("files").sum())

    def record(self, store: ScoreStore) -> pl.Series:
        """Each entry's shard now (null: not registered), the entries registered since the first
        lookup looked up too; saves the listing cache (directories all registered now are not
        listed next time)."""
        placed = self.placed(store)
        missing = placed.is_null()
        shards = placed
        if missing.any():
            rows = missing.arg_true()
            shards = placed.scatter(rows, shards_by_row(store, self.entry_paths().gather(rows))).alias("shard")
        self._placed = None  # not needed past here
        if self.scan is not None:
            self.scan.save(shards)
        return shards

    def count(self) -> int:
        return self.known_count() + (self.entries.height if self.scan is not None else self.entry_paths().n_unique())

    def paths(self) -> list[str]:
        """Every input file's path (built when asked: an input that is part of its shards)."""
        known = self.scan.known_paths()["path"] if self.scan is not None else pl.Series([], dtype=pl.Utf8)
        return pl.concat([known, self.entry_paths()]).unique().sort().to_list()


def read_input(input_path: str, store: ScoreStore, data_dir: Path, allow_outside: bool = False,
               notes: list[str] | None = None) -> RunInput:
    folder = _expand_user(Path(input_path))
    if folder.is_dir():
        shards = set(registered_shards(store)) if REGISTRY_TABLE in store.tables() else set()
        scan = listing_cache.scan(folder, data_dir, store.location.url, shards)
        # a manifest-like file makes it a manifest input (discover_folder_input): read in full,
        # and never cached (a manifest can change without its directory changing)
        if not scan.has_manifests:
            return RunInput(scan.fresh, scan)
    return RunInput(entries_frame(discover(input_path, allow_outside=allow_outside, notes=notes)))
