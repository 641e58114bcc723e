"""Which pictures of a video no other picture is predicted from, so that a decode which does
not need them can leave their packets out and every other frame still decodes to the same
pixels, bit for bit.

Why: the scores read few frames (motion at 2 fps, 8 sampled frames, a dozen previews) but
the decoder must reconstruct every picture the picked ones are predicted from. Pictures
nothing is predicted from are pure cost: x264 with B-frames (most web video) makes 40-50% of
its pictures that way (checked on the five real clips: 42-51% for four of them, none for the
fifth). FFmpeg's `skip_frame=NONREF` drops all of them, the picked ones too; this module lets
the decode drop only those that are not picked.

H.264 says it in every slice's NAL header: `nal_ref_idc == 0` means no other picture
references this one (ITU-T H.264, 7.4.1). A packet is left out only when every slice in it
says so and it is not a key frame. Other codecs (HEVC's sub-layer non-reference types depend
on the temporal layers, AV1/VP9 on refresh flags) are decoded whole: `scan` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass

# H.264 NAL unit types of coded slices: non-IDR (1), data partition A (2), IDR (5)
_SLICE_TYPES = (1, 2, 5)


@dataclass(frozen=True)
class PacketFrame:
    """A frame known from its packet only: what FrameCollector reads of a decoded frame."""

    pts: int | None
    key_frame: bool
    time: float | None


@dataclass
class PacketScan:
    """A video stream's packets from one demux, in presentation order."""

    pts: list[int]  # sorted: position = the frame's decode index in a full sequential decode
    key_frame: list[bool]
    time: list[float | None]
    unreferenced: set[int]  # presentation indices of pictures no other picture is predicted from
    duration: int | None  # the stream's declared duration (pts units), for the uniform picker

    @property
    def frames(self) -> int:
        return len(self.pts)

    def frame(self, index: int) -> PacketFrame:
        return PacketFrame(self.pts[index], self.key_frame[index], self.time[index])


def nal_length_size(extradata: bytes | None) -> int | None:
    """The NAL length prefix size of an AVCC stream (MP4, MKV, MOV), 0 for Annex B start codes
    (MPEG-TS, raw .h264), None when the extradata makes no sense."""
    if not extradata:
        return 0
    if extradata[0] == 1 and len(extradata) >= 5:  # AVCDecoderConfigurationRecord
        return (extradata[4] & 3) + 1
    if extradata[:3] == b"\x00\x00\x01" or extradata[:4] == b"\x00\x00\x00\x01":
        return 0
    return None


def _nal_headers(data: bytes, length_size: int):
    """The first byte of each NAL unit in one packet."""
    if length_size:
        i, end = 0, len(data)
        while i + length_size <= end:
            size = int.from_bytes(data[i:i + length_size], "big")
            i += length_size
            if size <= 0 or i + size > end:
                return  # malformed: the caller treats the packet as referenced
            yield data[i]
            i += size
        return
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        yield data[i + 3]
        i = data.find(b"\x00\x00\x01", i + 3)


def is_unreferenced_h264(data: bytes, length_size: int) -> bool:
    """True when the packet holds at least one coded slice and every slice has nal_ref_idc 0."""
    slices = 0
    for header in _nal_headers(data, length_size):
        if header & 0x1F in _SLICE_TYPES:
            if (header >> 5) & 3:
                return False
            slices += 1
    return slices > 0


def eligible(stream) -> bool:
    """Whether `scan` can read this stream's pictures (H.264 with sensible extradata); checked
    before any demuxing, so a stream that is not leaves its container untouched."""
    return stream.codec_context.name == "h264" and nal_length_size(stream.codec_context.extradata) is not None


def scan(container, stream) -> PacketScan | None:
    """Demux the whole stream once (no decoding) and find its unreferenced pictures; None when
    leaving packets out cannot be proven safe here (another codec, a packet without a pts,
    two packets with the same pts, an unreadable extradata)."""
    if not eligible(stream):
        return None
    length_size = nal_length_size(stream.codec_context.extradata)
    base = stream.time_base
    rows: list[tuple[int, bool, bool]] = []
    for packet in container.demux(stream):
        if not packet.size:
            continue
        if packet.pts is None:
            return None
        unreferenced = not packet.is_keyframe and is_unreferenced_h264(bytes(packet), length_size)
        rows.append((packet.pts, bool(packet.is_keyframe), unreferenced))
    rows.sort(key=lambda row: row[0])
    pts = [row[0] for row in rows]
    if len(set(pts)) != len(pts):
        return None
    return PacketScan(pts, [row[1] for row in rows],
                      [float(p * base) if base is not None else None for p in pts],
                      {i for i, row in enumerate(rows) if row[2]}, stream.duration)
