"""Settings and limits: the one place where every tunable number lives.

Each field can be set by a command-line flag (``--chat-max-chars``) or an
environment variable (``PARLEY_CHAT_MAX_CHARS``); the flag wins.  The
defaults below are the ones documented in ``docs/protocol.md``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` events per ``per`` seconds (a token bucket of that size)."""

    count: int
    per: float


@dataclass(frozen=True)
class Limits:
    """Every limit the server enforces on what clients send."""

    #: Largest WebSocket frame accepted; a bigger one closes the socket with 1009.
    max_frame_bytes: int = 64 * 1024
    #: Frames one message may be split into; more closes the socket with 1008 (empty
    #: fragments add no bytes, so the byte limit alone does not bound them).
    max_fragments: int = 128
    #: Room names: 1..N characters of letters, digits, '-', '_', '.'.
    room_name_max: int = 64
    #: Display names: 1..N characters after trimming.
    display_name_max: int = 64
    #: Chat text: 1..N characters.
    chat_max_chars: int = 4000
    #: Participants in one room (a WebRTC mesh degrades past ~6; ``parley serve`` makes it
    #: 50 for the SFU, its default media mode, unless set).
    max_participants: int = 6
    #: Chat messages returned per history page (welcome and ``history``).
    history_page: int = 50
    #: Largest history page a client may ask for.
    history_page_max: int = 200
    #: Bytes queued towards one client before it is dropped as too slow.
    max_outgoing_buffer: int = 4 * 1024 * 1024
    #: Per-connection rate limits.  ``rate_limits=False`` turns them all off.
    rate_limits: bool = True
    chat_rate: RateLimit = RateLimit(20, 10.0)
    signal_rate: RateLimit = RateLimit(400, 10.0)
    reaction_rate: RateLimit = RateLimit(10, 10.0)
    other_rate: RateLimit = RateLimit(60, 10.0)
    #: ``roster`` pages (each scans the room once: core/roster.py).
    roster_rate: RateLimit = RateLimit(20, 10.0)
    #: Rooms of more than this many people batch presence (one ``presence`` frame per
    #: 0.5 s, not a frame per join to everyone) and welcome with a first roster page
    #: (core/presence.py).  A huge value turns it off.
    presence_threshold: int = 100
    #: Rooms that may hold more than this many people are in stage mode unless a host
    #: chose otherwise: only the stage (hosts, speakers) publishes media; joiners enter
    #: the audience (core/stage.py).
    stage_threshold: int = 100
    #: Chat messages per 10 s in one room, everyone together (hosts are not held back);
    #: on top of each person's ``chat_rate``.  Off with the other rate limits.
    room_chat_rate: int = 100
    #: WebSocket control frames (pings and pongs) per connection; more closes it (1008).
    control_rate: RateLimit = RateLimit(30, 10.0)
    #: Messages per client address, all its connections together.
    address_rate: RateLimit = RateLimit(600, 10.0)
    #: Errors answered on one connection within 10 s before it is closed (1008).
    max_errors: int = 100
    #: Rooms open at once on this server.
    max_rooms: int = 1000
    #: Rooms one client address may open (bring into memory) per window; past it,
    #: ``rate_limited``.  Off with the other rate limits.
    rooms_per_address: int = 60
    rooms_per_address_window: float = 60.0
    #: Connections (HTTP and WebSocket) open at once from one client address.
    max_connections_per_address: int = 50
    #: Seconds an HTTP connection may take to send a request head, or sit idle between
    #: requests, before it is closed (WebSockets have the heartbeat instead).
    http_timeout: float = 10.0
    #: People waiting in one room's lobby.
    max_lobby: int = 50
    #: Failed room-password attempts per client address within ``join_attempt_window``.
    max_join_failures: int = 5
    join_attempt_window: float = 60.0
    #: Seconds between a host's "Close all rooms" and everyone being back in the main
    #: room (they see a countdown).
    breakout_close_warning: float = 30.0
    #: Seconds between server pings; a peer silent for 1.5x this is dropped.
    heartbeat: float = 8.0
    #: Seconds a dropped participant keeps its identity for a resume.
    resume_grace: float = 30.0
    #: Seconds a resume token is accepted at all.  It only proves an identity the
    #: server still holds (see docs/security.md), so it is no key to a room by itself.
    resume_token_ttl: float = 4 * 3600.0
    #: Seconds the client has to send ``join`` after connecting.
    join_timeout: float = 15.0


#: ``--policy-default`` values; the first is the default.
POLICY_DEFAULTS = ("allow", "deny")

#: ``--durability`` values; the first is the default (see docs/security.md, "Durability").
DURABILITY_LEVELS = ("normal", "full")


@dataclass(frozen=True)
class Settings:
    """Everything ``parley serve`` needs to run."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("parley-data")
    database_url: str | None = None
    #: What an acknowledged chat message survives: "normal" (a process kill) or "full"
    #: (also a power loss: every commit synced to disk first).
    durability: str = "normal"
    log_level: str = "info"
    #: ICE servers handed to clients in ``welcome`` (RTCIceServer dicts).
    ice_servers: tuple[dict[str, Any], ...] = ()
    #: Extra page origins allowed to open the WebSocket (the server's own always is).
    allowed_origins: tuple[str, ...] = ()
    #: Admit only holders of a signed join token.
    require_token: bool = False
    jwt_secret: str | None = None
    jwt_public_key: Path | None = None
    #: Media path: "sfu" (forwarded by this server, the default) or "mesh" (browser to
    #: browser, no media through the server).
    media: str = "sfu"
    #: Addresses the SFU gathers ICE candidates on (None: all of this host's; ``parley
    #: serve`` adds 127.0.0.1, which aioice leaves out).
    media_ips: tuple[str, ...] | None = None
    #: UDP ports (first, last) of the SFU's ICE host candidates; sockets are shared, so
    #: one port serves every peer connection (None: any port, one socket per connection).
    media_ports: tuple[int, int] | None = None
    #: Public address of a host behind 1:1 NAT: the SFU offers it as a server-reflexive
    #: candidate (same port) besides its private host candidates.
    media_public_ip: str | None = None
    #: Media relay between the nodes of a cluster (docs/deployment.md): the UDP port and
    #: private address of this node's relay socket (None: off, one node forwards each
    #: room's media) and the secret every node shares (PARLEY_RELAY_SECRET).
    relay_port: int | None = None
    relay_ip: str = "127.0.0.1"
    relay_secret: str | None = None
    #: Video streams the SFU forwards to each subscriber (the most recent speakers).
    last_n: int = 9
    #: Days of chat history kept (0: forever); a room's hosts may set their own.
    history_retention_days: int = 0
    #: Where recordings go (None: ``<data_dir>/recordings``); see docs/recording.md.
    recordings_dir: Path | None = None
    #: Where the other nodes of a cluster reach this node's HTTP API (None: from
    #: host and port); they fetch the recordings on this node's disk there.
    node_url: str | None = None
    #: Finished recordings are deleted after this many days (None: kept).
    recording_retention_days: float | None = None
    #: A recording stops (cleanly) when its disk has less free space than this (bytes).
    recording_min_free: int = 200 * 1024 * 1024
    #: Bearer token for /api/v1/admin (None: the admin API is off).
    admin_token: str | None = None
    #: Bearer token for /metrics (None: open, for a scraper on a private network).
    metrics_token: str | None = None
    #: JSON log lines instead of text.
    log_json: bool = False
    #: TURN REST API (coturn ``use-auth-secret``): shared secret, URLs, credential lifetime.
    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    turn_ttl: int = 12 * 3600
    #: Proxies (addresses or CIDR ranges) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()
    #: Redis URL: join a cluster of nodes (None: this process is the whole server).
    broker_url: str | None = None
    node_id: str | None = None
    #: Listen with SO_REUSEPORT (``--workers``: several processes share the port).
    reuse_port: bool = False
    certfile: Path | None = None
    keyfile: Path | None = None
    #: Policy hooks (a Python file), the seconds each call may take, and on_join's answer
    #: when a hook fails or is too slow ("allow" or "deny").
    policy: Path | None = None
    policy_budget: float = 0.05
    policy_default: str = "allow"
    #: Webhook receivers (POSTed every logged event, signed with ``webhook_secret``),
    #: the event types logged (None: all but chat.message, see core/events.py), and how
    #: long the log keeps events (days).
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    webhook_events: tuple[str, ...] | None = None
    #: Seconds a receiver has to answer one event before it counts as a failure.
    webhook_timeout: float = 10.0
    event_retention_days: float = 7.0
    limits: Limits = field(default_factory=Limits)

    @property
    def effective_database_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'parley.db').resolve()}"
        if self.durability != "normal":  # read (and taken off) by the store
            url += ("&" if "?" in url else "?") + f"durability={self.durability}"
        return url


#: Limits exposed as flags/env variables: name -> (type, help).
LIMIT_OPTIONS: dict[str, tuple[type, str]] = {
    "max_frame_bytes": (int, "largest WebSocket frame accepted (bytes)"),
    "max_fragments": (int, "frames one WebSocket message may be split into"),
    "chat_max_chars": (int, "longest chat message (characters)"),
    "display_name_max": (int, "longest display name (characters)"),
    "max_participants": (int, "participants per room"),
    "presence_threshold": (int, "room size above which presence is batched and paged"),
    "stage_threshold": (int, "room size limit above which a room is in stage mode by default"),
    "room_chat_rate": (int, "chat messages per 10 s in one room, everyone together"),
    "history_page": (int, "chat messages per history page"),
    "max_outgoing_buffer": (int, "bytes queued to a slow client before it is dropped"),
    "max_rooms": (int, "rooms open at once"),
    "rooms_per_address": (int, "rooms one client address may open per minute"),
    "max_connections_per_address": (int, "connections (HTTP and WebSocket) from one address"),
    "http_timeout": (float, "seconds an HTTP connection may idle, or take to send a head"),
    "max_lobby": (int, "people waiting in one room's lobby"),
    "max_join_failures": (int, "wrong room passwords per address per minute"),
    "heartbeat": (float, "silent seconds before a ping (no answer in half that: dropped)"),
    "resume_grace": (float, "seconds a dropped participant may resume"),
    "resume_token_ttl": (float, "seconds a resume token is accepted"),
    "join_timeout": (float, "seconds a new connection has to send join"),
    "breakout_close_warning": (float, "seconds of warning before closed breakouts end"),
}


def env_name(option: str) -> str:
    return "PARLEY_" + option.upper()


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def env_flag(option: str) -> bool:
    """The on/off variable of ``--option`` (``PARLEY_OPTION``); unset is off.

    1/true/yes/on and 0/false/no/off (any case); anything else stops the
    server with a message, rather than guessing what the operator meant.
    """
    var = env_name(option)
    text = os.environ.get(var, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SystemExit(f"{var}={os.environ[var]!r}: use 1/true/yes/on or 0/false/no/off")


def env_value(option: str, typ: type) -> Any:
    """``PARLEY_OPTION`` converted by ``typ`` (None if unset); a bad value stops the server."""
    var = env_name(option)
    if var not in os.environ:
        return None
    try:
        return typ(os.environ[var])
    except ValueError:
        raise SystemExit(f"{var}={os.environ[var]!r}: not a valid {typ.__name__}") from None


def limits_from(values: dict[str, Any]) -> Limits:
    """``Limits`` from parsed values (None = unset), else PARLEY_* variables, else defaults."""
    kwargs: dict[str, Any] = {}
    for name, (typ, _help) in LIMIT_OPTIONS.items():
        value = values.get(name)
        if value is None:
            value = env_value(name, typ)
        if value is not None:
            kwargs[name] = value
    if values.get("no_rate_limits") or env_flag("no_rate_limits"):
        kwargs["rate_limits"] = False
    return dataclasses.replace(Limits(), **kwargs)
