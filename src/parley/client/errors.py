"""What the SDK raises: every exception derives from :class:`ParleyError`.

* :class:`JoinRefused` (and one subclass per ``error`` code that can refuse a join):
  raised by :func:`parley.client.connect`, or by ``async for event in meeting`` when an
  automatic rejoin is refused.
* :class:`RequestRefused`: the server refused a request made during the meeting
  (``say``, ``mute``, …); ``code`` is the protocol's error code.
* :class:`IncompatibleServer`: the server speaks another protocol version.
* :class:`ConnectionLost`: the server could not be reached (at connect, or for
  ``reconnect_for`` seconds during a meeting).
* :class:`MeetingClosed`: a request on a meeting that is over.
* :class:`MediaError`: publishing or subscribing failed (or the room has no SFU).
"""

from __future__ import annotations

from typing import Final

from ..core.protocol import ErrorCode


class ParleyError(Exception):
    """Base class of every error of :mod:`parley.client`."""


class Refused(ParleyError):
    """The server answered ``{"type":"error","code":…,"message":…}``.

    ``code`` is stable (docs/protocol.md "Errors"); ``message`` is the server's text, for
    humans.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class RequestRefused(Refused):
    """A request during the meeting was refused (e.g. ``forbidden``, ``rate_limited``,
    ``too_long``); the meeting goes on."""


class JoinRefused(Refused):
    """Joining the room was refused; the subclass names the reason."""


class BadRoom(JoinRefused):
    """``bad_room``: the room name is empty, too long or has other characters."""


class BadName(JoinRefused):
    """``bad_name``: the display name is not acceptable."""


class RoomFull(JoinRefused):
    """``room_full``: the room has as many participants as it may."""


class Locked(JoinRefused):
    """``locked``: the room is locked (only hosts by join token enter)."""


class PasswordRequired(JoinRefused):
    """``password_required``: the room has a password; pass ``password=``."""


class BadPassword(JoinRefused):
    """``bad_password``: wrong room password (failures are throttled per address)."""


class TokenRequired(JoinRefused):
    """``token_required``: the server admits only holders of a join token; pass ``token=``."""


class BadToken(JoinRefused):
    """``bad_token``: the join token is forged, expired, malformed or for another room."""


class Banned(JoinRefused):
    """``banned``: a host removed and barred this identity or address."""


class Denied(JoinRefused):
    """``denied``: a host declined the lobby request."""


class TooMany(JoinRefused):
    """``too_many``: too many rooms on the server, or a full lobby."""


class RateLimited(JoinRefused):
    """``rate_limited``: too many joins, new rooms or wrong passwords from this address."""


class Forbidden(JoinRefused):
    """``forbidden``: the server did not give the role ``connect(role=…)`` asked for (the
    ``bot`` role comes only from a join token: ``parley token --role bot``)."""


#: The join refusals by error code; any other code raises :class:`JoinRefused` itself.
JOIN_REFUSALS: Final[dict[str, type[JoinRefused]]] = {
    ErrorCode.BAD_ROOM: BadRoom,
    ErrorCode.BAD_NAME: BadName,
    ErrorCode.ROOM_FULL: RoomFull,
    ErrorCode.LOCKED: Locked,
    ErrorCode.PASSWORD_REQUIRED: PasswordRequired,
    ErrorCode.BAD_PASSWORD: BadPassword,
    ErrorCode.TOKEN_REQUIRED: TokenRequired,
    ErrorCode.BAD_TOKEN: BadToken,
    ErrorCode.BANNED: Banned,
    ErrorCode.DENIED: Denied,
    ErrorCode.TOO_MANY: TooMany,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.FORBIDDEN: Forbidden,
}


def join_refused(code: str, message: str) -> JoinRefused:
    """The exception for a join refused with ``code``."""
    return JOIN_REFUSALS.get(code, JoinRefused)(code, message)


class IncompatibleServer(ParleyError):
    """The server speaks another version of the protocol than this client.

    ``server_version`` is None when the server did not say which it speaks.
    """

    def __init__(self, url: str, client_version: int, server_version: int | None) -> None:
        server = "another version" if server_version is None else f"version {server_version}"
        super().__init__(
            f"the Parley server at {url} speaks protocol {server}; this client speaks "
            f"protocol version {client_version}: use a parley package that matches the server"
        )
        self.url = url
        self.client_version = client_version
        self.server_version = server_version


class ConnectionLost(ParleyError):
    """The server could not be reached (or the connection could not be restored)."""


class MeetingClosed(ParleyError):
    """The meeting is over for this client (left, removed, ended, or lost)."""


class MediaError(ParleyError):
    """Publishing or subscribing failed, or the room does not forward media (mesh)."""
