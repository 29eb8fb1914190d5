"""The server's media path: which rooms forward media through the SFU, and the glue.

In ``sfu`` mode every room gets an :class:`parley.sfu.peer.SfuRoom` when its
first participant signals to the pseudo participant ``"sfu"``.  Signalling
travels in the protocol's ``signal`` messages (to and from ``"sfu"``); the
SFU's unsolicited messages (layouts) and the active speaker go out through
the broker like everything else.  ``mesh`` mode has no server media at all.

``--media-port`` / ``--media-public-ip`` (``settings.media_ports`` /
``settings.media_public_ip``) give every SFU room one shared
:class:`parley.sfu.aiortc.shared_ports.MediaSockets`: candidates on those UDP ports, sockets
shared by the process's peer connections, the public address advertised too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ..core import protocol as p
from ..core.effects import Deliver
from ..core.protocol import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.rooms import Rooms
    from ..sfu.peer import SfuRoom
    from ..sfu.relay.node import MediaRelay

log = logging.getLogger(__name__)

SFU_ID = "sfu"


class MediaRooms:
    """The SFU rooms of this process."""

    def __init__(
        self,
        settings: Settings,
        rooms: Rooms,
        publish: Callable[[Deliver], None],
        *,
        last_n: int = 9,
        host_addresses: list[str] | None,
    ) -> None:
        """``rooms``: the core, read for what participants signalled (camera on or off);
        ``publish``: a message out through the broker (the executor's)."""
        from ..sfu.aiortc.host_addresses import restrict_host_addresses
        from ..sfu.aiortc.shared_ports import MediaSockets

        self.core = rooms
        self.publish = publish
        #: Called when this node stops forwarding a room (the cluster frees its ownership).
        self.on_released: Callable[[str], Awaitable[None]] | None = None
        #: Called when this node starts forwarding a room (a recording attaches to it).
        self.on_sfu_room: Callable[[str, SfuRoom], None] | None = None
        self.last_n = last_n
        self.rooms: dict[str, SfuRoom] = {}
        #: The media relay between nodes (``--relay-port``): each room's router joins it;
        #: ``relay_opened`` is called when a room opens here (the directory refreshes),
        #: ``tell_local`` sends the active speaker to this node's sockets only (every
        #: node's router sees all the audio, so each tells its own participants).
        self.relay: MediaRelay | None = None
        self.relay_opened: Callable[[], None] | None = None
        self.tell_local: Callable[[str, p.ServerMessage], None] | None = None
        if host_addresses:
            restrict_host_addresses(host_addresses)
        ports, public_ip = settings.media_ports, settings.media_public_ip
        self.sockets: MediaSockets | None = None
        if ports is not None or public_ip is not None:
            # checks the aiortc/aioice internals it needs now: fails at start, not per call
            self.sockets = MediaSockets(ports, public_ip)
            log.info("sfu: media on %s", self.sockets.describe())

    def _room(self, room: str) -> SfuRoom:
        sfu = self.rooms.get(room)
        if sfu is None:
            from ..sfu.peer import SfuRoom

            sfu = self.rooms[room] = SfuRoom(
                lambda pid, payload: self._send(room, pid, payload),
                last_n=self.last_n,
                on_speaker=lambda pid: self._speaker(room, pid),
                media_sockets=self.sockets,
                camera_on=lambda pid: self._camera_on(room, pid),
                on_tracks=lambda pid, _tracks: self._tracks_changed(room, pid),
            )
            if self.relay is not None:
                self.relay.open_room(room, sfu.router)
                if self.relay_opened is not None:
                    self.relay_opened()
            if self.on_sfu_room is not None:
                self.on_sfu_room(room, sfu)
        return sfu

    def _camera_on(self, room: str, pid: str) -> bool:
        """The ``cam`` state ``pid`` last signalled (``media``/``join``), as the room knows
        it (replicated from other nodes too); someone the room does not know counts as on."""
        member = self.core.find(pid)
        return member is None or member.room != room or member.info.cam

    def _send(self, room: str, pid: str, payload: dict[str, Any]) -> None:
        out = p.SignalOut(sender=SFU_ID, payload=msgspec.Raw(msgspec.json.encode(payload)))
        self.publish(Deliver(room, out, to=(pid,)))

    def _speaker(self, room: str, pid: str | None) -> None:
        if self.relay is not None and self.tell_local is not None:
            self.tell_local(room, p.ActiveSpeaker(id=pid))
            return
        self.publish(Deliver(room, p.ActiveSpeaker(id=pid)))

    def _tracks_changed(self, room: str, pid: str) -> None:
        if self.relay is not None:
            self.relay.tracks_changed(room, pid)

    async def signal(self, pid: str, room: str, role: str, msg: p.Signal) -> None:
        """A participant's signalling for the SFU; the answers go back to it."""
        try:
            payload = msgspec.json.decode(msg.payload)
        except msgspec.DecodeError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("sfu"), str):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, 'SFU signals are objects with an "sfu" field', msg.ref
            )
        if payload["sfu"] == "status":
            # "do you still have my connections?" (a resumed client asks; after a server
            # restart the answer is no): answered without creating a room or a peer
            from ..sfu.peer import status_reply

            sfu = self.rooms.get(room)
            if sfu is not None:
                self._send(room, pid, sfu.status(pid, payload))
            else:
                self._send(room, pid, status_reply(payload, publish=False, subscribe=False))
            return
        if payload["sfu"] == "publish" and role == "observer":
            raise ProtocolError(ErrorCode.FORBIDDEN, "observers cannot send media", msg.ref)
        try:
            replies = await self._room(room).handle_signal(pid, payload)
        except Exception:
            log.exception("SFU signalling failed for %s", pid)
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "the media server could not use that offer", msg.ref
            ) from None
        for reply in replies:
            self._send(room, pid, reply)

    async def unpublish(self, room: str, pid: str) -> None:
        """Stop forwarding what ``pid`` sends (made an observer)."""
        sfu = self.rooms.get(room)
        if sfu is not None:
            try:
                await sfu.unpublish(pid)
            except Exception:
                log.exception("could not stop %s's media", pid)

    async def left(self, room: str, pid: str) -> None:
        sfu = self.rooms.get(room)
        if sfu is None:
            return
        await sfu.remove_participant(pid)
        if not sfu.peers and self.rooms.get(room) is sfu:
            del self.rooms[room]
            if self.relay is not None:
                self.relay.close_room(room)
            await sfu.close()
            await self._released(room)

    async def ended(self, room: str) -> None:
        sfu = self.rooms.pop(room, None)
        if sfu is not None:
            if self.relay is not None:
                self.relay.close_room(room)
            await sfu.close()
            await self._released(room)

    async def _released(self, room: str) -> None:
        """No more media here for ``room``: in a cluster, another node may take it."""
        if self.on_released is not None:
            await self.on_released(room)

    def stats(self) -> dict[str, int]:
        """SFU counters for /metrics, summed over live rooms (read when scraped).

        Counters of publishers that have left are not kept, so these can go down;
        they describe the forwarding going on now.
        """
        from ..sfu.forwarder import ForwardingStats

        total = sum((sfu.stats() for sfu in self.rooms.values()), ForwardingStats())
        relayed = self.relay.stats() if self.relay is not None else {}
        return {
            **relayed,
            "sfu_packets_received": total.packets_received,
            "sfu_nacks_sent": total.nacks_sent,
            "sfu_plis_sent": total.plis_sent,
            "sfu_retransmitted": total.retransmitted,
            "sfu_twcc_feedback_sent": total.twcc_feedback_sent,
        }

    async def close(self) -> None:
        for room in list(self.rooms):
            await self.ended(room)
        if self.sockets is not None:
            self.sockets.close()
        if self.relay is not None:
            self.relay.close()
