"""Media through the server's SFU, with aiortc: publish tracks, subscribe to someone.

The same signalling as the web client's ``media/sfu-session.js`` (docs/protocol.md
"Media: SFU or mesh"), inside ``signal`` messages to and from ``"sfu"``:

* **publish**: one ``RTCPeerConnection`` that offers every published track sendonly,
  ``{"sfu":"publish","sdp","labels":{mid:"mic"|"camera"|"screen"}}``, and applies the
  ``publish-answer``.  Publishing another track starts that connection over with all of
  them (``unpublish``, then ``publish``); so does ``{"sfu":"republish"}``.
* **subscribe**: ``{"sfu":"subscribe"}``; the server offers a fixed set of slots (audio and
  last-N video), this side answers recvonly.  ``{"sfu":"layout"}`` says whose track each
  slot carries now; every slot's frames are read as they come and handed to the
  :class:`RemoteTrack` of that participant (frames of people nobody subscribed to are
  dropped, so aiortc's queues never grow).
* after a **reconnect**: ``{"sfu":"status","id"}`` asks whether the server still has both
  connections (not after a server restart), and what it lacks is started over; after a
  rejoin as someone new, both are.

No trickle ICE: aiortc gathers every candidate before the offer or answer is sent.  A
server on a loopback URL gets loopback candidates too (aioice leaves 127.0.0.1 out).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import itertools
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.frame import Frame
from av.video.frame import VideoFrame

from ..core.protocol import Participant
from .errors import MediaError

log = logging.getLogger("parley.client.media")

SFU: Final = "sfu"
#: Time for the server's answer (or offer) to a publish (or subscribe).
ANSWER_TIMEOUT: Final = 20.0
#: Seconds a subscription waits for someone missing from a resume's welcome.
ABSENT_GRACE: Final = 30.0
#: Time for a new media connection to be up (ICE and DTLS).
CONNECT_TIMEOUT: Final = 20.0
#: Frames a :class:`RemoteTrack` holds when nobody reads them (oldest dropped): 5 s of
#: audio; a few decoded video frames (each is megabytes).
AUDIO_FRAMES_KEPT: Final = 250
VIDEO_FRAMES_KEPT: Final = 5
LABELS: Final = ("mic", "camera", "screen")
#: The ``media`` state each label stands for.
LABEL_STATE: Final = {"mic": "mic", "camera": "cam", "screen": "screen"}
VIDEO_CLOCK: Final = 90_000


def _loopback_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_loopback_added = False


def include_loopback() -> None:
    """Gather ICE host candidates on 127.0.0.1 too (process-wide, once): aioice leaves
    loopback out, so a bot on a machine whose only interface is ``lo`` (a container, a
    network namespace) could not reach a server on that machine."""
    global _loopback_added
    if _loopback_added:
        return
    _loopback_added = True
    original = aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = list(original(use_ipv4, use_ipv6))
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses


class RemoteTrack(MediaStreamTrack):
    """One participant's audio, camera or screen, as received from the SFU.

    Its frames are re-timed to start at 0 and grow steadily (audio by sample count,
    video by arrival time), so a ``MediaRecorder`` can write them whatever slot of the
    subscribe connection carried them.  It ends (``recv`` raises
    ``MediaStreamError``) when the participant leaves or the meeting is over.
    """

    def __init__(self, kind: str, participant_id: str, label: str) -> None:
        super().__init__()
        self.kind = kind
        self.participant_id = participant_id
        self.label = label
        keep = AUDIO_FRAMES_KEPT if kind == "audio" else VIDEO_FRAMES_KEPT
        self._frames: deque[Frame] = deque(maxlen=keep)
        self._arrived = asyncio.Event()
        self._next_pts = 0
        self._started: float | None = None
        #: Frames received so far (also those dropped unread).
        self.frames_received = 0

    def push(self, frame: Frame) -> None:
        if self.readyState != "live":
            return
        if isinstance(frame, AudioFrame):
            frame.pts = self._next_pts
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._next_pts += frame.samples
        elif isinstance(frame, VideoFrame):
            now = time.monotonic()
            if self._started is None:
                self._started = now
            pts = int((now - self._started) * VIDEO_CLOCK)
            frame.pts = max(pts, self._next_pts)
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self._next_pts = frame.pts + 1
        self.frames_received += 1
        self._frames.append(frame)
        self._arrived.set()

    async def recv(self) -> Frame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._arrived.set()


class ParticipantMedia:
    """What :meth:`Meeting.subscribe` returns: one participant's tracks."""

    def __init__(self, participant_id: str) -> None:
        self.participant_id = participant_id
        self.audio = RemoteTrack("audio", participant_id, "mic")
        self.video = RemoteTrack("video", participant_id, "camera")
        self.screen = RemoteTrack("video", participant_id, "screen")

    def track_for(self, kind: str, label: str | None) -> RemoteTrack:
        if kind == "audio":
            return self.audio
        return self.screen if label == "screen" else self.video

    def stop(self) -> None:
        for track in (self.audio, self.video, self.screen):
            track.stop()


def _ice_servers(raw: list[dict[str, object]]) -> list[RTCIceServer]:
    servers = []
    for entry in raw:
        urls = entry.get("urls")
        if isinstance(urls, str | list):
            username = entry.get("username")
            credential = entry.get("credential")
            servers.append(
                RTCIceServer(
                    urls=urls,
                    username=username if isinstance(username, str) else None,
                    credential=credential if isinstance(credential, str) else None,
                )
            )
    return servers


async def _wait_connected(pc: RTCPeerConnection, what: str) -> None:
    """Wait until ``pc`` is connected; MediaError if it fails or takes too long."""
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        if pc.connectionState == "connected" and not done.done():
            done.set_result(True)
        elif pc.connectionState in ("failed", "closed") and not done.done():
            done.set_result(False)

    pc.on("connectionstatechange", check)
    check()
    try:
        ok = await asyncio.wait_for(done, CONNECT_TIMEOUT)
    except TimeoutError:
        raise MediaError(f"the {what} connection to the SFU did not come up") from None
    finally:
        pc.remove_listener("connectionstatechange", check)
    if not ok:
        raise MediaError(f"the {what} connection to the SFU failed")


class MeetingSide(Protocol):
    """What the media side needs of its :class:`~parley.client.meeting.Meeting`."""

    url: str
    room: str
    id: str
    participants: dict[str, Participant]
    ice_servers: list[dict[str, object]]

    async def _signal(self, to: str, payload: object) -> None: ...

    async def set_media(
        self, *, mic: bool | None = None, cam: bool | None = None, screen: bool | None = None
    ) -> None: ...


class SfuMedia:
    """A meeting's two media connections with the SFU (see the module docstring)."""

    def __init__(self, meeting: MeetingSide) -> None:
        self.meeting = meeting
        if _loopback_host(meeting.url):
            include_loopback()
        self.published: dict[str, MediaStreamTrack] = {}  # label -> track
        # aiortc stops a sender's track when its connection closes: each publish
        # connection sends relayed copies, so the tracks given outlive it
        self._relay = MediaRelay()
        self._senders: dict[str, tuple[RTCRtpSender, MediaStreamTrack]] = {}  # by label
        self.muted_states: set[str] = set()  # "mic" | "cam" | "screen" a host turned off
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.layout: dict[str, tuple[str, str, str | None]] = {}  # mid -> (pid, kind, label)
        self.subscriptions: dict[str, ParticipantMedia] = {}
        self._pub_answer: asyncio.Future[str] | None = None
        self._sub_offer: asyncio.Future[str] | None = None
        self._status: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._status_ids = itertools.count(1)
        self._pub_lock = asyncio.Lock()
        self._sub_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Subscriptions of people missing from a resume's welcome, ending unless they
        #: come back (:meth:`participant_absent`).
        self._absent: dict[str, asyncio.TimerHandle] = {}
        self.closed = False

    def _config(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=_ice_servers(self.meeting.ice_servers),
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, payload: dict[str, Any]) -> None:
        await self.meeting._signal(SFU, payload)

    # -- from the server ----------------------------------------------------------------

    def on_signal(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        kind = payload.get("sfu")
        if kind == "publish-answer":
            self._resolve(self._pub_answer, payload.get("sdp"))
        elif kind == "subscribe-offer":
            self._resolve(self._sub_offer, payload.get("sdp"))
        elif kind == "layout":
            self._on_layout(payload.get("slots"))
        elif kind == "status":
            if self._status is not None and payload.get("id") == self._status[0]:
                if not self._status[1].done():
                    self._status[1].set_result(payload)
        elif kind == "republish":
            log.info("the SFU asks to publish again: %s", payload.get("reason"))
            if self.published:
                self._spawn(self._republish())
        elif kind == "error":
            message = str(payload.get("message"))
            log.warning("SFU: %s", message)
            if "publish" in message and self._pub_answer is not None:
                self._fail(self._pub_answer, message)
            elif "subscribe" in message and self._sub_offer is not None:
                self._fail(self._sub_offer, message)

    @staticmethod
    def _resolve(future: asyncio.Future[str] | None, sdp: object) -> None:
        if future is not None and not future.done():
            if isinstance(sdp, str):
                future.set_result(sdp)
            else:
                future.set_exception(MediaError("the SFU sent no SDP"))

    @staticmethod
    def _fail(future: asyncio.Future[str], message: str) -> None:
        if not future.done():
            future.set_exception(MediaError(f"the SFU refused: {message}"))

    def _on_layout(self, slots: object) -> None:
        if not isinstance(slots, list):
            return
        layout: dict[str, tuple[str, str, str | None]] = {}
        for slot in slots:
            if not isinstance(slot, dict):
                continue
            mid, pid, kind, label = (slot.get(k) for k in ("mid", "pid", "kind", "track"))
            if mid is not None and isinstance(pid, str) and isinstance(kind, str):
                layout[str(mid)] = (pid, kind, label if isinstance(label, str) else None)
        self.layout = layout

    def participant_left(self, pid: str) -> None:
        handle = self._absent.pop(pid, None)
        if handle is not None:
            handle.cancel()
        media = self.subscriptions.pop(pid, None)
        if media is not None:
            media.stop()

    def participant_absent(self, pid: str) -> None:
        """``pid`` is missing from the welcome of a resume.  After a server restart
        the others come back one by one, so its tracks end only if it is not back
        within ``ABSENT_GRACE`` (the server's default resume grace)."""
        if pid in self.subscriptions and pid not in self._absent:
            loop = asyncio.get_running_loop()
            self._absent[pid] = loop.call_later(ABSENT_GRACE, self._absent_over, pid)

    def participant_back(self, pid: str) -> None:
        """``pid`` is in the room again: its tracks go on."""
        handle = self._absent.pop(pid, None)
        if handle is not None:
            handle.cancel()

    def _absent_over(self, pid: str) -> None:
        self._absent.pop(pid, None)
        if pid not in self.meeting.participants:
            self.participant_left(pid)

    def muted(self, kind: str) -> None:
        """A host turned ``kind`` off: stop sending it until ``set_media`` turns it on."""
        self.muted_states.add(kind)
        self._set_sending(kind, False)

    def unmuted(self, kind: str) -> None:
        if kind in self.muted_states:
            self.muted_states.discard(kind)
            self._set_sending(kind, True)

    def _set_sending(self, state: str, on: bool) -> None:
        for label, (sender, relayed) in self._senders.items():
            if LABEL_STATE[label] == state:
                sender.replaceTrack(relayed if on else None)

    def reconnected(self, *, resumed: bool) -> None:
        """The signalling came back: start over what the server no longer has."""
        self._spawn(self._after_reconnect(resumed))

    async def _after_reconnect(self, resumed: bool) -> None:
        publish = subscribe = False
        if resumed and (self.pub_pc is not None or self.sub_pc is not None):
            sid = f"sdk-status-{next(self._status_ids)}"
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._status = (sid, future)
            await self._send({"sfu": "status", "id": sid})
            try:
                answer = await asyncio.wait_for(future, ANSWER_TIMEOUT)
            except TimeoutError:
                answer = {}
            publish, subscribe = answer.get("publish") is True, answer.get("subscribe") is True
        try:
            if self.published and not publish:
                log.info("the SFU no longer has this publish connection: publishing again")
                await self._republish()
            if self.sub_pc is not None and not subscribe:
                log.info("the SFU no longer has this subscribe connection: subscribing again")
                await self._subscribe(force=True)
        except MediaError as exc:
            log.error("could not restore the media after a reconnect: %s", exc)

    # -- publishing -------------------------------------------------------------------

    async def publish(self, track: MediaStreamTrack, label: str | None) -> None:
        if label is None:
            label = "mic" if track.kind == "audio" else "camera"
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
        if (track.kind == "audio") != (label == "mic"):
            raise ValueError(f"a {track.kind} track cannot be published as {label!r}")
        self.published[label] = track
        await self._republish()
        await self.meeting.set_media(**{LABEL_STATE[label]: True})

    async def unpublish(self) -> None:
        async with self._pub_lock:
            self.published.clear()
            await self._close_publish(tell_server=True)

    async def _republish(self) -> None:
        async with self._pub_lock:
            await self._close_publish(tell_server=True)
            if not self.published or self.closed:
                return
            pc = self.pub_pc = RTCPeerConnection(self._config())
            for label, track in self.published.items():
                relayed = self._relay.subscribe(track, buffered=False)
                transceiver = pc.addTransceiver(relayed, direction="sendonly")
                self._senders[label] = (transceiver.sender, relayed)
            await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
            labels = {}
            for transceiver, label in zip(pc.getTransceivers(), self.published, strict=True):
                labels[str(transceiver.mid)] = label
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._pub_answer = future
            offer = pc.localDescription.sdp
            await self._send({"sfu": "publish", "sdp": offer, "labels": labels})
            try:
                sdp = await asyncio.wait_for(future, ANSWER_TIMEOUT)
            except TimeoutError:
                raise MediaError("the SFU did not answer the publish offer") from None
            finally:
                self._pub_answer = None
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            for state in self.muted_states:
                self._set_sending(state, False)
            await _wait_connected(pc, "publish")

    async def _close_publish(self, *, tell_server: bool) -> None:
        pc, self.pub_pc = self.pub_pc, None
        self._senders = {}
        if pc is None:
            return
        if tell_server:
            with contextlib.suppress(Exception):
                await self._send({"sfu": "unpublish"})
        await pc.close()

    # -- subscribing ------------------------------------------------------------------

    async def subscribe(self, pid: str) -> ParticipantMedia:
        if pid not in self.meeting.participants:
            raise MediaError(f"{pid} is not in room {self.meeting.room}")
        if pid == self.meeting.id:
            raise MediaError("the SFU does not send a participant its own media")
        media = self.subscriptions.get(pid)
        if media is None:
            media = self.subscriptions[pid] = ParticipantMedia(pid)
        await self._subscribe(force=False)
        return media

    async def _subscribe(self, *, force: bool) -> None:
        async with self._sub_lock:
            old = self.sub_pc
            if old is not None and not force and old.connectionState not in ("failed", "closed"):
                return
            if old is not None:
                self.sub_pc = None
                await old.close()
            if self.closed:
                return
            pc = self.sub_pc = RTCPeerConnection(self._config())

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                for transceiver in pc.getTransceivers():
                    if transceiver.receiver.track is track and transceiver.mid is not None:
                        self._spawn(self._pump(str(transceiver.mid), track))
                        return

            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._sub_offer = future
            await self._send({"sfu": "subscribe"})
            try:
                sdp = await asyncio.wait_for(future, ANSWER_TIMEOUT)
            except TimeoutError:
                raise MediaError("the SFU sent no subscribe offer") from None
            finally:
                self._sub_offer = None
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self._send({"sfu": "subscribe-answer", "sdp": pc.localDescription.sdp})
            await _wait_connected(pc, "subscribe")

    async def _pump(self, mid: str, track: MediaStreamTrack) -> None:
        """Read one slot's frames (always: aiortc queues them otherwise) and hand each to
        the subscribed participant the layout puts in that slot."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            slot = self.layout.get(mid)
            if slot is None:
                continue
            media = self.subscriptions.get(slot[0])
            if media is not None and isinstance(frame, Frame):
                media.track_for(slot[1], slot[2]).push(frame)

    async def close(self, *, tell_server: bool) -> None:
        if self.closed:
            return
        self.closed = True
        await self._close_publish(tell_server=tell_server)
        pc, self.sub_pc = self.sub_pc, None
        if pc is not None:
            if tell_server:
                with contextlib.suppress(Exception):
                    await self._send({"sfu": "unsubscribe"})
            await pc.close()
        for handle in self._absent.values():
            handle.cancel()
        self._absent.clear()
        for media in self.subscriptions.values():
            media.stop()
        self.subscriptions.clear()
        for task in list(self._tasks):
            task.cancel()
