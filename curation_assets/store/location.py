"""A store location: a local folder or an fsspec URL, and the few byte operations the store needs.

Everything under a location is addressed by a *relative* key (`tables/motion/shard-00000.parquet`,
`frames/ab/<id>/0000003.png`, `clips/ab/<source id>/clip00003_f...mp4`), so rows never carry
where the store happens to be mounted: a store copied or mounted elsewhere still resolves.
Local folders (plain paths and `file://` URLs) go
through `os` directly (temp name + `os.replace`, which is atomic on one filesystem); any other
fsspec URL (`s3://`, `gs://`, `memory://`) writes an object with one PUT, which object stores
publish atomically. Readers therefore never see half an object.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

# (url, kind, prefix) -> a listing, while `listings_remembered()` is in force
_REMEMBERED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("store_listings", default=None)


@contextlib.contextmanager
def listings_remembered():
    """Within: an object store's folder is listed once, its listing remembered (a LIST is ~100
    ms on S3, and one command's parts list each table's folder again and again: `status` sent
    269 LISTs for 16 tables). For a command that sees the store as of its start (`status`, the
    bookkeeping before `run` registers); a write through any location forgets every listing.
    Local folders are listed each time (a listing costs microseconds there)."""
    token = _REMEMBERED.set({})
    try:
        yield
    finally:
        _REMEMBERED.reset(token)


def forget_listings() -> None:
    """Drop the remembered listings (something was written, or a read found a file gone)."""
    remembered = _REMEMBERED.get()
    if remembered:
        remembered.clear()


class StoreLocationError(RuntimeError):
    """A store location that cannot be used; the message is one readable line naming the setting."""


class StoreLocation:
    def __init__(self, location: str | Path):
        text = str(location)
        parsed = urlparse(text)
        # 'C:\\x' parses with a one-letter scheme; only real URL schemes select fsspec
        if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:
            path = parsed.path if parsed.scheme == "file" else text
            self.is_local = True
            self.root = str(Path(path).expanduser().resolve())
            self.url = self.root
            self.protocol = "file"
        else:
            self.is_local = False
            self.protocol = parsed.scheme
            self.url = text.rstrip("/")
            self.root = self.url.split("://", 1)[1]
        self._fs = None

    def __repr__(self) -> str:
        return f"StoreLocation({self.url!r})"

    @property
    def fs(self):
        """The fsspec filesystem (only needed for non-local locations)."""
        if self._fs is None:
            import fsspec

            # no listings cache: other processes and machines add objects all the time, and
            # s3fs/gcsfs would otherwise answer a glob or an ls from a listing made before
            # them (a run's funnel saw none of the shards its steps had just written)
            self._fs = fsspec.filesystem(self.protocol, use_listings_cache=False)
        return self._fs

    # ---- naming ------------------------------------------------------------------------
    def path(self, key: str) -> str:
        """Where `key` lives: an absolute local path, or the fs path (no scheme) remotely."""
        return os.path.join(self.root, key) if self.is_local else f"{self.root}/{key}"

    def resolve(self, key: str | None) -> str | None:
        """A key stored in a row -> something a reader opens (local path or URL).
        Absolute paths and URLs (rows written before relative keys) pass through unchanged."""
        if key is None or key == "":
            return key
        if os.path.isabs(key) or "://" in key:
            return key
        return self.path(key) if self.is_local else f"{self.url}/{key}"

    def local_file(self, key: str, cache_dir: str | Path | None = None) -> str:
        """A key stored in a row -> a local file path that ffmpeg and PyAV can open. Local
        locations (and absolute paths: rows written before relative keys, or a source video the
        user registered) need no copy; an object at a remote location is downloaded once into
        `cache_dir` (default: a per-location folder under the system temp dir) and reused,
        streamed to the file (an id index run at ten million clips is 650 MB)."""
        where = self.resolve(key)
        if "://" not in where:
            return where
        import hashlib
        import tempfile

        base = Path(cache_dir) if cache_dir else (
            Path(tempfile.gettempdir()) / "curation_store_cache" / hashlib.sha256(self.url.encode()).hexdigest()[:16])
        target = base / key
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                self.fs.get_file(self.path(key), str(tmp))
                os.replace(tmp, target)  # two readers fetching one clip leave one whole file
            finally:
                if tmp.exists():
                    tmp.unlink()
        return str(target)

    def glob_url(self, pattern: str) -> str:
        """A path DuckDB's read_parquet understands (remote ones need `register(con)` first)."""
        return self.path(pattern) if self.is_local else f"{self.url}/{pattern}"

    def register(self, con) -> None:
        """Let a DuckDB connection read this location (DuckDB's own httpfs is not required)."""
        if self.is_local:
            return
        names = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
        if not set(names) & set(con.list_filesystems()):  # once per connection
            con.register_filesystem(self.fs)

    # ---- bytes -------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> None:
        """Publish `data` under `key` atomically: whole object or the previous one, never half."""
        if self.is_local:
            self._replace_local(key, lambda fh: fh.write(data))
        else:
            forget_listings()
            self.fs.pipe_file(self.path(key), data)  # one PUT

    def put_file(self, local_path: str | Path, key: str) -> None:
        """Copy a finished local file under `key` (atomically, as write_bytes), streamed: never
        the whole file in memory (an id index run at ten million clips is 650 MB)."""
        if self.is_local and os.path.abspath(local_path) == self.path(key):
            return
        if not self.is_local:
            forget_listings()
            self.fs.put_file(str(local_path), self.path(key))  # one PUT (multipart when large)
            return
        import shutil

        def copy(fh) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 24)

        self._replace_local(key, copy)

    def _replace_local(self, key: str, write) -> None:
        """`write(fh)` fills a unique hidden temp file beside `key`'s (two writers of one key
        never share one, and its name matches no '*.parquet' glob, so readers never list it),
        which then replaces the target: readers see the whole file or the previous one."""
        target = Path(self.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    def read_bytes(self, key: str) -> bytes:
        if self.is_local or os.path.isabs(key):
            with open(self.path(key) if not os.path.isabs(key) else key, "rb") as fh:
                return fh.read()
        return self.fs.cat_file(self.path(key) if "://" not in key else key)

    def exists(self, key: str) -> bool:
        if os.path.isabs(key):
            return os.path.exists(key)
        return os.path.exists(self.path(key)) if self.is_local else self.fs.exists(self.path(key))

    def list(self, prefix: str) -> list[str]:
        """Names (not keys) directly under `prefix`, sorted; hidden temp files left out."""
        if self.is_local:
            try:
                names = os.listdir(self.path(prefix))
            except (FileNotFoundError, NotADirectoryError):
                return []
        else:
            return list(self._remembered("list", prefix, lambda: self._list_remote(prefix)))
        return sorted(n for n in names if not n.startswith("."))

    def _list_remote(self, prefix: str) -> list[str]:
        try:
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path(prefix), detail=False)]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith("."))

    def _remembered(self, kind: str, prefix: str, list_now):
        remembered = _REMEMBERED.get()
        if remembered is None:
            return list_now()
        key = (self.url, kind, prefix)
        if key not in remembered:
            remembered[key] = list_now()
        return remembered[key]

    def list_detail(self, prefix: str) -> dict[str, tuple[float, int, bool]]:
        """name -> (modification time, size, is a folder) directly under `prefix`, hidden
        names left out. The time is the filesystem's or the object store's (its clock, not
        this machine's): the compactor's grace period is measured against it."""
        out: dict[str, tuple[float, int, bool]] = {}
        if self.is_local:
            try:
                with os.scandir(self.path(prefix)) as it:
                    for entry in it:
                        if entry.name.startswith("."):
                            continue
                        try:
                            st = entry.stat()
                        except FileNotFoundError:  # deleted between the listing and the stat
                            continue
                        out[entry.name] = (st.st_mtime, st.st_size, entry.is_dir())
            except (FileNotFoundError, NotADirectoryError):
                pass
            return out
        return dict(self._remembered("detail", prefix, lambda: self._list_detail_remote(prefix)))

    def _list_detail_remote(self, prefix: str) -> dict[str, tuple[float, int, bool]]:
        out: dict[str, tuple[float, int, bool]] = {}
        try:
            listed = self.fs.ls(self.path(prefix), detail=True)
        except FileNotFoundError:
            return out
        for info in listed:
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("."):
                continue
            modified = info.get("LastModified") or info.get("mtime") or info.get("created")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0.0)
            out[name] = (stamp, int(info.get("size") or 0), info.get("type") == "directory")
        return out

    def list_starting(self, prefix: str, start: str) -> list[str]:
        """Names directly under `prefix` that begin with `start`: one prefix LIST on an object
        store (the bytes of the other names are never sent), a folder listing locally."""
        if self.is_local or self.protocol not in ("s3", "s3a"):
            return [n for n in self.list(prefix) if n.startswith(start)]
        try:
            found = self.fs.find(self.path(prefix), prefix=start, maxdepth=1)
        except FileNotFoundError:
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in found)
        return sorted(n for n in names if n.startswith(start) and not n.startswith("."))

    def delete(self, key: str) -> bool:
        """Remove one object; False when it was already gone."""
        try:
            if self.is_local:
                os.unlink(self.path(key))
            else:
                forget_listings()
                self.fs.rm_file(self.path(key))
            return True
        except FileNotFoundError:
            return False

    def tails(self, keys: list[str], nbytes: int = 8) -> dict[str, bytes | Exception]:
        """The last `nbytes` of each object (a Parquet file ends with its footer length and
        b'PAR1'): concurrent ranged GETs on an object store, so checking many is cheap."""
        out: dict[str, bytes | Exception] = {}
        if self.is_local:
            for key in keys:
                try:
                    with open(self.path(key), "rb") as fh:
                        size = fh.seek(0, os.SEEK_END)
                        fh.seek(max(0, size - nbytes))
                        out[key] = fh.read()
                except OSError as exc:
                    out[key] = exc
            return out
        paths = [self.path(k) for k in keys]
        got = self.fs.cat_ranges(paths, [-nbytes] * len(paths), [None] * len(paths), on_error="return") if paths else []
        for key, data in zip(keys, got):
            out[key] = data
        return out

    def open_input(self, key: str):
        """Something pyarrow opens for ranged reads: a path locally, a file object remotely."""
        return self.path(key) if self.is_local else self.fs.open(self.path(key), "rb", cache_type="none")

    def remove_prefix(self, prefix: str) -> None:
        """Remove every object under `prefix` (a re-run's stale frames)."""
        if self.is_local:
            folder = Path(self.path(prefix))
            if folder.is_dir():
                for old in folder.iterdir():
                    if old.is_file():
                        old.unlink()
        elif self.fs.exists(self.path(prefix)):
            forget_listings()
            self.fs.rm(self.path(prefix), recursive=True)

    # ---- start-up check ----------------------------------------------------------------
    def check(self, setting: str = "CURATION_STORE") -> None:
        """Fail in one readable line when the location is missing, unreachable or not writable."""
        what = f"{setting}: store location {self.url!r}"
        if not self.is_local:
            return self._check_remote(setting, what)
        root = Path(self.root)
        if not root.exists():
            raise StoreLocationError(f"{what} does not exist (create the folder or point {setting} elsewhere)")
        if not root.is_dir():
            raise StoreLocationError(f"{what} is not a folder")
        probe = f".write-probe-{uuid.uuid4().hex}"
        try:
            self.write_bytes(probe, b"ok")
        except Exception as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise StoreLocationError(f"{what} is not writable: {reason}") from None
        try:
            os.unlink(self.path(probe))
        except OSError:
            pass

    def _check_remote(self, setting: str, what: str) -> None:
        """One probe PUT + DELETE under the prefix, through a filesystem with short timeouts.

        An object store has no folders: a prefix that holds nothing yet is a fine location, so
        only the bucket must exist. Writing the probe answers every question at once (bucket
        there, endpoint reachable, credentials allowed to write); `exists()` cannot, because
        s3fs turns a refused connection into False. The short timeouts and single attempt
        make an unreachable endpoint fail in seconds instead of s3fs's and botocore's
        default retries (~15 s for a refused port, minutes for a silent one)."""
        where = _endpoint_hint(self.protocol)
        try:
            fs = self._quick_fs()
        except Exception as exc:  # unknown protocol, missing package (s3fs / gcsfs)
            raise StoreLocationError(f"{what} cannot be reached: {type(exc).__name__}: {_one_line(exc)}") from None
        probe = f"{self.root}/.write-probe-{uuid.uuid4().hex}"
        try:
            fs.pipe_file(probe, b"ok")
        except FileNotFoundError:  # s3fs's translation of NoSuchBucket
            bucket = self.root.split("/", 1)[0]
            raise StoreLocationError(f"{what} does not exist: no bucket {bucket!r}{where} "
                                     f"(create it or point {setting} elsewhere)") from None
        except PermissionError as exc:
            raise StoreLocationError(f"{what} is not writable{where}: {_one_line(exc)}") from None
        except Exception as exc:  # refused connection, DNS, timeout, bad credentials: still one line
            raise StoreLocationError(f"{what} cannot be reached{where}: {type(exc).__name__}: {_one_line(exc)}") from None
        try:
            fs.rm(probe)
        except Exception:
            pass

    def _quick_fs(self):
        """A filesystem for the start-up probe only: short timeouts, one attempt (S3)."""
        import fsspec

        if self.protocol in ("s3", "s3a"):
            fs = fsspec.filesystem(self.protocol, skip_instance_cache=True, config_kwargs={
                "connect_timeout": 5, "read_timeout": 10, "retries": {"max_attempts": 1, "mode": "standard"}})
            fs.retries = 1  # s3fs's own retry loop around botocore's
            return fs
        return self.fs


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _endpoint_hint(protocol: str) -> str:
    """' at http://host:port' when an S3-compatible endpoint is configured (the usual culprit)."""
    if protocol not in ("s3", "s3a"):
        return ""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f" at {endpoint}" if endpoint else ""
