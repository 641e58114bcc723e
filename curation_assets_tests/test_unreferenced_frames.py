"""Leaving unreferenced H.264 pictures undecoded changes no pixel the scores read.

Every comparison runs the same video through the full sequential decode and through the
skipping one, and asks for the same frames, indices, timestamps, previews, counts and errors.
The videos are real encodes (PyAV's libx264 at preset veryfast makes B-frames nothing refers
to; ffmpeg remuxes them to MPEG-TS and Matroska, re-encodes without B-frames, and cuts one).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from curation_assets.samples import synthetic
from curation_assets.scorers import frame_stream, unreferenced_frames
from curation_assets.scorers.frame_sampling import FrameSamplingParams
from curation_assets.scorers.motion import MotionFrames, MotionParams
from curation_assets.scorers.previews import PreviewParams
from curation_assets.scorers.video_pass import video_pass

needs_x264 = pytest.mark.skipif("libx264" not in av.codecs_available, reason="needs libx264 (B-frames)")


def _decode(path, skip, sampling=FrameSamplingParams(), motion=MotionParams(), preview=PreviewParams()):
    return frame_stream.stream_frames(path, lambda fps, n: MotionFrames(fps, n, motion), sampling,
                                      preview=preview, skip_unreferenced=skip)


def _assert_same(full, skipping):
    (m_full, out_full), (m_skip, out_skip) = full, skipping
    assert m_skip.used_indices == m_full.used_indices
    assert len(m_skip.grays) == len(m_full.grays)
    for a, b in zip(m_full.grays, m_skip.grays):
        assert np.array_equal(a, b)
    assert out_skip.frame_indices == out_full.frame_indices
    assert out_skip.frame_timestamps == out_full.frame_timestamps
    for a, b in zip(out_full.frames, out_skip.frames):
        assert np.array_equal(a, b)
    assert [i for i, _ in out_skip.preview] == [i for i, _ in out_full.preview]
    for (_, a), (_, b) in zip(out_full.preview, out_skip.preview):
        assert np.array_equal(a, b)
    assert (out_skip.frames_decoded, out_skip.error, out_skip.fps) == (out_full.frames_decoded, out_full.error,
                                                                       out_full.fps)


def _ffmpeg(*args):
    import imageio_ffmpeg  # the project's ffmpeg (acceleration, shots)

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def b_frames(tmp_path_factory):
    """A 30 fps moving texture, 97 frames (an odd count: the last frame is a B-frame or not)."""
    folder = tmp_path_factory.mktemp("bframes")
    return synthetic.write_moving_pattern(folder / "moving.mp4", width=96, height=64, fps=30, n_frames=97,
                                          shift_px_per_frame=(1.5, 0.5))


@needs_x264
@pytest.mark.parametrize("sampling", [FrameSamplingParams(), FrameSamplingParams(num_frames=8),
                                      FrameSamplingParams(method="uniform_round", num_frames=5)],
                         ids=["uniform3", "uniform8", "uniform_round5"])
@pytest.mark.parametrize("selection", ["datajuicer", "stride"])
def test_skipping_gives_the_full_decodes_frames(b_frames, sampling, selection):
    motion = MotionParams(frame_selection=selection)
    full = _decode(b_frames, False, sampling, motion)
    skipping = _decode(b_frames, True, sampling, motion)
    _assert_same(full, skipping)
    assert full[1].frames_skipped == 0
    # most of the B-frames are neither picked nor referenced
    assert skipping[1].frames_skipped >= 20, skipping[1].frames_skipped


@needs_x264
def test_the_video_pass_scores_the_same_with_and_without_skipping(b_frames, monkeypatch):
    monkeypatch.setenv("CURATION_DECODE_SKIP_UNREFERENCED", "0")
    full = video_pass(b_frames, MotionParams(), FrameSamplingParams(), preview=PreviewParams())
    monkeypatch.delenv("CURATION_DECODE_SKIP_UNREFERENCED")
    skipping = video_pass(b_frames, MotionParams(), FrameSamplingParams(), preview=PreviewParams())
    assert full.frames_skipped == 0 and skipping.frames_skipped > 0
    assert skipping.motion.pair_scores == full.motion.pair_scores  # exact, not close
    assert skipping.motion.motion_score == full.motion.motion_score
    assert skipping.frame_indices == full.frame_indices


@needs_x264
@pytest.mark.parametrize("container", ["ts", "mkv"])
def test_other_containers(b_frames, tmp_path, container):
    """MPEG-TS carries Annex B start codes, Matroska length prefixes like MP4."""
    remuxed = tmp_path / f"moving.{container}"
    _ffmpeg("-i", b_frames, "-c", "copy", remuxed)
    full, skipping = _decode(remuxed, False), _decode(remuxed, True)
    _assert_same(full, skipping)
    assert skipping[1].frames_skipped > 0


def test_nothing_to_skip_without_b_frames(b_frames, tmp_path):
    plain = tmp_path / "no_b.mp4"
    _ffmpeg("-i", b_frames, "-c:v", "libx264", "-bf", "0", "-preset", "veryfast", plain)
    full, skipping = _decode(plain, False), _decode(plain, True)
    _assert_same(full, skipping)
    assert skipping[1].frames_skipped == 0


def test_a_cut_file_ends_the_same_way(b_frames, tmp_path):
    """Index first (faststart), then cut: the decode ends early; both paths report it alike."""
    whole = tmp_path / "faststart.mp4"
    _ffmpeg("-i", b_frames, "-c", "copy", "-movflags", "+faststart", whole)
    cut = synthetic.write_truncated(tmp_path / "cut.mp4", whole, keep_fraction=0.5)
    full, skipping = _decode(cut, False), _decode(cut, True)
    _assert_same(full, skipping)
    assert full[1].error and "truncated" in full[1].error


def test_an_unforeseen_frame_falls_back_to_the_full_decode(b_frames, monkeypatch):
    """The scan predicts each frame that comes out; a wrong prediction costs a second decode,
    never a wrong frame (here the scan is made to foresee a frame that is not in the file)."""
    real_scan = unreferenced_frames.scan

    def foreseeing_too_much(container, stream):
        packets = real_scan(container, stream)
        packets.pts.append(packets.pts[-1] + 1)
        packets.key_frame.append(False)
        packets.time.append(None)
        return packets

    monkeypatch.setattr(unreferenced_frames, "scan", foreseeing_too_much)
    skipping = _decode(b_frames, True)
    _assert_same(_decode(b_frames, False), skipping)
    assert skipping[1].frames_skipped == 0  # what came back is the full decode's


def test_keyframe_sampling_decodes_everything(b_frames):
    _, out = _decode(b_frames, True, FrameSamplingParams(method="keyframes"))
    assert out.frames_skipped == 0


# the NAL headers themselves: byte 0 of a NAL unit is forbidden_zero(1) nal_ref_idc(2) type(5)
SLICE_REF, SLICE_NONREF, IDR, SEI = 0x41, 0x01, 0x65, 0x06


def _avcc(*nals, size=4):
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def _annexb(*nals):
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


@pytest.mark.parametrize("nals, unreferenced", [
    ((bytes([SLICE_NONREF, 0x9A, 0x00]),), True),
    ((bytes([SEI, 0x05, 0x00]), bytes([SLICE_NONREF, 0x9A])), True),
    ((bytes([SLICE_REF, 0x9A, 0x00]),), False),
    ((bytes([IDR, 0x88]),), False),
    ((bytes([SLICE_NONREF, 0x9A]), bytes([SLICE_REF, 0x9A])), False),  # one referenced slice is enough
    ((bytes([SEI, 0x05]),), False),  # no slice: not a picture we can judge
])
def test_nal_ref_idc(nals, unreferenced):
    assert unreferenced_frames.is_unreferenced_h264(_avcc(*nals), 4) is unreferenced
    assert unreferenced_frames.is_unreferenced_h264(_avcc(*nals, size=2), 2) is unreferenced
    assert unreferenced_frames.is_unreferenced_h264(_annexb(*nals), 0) is unreferenced


def test_a_malformed_length_prefix_counts_as_referenced():
    data = (1000).to_bytes(4, "big") + bytes([SLICE_NONREF, 0x9A])
    assert unreferenced_frames.is_unreferenced_h264(data, 4) is False


def test_extradata_kinds():
    assert unreferenced_frames.nal_length_size(bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1])) == 4
    assert unreferenced_frames.nal_length_size(bytes([1, 0x64, 0, 0x1F, 0xFD, 0xE1])) == 2
    assert unreferenced_frames.nal_length_size(b"\x00\x00\x00\x01\x67") == 0
    assert unreferenced_frames.nal_length_size(None) == 0
    assert unreferenced_frames.nal_length_size(b"\x07junk") is None


def test_kept_conversion_contexts_give_pyavs_own_pixels(b_frames):
    """frame_convert.FrameConverter (one swscale context per conversion, kept for the video)
    against PyAV's to_ndarray (a new context per frame): full-size BGR and RGB, the scaled
    preview, one thread and the default."""
    from curation_assets.scorers.frame_convert import FrameConverter

    with av.open(str(b_frames)) as container:
        frames = list(container.decode(video=0))[:30]
    for threads in (None, 1):
        convert = FrameConverter(threads)
        for frame in frames:  # alternating kinds, as a decode pass asks for them
            assert np.array_equal(convert.to_ndarray(frame, "bgr24"), frame.to_ndarray(format="bgr24"))
            assert np.array_equal(convert.to_ndarray(frame, "rgb24"), frame.to_ndarray(format="rgb24"))
            scaled = dict(width=48, height=32, interpolation="AREA")
            assert np.array_equal(convert.to_ndarray(frame, "rgb24", **scaled),
                                  frame.to_ndarray(format="rgb24", **scaled))
