"""One track's file: coded frames muxed with PyAV, never decoded or re-encoded.

=========  ==========  ===========================================
codec      container   extension
=========  ==========  ===========================================
Opus       WebM        ``.webm`` (OpusHead in the track's header)
VP8        WebM        ``.webm``
H.264      Matroska    ``.mkv`` (SPS/PPS of the first key frame)
=========  ==========  ===========================================

The file is opened at the first frame (a key frame for video: it gives the picture
size and, for H.264, the decoder configuration).  Timestamps are in the RTP clock
(1/90000 for video, 1/48000 for Opus) from 0 at the first frame, strictly increasing.
A picture size change later on (simulcast layers, a window shared at another size)
needs nothing: VP8 and H.264 key frames carry their size and players follow them.
Matroska is written in clusters as it goes (one a second, flushed to the file when
complete), so a file cut short (a full disk, a crash, a killed process) still plays up
to its last cluster; :meth:`TrackWriter.close` adds the index
and the duration.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..sfu.codecs.h264 import sps_size

__all__ = ["EXTENSIONS", "TrackWriter", "opus_frames", "opus_join", "vp8_size"]

EXTENSIONS = {"OPUS": ".webm", "VP8": ".webm", "H264": ".mkv"}
_FORMATS = {".webm": "webm", ".mkv": "matroska"}
_CODECS = {"OPUS": "opus", "VP8": "vp8", "H264": "h264"}
_VP8_SIZE = struct.Struct("<HH")
_AV_MAJOR = int(av.__version__.split(".")[0])
#: The PyAV major version from which a codec is muxed by ``add_mux_stream`` (17; H.264
#: from 18, which extracts its CodecPrivate); before, by ``add_stream``.
_MUX_STREAMS = {"VP8": 17, "H264": 18}


#: Samples (48 kHz) of one frame of each Opus configuration (RFC 6716 3.1, the TOC
#: byte's top 5 bits): SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
_OPUS_SAMPLES = (480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4
#: An Opus packet holds at most 120 ms (RFC 6716 3.2.5), a frame at most 1275 bytes.
_OPUS_MAX_SAMPLES, _OPUS_MAX_FRAME = 5760, 1275


def opus_join(toc: int, frames: list[bytes]) -> bytes:
    """One Opus packet of ``frames`` (each the payload of a one-frame packet whose TOC
    byte was ``toc``, at most 1275 bytes), as a code 3 packet with VBR lengths (RFC
    6716 3.2.5): the frames are kept as they are, only the framing changes (what
    libopus's ``opus_repacketizer`` does).  At most 120 ms of frames."""
    lengths = bytearray()
    for frame in frames[:-1]:
        n = len(frame)
        if n < 252:
            lengths.append(n)
        else:
            first = 252 + (n & 3)
            lengths.append(first)
            lengths.append((n - first) >> 2)
    head = bytes((toc | 3, 0x80 | len(frames)))
    return head + bytes(lengths) + b"".join(frames)


def opus_frames(packet: bytes) -> tuple[int, int]:
    """(frames, samples a frame at 48 kHz) of an Opus packet as this writer muxes it: a
    code 3 packet (a batch of :func:`opus_join`) counts its frames, any other packet
    counts as one, as the RTP packet it came in (:class:`TrackWriter`'s ``frames``)."""
    if not packet:
        return 1, 960
    toc = packet[0]
    n = packet[1] & 0x3F if toc & 3 == 3 and len(packet) > 1 else 1
    return max(n, 1), _OPUS_SAMPLES[toc >> 3]


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 key frame (RFC 6386 9.1), None for another frame."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    w, h = _VP8_SIZE.unpack_from(frame, 6)
    return w & 0x3FFF, h & 0x3FFF


def _nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes removed)."""
    return [n.lstrip(b"\x00") for n in data.split(b"\x00\x00\x01") if n.strip(b"\x00")]


def _opus_head(channels: int = 2, pre_skip: int = 312, rate: int = 48000) -> bytes:
    """The OpusHead identification header (RFC 7845 5.1) Matroska keeps as CodecPrivate."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


class TrackWriter:
    """Muxes one track's coded frames into ``path`` (its extension: :data:`EXTENSIONS`)."""

    def __init__(self, path: Path, codec: str, clock_rate: int) -> None:
        self.path = path
        self.codec = codec.upper()
        if self.codec not in _CODECS:
            raise ValueError(f"cannot record {codec}")
        self.time_base = Fraction(1, clock_rate)
        self._container: Any = None
        self._stream: Any = None
        self.first_pts = -1
        self.last_pts = -1
        self.frames = 0
        self.bytes = 0
        self.size: tuple[int, int] | None = None
        #: (pts, width, height) at every picture size change (video)
        self.sizes: list[tuple[int, int, int]] = []
        # Opus: consecutive one-frame packets of one configuration wait here to be muxed
        # as one packet of up to 120 ms (a mux call costs ~6 µs, as much for 20 ms of
        # audio as for a video frame): [TOC byte, pts of the first, pts expected next,
        # frames (payloads without their TOC byte)], or None
        self._opus: list[Any] | None = None
        self._batch = self.codec == "OPUS" and clock_rate == 48000

    @property
    def opened(self) -> bool:
        return self._container is not None

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the start of the last one."""
        if self.first_pts < 0:
            return 0.0
        return float((self.last_pts - self.first_pts) * self.time_base)

    def _open(self, data: bytes) -> bool:
        codec = self.codec
        extradata = None
        size = None
        if codec == "VP8":
            size = vp8_size(data)
            if size is None:
                return False
        elif codec == "H264":
            nals = _nal_units(data)
            sps = [n for n in nals if n and n[0] & 0x1F == 7]
            pps = [n for n in nals if n and n[0] & 0x1F == 8]
            if not sps or not pps:
                return False
            try:
                size = sps_size(sps[0])
            except ValueError:
                return False
            extradata = b"".join(b"\x00\x00\x00\x01" + n for n in (sps[0], pps[0]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A cluster a second, each written out when it is complete: a process killed
        # mid-recording (a node of a cluster dying) leaves a file that plays up to then.
        options = {"cluster_time_limit": "1000", "flush_packets": "1"}
        container = av.open(
            str(self.path), "w", format=_FORMATS[self.path.suffix], container_options=options
        )
        try:
            stream: Any
            if codec == "OPUS":
                stream = container.add_stream("opus", rate=48000)
                stream.codec_context.layout = "stereo"
                stream.codec_context.extradata = _opus_head()
            elif _MUX_STREAMS.get(codec, 99) <= _AV_MAJOR:
                # A stream without a codec context: add_stream() would open an
                # *encoder* (libvpx ~25 MB and ~30 ms for a 720p track, libx264 ~6 MB)
                # only to mux what it never encodes, and libx264 would put its own
                # SPS/PPS in CodecPrivate; PyAV >= 18 takes the publisher's from the
                # first key frame instead.
                assert size is not None
                stream = container.add_mux_stream(_CODECS[codec], width=size[0], height=size[1])
            else:
                stream = container.add_stream(_CODECS[codec])
                assert size is not None
                stream.width, stream.height = size
                if extradata is not None:
                    stream.codec_context.extradata = extradata
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._note_size(size, 0)
        return True

    def _note_size(self, size: tuple[int, int] | None, pts: int) -> None:
        if size is not None and size != self.size:
            self.size = size
            self.sizes.append((pts, size[0], size[1]))

    def write(self, data: bytes, pts: int, key: bool) -> bool:
        """Mux one frame at ``pts`` (clock units); False if it cannot start the file yet.

        Raises OSError when the file cannot be written (a full disk)."""
        if self._container is None and not self._open(data):
            return False
        first = self.first_pts
        if first < 0:
            first = self.first_pts = pts
        pts -= first
        last = self.last_pts - first
        if pts <= last and self.frames:
            pts = last + 1  # muxers need increasing timestamps
        batch = self._opus
        if batch is not None:
            # Opus, the usual case: the packet continues the batch (same TOC byte, the
            # next 20 ms, the batch within 120 ms); checked here, not in a call
            toc = data[0] if data else -1
            if toc == batch[0] and pts == batch[2] and len(data) <= _OPUS_MAX_FRAME + 1:
                end = pts + _OPUS_SAMPLES[toc >> 3]
                if end - batch[1] <= _OPUS_MAX_SAMPLES:
                    batch[3].append(data[1:])
                    batch[2] = end
                    batch = None
            if batch is not None:
                self._opus_flush()
                self._opus_write(data, pts)
        elif self._batch:
            self._opus_write(data, pts)
        else:
            if key and self.codec == "VP8":
                self._note_size(vp8_size(data), pts)
            self._mux(data, pts, key)
        self.last_pts = pts + first
        self.frames += 1
        self.bytes += len(data)
        return True

    def _opus_write(self, data: bytes, pts: int) -> None:
        """An Opus packet that does not continue a batch: it starts the next one, or is
        muxed alone (not a one-frame packet, or a frame too big to be repacketized)."""
        toc = data[0] if data else -1
        if toc >= 0 and toc & 3 == 0 and len(data) <= _OPUS_MAX_FRAME + 1:
            self._opus = [toc, pts, pts + _OPUS_SAMPLES[toc >> 3], [data[1:]]]
        else:
            self._mux(data, pts, True)

    def _opus_flush(self) -> None:
        batch, self._opus = self._opus, None
        if batch is None:
            return
        toc, pts, _, frames = batch
        if len(frames) == 1:
            self._mux(bytes((toc,)) + frames[0], pts, True)
        else:
            self._mux(opus_join(toc, frames), pts, True)

    def _mux(self, data: bytes, pts: int, key: bool) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base
        packet.stream = self._stream
        packet.is_keyframe = key
        self._container.mux(packet)

    def close(self) -> None:
        """Finish the file (index, duration); safe to call twice or on an unopened writer."""
        container = self._container
        if container is None:
            return
        try:
            self._opus_flush()  # Opus: the last batch (a full disk: the file ends before it)
        finally:
            self._opus = self._container = None
            container.close()
