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
from curation_assets.ingest.discover import InputEntry, discover, _expand_user
from curation_assets.ingest.registry import REGISTRY_TABLE, registered_shards, shards_of
from curation_assets.store import ScoreStore


@dataclass
class RunInput:
    entries: list[InputEntry]  # to register (those registered already are skipped by `register`)
    known: pl.DataFrame  # (path, shard) of files known registered without looking (unchanged folders)
    scan: listing_cache.FolderScan | None = None

    def mapping(self, store: ScoreStore) -> pl.DataFrame:
        """(path, shard) of every input file, after registration; saves the listing cache."""
        looked_up = shards_of(store, sorted({e.path for e in self.entries}))
        if self.scan is not None:
            self.scan.save(dict(looked_up.iter_rows()))
        return pl.concat([self.known, looked_up]).unique("path", keep="first")

    def paths(self) -> list[str]:
        return sorted(set(self.known["path"].to_list()) | {e.path for e in self.entries})


def read_input(input_path: str, store: ScoreStore, data_dir: Path, allow_outside: bool = False,
               notes: list[str] | None = None) -> RunInput:
    folder = _expand_user(Path(input_path))
    if folder.is_dir():
        shards = set(registered_shards(store)) if REGISTRY_TABLE in store.tables() else set()
        scan = listing_cache.scan(folder, data_dir, store.location.url, shards)
        # a manifest-like file makes it a manifest input (discover_folder_input): read in full,
        # and never cached (a manifest can change without its directory changing)
        if not scan.has_manifests:
            return RunInput(scan.fresh, scan.known_paths(), scan)
    entries = discover(input_path, allow_outside=allow_outside, notes=notes)
    return RunInput(entries, pl.DataFrame(schema={"path": pl.Utf8, "shard": pl.Utf8}))
