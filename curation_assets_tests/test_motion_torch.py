"""The torch motion backend end to end, with torch on the CPU (CI has no GPU; the same code
runs on CUDA): scores against the CPU exact path, batching across videos, memory budgets and
their CPU fallback, the decoders (PyAV, and NVDEC's fallback where it cannot run), and what
the rows and the materialization record."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from dagster import AssetKey

from curation_assets.samples import synthetic
from curation_assets.scorers import decoders, flow_backends
from curation_assets.scorers.decoders import DecoderError, decode_video, plan_decode, resolve_decoder
from curation_assets.scorers.frame_sampling import FrameSamplingParams
from curation_assets.scorers.motion import MotionParams
from curation_assets.scorers.previews import PreviewParams
from curation_assets.scorers.torch_motion import BYTES_PER_PAIR_PIXEL, Sequence, pairs_per_batch, score_sequences
from curation_assets.scorers.torch_pass import TorchPassOptions, run_torch_pass
from curation_assets.scorers.video_pass import PassJob, motion_score, run_pass_job, video_pass

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "real_videos"
REAL_CLIPS = ("video1", "video2", "video3", "video4", "video5")
W, H, FPS = 160, 128, 24
# torch follows OpenCV's CPU arithmetic; what is left is the last bit of a few pyramid pixels
SYNTHETIC_REL = 1e-5
REAL_REL = 1e-3  # the bar per video; measured ~1e-7 (docs/gpu.md)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("torch_clips")
    return {
        "static": synthetic.write_static(folder / "static.mp4", width=W, height=H, fps=FPS, n_frames=24),
        "diagonal": synthetic.write_moving_pattern(folder / "diagonal.mp4", width=W, height=H, fps=FPS, n_frames=48,
                                                   shift_px_per_frame=(2, 1)),
        "quarter_px": synthetic.write_moving_pattern(folder / "quarter_px.mp4", width=W, height=H, fps=FPS,
                                                     n_frames=48, shift_px_per_frame=(0.25, 0)),
        "wide": synthetic.write_moving_pattern(folder / "wide.mp4", width=192, height=96, fps=FPS, n_frames=36,
                                               shift_px_per_frame=(-1, 2)),
        "single": synthetic.write_single_frame(folder / "single.mp4", width=W, height=H, fps=FPS),
    }


def _close(a: float, b: float, rel: float) -> bool:
    return a == pytest.approx(b, rel=rel, abs=1e-6)


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize("params", [
    MotionParams(),
    MotionParams(frame_selection="stride", sampling_fps=6),
    MotionParams(size=64, scale_to_source=True),
    MotionParams(skip_levels=1),
    MotionParams(max_size=96, relative=True),
], ids=["exact", "stride-6fps", "size64-to-source", "skip1", "max96-relative"])
def test_torch_scores_equal_the_cpu_path(clips, params):
    for name in ("static", "diagonal", "quarter_px", "wide"):
        cpu = motion_score(clips[name], params, flow_threads=1, backend="cpu")
        ours = motion_score(clips[name], params, backend="torch")
        assert ours.error is None and ours.frame_indices == cpu.frame_indices
        assert len(ours.pair_scores) == len(cpu.pair_scores)
        assert _close(ours.motion_score, cpu.motion_score, SYNTHETIC_REL), (name, ours.motion_score, cpu.motion_score)
        for a, b in zip(ours.pair_scores, cpu.pair_scores):
            assert _close(a, b, 1e-4), name


def test_single_frame_clip_has_no_score(clips):
    r = motion_score(clips["single"], MotionParams(), backend="torch")
    assert r.motion_score == -1.0 and r.pair_scores == [] and "no frame pair" in r.error


# --------------------------------------------------------------------------- batching


def _sequences(clips) -> list[Sequence]:
    seqs = []
    for name in ("diagonal", "wide", "quarter_px"):
        v = decoders.decode_with_pyav(clips[name], MotionParams(), FrameSamplingParams(num_frames=0))
        seqs.append(Sequence(v.grays, v.source_hw))
    return seqs


def test_batches_of_any_size_give_the_same_scores(clips):
    seqs = _sequences(clips)
    whole = score_sequences(seqs, MotionParams())
    # one pair per call, and a budget that cuts videos into chunks across calls
    one = score_sequences(seqs, MotionParams(), max_pairs=1)
    per_pair_bytes = BYTES_PER_PAIR_PIXEL * W * H
    chunked = score_sequences(seqs, MotionParams(), free_bytes=3 * per_pair_bytes, memory_fraction=1.0)
    for a, b, c in zip(whole, one, chunked):
        assert a.pair_scores == b.pair_scores == c.pair_scores
        assert a.fallback is None and a.backend == "torch" and a.cpu_pairs == 0


def test_pairs_per_batch_from_memory():
    per_pair = BYTES_PER_PAIR_PIXEL * 360 * 640
    assert pairs_per_batch(360, 640, "cuda", memory_fraction=0.5, free_bytes=10 * per_pair) == 5
    assert pairs_per_batch(360, 640, "cuda", memory_fraction=0.5, free_bytes=10 ** 15) == 256  # capped
    assert pairs_per_batch(360, 640, "cuda", memory_fraction=0.5, free_bytes=per_pair) == 0  # not even one
    assert pairs_per_batch(360, 640, "cpu") >= 1


def test_a_frame_size_that_does_not_fit_runs_on_the_cpu_and_says_so(clips):
    seqs = _sequences(clips)
    reference = score_sequences(seqs, MotionParams())
    # a budget below one pair of either frame size
    starved = score_sequences(seqs, MotionParams(), free_bytes=BYTES_PER_PAIR_PIXEL * 100, memory_fraction=1.0)
    for ref, got in zip(reference, starved):
        assert got.backend == "cpu" and got.cpu_pairs == len(got.pair_scores)
        assert "flow on the CPU (OpenCV)" in got.fallback and "MiB" in got.fallback
        assert got.pair_scores == pytest.approx(ref.pair_scores, rel=1e-4, abs=1e-6)


def test_out_of_memory_splits_the_batch_then_falls_back_per_pair(clips):
    """A device that runs out of memory above a batch size: the batch is halved until it fits;
    a single pair that does not fit is scored by OpenCV. (torch on the CPU never runs out, so
    the flow stands in for a device with less memory than the estimate assumed.)"""
    from curation_assets.scorers.farneback_torch import farneback_pairs

    seqs = _sequences(clips)
    reference = score_sequences(seqs, MotionParams())
    calls = []

    def small_device(frames, pairs, settings, limit=2):
        calls.append(len(pairs))
        if len(pairs) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return farneback_pairs(frames, pairs, settings)

    got = score_sequences(seqs, MotionParams(), flow=small_device)
    assert max(calls) > 2 and min(calls) <= 2  # tried whole, then halved until it fit
    assert [g.pair_scores for g in got] == [r.pair_scores for r in reference]
    assert all(g.fallback is None for g in got)

    def no_room(frames, pairs, settings):
        raise torch.OutOfMemoryError("CUDA out of memory")

    got = score_sequences(seqs[:1], MotionParams(), flow=no_room)[0]
    assert got.backend == "cpu" and "ran out of memory" in got.fallback
    assert got.pair_scores == pytest.approx(reference[0].pair_scores, rel=1e-4, abs=1e-6)


# --------------------------------------------------------------------------- decoders


@pytest.mark.parametrize("method", ["uniform", "uniform_round", "keyframes"])
@pytest.mark.parametrize("selection", ["datajuicer", "stride"])
def test_planned_frames_equal_the_sequential_decode(clips, method, selection):
    """NVDEC decodes the frames planned from the packets: the same as PyAV's streaming picks."""
    params, sampling = MotionParams(frame_selection=selection), FrameSamplingParams(method=method, num_frames=3)
    for name in ("diagonal", "wide", "single"):
        plan = plan_decode(clips[name], params, sampling)
        streamed = decoders.decode_with_pyav(clips[name], params, sampling)
        assert plan.motion_indices == streamed.motion_indices, name
        assert plan.frame_indices == streamed.frame_indices, name
        assert plan.frame_timestamps == streamed.frame_timestamps, name
        assert plan.frames_decoded == streamed.frames_decoded, name


def test_decoder_resolution():
    assert resolve_decoder("pyav", "torch", "cuda") == "pyav"
    assert resolve_decoder("auto", "cpu") == "pyav"
    assert resolve_decoder("auto", "torch", "cpu") == "pyav"
    with pytest.raises(DecoderError, match="unknown motion decoder 'gpu'"):
        resolve_decoder("gpu", "torch", "cuda")
    with pytest.raises(DecoderError, match="backend: torch") as exc:
        resolve_decoder("nvdec", "cpu")
    assert "\n" not in str(exc.value)
    usable, why = decoders.nvdec_status()
    if not usable:  # this machine: no CUDA (or no PyNvVideoCodec): one line saying so
        with pytest.raises(DecoderError, match="cannot run here") as exc:
            resolve_decoder("nvdec", "torch", "cuda")
        assert why in str(exc.value) and "decoder: pyav" in str(exc.value)


def test_nvdec_that_cannot_run_falls_back_per_video(clips):
    """Where the GPU decoder cannot open (here: no CUDA, no NVDEC), each video is decoded with
    PyAV, its reason kept, and nothing else changes."""
    if decoders.nvdec_status()[0]:
        pytest.skip("NVDEC works on this machine")
    params, sampling = MotionParams(), FrameSamplingParams()
    got = decode_video(clips["diagonal"], params, sampling, decoder="nvdec", device="cuda")
    ref = decode_video(clips["diagonal"], params, sampling, decoder="pyav")
    assert got.decoder == "pyav" and got.fallback.startswith("nvdec failed, decoded with pyav:")
    assert ref.fallback is None and got.motion_indices == ref.motion_indices and got.frame_indices == ref.frame_indices
    assert all(np.array_equal(a, b) for a, b in zip(got.grays, ref.grays))


class PyAVServedDecoder:
    """Stands in for PyNvVideoCodec's SimpleDecoder, which cannot run without an NVIDIA GPU:
    it serves PyAV's decoded frames by index, as RGB (NVDEC's own conversion, nvdec-gpu) or as
    NV12 surfaces 8 rows taller than the picture (its native output, nvdec), so everything
    around the decoder call (the plan, the chunked decode, the NV12 repacking and swscale
    conversion, the gray conversion, the sampled frames) is checked here."""

    PAD = 8  # surface rows below the picture (decoders align the height)

    def __init__(self, path, rgb):
        import av

        with av.open(str(path)) as container:
            decoded = list(container.decode(video=0))
        self.height, self.width = decoded[0].height, decoded[0].width
        self.frames = [f.to_ndarray(format="rgb24") if rgb else self._nv12(f) for f in decoded]
        self.calls = []

    def _nv12(self, frame):
        h, w = self.height, self.width
        yuv = frame.to_ndarray(format="yuv420p")
        u = yuv[h:h + h // 4].reshape(h // 2, w // 2)
        v = yuv[h + h // 4:].reshape(h // 2, w // 2)
        luma = np.vstack([yuv[:h], np.full((self.PAD, w), 77, np.uint8)])
        chroma = np.vstack([np.stack([u, v], -1).reshape(h // 2, w), np.full((self.PAD // 2, w), 200, np.uint8)])
        return np.vstack([luma, chroma])

    def get_stream_metadata(self):
        return SimpleNamespace(height=self.height, width=self.width)

    def __len__(self):
        return len(self.frames)

    def get_batch_frames_by_index(self, indices):
        self.calls.append(list(indices))
        return [self.frames[i] for i in indices]


@pytest.mark.parametrize("decoder", ["nvdec", "nvdec-gpu"])
@pytest.mark.parametrize("params", [MotionParams(), MotionParams(size=64, scale_to_source=True)], ids=["exact", "size64"])
def test_nvdec_path_around_the_decoder_equals_pyav(clips, monkeypatch, params, decoder):
    served = {}

    def serve(path, gpu_id, rgb=False):
        assert rgb == (decoder == "nvdec-gpu")
        served[path] = PyAVServedDecoder(path, rgb)
        return served[path]

    monkeypatch.setattr(decoders, "_nvdec_decoder", serve)
    monkeypatch.setattr(decoders, "NVDEC_CHUNK", 5)
    sampling, preview = FrameSamplingParams(), PreviewParams()
    for name in ("diagonal", "wide"):
        got = decoders.decode_with_nvdec(clips[name], params, sampling, None, None, "cpu",
                                         colour_on_gpu=decoder == "nvdec-gpu", preview=preview)
        ref = decoders.decode_with_pyav(clips[name], params, sampling, preview=preview)
        assert got.decoder == decoder and got.motion_indices == ref.motion_indices
        assert got.frame_indices == ref.frame_indices and got.frame_timestamps == ref.frame_timestamps
        assert got.source_hw == ref.source_hw and got.frames_decoded == ref.frames_decoded
        assert torch.equal(got.grays, torch.from_numpy(np.stack(ref.grays)))  # OpenCV's gray, bit for bit
        assert all(np.array_equal(a, b) for a, b in zip(got.frames, ref.frames))
        calls = served[str(clips[name])].calls
        previews = {i for i, _ in ref.preview} if decoder == "nvdec" else set()
        assert max(len(c) for c in calls) <= 5 and sorted(i for c in calls for i in c) == sorted(
            set(ref.motion_indices) | set(ref.frame_indices) | previews)
        if decoder == "nvdec":  # the gallery's preview: the same frames, scaled by the same swscale call
            assert ref.preview and [i for i, _ in got.preview] == [i for i, _ in ref.preview]
            assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got.preview, ref.preview))
            assert got.fps == ref.fps
        else:  # NVDEC's RGB stays on the GPU: no preview (the card shows a sampled frame)
            assert got.preview == []


# --------------------------------------------------------------------------- the pass


def _job(vid: str, path: Path, data: Path, motion=MotionParams(), sampling=FrameSamplingParams()) -> PassJob:
    return PassJob(vid, str(path), None, None, motion, sampling, str(data))


def test_torch_pass_equals_the_cpu_pass_and_survives_bad_videos(clips, tmp_path):
    bad = {"empty": synthetic.write_zero_byte(tmp_path / "empty.mp4"),
           "text": synthetic.write_text_as_mp4(tmp_path / "text.mp4"),
           "cut": synthetic.write_truncated(tmp_path / "cut.mp4", clips["diagonal"])}
    names = ["diagonal", "empty", "wide", "text", "quarter_px", "cut", "single", "static"]
    paths = {**clips, **bad}
    jobs_cpu = [_job(n, paths[n], tmp_path / "cpu") for n in names]
    jobs_torch = [_job(n, paths[n], tmp_path / "torch") for n in names]
    stats: dict = {}
    outs = run_torch_pass(jobs_torch, TorchPassOptions(device="cpu", decoder="pyav",
                                                       decode_threads=2, batch_pairs=6), stats)
    refs = [run_pass_job(j) for j in jobs_cpu]
    assert stats["flow_calls"] >= 2  # batches of about 6 pairs, across videos
    for name, out, ref in zip(names, outs, refs):
        assert bool(out["error"]) == bool(ref["error"]), (name, out["error"], ref["error"])
        if ref["error"]:
            continue
        m, r = out["motion"], ref["motion"]
        assert m.frame_indices == r.frame_indices and m.frames_decoded == r.frames_decoded, name
        assert (m.error is None) == (r.error is None), (name, m.error, r.error)
        if r.pair_scores:
            assert _close(m.motion_score, r.motion_score, SYNTHETIC_REL), name
        else:
            assert m.motion_score == r.motion_score == -1.0
        assert out["frame_indices"] == ref["frame_indices"] and out["timestamps"] == ref["timestamps"], name
        assert out["frame_paths"] == ref["frame_paths"], name  # keys relative to the store location
        for key in out["frame_paths"]:  # the same pixels saved
            assert (tmp_path / "torch" / key).read_bytes() == (tmp_path / "cpu" / key).read_bytes()
        assert out["decoder"] == "pyav" and out["decoder_fallback"] is None and out["flow_backend"] == "torch"
        assert out["seconds"] > 0


def test_decode_processes_give_what_threads_give_and_survive_bad_videos(clips, tmp_path):
    """decode_processes: the same rows as decode threads (grays come back pickled from the
    processes; frames saved there), a bad video still one video's error; the pool is kept for
    the next pass."""
    from curation_assets.scorers import torch_pass

    bad = synthetic.write_truncated(tmp_path / "cut.mp4", clips["diagonal"])
    names = ["diagonal", "cut", "wide", "static"]
    paths = {**clips, "cut": bad}
    outs = {}
    for how, processes in (("threads", 0), ("processes", 2)):
        jobs = [_job(n, paths[n], tmp_path / how) for n in names]
        outs[how] = run_torch_pass(jobs, TorchPassOptions(device="cpu", decoder="pyav", decode_threads=2,
                                                          decode_processes=processes, batch_pairs=6))
    assert torch_pass.decode_pool(2) is torch_pass.decode_pool(2)  # kept for the next pass
    for name, a, b in zip(names, outs["threads"], outs["processes"]):
        assert (a["error"] is None) == (b["error"] is None), (name, a["error"], b["error"])
        if a["error"]:
            continue
        assert b["motion"].pair_scores == a["motion"].pair_scores, name
        assert b["frame_paths"] == a["frame_paths"] and b["timestamps"] == a["timestamps"], name
        for key in b["frame_paths"]:
            assert (tmp_path / "processes" / key).read_bytes() == (tmp_path / "threads" / key).read_bytes()


def test_decode_processes_by_default_only_where_they_pay(monkeypatch):
    from curation_assets.scorers import torch_pass

    monkeypatch.delenv(torch_pass.DECODE_PROCESSES_ENV, raising=False)
    monkeypatch.setattr(torch_pass.os, "cpu_count", lambda: 32)
    assert TorchPassOptions(device="cuda", decoder="nvdec").processes() == 16  # the cores, up to 16
    assert TorchPassOptions(device="cuda:1", decoder="pyav").processes() == 16
    assert TorchPassOptions(device="cuda", decoder="nvdec-gpu").processes() == 0  # frames stay on the GPU
    assert TorchPassOptions(device="cpu").processes() == 0  # the flow takes the cores
    monkeypatch.setenv(torch_pass.DECODE_PROCESSES_ENV, "3")
    assert TorchPassOptions(device="cpu").processes() == 3


def test_flow_kernels_option():
    assert TorchPassOptions(device="cpu").flow_kernels() == "eager"  # Triton's kernels only on CUDA by default
    assert TorchPassOptions(device="cpu", compiled=True).flow_kernels() == "compiled"
    assert TorchPassOptions(device="cpu", kernels="triton").flow_kernels() == "triton"
    with pytest.raises(ValueError, match="flow kernels must be one of eager, compiled, triton, got 'fast'"):
        TorchPassOptions(device="cpu", kernels="fast").flow_kernels()


def test_torch_pass_records_nvdec_fallback_for_every_video(clips, tmp_path):
    if decoders.nvdec_status()[0]:
        pytest.skip("NVDEC works on this machine")
    jobs = [_job(n, clips[n], tmp_path) for n in ("diagonal", "wide")]
    outs = run_torch_pass(jobs, TorchPassOptions(device="cpu", decoder="nvdec", decode_threads=2))
    for out in outs:
        assert out["error"] is None and out["decoder"] == "pyav"
        assert out["decoder_fallback"].startswith("nvdec failed, decoded with pyav:")
        assert out["motion"].motion_score > 0


# --------------------------------------------------------------------------- the graph


def _materialize(clip: Path, tmp_path: Path, recipe: dict):
    from dagster import instance_for_test

    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.partitions import shard_partitions
    from curation_assets.scorers import video_pass as vp
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    register(store, discover(clip), shard_size=10)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
        job = build_definitions(recipe=recipe, data_dir=str(tmp_path))
        passes = vp.decode_passes()
        result = job.resolve_job_def("curate_shards").execute_in_process(
            partition_key="shard-00000", instance=instance, raise_on_error=False,
            asset_selection=[AssetKey(a) for a in ("raw_videos", "motion", "sampled_frames")])
        return result, vp.decode_passes() - passes, store


def test_graph_with_the_torch_backend_records_what_ran(clips, tmp_path):
    result, passes, store = _materialize(clips["diagonal"], tmp_path / "torch", {"motion": {"backend": "torch"}})
    assert result.success and passes == 1
    meta = {k: v.value for m in result.asset_materializations_for_node("video_pass") for k, v in m.metadata.items()}
    resolved = flow_backends.resolve_backend("torch")
    assert meta["motion_backend"] == "torch" and meta["motion_device"] == resolved.device
    assert meta["motion_decoder"] == "pyav" and meta["flow_calls"] == 1 and meta["decoder_fallbacks"] == 0
    (row,) = store.read_shard("motion", "shard-00000").to_dicts()
    params = json.loads(row["params"])
    assert params["backend"] == "torch" and params["device"] == resolved.device and params["decoder"] == "pyav"
    rest, backend = flow_backends.split_motion_row_params(params)
    assert MotionParams(**rest) == MotionParams() and backend == "torch"
    assert _close(row["motion_score"], motion_score(clips["diagonal"], MotionParams()).motion_score, SYNTHETIC_REL)
    (frames,) = store.read_shard("sampled_frames", "shard-00000").to_dicts()
    assert json.loads(frames["params"])["decoder"] == "pyav" and len(frames["frame_paths"]) == 3


def test_graph_refuses_nvdec_beside_the_cpu_backend_before_decoding(clips, tmp_path):
    result, passes, _ = _materialize(clips["diagonal"], tmp_path / "nv", {"motion": {"backend": "cpu", "decoder": "nvdec"}})
    assert not result.success and passes == 0
    errors = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    assert any("motion decoder 'nvdec'" in e and "backend: torch" in e for e in errors), errors


# --------------------------------------------------------------------------- real clips


@pytest.mark.slow
def test_torch_agrees_with_cpu_on_real_clips():
    """Every real clip's score within 1e-3 of the CPU exact path (data-juicer's), torch on the CPU."""
    paths = [REAL_VIDEOS / f"{name}.mp4" for name in REAL_CLIPS]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"real clips not available at {REAL_VIDEOS}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores one torch thread runs fastest (docs/gpu.md)
    try:
        for path in paths:
            video = decoders.decode_with_pyav(path, MotionParams(), FrameSamplingParams(num_frames=0))
            ours = score_sequences([Sequence(video.grays, video.source_hw)], MotionParams(), "cpu")[0]
            cpu = video_pass(path, MotionParams(), FrameSamplingParams(num_frames=0), flow_threads=2).motion
            assert ours.fallback is None and len(ours.pair_scores) == len(cpu.pair_scores)
            score = float(np.mean(ours.pair_scores))
            assert math.isclose(score, cpu.motion_score, rel_tol=REAL_REL), (path.name, score, cpu.motion_score)
    finally:
        torch.set_num_threads(threads)
