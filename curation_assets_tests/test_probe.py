"""probe_video on valid, rotated and broken files; content_hash on copies."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from curation_assets.samples import synthetic
from curation_assets.scorers.hashing import content_hash
from curation_assets.scorers.probe import ProbeResult, probe_video

W, H, FPS, N = 160, 128, 24, 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return synthetic.write_moving_pattern(
        tmp_path_factory.mktemp("probe") / "clip.mp4", width=W, height=H, fps=FPS, n_frames=N
    )


# --------------------------------------------------------------------------- valid clips


def test_valid_clip_fields(clip):
    result = probe_video(clip)
    assert result.error is None
    assert (result.width, result.height) == (W, H)
    assert (result.display_width, result.display_height) == (W, H)
    assert result.rotation == 0
    assert result.fps == pytest.approx(FPS)
    assert result.frame_count == N
    assert result.duration_s == pytest.approx(N / FPS, abs=1 / FPS)
    assert result.codec in {"h264", "mpeg4"}
    assert result.has_audio is False
    assert result.file_size == clip.stat().st_size > 0


def test_probe_accepts_str_paths(clip):
    assert probe_video(str(clip)) == probe_video(clip)


def test_as_row_has_every_field(clip):
    row = probe_video(clip).as_row()
    assert set(row) == set(ProbeResult.__dataclass_fields__)
    assert row["width"] == W and row["error"] is None


@pytest.mark.parametrize(("rotation", "read_back", "swapped"), [(90, 90, True), (270, -90, True), (180, -180, False)])
def test_rotated_clip(tmp_path, rotation, read_back, swapped):
    path = synthetic.write_rotated(tmp_path / "rot.mp4", rotation=rotation, width=W, height=H, fps=FPS, n_frames=N)
    result = probe_video(path)
    assert result.error is None
    # Coded size is unchanged; the display size follows the rotation.
    assert (result.width, result.height) == (W, H)
    assert result.rotation == read_back
    if swapped:
        assert (result.display_width, result.display_height) == (H, W)
    else:
        assert (result.display_width, result.display_height) == (W, H)


def test_single_frame_clip_probes_fine(tmp_path):
    path = synthetic.write_single_frame(tmp_path / "one.mp4", width=W, height=H, fps=FPS)
    result = probe_video(path)
    assert result.error is None
    assert result.frame_count == 1
    assert (result.width, result.height) == (W, H)
    assert result.fps == pytest.approx(FPS)


def test_portrait_clip(tmp_path):
    path = synthetic.write_moving_pattern(tmp_path / "portrait.mp4", width=96, height=160, fps=30, n_frames=12)
    result = probe_video(path)
    assert result.error is None
    assert (result.width, result.height, result.display_width, result.display_height) == (96, 160, 96, 160)
    assert result.fps == pytest.approx(30)
    assert result.frame_count == 12


# --------------------------------------------------------------------------- broken inputs


def _assert_failed(result: ProbeResult, *words: str) -> None:
    assert result.error, "expected an error"
    for word in words:
        assert word in result.error.lower(), f"{word!r} not in {result.error!r}"
    # No half-filled geometry on failure.
    assert result.width is None and result.display_width is None


def test_missing_file(tmp_path):
    result = probe_video(tmp_path / "nope.mp4")
    _assert_failed(result, "not found")
    assert result.file_size is None


def test_zero_byte_file(tmp_path):
    result = probe_video(synthetic.write_zero_byte(tmp_path / "zero.mp4"))
    _assert_failed(result, "empty")
    assert result.file_size == 0


def test_text_named_mp4(tmp_path):
    result = probe_video(synthetic.write_text_as_mp4(tmp_path / "text.mp4"))
    _assert_failed(result, "not a readable media file")


@pytest.mark.parametrize("keep_fraction", [0.05, 0.4, 0.9])
def test_truncated_mp4(tmp_path, clip, keep_fraction):
    path = synthetic.write_truncated(tmp_path / "cut.mp4", clip, keep_fraction=keep_fraction)
    result = probe_video(path)
    # Without its index the mp4 is either unreadable or shows no video stream.
    _assert_failed(result)
    assert "not a readable media file" in result.error or "no video stream" in result.error


def test_audio_only(tmp_path):
    result = probe_video(synthetic.write_audio_only(tmp_path / "tone.m4a", seconds=0.5))
    _assert_failed(result, "audio-only")
    assert result.has_audio is True


def test_directory_is_not_a_video(tmp_path):
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    assert probe_video(folder).error


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_permissions(tmp_path, clip):
    path = tmp_path / "locked.mp4"
    shutil.copyfile(clip, path)
    path.chmod(0)
    try:
        _assert_failed(probe_video(path), "permission")
    finally:
        path.chmod(0o644)


# --------------------------------------------------------------------------- content_hash


def test_hash_equal_for_byte_identical_copies(tmp_path, clip):
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(clip, copy)
    assert content_hash(copy) == content_hash(clip)
    assert content_hash(str(copy)) == content_hash(clip)


def test_hash_differs_for_different_content(tmp_path, clip):
    other = synthetic.write_moving_pattern(tmp_path / "other.mp4", width=W, height=H, fps=FPS, n_frames=N, seed=7)
    assert content_hash(other) != content_hash(clip)
    flipped = tmp_path / "flipped.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    flipped.write_bytes(bytes(data))
    assert content_hash(flipped) != content_hash(clip)
    appended = tmp_path / "appended.mp4"
    appended.write_bytes(clip.read_bytes() + b"\0")
    assert content_hash(appended) != content_hash(clip)


def test_hash_known_answer_across_chunks(tmp_path):
    # Spans several 1 MiB read chunks; must equal the one-shot digest.
    data = bytes(range(256)) * (3 * 4096 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    expected = hashlib.blake2b(data, digest_size=10).hexdigest()
    assert content_hash(path) == expected
    assert len(expected) == 20


def test_hash_of_empty_file(tmp_path):
    path = synthetic.write_zero_byte(tmp_path / "zero.mp4")
    assert content_hash(path) == hashlib.blake2b(b"", digest_size=10).hexdigest()
