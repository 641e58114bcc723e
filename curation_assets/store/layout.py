"""Names and versions of the files under a store table, and which file wins a shard: pure, no I/O.

Per table, one folder (a prefix on an object store):

    tables/<t>/<shard>@<version>@<rows>@<code version>.parquet   a shard's rows as one writer published
                                       them (a "loose object"); never overwritten: a re-run is a new version
    tables/<t>/<shard>.parquet         written by earlier code: read as version "" (the oldest)
    tables/<t>/_seg-<gen>-<token>.parquet   a segment: the compactor's merge of many shards' rows, sorted by shard
    tables/<t>/_index/<gen>-<token>.parquet the shard index: which segment holds which (shard, version) at
                                       which rows; the highest generation is the current one

Shard names and code versions are percent-quoted in file names (`@` never appears unquoted), so
a name parses without reading the file. The rows count, code version and write time are in the
name because staleness, the funnel and `shard_writes` then need a listing, not one read per
object; the footer carries the same values (written together, in one immutable file).

Winner of a shard: the highest version; at equal versions a segment beats a loose object (both
hold the same rows: the loose one was absorbed into that segment, and stays until the GC's
grace period has passed for readers that listed it before; reads switch to the segment at once).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, unquote

TABLES_PREFIX = "tables"
INDEX_DIR = "_index"
SEG_PREFIX = "_seg-"
PARQUET = ".parquet"
META_PREFIX = "curation:"
# the version: UTC write time to the microsecond, then a random token (total order, no collisions)
_VERSION_TIME = "%Y%m%dT%H%M%S%fZ"
_VERSION_RE = re.compile(r"^(\d{8}T\d{12}Z)-[0-9a-f]{8}$")
_KEY_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
_GEN_RE = re.compile(r"^(\d{8})-([0-9a-f]{8})\.parquet$")

LOOSE, SEGMENT = 0, 1  # source ranks: a segment wins a tie against the loose object it absorbed


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class ObjectName:
    """What a loose object's file name says. `rows` and `code_version` are None for objects
    written by earlier code (`<shard>.parquet`): their footer has them."""
    name: str
    shard: str
    version: str
    rows: int | None
    code_version: str | None

    @property
    def legacy(self) -> bool:
        return self.rows is None

    @property
    def written_at(self) -> dt.datetime | None:
        return version_time(self.version)


def quote_name(text: str) -> str:
    """A shard key as it appears in a file name (safe names stay readable)."""
    return text if _KEY_SAFE.match(text) else quote(text, safe="")


def check_identifier(name: str) -> None:
    if not name or not name.replace("_", "").isalnum():
        raise LayoutError(f"invalid table name {name!r}")


def table_dir(table: str) -> str:
    check_identifier(table)
    return f"{TABLES_PREFIX}/{table}"


def legacy_name(shard: str) -> str:
    return f"{quote_name(shard)}{PARQUET}"


def object_name(shard: str, version: str, rows: int, code_version: str) -> str:
    if not _VERSION_RE.match(version):
        raise LayoutError(f"not a version: {version!r}")
    return f"{_quote_shard(shard)}@{version}@{int(rows)}@{quote(code_version or '', safe='')}{PARQUET}"


def shard_prefix(shard: str) -> str:
    """Every loose object of `shard` (and, on an object store's prefix listing, of shards whose
    quoted name starts with it: callers compare the parsed shard)."""
    return _quote_shard(shard)


def _quote_shard(shard: str) -> str:
    # a leading "_" or "." would read as a segment / the index, or a hidden temp file
    text = quote(shard, safe="")
    return f"%{ord(text[0]):02X}{text[1:]}" if text[:1] in ("_", ".") else text


def parse_object_name(name: str) -> ObjectName | None:
    """A loose object's name -> its parts; None for segments, index files, temp files, others."""
    if not name.endswith(PARQUET) or name.startswith((".", "_")):
        return None
    stem = name[: -len(PARQUET)]
    if "@" not in stem:  # written by earlier code, or an append: version "" (the oldest)
        return ObjectName(name, unquote(stem), "", None, None)
    parts = stem.split("@")
    if len(parts) != 4 or not _VERSION_RE.match(parts[1]) or not parts[2].isdigit():
        return None
    return ObjectName(name, unquote(parts[0]), parts[1], int(parts[2]), unquote(parts[3]))


def new_version(now: dt.datetime | None = None, after: str | None = None) -> str:
    """A version newer than `after` (the newest this writer can see of the shard), normally the
    UTC time now: a writer whose clock lags still publishes the newest version."""
    when = now or dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    floor = version_time(after) if after else None
    if floor is not None and when <= floor:
        when = floor + dt.timedelta(microseconds=1)
    return f"{when.strftime(_VERSION_TIME)}-{uuid.uuid4().hex[:8]}"


def version_time(version: str | None) -> dt.datetime | None:
    """The UTC (naive) time a version names; None for "" (objects of earlier code)."""
    if not version:
        return None
    return dt.datetime.strptime(version[:22], _VERSION_TIME)


def segment_name(gen: int) -> str:
    return f"{SEG_PREFIX}{gen:08d}-{uuid.uuid4().hex[:8]}{PARQUET}"


def segment_gen(name: str) -> int | None:
    if not name.startswith(SEG_PREFIX):
        return None
    m = _GEN_RE.match(name[len(SEG_PREFIX):])
    return int(m.group(1)) if m else None


def index_name(gen: int) -> str:
    return f"{gen:08d}-{uuid.uuid4().hex[:8]}{PARQUET}"


def index_gen(name: str) -> int | None:
    m = _GEN_RE.match(name)
    return int(m.group(1)) if m else None


__all__ = [
    "INDEX_DIR", "LOOSE", "META_PREFIX", "PARQUET", "SEGMENT", "SEG_PREFIX", "TABLES_PREFIX", "LayoutError",
    "ObjectName", "check_identifier", "index_gen", "index_name", "legacy_name", "new_version", "object_name",
    "parse_object_name", "quote_name", "segment_gen", "segment_name", "shard_prefix", "table_dir", "version_time",
]
