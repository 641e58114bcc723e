"""The model layer, the motion scorer and the GPU benchmarks must import on a bare GPU box:
one with torch, transformers and opencv but none of the orchestration's dependencies
(dagster, duckdb, polars, ray, ...). benchmarks/gpu_box_check.sh relies on it; a stray
top-level import (the store package once pulled DuckDB into frame_files) breaks it there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Absent on the box; each would be a wheel to carry (or, for dagster, dozens of them).
ABSENT = ("dagster", "dagster_ray", "duckdb", "polars", "ray", "deltalake", "psycopg2", "faiss", "scenedetect",
          "upath", "imageio_ffmpeg", "ffmpeg")

MODULES = (
    "curation_assets.frames.files",
    "curation_assets.models.clip",
    "curation_assets.models.aesthetics",
    "curation_assets.models.ocr",
    "curation_assets.models.videoblip",
    "curation_assets.models.image_tensors",
    "curation_assets.scorers.video_pass",
    "curation_assets.scorers.flow_backends",
    "curation_assets.scorers.farneback_torch",
    "curation_assets.scorers.decoders",
    "curation_assets.scorers.torch_motion",
    "curation_assets.scorers.torch_pass",
    "gpu_benchmark",
    "motion_gpu_benchmark",
    "farneback_parity",
    "gpu_graph_benchmark",
)


def test_model_layer_imports_without_orchestration_dependencies():
    script = textwrap.dedent(f"""
        import importlib, sys
        absent = {ABSENT!r}

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in absent:
                    raise ImportError("not on a bare GPU box: " + name)
                return None

        sys.meta_path.insert(0, Absent())
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "benchmarks")!r}]
        for module in {MODULES!r}:
            importlib.import_module(module)
        from curation_assets.store.location import StoreLocation
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
