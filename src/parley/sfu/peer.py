"""Server-side WebRTC peers of the SFU: aiortc negotiates, the forwarder moves packets.

Each participant has up to two ``RTCPeerConnection``s with the server:

* **publish** (the client offers, sendonly; the server answers recvonly): its tracks
  become :class:`~parley.sfu.forwarder.Source` objects;
* **subscribe** (the server offers a fixed set of sendonly *slots*, ``last_n`` video +
  ``audio_slots`` audio; the client answers recvonly): no renegotiation is ever needed
  when people join or leave, the server re-maps sources onto slots and announces the
  mapping with a ``layout`` message.

aiortc does ICE, DTLS and SRTP key setup only: receivers and senders are made passive
and the packets go through :mod:`parley.sfu.aiortc.hooks` (no decoding, no encoding).

Signalling payloads (inside the protocol's ``signal`` messages to/from the ``"sfu"``
participant id), all JSON objects with a ``"sfu"`` field:

client → server                                      server → client
``{"sfu":"publish","sdp":OFFER,"labels":{mid:name}}``  ``{"sfu":"publish-answer","sdp":…}``
``{"sfu":"subscribe"}``                               ``{"sfu":"subscribe-offer","sdp":…}``
``{"sfu":"subscribe-answer","sdp":ANSWER}``           (nothing)
``{"sfu":"unpublish"}`` / ``{"sfu":"unsubscribe"}``     (nothing)
``{"sfu":"view","slots":{mid:{"w":W,"h":H}}}``         (nothing)
``{"sfu":"status","id":ID}``                          ``{"sfu":"status","id":ID,``
                                                     ``"publish":B,"subscribe":B}``
(unsolicited)                                        ``{"sfu":"layout","slots":[…]}``,
                                                     ``{"sfu":"republish","reason":…}``,
                                                     ``{"sfu":"error","message":…}``

No trickle ICE: the SDP carries all candidates (aiortc gathers before answering; a
browser must wait for ``iceGatheringState == "complete"``).  ``labels`` names a
published track (e.g. ``"camera"``, ``"screen"``, ``"mic"``); a label ``"screen"``
gives that video priority in last-N.  A video published with simulcast (``a=simulcast``,
2-3 rids) is accepted through :mod:`parley.sfu.simulcast` (aiortc itself ignores it);
``view`` tells the size (device pixels) each subscribe slot is rendered at, which picks
the simulcast layer forwarded to it.  ``status`` asks whether the server still has this
participant's publish / subscribe connection (not failed or closed): after a server
restart it has neither, and a client resuming on the new process must publish and
subscribe again (:meth:`SfuRoom.status`; answered without creating anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import MediaDescription, SessionDescription

from . import sdp_codecs, simulcast, twcc
from .aiortc import hooks
from .aiortc.shared_ports import MediaPortsUnavailable, MediaSockets
from .forwarder import ForwardingStats, Publisher, Router, SlotSpec, Subscriber, Tap

__all__ = ["SfuPeer", "SfuRoom", "SignalFn", "status_reply"]

log = logging.getLogger(__name__)

SignalFn = Callable[[str, dict[str, Any]], None]
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
FORWARDED_CODECS = sdp_codecs.FORWARDED_CODECS  # video: VP8 or H.264 (see parley.sfu.sdp_codecs)


def _new_pc() -> RTCPeerConnection:
    # iceServers=[]: with None aiortc would add a public Google STUN server
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def _prefer(transceiver: RTCRtpTransceiver) -> None:
    """Restrict a transceiver to the codecs the forwarder handles (+ RTX for video)."""
    transceiver.setCodecPreferences(sdp_codecs.subscribe_preferences(transceiver.kind))


def _primary_codec(media: MediaDescription) -> tuple[int, str, int, int | None]:
    """(payload type, codec name, clock rate, RTX payload type) negotiated for a section."""
    codecs = [c for c in media.rtp.codecs if not c.mimeType.lower().endswith("/rtx")]
    if not codecs or codecs[0].payloadType is None:
        raise ValueError(f"no codec negotiated for mid {media.rtp.muxId}")
    main = codecs[0]
    assert main.payloadType is not None
    rtx = None
    for c in media.rtp.codecs:
        if c.mimeType.lower().endswith("/rtx") and str(c.parameters.get("apt")) == str(
            main.payloadType
        ):
            rtx = c.payloadType
    return main.payloadType, main.mimeType.split("/")[1], main.clockRate, rtx


def _ext_id(media: MediaDescription, uri: str) -> int:
    for ext in media.rtp.headerExtensions:
        if ext.uri == uri:
            return int(ext.id)
    return 0


def status_reply(payload: dict[str, Any], *, publish: bool, subscribe: bool) -> dict[str, Any]:
    """``{"sfu":"status","id":…,"publish":…,"subscribe":…}`` answering ``payload``."""
    reply: dict[str, Any] = {"sfu": "status", "publish": publish, "subscribe": subscribe}
    ident = payload.get("id")
    if isinstance(ident, str | int) and not isinstance(ident, bool) and len(str(ident)) <= 64:
        reply["id"] = ident
    return reply


class SfuPeer:
    """One participant's media connections with the server."""

    def __init__(self, room: SfuRoom, pid: str) -> None:
        self.room = room
        self.pid = pid
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self._pub_transport: hooks.RawMediaTransport | None = None
        self._sub_transport: hooks.RawMediaTransport | None = None
        self._pending_sources: list[dict[str, Any]] = []
        self._pending_slots: list[SlotSpec] = []
        self._twcc_ext = 0  # transport-cc negotiated with the publisher: its extension id
        self._views: dict[str, tuple[int, int]] = {}  # the latest "view" per slot mid
        self._video_mids: frozenset[str] = frozenset()  # video slots of the subscribe offer
        self.tracks: list[dict[str, Any]] = []

    # -- signalling -------------------------------------------------------
    def status(self) -> tuple[bool, bool]:
        """(has a live publish connection, has a live subscribe connection)."""

        def live(pc: RTCPeerConnection | None) -> bool:
            return pc is not None and pc.connectionState not in ("failed", "closed")

        return live(self.publish_pc), live(self.subscribe_pc)

    async def handle_signal(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Handle one signalling payload from the client; returns the replies to send."""
        kind = payload.get("sfu") if isinstance(payload, dict) else None
        try:
            if kind == "publish":
                return [await self._publish(str(payload["sdp"]), payload.get("labels") or {})]
            if kind == "subscribe":
                return [await self._subscribe_offer()]
            if kind == "subscribe-answer":
                await self._subscribe_answer(str(payload["sdp"]))
                return []
            if kind == "unpublish":
                await self.unpublish()
                return []
            if kind == "unsubscribe":
                await self._close_subscribe()
                return []
            if kind == "view":
                self._view(payload.get("slots"))
                return []
            if kind == "status":
                return [self.room.status(self.pid, payload)]
        except MediaPortsUnavailable as exc:
            # the server keeps running; this connection is dropped, a retry may succeed
            log.error("sfu: %s for %s failed: %s", kind, self.pid, exc)
            with contextlib.suppress(Exception):
                if kind == "publish":
                    await self._close_publish()
                else:
                    await self._close_subscribe()
            return [{"sfu": "error", "message": f"{kind} failed: no UDP media port is free"}]
        except (KeyError, ValueError, TypeError) as exc:
            log.info("sfu: bad %s from %s: %s", kind, self.pid, exc)
            return [{"sfu": "error", "message": f"bad {kind}: {exc}"}]
        except Exception as exc:  # aiortc raises assorted errors on bad SDP
            log.warning("sfu: %s from %s failed: %r", kind, self.pid, exc)
            return [{"sfu": "error", "message": f"{kind} failed"}]
        return [{"sfu": "error", "message": f"unknown sfu request {kind!r}"}]

    async def _publish(self, offer_sdp: str, labels: dict[str, Any]) -> dict[str, Any]:
        pc = self.publish_pc
        renegotiate = (
            pc is not None
            and pc.signalingState == "stable"
            and pc.connectionState not in ("failed", "closed")
        )
        if not renegotiate:
            await self._close_publish()
            pc = self.publish_pc = _new_pc()
        assert pc is not None
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        # aiortc schedules the start of receivers/senders for after the answer is set:
        # make every (new) transceiver passive before that
        # someone in the room cannot decode H.264: VP8, if this offer has it
        blind = sorted(self.room.h264_blind - {self.pid})
        for t in pc.getTransceivers():
            if t.kind in FORWARDED_CODECS:
                # the first forwarded codec in the publisher's order (VP8 or H.264)
                chosen = hooks.restrict_negotiated_codecs(
                    t,
                    FORWARDED_CODECS[t.kind],
                    offer_order=True,
                    prefer="video/VP8" if blind and t.kind == "video" else None,
                )
                if blind and chosen.lower() == "video/h264":
                    log.warning(
                        "sfu: %s publishes H.264 without offering VP8; %s cannot decode it",
                        self.pid,
                        ", ".join(blind),
                    )
                hooks.make_receiver_passive(t.receiver)
                hooks.make_sender_passive(t.sender)
        transceivers = pc.getTransceivers()
        if not transceivers:
            raise ValueError("offer has no media")
        self.room._attach_sockets(pc)
        if self._pub_transport is None:
            self._pub_transport = hooks.RawMediaTransport(
                transceivers[0].receiver.transport,
                self._on_publisher_rtp,
                self._on_publisher_rtcp,
            )
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        local = pc.localDescription
        offered = simulcast.parse_offer(offer_sdp)
        answer_sdp = simulcast.accept_in_answer(local.sdp, offered)
        # transport-cc (aiortc leaves it out of its answers): the browser estimates
        answer_sdp, self._twcc_ext = twcc.accept_in_answer(answer_sdp, twcc.parse_offer(offer_sdp))
        remote = SessionDescription.parse(offer_sdp)
        ours = SessionDescription.parse(local.sdp)
        self._pending_sources = []
        for rmedia, lmedia in zip(remote.media, ours.media, strict=False):
            if rmedia.kind not in FORWARDED_CODECS or rmedia.direction not in (
                "sendonly",
                "sendrecv",
            ):
                continue
            if lmedia.port == 0 or not lmedia.rtp.codecs:
                continue
            pt, codec, rate, _ = _primary_codec(lmedia)
            ssrcs = [s.ssrc for s in rmedia.ssrc]
            mid = str(rmedia.rtp.muxId)
            label = str(labels.get(mid, mid))
            sim = offered.get(mid) if rmedia.kind == "video" else None
            if sim is not None:
                self._pending_sources.append(
                    dict(
                        track_id=label,
                        kind="video",
                        ssrc=0,
                        payload_type=pt,
                        codec=codec,
                        clock_rate=rate,
                        screen=label == "screen",
                        rids=sim.rids,
                        mid=mid,
                        rid_ext=sim.rid_ext,
                        rrid_ext=sim.rrid_ext,
                        mid_ext=sim.mid_ext,
                    )
                )
                continue
            if not ssrcs:
                log.info(
                    "sfu: %s published mid %s without a=ssrc; ignored", self.pid, rmedia.rtp.muxId
                )
                continue
            rtx_ssrc = None
            primary = ssrcs[0]
            for group in rmedia.ssrc_group:
                if group.semantic == "FID" and len(group.items) >= 2:
                    primary, rtx_ssrc = int(group.items[0]), int(group.items[1])
            self._pending_sources.append(
                dict(
                    track_id=label,
                    kind=rmedia.kind,
                    ssrc=primary,
                    payload_type=pt,
                    codec=codec,
                    clock_rate=rate,
                    rtx_ssrc=rtx_ssrc,
                    audio_level_ext=_ext_id(lmedia, AUDIO_LEVEL_URI),
                    screen=label == "screen",
                )
            )
        self.tracks = [{"track": s["track_id"], "kind": s["kind"]} for s in self._pending_sources]
        if renegotiate:
            if self.publisher is not None:
                self.publisher.enable_twcc(self._twcc_ext)
            self._update_sources()
            return {"sfu": "publish-answer", "sdp": answer_sdp}

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is not self.publish_pc:
                return
            if pc.connectionState == "connected":
                self._start_publishing()
            elif pc.connectionState in ("failed", "closed"):
                self._stop_publishing()

        return {"sfu": "publish-answer", "sdp": answer_sdp}

    def _update_sources(self) -> None:
        """After a renegotiation (e.g. screen share added/removed): diff the sources."""
        pub = self.publisher
        if pub is None:
            return
        wanted = {s["track_id"]: s for s in self._pending_sources}
        kept_ssrcs = {}  # simulcast tracks re-added (e.g. a codec change) keep their SSRCs
        for track_id, src in list(pub.sources.items()):
            spec = wanted.get(track_id)
            if (
                spec is None
                or spec["codec"].upper() != src.codec
                or (src.layers is None and spec["ssrc"] != src.ssrc)
                or [s.rid for s in src.streams() if s.rid] != list(spec.get("rids") or [])
            ):
                kept_ssrcs[track_id] = pub.layer_ssrcs(track_id)
                pub.remove_source(track_id)
        for track_id, spec in wanted.items():
            if track_id not in pub.sources:
                pub.add_source(**spec)
                if kept_ssrcs.get(track_id):
                    pub.bind_layers(track_id, kept_ssrcs[track_id])
        self.room._tracks_changed(self.pid, self.tracks)

    def _start_publishing(self) -> None:
        transport = self._pub_transport
        if transport is None or self.publisher is not None:
            return
        router = self.room.router
        self.publisher = router.add_publisher(self.pid, transport.send)
        self.publisher.enable_twcc(self._twcc_ext)
        if self._twcc_ext:
            log.info(
                "sfu: %s publishes with transport-cc feedback (extension id %d)",
                self.pid,
                self._twcc_ext,
            )
        for spec in self._pending_sources:
            self.publisher.add_source(**spec)
        self.room._tracks_changed(self.pid, self.tracks)

    def _stop_publishing(self) -> None:
        if self.publisher is not None:
            self.room.router.remove_publisher(self.pid)
            self.publisher = None
            self.room._tracks_changed(self.pid, [])

    def _on_publisher_rtp(self, data: bytes, now: float) -> None:
        pub = self.publisher
        if pub is not None:
            pub.on_rtp(data, now)

    def _on_publisher_rtcp(self, data: bytes, now: float) -> None:
        pub = self.publisher
        if pub is not None:
            pub.on_rtcp(data, now)

    async def _subscribe_offer(self) -> dict[str, Any]:
        await self._close_subscribe()
        pc = self.subscribe_pc = _new_pc()
        kinds = ["audio"] * self.room.audio_slots + ["video"] * self.room.video_slots
        for kind in kinds:
            t = pc.addTransceiver(kind, direction="sendonly")
            _prefer(t)
            hooks.make_sender_passive(t.sender)
            hooks.make_receiver_passive(t.receiver)
        self._sub_transport = hooks.RawMediaTransport(
            pc.getTransceivers()[0].sender.transport, self._ignore, self._on_subscriber_rtcp
        )
        self.room._attach_sockets(pc)
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        self._video_mids = frozenset(
            str(t.mid) for t in pc.getTransceivers() if t.kind == "video" and t.mid is not None
        )

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is not self.subscribe_pc:
                return
            if pc.connectionState == "connected":
                self._start_subscribing()
            elif pc.connectionState in ("failed", "closed"):
                self._stop_subscribing()

        return {"sfu": "subscribe-offer", "sdp": pc.localDescription.sdp}

    async def _subscribe_answer(self, answer_sdp: str) -> None:
        pc = self.subscribe_pc
        if pc is None or pc.signalingState != "have-local-offer":
            raise ValueError("no subscribe offer pending")
        await pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        answer = SessionDescription.parse(answer_sdp)
        by_mid = {str(m.rtp.muxId): m for m in answer.media}
        slots: list[SlotSpec] = []
        for t in pc.getTransceivers():
            media = by_mid.get(str(t.mid))
            if media is None or media.port == 0 or media.direction not in ("recvonly", "sendrecv"):
                continue
            pt, codec, rate, rtx_pt = _primary_codec(media)
            ssrc, rtx_ssrc = hooks.sender_ssrcs(t.sender)
            accepted = sdp_codecs.slot_codecs(media)  # e.g. VP8 and H.264: either can be sent
            slots.append(
                SlotSpec(
                    mid=str(t.mid),
                    kind=t.kind,
                    ssrc=ssrc,
                    payload_type=pt,
                    codec=codec,
                    clock_rate=rate,
                    rtx_ssrc=rtx_ssrc if rtx_pt is not None else None,
                    rtx_payload_type=rtx_pt,
                    codecs=accepted,
                )
            )
        self._pending_slots = slots
        self.room._subscriber_codecs(self.pid, slots)
        if pc.connectionState == "connected":
            self._start_subscribing()

    def _view(self, slots: Any) -> None:
        """``{"sfu":"view","slots":{mid:{"w":W,"h":H}}}``: rendered sizes of video slots.

        Only the video slots of this peer's subscribe offer may be named: the sizes are
        kept per mid until the subscriber starts, so any other name would be state an
        attacker grows at will.  A view naming anything else is refused whole."""
        if not isinstance(slots, dict):
            raise ValueError("view needs slots: {mid: {w, h}}")
        if not self._video_mids:
            raise ValueError("no subscribe connection to view")
        sizes: dict[str, tuple[int, int]] = {}
        for mid, size in slots.items():
            if mid not in self._video_mids:
                raise ValueError(f"unknown video slot mid {str(mid)[:32]!r}")
            if not isinstance(size, dict):
                raise ValueError("view sizes are {w, h} objects")
            w, h = size.get("w", 0), size.get("h", 0)
            if not all(isinstance(v, int | float) and 0 <= v <= 100_000 for v in (w, h)):
                raise ValueError("view sizes are numbers of pixels")
            sizes[mid] = (int(w), int(h))
        self._views.update(sizes)
        sub = self.subscriber
        if sub is not None:
            for mid, (w, h) in sizes.items():
                sub.set_view(mid, w, h)

    def publishes_h264(self) -> bool:
        """Whether this peer's latest publish answer took H.264 for a video."""
        return any(
            s["kind"] == "video" and str(s["codec"]).upper() == "H264"
            for s in self._pending_sources
        )

    def _start_subscribing(self) -> None:
        transport = self._sub_transport
        if transport is None or self.subscriber is not None or not self._pending_slots:
            return
        self.subscriber = self.room.router.add_subscriber(
            self.pid, transport.send, self._pending_slots
        )
        for mid, (w, h) in self._views.items():
            self.subscriber.set_view(mid, w, h)

    def _stop_subscribing(self) -> None:
        if self.subscriber is not None:
            self.room.router.remove_subscriber(self.pid)
            self.subscriber = None

    def _on_subscriber_rtcp(self, data: bytes, now: float) -> None:
        sub = self.subscriber
        if sub is not None:
            sub.on_rtcp(data, now)

    @staticmethod
    def _ignore(data: bytes, now: float) -> None:
        return None

    # -- teardown ---------------------------------------------------------
    async def unpublish(self) -> None:
        """Stop receiving and forwarding this participant's media (its publish
        connection is closed; it can publish again)."""
        await self._close_publish()

    async def _close_publish(self) -> None:
        self._stop_publishing()
        pc, self.publish_pc, self._pub_transport = self.publish_pc, None, None
        if pc is not None:
            await pc.close()

    async def _close_subscribe(self) -> None:
        self._stop_subscribing()
        pc, self.subscribe_pc, self._sub_transport = self.subscribe_pc, None, None
        self._pending_slots = []
        self.room.h264_blind.discard(self.pid)
        self._views, self._video_mids = {}, frozenset()  # sizes of the old slots
        if pc is not None:
            await pc.close()

    async def close(self) -> None:
        await self._close_publish()
        await self._close_subscribe()


class SfuRoom:
    """One room's SFU: participants' peers, the router and its periodic work.

    ``send_signal(pid, payload)`` delivers unsolicited payloads (``layout``) to a
    participant as ``signal`` from ``"sfu"``.  ``on_speaker(pid | None)`` reports the
    dominant speaker, ``on_tracks(pid, [{"track", "kind"}])`` a publisher's tracks
    (empty list: stopped publishing).  ``media_sockets`` (optional) puts the ICE
    candidates of every peer connection on fixed UDP ports / a public address
    (``--media-port``, ``--media-public-ip``).  ``camera_on(pid)`` (optional) is the
    participant's signalled camera state, read by last-N ranking every tick.
    """

    TICK = 0.2
    REPORT_EVERY = 5  # ticks: RR + REMB to publishers once a second
    FEEDBACK_PER_TICK = 2  # transport-cc feedback to publishers every 100 ms

    def __init__(
        self,
        send_signal: SignalFn,
        *,
        last_n: int = 9,
        audio_slots: int = 16,
        on_speaker: Callable[[str | None], None] | None = None,
        on_tracks: Callable[[str, list[dict[str, Any]]], None] | None = None,
        media_sockets: MediaSockets | None = None,
        camera_on: Callable[[str], bool] | None = None,
    ) -> None:
        hooks.check_compat()
        self.media_sockets = media_sockets
        self.send_signal = send_signal
        self.video_slots = last_n
        self.audio_slots = audio_slots
        self.on_tracks = on_tracks
        self.router = Router(
            last_n=last_n,
            on_layout=self._layout,
            on_speaker=on_speaker,
            clock=time.monotonic,
            camera_on=camera_on,
        )
        self.peers: dict[str, SfuPeer] = {}
        # subscribers whose answer has no H.264 (Firefox without OpenH264): publishers are
        # answered with VP8 while any is here
        self.h264_blind: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def add_participant(self, pid: str) -> SfuPeer:
        peer = self.peers.get(pid)
        if peer is None:
            peer = self.peers[pid] = SfuPeer(self, pid)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return peer

    async def remove_participant(self, pid: str) -> None:
        peer = self.peers.pop(pid, None)
        if peer is not None:
            await peer.close()

    def status(self, pid: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The reply to ``{"sfu":"status","id":ID}`` from ``pid`` (``id`` echoed if given)."""
        peer = self.peers.get(pid)
        publish, subscribe = peer.status() if peer is not None else (False, False)
        return status_reply(payload, publish=publish, subscribe=subscribe)

    async def handle_signal(self, pid: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Shortcut: ``add_participant(pid).handle_signal(payload)``."""
        return await self.add_participant(pid).handle_signal(payload)

    async def unpublish(self, pid: str) -> bool:
        """Stop forwarding what ``pid`` sends (e.g. made an observer); False if ``pid``
        has no media connection here."""
        peer = self.peers.get(pid)
        if peer is None:
            return False
        await peer.unpublish()
        return True

    def record(self, tap: Tap | None) -> None:
        """Give every published stream's packets to ``tap`` too (a recording; None: stop)."""
        self.router.set_recorder(tap)

    def stats(self) -> ForwardingStats:
        """What this room's SFU is forwarding now (:meth:`Router.stats`)."""
        return self.router.stats()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for pid in list(self.peers):
            await self.remove_participant(pid)

    def _attach_sockets(self, pc: RTCPeerConnection) -> None:
        """Before gathering: candidates on the configured ports / public address."""
        if self.media_sockets is not None:
            self.media_sockets.attach(pc)

    def _subscriber_codecs(self, pid: str, slots: list[SlotSpec]) -> None:
        """A subscriber answered: if it cannot decode H.264, H.264 publishers republish.

        The server forwards, it does not transcode: a video in a codec the subscriber
        left out of its answer would never reach it (a black tile).  So every publisher
        sending H.264 gets ``{"sfu":"republish"}`` (offer again) and is answered with VP8
        while such a subscriber is in the room."""
        video = [s for s in slots if s.kind == "video"]
        if not video or any("H264" in s.payload_types() for s in video):
            self.h264_blind.discard(pid)
            return
        if pid in self.h264_blind:
            return
        self.h264_blind.add(pid)
        for peer in self.peers.values():
            if peer.pid != pid and peer.publishes_h264():
                log.warning(
                    "sfu: %s cannot decode H.264: asking %s to publish VP8 instead",
                    pid,
                    peer.pid,
                )
                self.send_signal(
                    peer.pid,
                    {"sfu": "republish", "reason": "a participant cannot decode H.264"},
                )

    def _layout(self, pid: str, layout: list[dict[str, str | None]]) -> None:
        self.send_signal(pid, {"sfu": "layout", "slots": layout})

    def _tracks_changed(self, pid: str, tracks: list[dict[str, Any]]) -> None:
        if self.on_tracks:
            self.on_tracks(pid, tracks)

    async def _run(self) -> None:
        n = 0
        per_tick = self.FEEDBACK_PER_TICK
        while True:
            await asyncio.sleep(self.TICK / per_tick)
            now = time.monotonic()
            try:
                self.router.send_transport_feedback(now)
                n += 1
                if n % per_tick:
                    continue
                self.router.tick(now)
                if n % (self.REPORT_EVERY * per_tick) == 0:
                    self.router.send_receiver_reports(now)
            except Exception:
                log.exception("sfu: tick failed")
