"""Turn an input (a folder or a manifest) into a list of candidate videos with captions.

Nothing is dropped here: an entry that cannot be resolved (a line that is not JSON, a path
escaping the manifest's folder) is returned with `error` set, so it is registered and ends
as a recorded failure instead of vanishing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".3gp"}
)
MANIFEST_EXTENSIONS = frozenset({".jsonl", ".json", ".csv", ".parquet"})
SIDECAR_CAPTION_SUFFIX = ".txt"


@dataclass(frozen=True, slots=True)  # slots: a first run over ten million files holds them all
class InputEntry:
    path: str  # absolute, or a "<manifest>:<line>" locator for unusable manifest lines
    text: str | None = None
    origin: str = ""  # the folder or manifest it came from
    error: str | None = None
    # "<manifest>:<line>" of a manifest entry: provenance, not identity
    locator: str | None = field(default=None, compare=False)


# entries as columns: what registration reads (a folder's listing is made as these columns,
# never as one InputEntry per file: ten million of them held gigabytes)
ENTRY_SCHEMA = {"path": pl.Utf8, "text": pl.Utf8, "origin": pl.Utf8, "error": pl.Utf8, "locator": pl.Utf8}


def entries_frame(entries: list[InputEntry]) -> pl.DataFrame:
    return pl.DataFrame({column: [getattr(e, column) for e in entries] for column in ENTRY_SCHEMA}, schema=ENTRY_SCHEMA)


class InputError(ValueError):
    pass


def discover(input_path: str | Path, allow_outside: bool = False, notes: list[str] | None = None) -> list[InputEntry]:
    """The input's entries. `notes` receives what a person should be told about how the input
    was read (a manifest found inside a folder, videos it does not list)."""
    path = _expand_user(Path(input_path))
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        return discover_folder_input(path, allow_outside, notes if notes is not None else [])
    suffix = path.suffix.lower()
    if suffix in MANIFEST_EXTENSIONS:
        return read_manifest(path, allow_outside)
    if suffix in VIDEO_EXTENSIONS:
        return [InputEntry(str(path.resolve()), _sidecar_caption(path), str(path.parent.resolve()))]
    raise InputError(
        f"{path}: not a folder, a video, or a manifest ({', '.join(sorted(MANIFEST_EXTENSIONS))})"
    )


def discover_folder_input(folder: Path, allow_outside: bool, notes: list[str]) -> list[InputEntry]:
    """A folder given as the input: a manifest inside it is used, never silently ignored.

    - no manifest: every video file (plain folder scan);
    - exactly one manifest, at the folder's top level: its entries, captions and all, plus the
      folder's videos it does not list (as a plain scan would read them), each case in `notes`;
    - several manifests, or one in a subfolder: refused, naming them; pass the one to use.
    """
    root = folder.resolve()
    manifests = find_manifests(root)
    if not manifests:
        return discover_folder(root)
    names = ", ".join(str(m.relative_to(root)) for m in manifests)
    if len(manifests) > 1 or manifests[0].parent != root:
        raise InputError(
            f"{root} holds {'manifests' if len(manifests) > 1 else 'a manifest in a subfolder'} ({names}); "
            f"pass the one to use instead of the folder: --input {manifests[0]}")
    manifest = manifests[0]
    entries = read_manifest(manifest, allow_outside)
    listed = {e.path for e in entries}
    extras = [e for e in discover_folder(root) if e.path not in listed]
    notes.append(f"using the manifest {manifest.name} found in {root}: {len(entries)} entries, captions from it")
    if extras:
        notes.append(
            f"{len(extras)} video(s) in {root} are not in {manifest.name}: curated as plain folder videos "
            f"(caption from a .txt beside the video, else generated); pass --input {manifest} to curate "
            "only the manifest's videos")
    return entries + extras


def find_manifests(root: Path) -> list[Path]:
    """Files under `root` that read as manifests (a JSON-lines object naming a video, or a
    table with a `path` column), top level first. Other .json/.csv files are not manifests."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if not name.startswith(".") and file.suffix.lower() in MANIFEST_EXTENSIONS and _looks_like_manifest(file):
                found.append(file)
    return sorted(found, key=lambda f: (f.parent != root, str(f)))


def _looks_like_manifest(file: Path) -> bool:
    try:
        if not file.is_file():  # a named pipe would block the read
            return False
        suffix = file.suffix.lower()
        if suffix in (".jsonl", ".json"):
            with open(file, "rb") as fh:
                for raw in fh:
                    if raw.strip():
                        record = json.loads(raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace"))
                        return isinstance(record, dict) and any(k in record for k in ("videos", "video", "path"))
            return False
        if suffix == ".csv":
            with open(file, encoding="utf-8-sig", errors="replace") as fh:
                header = fh.readline()
            return "path" in [c.strip().strip('"') for c in header.split(",")]
        import pyarrow.parquet as pq

        return "path" in pq.read_schema(file).names
    except Exception:  # unreadable, or not that format (pyarrow raises its own errors): not a manifest
        return False


def read_manifest(path: Path, allow_outside: bool = False) -> list[InputEntry]:
    if path.suffix.lower() in (".jsonl", ".json"):
        return read_jsonl_manifest(path, allow_outside)
    return read_table_manifest(path, allow_outside)


def discover_folder(folder: Path) -> list[InputEntry]:
    """Every file with a video extension under `folder`, in a stable order.

    A `<name>.txt` beside `<name>.mp4` is taken as its caption, the common crawl layout.
    """
    root = folder.resolve()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        names = set(filenames)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in VIDEO_EXTENSIONS:
                file = Path(dirpath) / name
                # the sidecar is looked up in the listing: no stat per video (a minute at 1M files)
                caption = _sidecar_caption(file) if stem + SIDECAR_CAPTION_SUFFIX in names else None
                entries.append(InputEntry(str(file), caption, str(root)))
    return entries


def _sidecar_caption(video: Path) -> str | None:
    sidecar = video.with_suffix(SIDECAR_CAPTION_SUFFIX)
    try:
        if not sidecar.is_file():  # a named pipe would block the read forever
            return None
        return sidecar.read_bytes().decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def read_jsonl_manifest(manifest: Path, allow_outside: bool = False) -> list[InputEntry]:
    """data-juicer layout: {"videos": [path, ...], "text": "<__dj__video> caption <|__dj__eoc|>"}.

    Also accepts {"video": path} / {"path": path} and a caption under "caption".
    """
    base = manifest.resolve().parent
    origin = str(manifest.resolve())
    entries = []
    with open(manifest, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            locator = f"{origin}:{line_no}"
            if line_no == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # BOM from Windows editors / Excel
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                # Salvage the line: a bad byte in a caption should not cost the video.
                try:
                    record = json.loads(raw.decode("utf-8", errors="replace"))
                except json.JSONDecodeError as exc:
                    entries.append(InputEntry(locator, None, origin, f"manifest line is not valid JSON: {exc.msg}"))
                    continue
            except json.JSONDecodeError as exc:
                entries.append(InputEntry(locator, None, origin, f"manifest line is not valid JSON: {exc.msg}"))
                continue
            if not isinstance(record, dict):
                entries.append(InputEntry(locator, None, origin, "manifest line is not a JSON object"))
                continue
            videos = record.get("videos", record.get("video", record.get("path")))
            if isinstance(videos, str):
                videos = [videos]
            if not videos or not isinstance(videos, list):
                entries.append(InputEntry(locator, None, origin, "manifest line names no video ('videos' key)"))
                continue
            text = record.get("text", record.get("caption"))
            text = text if isinstance(text, str) else None
            for video in videos:
                entries.append(_manifest_entry(video, text, base, origin, locator, allow_outside))
    return entries


def read_table_manifest(manifest: Path, allow_outside: bool = False) -> list[InputEntry]:
    import polars as pl

    base = manifest.resolve().parent
    origin = str(manifest.resolve())
    frame = pl.read_csv(manifest, infer_schema=False) if manifest.suffix.lower() == ".csv" else pl.read_parquet(manifest)
    if "path" not in frame.columns:
        raise InputError(f"{manifest}: a table manifest needs a 'path' column (has {frame.columns})")
    texts = frame["text"].to_list() if "text" in frame.columns else [None] * frame.height
    entries = []
    for row_no, (video, text) in enumerate(zip(frame["path"].to_list(), texts), start=1):
        locator = f"{origin}:row{row_no}"
        entries.append(_manifest_entry(video, text if isinstance(text, str) else None, base, origin, locator, allow_outside))
    return entries


def _expand_user(path: Path) -> Path:
    """`~/x` and `~user/x` expand; a name that merely starts with `~` (`~draft.mp4`) stays a
    relative name instead of raising "Could not determine home directory"."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _manifest_entry(video, text, base: Path, origin: str, locator: str, allow_outside: bool) -> InputEntry:
    if not isinstance(video, str) or not video.strip():
        return InputEntry(locator, text, origin, "manifest entry has an empty or non-text video path")
    if "\x00" in video:
        return InputEntry(locator, text, origin, f"path {video!r} contains a NUL byte, which no file name can hold")
    candidate = _expand_user(Path(video))
    try:
        resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    except RuntimeError:  # pathlib reports a symlink loop as RuntimeError
        return InputEntry(locator, text, origin, f"cannot resolve path {video!r}: symlink loop")
    except (OSError, ValueError) as exc:
        return InputEntry(locator, text, origin, f"cannot resolve path {video!r}: {getattr(exc, 'strerror', None) or exc}")
    if not candidate.is_absolute() and not allow_outside and not resolved.is_relative_to(base):
        return InputEntry(
            locator, text, origin,
            f"path {video!r} escapes the manifest's folder (set allow_outside_paths to permit)",
        )
    return InputEntry(str(resolved), text, origin, locator=locator)
