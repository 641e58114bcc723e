"""Motion backends (cpu | opencl | auto): resolution, the no-device failure, agreement with
the CPU path, and what the rows and the materialization record.

OpenCV reads OPENCV_OPENCL_DEVICE once per process, at its first OpenCL call, so every
OpenCL case runs in a fresh Python process with the selector set: ":CPU:" is Debian's pocl
(an OpenCL device on the CPU; scripts/install_opencl.sh installs it, CI runs it), "disabled"
is a machine without a device. Tests needing pocl skip, saying so, where it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import AssetKey

from curation_assets.orchestration.recipe import code_version
from curation_assets.samples import synthetic
from curation_assets.scorers import flow_backends
from curation_assets.scorers.flow_backends import BackendError, nvidia_icd_hint, resolve_backend, split_motion_row_params
from curation_assets.scorers.motion import MotionAccumulator, MotionParams
from curation_assets.scorers.video_pass import motion_score

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "real_videos"
BIN = Path(sys.executable).parent
POCL = ":CPU:"
# The real-clip agreement test's device: pocl here and in CI; ":GPU:" on a GPU machine
REAL_CLIP_DEVICE = os.environ.get("CURATION_TEST_OPENCL_DEVICE", POCL)
W, H, FPS = 160, 128, 24
# The 1e-3 target holds on these smooth synthetic pans; on real footage OpenCV's float32
# OpenCL kernels drift further from the CPU's float64 path (README, "Motion on a GPU").
SYNTHETIC_REL = 1e-3
REAL_REL = 1e-2


def _python(code: str, selector: str, timeout: int = 600, **extra_env) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENCV_OPENCL_DEVICE=selector, HF_HUB_OFFLINE="1", **extra_env)
    env.setdefault("PYTHONPATH", str(REPO_ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _json_out(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("backend_clips")
    return {
        "static": synthetic.write_static(folder / "static.mp4", width=W, height=H, fps=FPS, n_frames=24),
        "one_px": synthetic.write_moving_pattern(folder / "one_px.mp4", width=W, height=H, fps=FPS, n_frames=24,
                                                 shift_px_per_frame=(1, 0)),
        "quarter_px": synthetic.write_moving_pattern(folder / "quarter_px.mp4", width=W, height=H, fps=FPS,
                                                     n_frames=48, shift_px_per_frame=(0.25, 0)),
        "diagonal": synthetic.write_moving_pattern(folder / "diagonal.mp4", width=W, height=H, fps=FPS, n_frames=48,
                                                   shift_px_per_frame=(2, 1)),
    }


SCORE_IN_SUBPROCESS = """
    import json, sys
    from curation_assets.scorers.flow_backends import BackendError, resolve_backend
    from curation_assets.scorers.motion import MotionParams
    from curation_assets.scorers.video_pass import motion_score

    out = {"resolved": {}}
    for name in ("auto", "cpu", "opencl"):
        try:
            out["resolved"][name] = resolve_backend(name).as_dict()
        except BackendError as exc:
            out["resolved"][name] = {"error": str(exc)}
    out["scores"] = {}
    if "error" not in out["resolved"]["opencl"]:
        from curation_assets.scorers.motion import MotionAccumulator

        acc = MotionAccumulator(fps=24, total_frames=48, params=MotionParams(), flow_threads=1, backend="opencl")
        out["in_flight"] = {"max_pending": acc.max_pending, "pool": acc._pool is not None}
        for name, path in json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}").items():
            r = motion_score(path, MotionParams(), flow_threads=1, backend="opencl")
            out["scores"][name] = {"score": r.motion_score, "pairs": r.pair_scores, "error": r.error}
    print(json.dumps(out))
"""


def _score_with(selector: str, clips: dict[str, Path] | None = None, timeout: int = 600) -> dict:
    code = SCORE_IN_SUBPROCESS.replace('sys.argv[1] if len(sys.argv) > 1 else "{}"',
                                       repr(json.dumps({k: str(v) for k, v in (clips or {}).items()})))
    return _json_out(_python(code, selector, timeout=timeout))


@pytest.fixture(scope="module")
def pocl(clips) -> dict:
    """Resolution and synthetic-clip scores in a process whose OpenCV uses pocl."""
    out = _score_with(POCL, clips)
    if "error" in out["resolved"]["opencl"]:
        pytest.skip("no OpenCL device for OPENCV_OPENCL_DEVICE=':CPU:' (install pocl: scripts/install_opencl.sh): "
                    + out["resolved"]["opencl"]["error"])
    return out


# --------------------------------------------------------------------------- resolution


def test_resolution_on_pocl_never_auto_picks_a_cpu_device(pocl):
    resolved = pocl["resolved"]
    assert resolved["cpu"] == {"backend": "cpu", "device": flow_backends.cpu_name()}
    assert resolved["opencl"]["backend"] == "opencl"
    assert resolved["opencl"]["device"] and resolved["opencl"]["device"] != "cpu"
    # pocl is a CPU OpenCL device: correctness only, slower than the CPU path, so auto stays on cpu
    assert resolved["auto"] == resolved["cpu"]
    # a process with one core still keeps pairs in flight on the device while it decodes
    assert pocl["in_flight"] == {"max_pending": 2 * flow_backends.OPENCL_MIN_THREADS, "pool": True}


def test_opencl_without_a_device_fails_in_one_line_and_auto_falls_back():
    out = _score_with("disabled")
    assert out["resolved"]["auto"]["backend"] == "cpu"
    assert out["resolved"]["cpu"]["backend"] == "cpu"
    message = out["resolved"]["opencl"]["error"]
    assert "\n" not in message
    assert "needs an OpenCL device but OpenCV has none" in message
    assert "OPENCV_OPENCL_DEVICE='disabled'" in message
    assert 'OPENCV_OPENCL_DEVICE=":GPU:"' in message
    assert "echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd" in message
    assert "backend: cpu" in message


def test_cpu_backend_and_bad_names_in_process():
    assert resolve_backend("cpu").backend == "cpu"
    with pytest.raises(BackendError, match="unknown motion backend 'cuda'"):
        resolve_backend("cuda")
    with pytest.raises(ValueError, match="backend must be 'cpu' or 'opencl'"):
        MotionAccumulator(fps=24, total_frames=10, params=MotionParams(), backend="auto")


def test_torch_backend_resolution_in_process(monkeypatch):
    """torch runs where torch has a device: CUDA when it sees one, else the CPU (for checks);
    auto takes it only on CUDA. CURATION_DEVICE naming a device torch lacks fails in one line."""
    import torch

    resolve_backend.cache_clear()
    monkeypatch.delenv(flow_backends.TORCH_DEVICE_ENV, raising=False)
    try:
        r = resolve_backend("torch")
        expected = "cuda" if torch.cuda.is_available() else "cpu"
        assert r.backend == "torch" and r.torch_device == expected and r.as_dict() == {"backend": "torch",
                                                                                         "device": r.device}
        if not torch.cuda.is_available():
            assert r.device == flow_backends.cpu_name()
            assert resolve_backend("auto").backend in ("cpu", "opencl")  # never torch on the CPU
            resolve_backend.cache_clear()
            monkeypatch.setenv(flow_backends.TORCH_DEVICE_ENV, "cuda")
            with pytest.raises(BackendError, match="torch sees no CUDA device") as exc:
                resolve_backend("torch")
            assert "\n" not in str(exc.value) and "backend: cpu" in str(exc.value)
        resolve_backend.cache_clear()
        monkeypatch.setenv(flow_backends.TORCH_DEVICE_ENV, "tpu:9")
        with pytest.raises(BackendError, match="is not a torch device"):
            resolve_backend("torch")
    finally:
        resolve_backend.cache_clear()


def test_nvidia_icd_hint(tmp_path):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "pocl.icd").write_text("libpocl.so.2\n")
    hint = nvidia_icd_hint(vendors, library_present=True)
    assert hint == (f"libnvidia-opencl.so.1 is installed but not registered in {vendors}: run "
                    "`echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd` (as root), then set "
                    'OPENCV_OPENCL_DEVICE=":GPU:"')
    assert nvidia_icd_hint(vendors, library_present=False) is None  # no driver: nothing to register
    (vendors / "nvidia.icd").write_text("libnvidia-opencl.so.1\n")
    assert nvidia_icd_hint(vendors, library_present=True) is None  # registered already


def test_backend_is_not_part_of_the_score_version():
    """Switching backend must not mark every shard stale (rows record what ran)."""
    base = code_version("motion", {})
    assert code_version("motion", {"motion": {"backend": "opencl"}}) == base
    assert code_version("motion", {"motion": {"backend": "auto"}}) == base
    assert code_version("motion", {"motion": {"backend": "torch", "decoder": "nvdec"}}) == base
    assert code_version("motion", {"motion": {"sampling_fps": 3}}) != base


def test_row_params_split():
    params = {**MotionParams().as_dict(), "backend": "opencl", "device": "NVIDIA H200"}
    rest, backend = split_motion_row_params(params)
    assert MotionParams(**rest) == MotionParams() and backend == "opencl"
    torch_row = {**MotionParams().as_dict(), "backend": "torch", "device": "NVIDIA H200", "decoder": "pyav",
                 "decoder_fallback": "nvdec failed, decoded with pyav: ...", "flow_fallback": "..."}
    rest, backend = split_motion_row_params(torch_row)
    assert MotionParams(**rest) == MotionParams() and backend == "torch"
    assert split_motion_row_params(MotionParams().as_dict()) == (MotionParams().as_dict(), "cpu")  # older rows


# --------------------------------------------------------------------------- agreement


def test_opencl_agrees_with_cpu_on_synthetic_clips(pocl, clips):
    device_differs = False
    for name, path in clips.items():
        cpu = motion_score(path, MotionParams(), flow_threads=1, backend="cpu")
        ocl = pocl["scores"][name]
        assert ocl["error"] is None and cpu.error is None
        assert len(ocl["pairs"]) == len(cpu.pair_scores)
        if name == "static":  # ~1e-3 px of codec noise: relative error is meaningless there
            assert ocl["score"] == pytest.approx(cpu.motion_score, abs=1e-4)
        else:
            assert ocl["score"] == pytest.approx(cpu.motion_score, rel=SYNTHETIC_REL), name
        device_differs |= ocl["pairs"] != cpu.pair_scores
    # float32 kernels never reproduce the float64 CPU path bit for bit: equal pairs everywhere
    # would mean OpenCV quietly ran the CPU code
    assert device_differs


@pytest.mark.slow
def test_opencl_agrees_with_cpu_on_real_clips():
    paths = {name: REAL_VIDEOS / f"{name}.mp4" for name in ("video1", "video2", "video3", "video4", "video5")}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip(f"real clips not available at {REAL_VIDEOS}")
    out = _score_with(REAL_CLIP_DEVICE, paths, timeout=1800)
    if "error" in out["resolved"]["opencl"]:
        pytest.skip(f"no OpenCL device for OPENCV_OPENCL_DEVICE={REAL_CLIP_DEVICE!r}: {out['resolved']['opencl']['error']}")
    for name, path in paths.items():
        cpu = motion_score(path, MotionParams())
        ocl = out["scores"][name]
        assert ocl["error"] is None
        assert ocl["score"] == pytest.approx(cpu.motion_score, rel=REAL_REL), name


# --------------------------------------------------------------------------- the graph and the CLI

RUN_SHARD = """
    import json
    from pathlib import Path
    from dagster import AssetKey, instance_for_test
    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
    from curation_assets.orchestration.partitions import shard_partitions
    from curation_assets.scorers import video_pass
    from curation_assets.store import ScoreStore

    clip, data, backend = {clip!r}, Path({data!r}), {backend!r}
    store = ScoreStore(data / "curation.duckdb")
    register(store, discover(clip), shard_size=10)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
        job = build_definitions(recipe={{"motion": {{"backend": backend}}}}, data_dir=str(data)).resolve_job_def(
            CURATE_SHARDS_JOB)
        result = job.execute_in_process(partition_key="shard-00000", instance=instance, raise_on_error=False,
            asset_selection=[AssetKey(a) for a in ("raw_videos", "motion", "sampled_frames")])
        meta = {{}}
        for m in result.asset_materializations_for_node("video_pass"):
            meta.update({{k: v.value for k, v in m.metadata.items() if k.startswith("motion_")}})
        failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    rows = store.read_shard("motion", "shard-00000").to_dicts() if result.success else []
    print(json.dumps({{"success": result.success, "meta": meta, "rows": rows, "failures": failures,
                      "passes": video_pass.decode_passes()}}))
"""


def _run_shard(selector: str, clip: Path, data: Path, backend: str) -> dict:
    env = {"CURATION_WORKERS": "1", "CURATION_MODEL_PROFILE": "tiny", "DAGSTER_DISABLE_TELEMETRY": "1"}
    return _json_out(_python(RUN_SHARD.format(clip=str(clip), data=str(data), backend=backend), selector, **env))


def test_rows_and_metadata_record_backend_and_device(pocl, clips, tmp_path):
    out = _run_shard(POCL, clips["one_px"], tmp_path / "data", "opencl")
    assert out["success"], out["failures"]
    device = pocl["resolved"]["opencl"]["device"]
    assert out["meta"]["motion_backend"] == "opencl" and out["meta"]["motion_device"] == device
    (row,) = out["rows"]
    params = json.loads(row["params"])
    assert params["backend"] == "opencl" and params["device"] == device
    assert params["frame_selection"] == "datajuicer"
    assert row["motion_score"] == pytest.approx(pocl["scores"]["one_px"]["score"], rel=1e-9)


def test_graph_records_cpu_and_fails_opencl_before_decoding(clips, tmp_path):
    """In this process (no selector: OpenCV looks for a GPU only): the default backend records
    cpu and this CPU's name; a requested opencl fails the step before any video is decoded."""
    from dagster import instance_for_test

    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.partitions import shard_partitions
    from curation_assets.scorers import video_pass
    from curation_assets.store import ScoreStore

    if flow_backends.opencv_device() is not None:
        pytest.skip("this process's OpenCV has an OpenCL device; the no-device case runs in a subprocess elsewhere")
    results = {}
    for backend in ("cpu", "opencl"):
        store = ScoreStore(tmp_path / backend / "curation.duckdb")
        register(store, discover(clips["one_px"]), shard_size=10)
        with instance_for_test() as instance:
            instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
            job = build_definitions(recipe={"motion": {"backend": backend}}, data_dir=str(tmp_path / backend))
            passes = video_pass.decode_passes()
            result = job.resolve_job_def("curate_shards").execute_in_process(
                partition_key="shard-00000", instance=instance, raise_on_error=False,
                asset_selection=[AssetKey(a) for a in ("raw_videos", "motion", "sampled_frames")])
            results[backend] = (result, video_pass.decode_passes() - passes, store)
    cpu, passes, store = results["cpu"]
    assert cpu.success and passes == 1
    meta = {k: v.value for m in cpu.asset_materializations_for_node("video_pass") for k, v in m.metadata.items()}
    assert meta["motion_backend"] == "cpu" and meta["motion_device"] == flow_backends.cpu_name()
    (row,) = store.read_shard("motion", "shard-00000").to_dicts()
    assert json.loads(row["params"])["backend"] == "cpu"
    assert json.loads(row["params"])["device"] == flow_backends.cpu_name()
    assert row["motion_score"] == motion_score(clips["one_px"], MotionParams()).motion_score

    failed, passes, _ = results["opencl"]
    assert not failed.success and passes == 0  # nothing was decoded
    errors = [e.step_failure_data.error.message for e in failed.all_events if e.is_step_failure]
    assert any("needs an OpenCL device but OpenCV has none" in e for e in errors), errors


def test_cli_run_stops_at_start_up_and_devices_reports(clips, tmp_path):
    recipe = tmp_path / "opencl.yaml"
    recipe.write_text("motion:\n  backend: opencl\n")
    env = dict(os.environ, OPENCV_OPENCL_DEVICE="disabled", DAGSTER_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    env.pop("CURATION_RECIPE", None)
    run = subprocess.run([str(BIN / "curation-assets"), "run", "--input", str(clips["one_px"]), "--config", str(recipe),
                          "--data-dir", str(tmp_path / "data")], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: motion backend 'opencl' needs an OpenCL device")
    assert not (tmp_path / "data" / "curation.duckdb").exists()  # stopped before registering anything

    devices = subprocess.run([str(BIN / "curation-assets"), "devices", "--config", str(recipe)], cwd=REPO_ROOT,
                             env=dict(env, OPENCV_OPENCL_DEVICE=POCL), capture_output=True, text=True, timeout=300)
    out = devices.stdout
    if "motion backend opencl: runs opencl" not in out:
        pytest.skip("no pocl device (scripts/install_opencl.sh): " + out + devices.stderr)
    assert devices.returncode == 0, out + devices.stderr
    assert "OpenCL devices the ICD loader offers" in out and "[CPU]" in out
    assert "OpenCV's OpenCL device (OPENCV_OPENCL_DEVICE=':CPU:')" in out
    assert "motion backend auto: runs cpu" in out and "never chosen by auto" in out
    assert f"{recipe}: motion backend opencl runs opencl on" in out
    assert "echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd" in out

    none = subprocess.run([str(BIN / "curation-assets"), "devices", "--config", str(recipe)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert none.returncode == 2 and "motion backend opencl: cannot run here" in none.stdout
