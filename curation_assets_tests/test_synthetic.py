"""The synthetic generators write files with the properties they promise."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from curation_assets.samples import synthetic


def _probe(path: Path) -> tuple[int, int, int, float]:
    """(width, height, decoded frame count, fps) of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        n = sum(1 for _ in container.decode(stream))
        return stream.codec_context.width, stream.codec_context.height, n, fps


@pytest.mark.parametrize(
    ("writer", "kwargs", "expected"),
    [
        (synthetic.write_moving_pattern, {}, (160, 128, 48, 24.0)),
        (synthetic.write_moving_pattern, {"width": 96, "height": 64, "n_frames": 20, "fps": 30}, (96, 64, 20, 30.0)),
        (synthetic.write_static, {}, (160, 128, 48, 24.0)),
        (synthetic.write_slow_motion, {}, (160, 128, 48, 24.0)),
        (synthetic.write_low_res, {}, (64, 48, 48, 24.0)),
        (synthetic.write_text_overlay, {}, (320, 240, 48, 24.0)),
        (synthetic.write_rotated, {}, (160, 128, 48, 24.0)),
        (synthetic.write_single_frame, {}, (160, 128, 1, 24.0)),
    ],
)
def test_valid_clips_have_expected_geometry(tmp_path, writer, kwargs, expected):
    path = writer(tmp_path / "clip.mp4", **kwargs)
    assert path == tmp_path / "clip.mp4"
    assert _probe(path) == expected


def test_odd_size_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        synthetic.write_moving_pattern(tmp_path / "odd.mp4", width=161)


def test_rotated_clip_reports_rotation_on_frames(tmp_path):
    # PyAV reports counter-clockwise degrees normalised to [-180, 180).
    for rotation, reported in [(90, 90), (270, -90)]:
        path = synthetic.write_rotated(tmp_path / f"rot{rotation}.mp4", rotation=rotation, n_frames=4)
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
        assert frame.rotation == reported


def test_unrotated_clip_reports_zero_rotation(tmp_path):
    path = synthetic.write_moving_pattern(tmp_path / "plain.mp4", n_frames=4)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation == 0


def test_text_overlay_box_matches_fraction():
    x0, y0, x1, y1 = synthetic.text_overlay_box(320, 240)
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    assert synthetic.text_box_fraction(320, 240) == pytest.approx(0.3, abs=0.01)
    assert synthetic.text_box_fraction(320, 256, box_fraction=0.5) == pytest.approx(0.5, abs=0.01)


def test_text_overlay_box_is_white_with_dark_text(tmp_path):
    path = synthetic.write_text_overlay(tmp_path / "text.mp4", n_frames=2)
    x0, y0, x1, y1 = synthetic.text_overlay_box(320, 240)
    with av.open(str(path)) as container:
        gray = next(container.decode(video=0)).to_ndarray(format="gray")
    box = gray[y0:y1, x0:x1]
    assert (box > 200).mean() > 0.5  # mostly white paper
    assert (box < 60).mean() > 0.05  # with a real amount of black ink
    assert gray[:y0].max() < 200  # background never reaches box white


def test_zero_byte_and_text_files(tmp_path):
    empty = synthetic.write_zero_byte(tmp_path / "empty.mp4")
    assert empty.stat().st_size == 0
    text = synthetic.write_text_as_mp4(tmp_path / "text.mp4")
    assert text.stat().st_size > 0
    for bad in (empty, text):
        with pytest.raises(av.error.FFmpegError):
            av.open(str(bad))


def test_truncated_file_does_not_decode_fully(tmp_path):
    src = synthetic.write_moving_pattern(tmp_path / "src.mp4")
    cut = synthetic.write_truncated(tmp_path / "cut.mp4", src)
    assert cut.stat().st_size == int(src.stat().st_size * 0.4)
    try:
        _, _, n, _ = _probe(cut)
    except (av.error.FFmpegError, IndexError):
        return
    assert n < 48


def test_audio_only_has_no_video_stream(tmp_path):
    path = synthetic.write_audio_only(tmp_path / "tone.m4a")
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 0
        assert len(container.streams.audio) == 1
        audio = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio))
    assert samples == pytest.approx(44100, rel=0.05)


def test_demo_set_manifest_lists_existing_files(tmp_path):
    manifest = synthetic.write_demo_set(tmp_path / "demo")
    assert manifest == tmp_path / "demo" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    names = [row["videos"][0] for row in rows]
    assert sorted(names) == sorted(synthetic.DEMO_EXPECTED)
    for name in names:
        assert (manifest.parent / name).exists(), name

    texts = {row["videos"][0]: row.get("text") for row in rows}
    assert texts["uncaptioned.mp4"] is None  # key missing
    assert texts["low_res.mp4"] == ""
    assert texts["good_pan_right.mp4"].startswith("<__dj__video> ")
    assert texts["good_pan_right.mp4"].endswith(" <|__dj__eoc|>")
    assert texts["static.mp4"].count("a red square") >= 10

    folder = manifest.parent
    assert (folder / "zero_byte.mp4").stat().st_size == 0
    assert (folder / "good_pan_right.mp4").read_bytes() == (folder / "good_pan_right_copy.mp4").read_bytes()
    assert _probe(folder / "good_pan_right.mp4") == (320, 256, 72, 24.0)
    assert _probe(folder / "low_res.mp4")[:2] == (64, 48)
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 10_000_000
