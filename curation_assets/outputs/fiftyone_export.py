"""`curation-assets export fiftyone`: the curated clips as a FiftyOne dataset.

One sample per clip that has a verdict (a long source split into clips is represented by
its clips): its file (the accelerated version when that is what the training set uses),
every declared score as a float field, the verdict as `status`, each reason and rule (and the
verdict) as tags, the caption and its source, and the lineage (source video, time span,
near-duplicate partner). Here, in the project's venv, the store is read and a spec written;
FiftyOne itself runs in its own venv (fiftyone_loader.py says why), found by `fiftyone_python`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from curation_assets import settings
from curation_assets.curation.rules import SPLIT, rule_name
from curation_assets.scores import all_scores

PYTHON_ENV = "CURATION_FIFTYONE_PYTHON"
LOCK_FILE = settings.PROJECT_ROOT / "requirements-fiftyone.lock"
LOADER = Path(__file__).with_name("fiftyone_loader.py")
CURATED = "curated_videos"
TRAINING_SET = "lora_training_set"


class ExportError(RuntimeError):
    """The export cannot run; the message is one line saying what to do."""


@dataclass
class ExportResult:
    name: str
    samples: int
    skipped: dict[str, int]
    loaded: dict  # what fiftyone_loader read back from FiftyOne's database
    database_dir: str | None
    python: str = "python"  # the FiftyOne venv's interpreter the dataset was loaded with

    def summary(self) -> str:
        tags = self.loaded.get("tags", {})
        verdicts = ", ".join(f"{t} {tags[t]}" for t in ("kept", "rejected", "failed") if t in tags)
        lines = [f"FiftyOne dataset {self.name!r}: {self.loaded.get('samples')} samples ({verdicts}), "
                 f"{len(self.loaded.get('fields', []))} fields, persistent"]
        lines += [f"  not exported: {n} {why}" for why, n in self.skipped.items() if n]
        where = f"FIFTYONE_DATABASE_DIR={shlex.quote(self.database_dir)} " if self.database_dir else ""
        lines.append(f"  open it in the FiftyOne App: {where}{shlex.quote(self.python)} -c \"import fiftyone as fo; "
                     f"fo.launch_app(fo.load_dataset('{self.name}')).wait()\"")
        return "\n".join(lines)


def default_venv() -> Path:
    """The venv scripts/setup_fiftyone_venv.sh builds: keyed by the lock file's hash, like the
    project's dependency venv (the same `sha256sum | cut -c1-16`)."""
    if os.environ.get("CURATION_FIFTYONE_VENV"):
        return Path(os.environ["CURATION_FIFTYONE_VENV"])
    key = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "curation_assets" / f"fiftyone-{key}"


def fiftyone_python(explicit: str | None = None) -> str:
    """The interpreter that has fiftyone: --fiftyone-python, $CURATION_FIFTYONE_PYTHON, the
    venv setup_fiftyone_venv.sh builds, or this interpreter if fiftyone imports here."""
    for where, candidate in (("--fiftyone-python", explicit), (f"${PYTHON_ENV}", os.environ.get(PYTHON_ENV))):
        if candidate:
            if not Path(candidate).is_file():
                raise ExportError(f"{where}: no python at {candidate}")
            return candidate
    built = default_venv() / "bin" / "python"
    if built.is_file() and (default_venv() / ".complete").is_file():
        return str(built)
    import importlib.util

    if importlib.util.find_spec("fiftyone") is not None:
        return sys.executable
    raise ExportError("FiftyOne is not installed: run scripts/setup_fiftyone_venv.sh (a venv of its own, ~1.2 GB, "
                      "about 2 minutes: fiftyone pins opencv<5 and starlette<1.4, which this project's venv cannot "
                      f"take), or point {PYTHON_ENV} at a python that has fiftyone")


def field_types() -> dict[str, str]:
    fields = {"video_id": "string", "shard": "string", "status": "string", "reasons": "list<string>",
              "rules": "list<string>", "caption": "string", "caption_source": "string", "model_profile": "string",
              "clip_path": "string", "source_path": "string", "start_s": "float", "end_s": "float",
              "near_duplicate_of": "string", "in_training_set": "bool", "accelerated": "bool"}
    for decl in all_scores():
        for column in decl.value_columns:
            fields[column] = "float"  # pixel sizes too: one numeric type filters alike in the App
    return fields


def samples(store) -> tuple[list[dict], dict[str, int]]:
    """The spec's samples, and how many rows were left out (and why)."""
    tables = store.tables()
    if CURATED not in tables:
        raise ExportError(f"no verdicts in {store.location.url} (no curated_videos table): run `curation-assets run` first")
    present = store.query(f"select * from {CURATED} limit 0").columns
    wanted = ["video_id", "path", "shard", "status", "reasons", "caption", "caption_source", "model_profile",
              "source_path", "start_s", "end_s", "near_duplicate_of", *(c for d in all_scores() for c in d.value_columns)]
    rows = store.query(f'select {", ".join(chr(34) + c + chr(34) for c in wanted if c in present)} from {CURATED} '
                       "order by shard, path")
    training: dict[str, dict] = {}
    if TRAINING_SET in tables:
        for r in store.query(f"select video_id, file_path, accelerated from {TRAINING_SET}").iter_rows(named=True):
            training[r["video_id"]] = r
    out, skipped = [], {"split sources (their clips are exported)": 0}
    scores = [c for d in all_scores() for c in d.value_columns]
    for row in rows.iter_rows(named=True):
        if row["status"] == SPLIT:
            skipped["split sources (their clips are exported)"] += 1
            continue
        chosen = training.get(row.get("video_id")) if row["status"] == "kept" else None
        clip = store.location.local_file(row["path"])  # a shot clip's key; a registered file's own path
        filepath = chosen["file_path"] if chosen and chosen.get("file_path") else clip
        if "://" in filepath:
            filepath = store.location.local_file(filepath)
        reasons = list(row.get("reasons") or [])
        rules = sorted({rule_name(r) for r in reasons}) if row["status"] == "rejected" else []
        fields = {"video_id": row.get("video_id"), "shard": row["shard"], "status": row["status"], "reasons": reasons,
                  "rules": rules, "caption": row.get("caption"), "caption_source": row.get("caption_source"),
                  "model_profile": row.get("model_profile"), "clip_path": clip,
                  "source_path": row.get("source_path"), "start_s": row.get("start_s"), "end_s": row.get("end_s"),
                  "near_duplicate_of": row.get("near_duplicate_of"), "in_training_set": chosen is not None,
                  "accelerated": bool(chosen and chosen.get("accelerated"))}
        for column in scores:
            value = row.get(column)
            fields[column] = None if value is None or value != value else float(value)
        tags = [row["status"], *rules]
        if row["status"] == "failed" and reasons:
            tags.append(reasons[0].split(":")[0])  # "unreadable", "motion", ...
        out.append({"filepath": os.path.abspath(filepath), "tags": tags, "fields": fields})
    return out, skipped


def export_fiftyone(data_dir: Path, name: str | None = None, python: str | None = None, database_dir: str | None = None,
                    report: Callable[[str], None] = print) -> ExportResult:
    from curation_assets.store import ScoreStore

    store = ScoreStore(Path(data_dir) / settings.DB_FILENAME)
    interpreter = fiftyone_python(python)
    name = name or f"curation-{Path(data_dir).resolve().name}"
    rows, skipped = samples(store)
    report(f"exporting {len(rows)} clips of {data_dir} to the FiftyOne dataset {name!r} (python: {interpreter})")
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)  # the FiftyOne venv's own packages only
    if database_dir:
        env["FIFTYONE_DATABASE_DIR"] = str(Path(database_dir).resolve())
    with tempfile.TemporaryDirectory(prefix="curation-fiftyone-") as tmp:
        spec = Path(tmp) / "spec.jsonl"
        header = {"name": name, "fields": field_types(),
                  "info": {"exported_from": str(Path(data_dir).resolve()), "store": store.location.url}}
        with spec.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        done = subprocess.run([interpreter, str(LOADER), str(spec)], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no error output"])[-1][:400]
        raise ExportError(f"FiftyOne could not load the dataset ({interpreter} exited {done.returncode}): {tail}")
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return ExportResult(name, len(rows), skipped, loaded, env.get("FIFTYONE_DATABASE_DIR"), interpreter)


def read_dataset(name: str, python: str | None = None, database_dir: str | None = None) -> dict:
    """What FiftyOne's database holds for `name` (fiftyone_loader.py --read)."""
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    if database_dir:
        env["FIFTYONE_DATABASE_DIR"] = str(Path(database_dir).resolve())
    done = subprocess.run([fiftyone_python(python), str(LOADER), "--read", name], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ExportError(f"reading {name!r} back failed: {(done.stderr.strip().splitlines() or [''])[-1][:400]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


__all__ = ["ExportError", "ExportResult", "export_fiftyone", "fiftyone_python", "read_dataset"]
