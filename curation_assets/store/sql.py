"""The SQL that reads store tables: explicit file lists for the project's own reads, globs for
the catalog's always-fresh views. Text only: nothing here opens a file.

The project's reads name every file (the winners of the listing and the current index): a
file the compactor's GC deletes can only be missed by a read that listed before the delete,
and that read is retried once (ScoreStore). The catalog's views (curation.duckdb on a folder)
cannot hold a list that changes with every write, so they glob the table's folder and work
out the winners in SQL from the file names and the newest index: always fresh, and a query
that overlaps a GC delete can fail with "cannot open file" (re-running it works; docs/store.md).
"""

from __future__ import annotations

FILE_COLUMN = "_curation_file"  # read_parquet's filename column, named so no table column clashes
_TIME = "%Y%m%dT%H%M%S%fZ"


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(items) -> str:
    return "[" + ", ".join(sql_str(i) for i in items) + "]"


def explicit_select(files: list[str], losers: dict[str, list[str]] | None = None) -> str:
    """The rows of `files` (winners named one by one), less the rows of shards that a segment
    in the list holds but does not win (`losers`: segment path -> shards)."""
    if not files:
        return "select null as shard where false"
    losers = {f: s for f, s in (losers or {}).items() if s}
    if not losers:
        return f"select * from read_parquet({sql_list(files)}, union_by_name = true)"
    cond = " or ".join(f"({FILE_COLUMN} = {sql_str(f)} and shard in ({', '.join(sql_str(s) for s in sorted(ss))}))"
                       for f, ss in sorted(losers.items()))
    return (f"select * exclude ({FILE_COLUMN}) from read_parquet({sql_list(files)}, union_by_name = true, "
            f"filename = {sql_str(FILE_COLUMN)}) where not ({cond})")


# ---- the catalog's views (a local folder) ------------------------------------------------------

def _loose_files(folder: str) -> str:
    """Every loose object under `folder` from its name alone: quoted shard, version, rows, code version."""
    name = "parse_filename(file)"
    return (f"select file, regexp_extract({name}, '^([^@]*?)(@|\\.parquet$)', 1) as q, "
            f"regexp_extract({name}, '^[^@]*@([^@]*)@', 1) as version, "
            f"regexp_extract({name}, '^[^@]*@[^@]*@([0-9]*)@', 1) as rows_text, "
            f"regexp_extract({name}, '^[^@]*@[^@]*@[^@]*@(.*)\\.parquet$', 1) as cv_text "
            f"from glob({sql_str(folder + '/*.parquet')}) where not starts_with({name}, '_')")


def _index(folder: str) -> str:
    """The newest shard index's live entries (older generations wait for GC beside it)."""
    idx = folder + "/_index/*.parquet"
    return (f"select * exclude (_f) from read_parquet({sql_str(idx)}, filename = '_f') "
            f"where live and _f = (select max(file) from glob({sql_str(idx)}))")


def winners_view(folder: str, has_index: bool) -> str:
    """(file, shard): the file that wins each shard, from names and the newest index."""
    loose = (f"select file, url_decode(q) as shard, version, 0 as src from ({_loose_files(folder)})")
    if has_index:  # src: a segment wins a tie against the loose object it absorbed (layout.py)
        cands = f"{loose} union all select {sql_str(folder + '/')} || segment, shard, version, 1 from ({_index(folder)})"
    else:
        cands = loose
    return (f"select file, shard from ({cands}) "
            "qualify row_number() over (partition by shard order by version desc, src desc) = 1")


def rows_view(folder: str, winners: str, has_index: bool) -> str:
    """The table's rows: every file of the folder, keeping only what wins. Before the table's
    first compaction every file is one shard's loose object, so the file alone decides (tables
    that are not split by shard, e.g. the training set by preset, have no shard column)."""
    scan = (f"read_parquet({sql_str(folder + '/*.parquet')}, union_by_name = true, "
            f"filename = {sql_str(FILE_COLUMN)})")
    if has_index:
        return (f"select d.* exclude ({FILE_COLUMN}) from {scan} d semi join \"{winners}\" w "
                f"on d.{FILE_COLUMN} = w.file and d.shard = w.shard")
    return f"select * exclude ({FILE_COLUMN}) from {scan} where {FILE_COLUMN} in (select file from \"{winners}\")"


def shard_writes_part(table: str, folder: str, has_index: bool, legacy_files: list[str]) -> str:
    """(asset, shard, rows, code_version, written_at, version, src) candidates of one table."""
    t = sql_str(table)
    parts = [(f"select {t} as asset, url_decode(q) as shard, cast(rows_text as bigint) as rows, url_decode(cv_text) "
              f"as code_version, strptime(substr(version, 1, 22), '{_TIME}') as written_at, version, 0 as src "
              f"from ({_loose_files(folder)}) where version <> ''")]
    if has_index:
        parts.append(f"select {t}, shard, rows, code_version, written_at, version, 1 from ({_index(folder)})")
    if legacy_files:  # objects of earlier code: their footers (a fixed list; compaction absorbs them)
        p = "curation:"
        parts.append(
            f"select {t}, max(v) filter (where k = '{p}shard'), cast(max(v) filter (where k = '{p}rows') as bigint), "
            f"max(v) filter (where k = '{p}code_version'), "
            f"cast(max(v) filter (where k = '{p}written_at') as timestamp), '', 0 "
            f"from (select file_name, decode(key) as k, decode(value) as v from parquet_kv_metadata({sql_list(legacy_files)}) "
            f"where decode(key) like '{p}%') group by file_name having max(v) filter (where k = '{p}kind') is null")
    return " union all ".join(parts)


def shard_writes_view(parts: list[str]) -> str:
    if not parts:
        return ("select null::varchar as asset, null::varchar as shard, null::bigint as rows, "
                "null::varchar as code_version, null::timestamp as written_at where false")
    union = " union all ".join(f"({p})" for p in parts)
    return (f"select asset, shard, rows, code_version, written_at from ({union}) "
            "qualify row_number() over (partition by asset, shard order by version desc, src desc) = 1")
