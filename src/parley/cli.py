"""The ``parley`` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import logging
import os
import signal
import ssl
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .auth import JoinTokenVerifier
from .auth.token_command import add_token_parser, run_token
from .config import (
    DURABILITY_LEVELS,
    LIMIT_OPTIONS,
    POLICY_DEFAULTS,
    Settings,
    env_flag,
    env_name,
    env_value,
    limits_from,
)
from .ops.jsonlog import configure_logging

log = logging.getLogger("parley")

#: ``--media`` values; the first is the default.
MEDIA_MODES = ("sfu", "mesh")


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(env_name(name), default)


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """``PARLEY_<NAME>`` (any case) if it is one of ``choices``, else the first; a value
    not among them stops the server with a message naming the variable."""
    value = _env(name, choices[0]).strip().lower()
    if value not in choices:
        raise SystemExit(f"{env_name(name)}={_env(name)!r}: use one of {', '.join(choices)}")
    return str(value)


def _env_int(name: str, default: int) -> int:
    value = env_value(name, int)
    return default if value is None else int(value)


def build_parser() -> argparse.ArgumentParser:
    from .sfu.ports import parse_port_range, parse_public_ip  # no aiortc import

    parser = argparse.ArgumentParser(prog="parley", description="Self-hosted online meetings.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the meeting server",
        description="Run the meeting server. Every option can also be set as PARLEY_<OPTION>.",
    )
    serve.add_argument("--host", default=_env("host", "127.0.0.1"), help="address to listen on")
    serve.add_argument("--port", type=int, default=_env_int("port", 8000), help="TCP port")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("data_dir", "parley-data")),
        help="where the SQLite database and the server secret live (default ./parley-data)",
    )
    serve.add_argument(
        "--database-url",
        default=_env("database_url"),
        help="SQLAlchemy URL, e.g. postgresql+asyncpg://user:pw@host/db (default: SQLite in the"
        " data dir)",
    )
    serve.add_argument(
        "--log-level",
        default=_env("log_level", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    serve.add_argument(
        "--ice-servers",
        default=_env("ice_servers"),
        help='JSON list of RTCIceServer objects for clients, e.g. \'[{"urls":"stun:host:3478"}]\''
        " (default: none, so media stays on the local network)",
    )
    serve.add_argument(
        "--allowed-origins",
        default=_env("allowed_origins", ""),
        help="comma-separated page origins, besides the server's own, allowed to open the"
        " WebSocket (e.g. https://meet.example.com)",
    )
    serve.add_argument(
        "--require-token",
        action="store_true",
        default=env_flag("require_token"),
        help="admit only holders of a signed join token (see `parley token`)",
    )
    serve.add_argument(
        "--jwt-secret",
        default=_env("jwt_secret"),
        help="HS256 secret for join tokens (or PARLEY_JWT_SECRET)",
    )
    serve.add_argument(
        "--jwt-public-key",
        type=Path,
        default=_env("jwt_public_key"),
        help="PEM public key for RS256/ES256 join tokens",
    )
    serve.add_argument(
        "--durability",
        choices=DURABILITY_LEVELS,
        default=None,
        help="what an acknowledged chat message survives: normal (the default: a crash of"
        " parley; SQLite synchronous=NORMAL) or full (also a power loss: every commit is"
        " synced to disk first, slower; PostgreSQL: synchronous_commit=on)",
    )
    serve.add_argument(
        "--media",
        choices=MEDIA_MODES,
        default=_env("media", "sfu"),
        help="media path: sfu (the default: the server forwards media, rooms of up to 50) or"
        " mesh (browser to browser, no media through the server, rooms of up to 6)",
    )
    serve.add_argument(
        "--media-ip",
        action="append",
        default=None,
        help="address the SFU offers for media (repeatable; default: all of this host's,"
        " 127.0.0.1 included)",
    )
    serve.add_argument(
        "--media-port",
        type=parse_port_range,
        default=_env("media_port"),
        metavar="PORT[-PORT]",
        help="SFU: UDP port, or range like 40000-40099, of all media (sockets are shared:"
        " one port is enough; open it in the firewall). Default: any port",
    )
    serve.add_argument(
        "--media-public-ip",
        type=parse_public_ip,
        default=_env("media_public_ip"),
        metavar="IP",
        help="SFU behind 1:1 NAT (cloud VM): public address offered to clients, besides the"
        " private one (use with --media-port)",
    )
    serve.add_argument(
        "--last-n",
        type=int,
        default=_env_int("last_n", 9),
        help="video streams the SFU forwards to each participant (most recent speakers)",
    )
    serve.add_argument(
        "--broker",
        default=_env("broker"),
        help="redis://HOST:PORT/DB to run as one node of a cluster (shared rooms across nodes;"
        " needs the same PARLEY_SECRET on every node and a shared --database-url)",
    )
    serve.add_argument("--node-id", default=_env("node_id"), help="this node's name in a cluster")
    serve.add_argument(
        "--relay-port",
        type=int,
        default=env_value("relay_port", int),
        metavar="PORT",
        help="cluster with the SFU: relay one room's media between nodes over this UDP port"
        " (0: any free port), so each participant's media stays on its own node; needs"
        " --broker and PARLEY_RELAY_SECRET (docs/deployment.md)",
    )
    serve.add_argument(
        "--relay-ip",
        default=_env("relay_ip", "127.0.0.1"),
        metavar="IP",
        help="this node's private address for the media relay (bound and told to the other"
        " nodes; default 127.0.0.1: nodes on one host)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=_env_int("workers", 1),
        help="server processes on this port, e.g. one per core (needs --broker: they share"
        " rooms through Redis, as the nodes of a cluster do)",
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        default=env_flag("reuse_port"),
        help="listen with SO_REUSEPORT (several processes on one port; --workers sets it)",
    )
    serve.add_argument(
        "--history-retention-days",
        type=int,
        default=_env_int("history_retention_days", 0),
        help="delete chat history older than this many days (0: keep it; a room's hosts"
        " may set their own)",
    )
    serve.add_argument(
        "--recordings-dir",
        type=Path,
        default=_env("recordings_dir"),
        help="where recordings go (default: DATA_DIR/recordings)",
    )
    serve.add_argument(
        "--node-url",
        default=_env("node_url"),
        help="where the other nodes of a cluster reach this node's HTTP API, for the"
        " recordings on its disk (default: http://HOST:PORT)",
    )
    serve.add_argument(
        "--recording-retention-days",
        type=float,
        default=_env("recording_retention_days"),
        help="delete finished recordings after this many days (default: keep them)",
    )
    serve.add_argument(
        "--admin-token", default=_env("admin_token"), help="bearer token for /api/v1/admin/"
    )
    serve.add_argument(
        "--metrics-token", default=_env("metrics_token"), help="bearer token for /metrics"
    )
    serve.add_argument(
        "--log-json",
        action="store_true",
        default=env_flag("log_json"),
        help="structured JSON log lines",
    )
    serve.add_argument(
        "--turn-secret",
        default=_env("turn_secret"),
        help="coturn static-auth-secret: hand out short-lived TURN credentials in welcome",
    )
    serve.add_argument(
        "--turn-urls",
        default=_env("turn_urls", ""),
        help="comma-separated TURN URLs, e.g. turn:turn.example.com:3478?transport=udp",
    )
    serve.add_argument(
        "--turn-ttl", type=int, default=_env_int("turn_ttl", 12 * 3600), help="seconds"
    )
    serve.add_argument(
        "--trusted-proxies",
        default=_env("trusted_proxies", ""),
        help="comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed"
        " (e.g. 127.0.0.1 behind a local nginx)",
    )
    serve.add_argument("--certfile", type=Path, default=_env("certfile"), help="TLS certificate")
    serve.add_argument("--keyfile", type=Path, default=_env("keyfile"), help="TLS private key")
    serve.add_argument(
        "--no-rate-limits",
        action="store_true",
        default=None,
        help="turn off per-connection rate limits (benchmarks, trusted deployments)",
    )
    for name, (typ, help_text) in LIMIT_OPTIONS.items():
        serve.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=help_text)
    serve.add_argument(
        "--policy",
        type=Path,
        default=_env("policy"),
        help="a Python file of policy hooks (on_join, on_chat, …): see docs/hooks.md",
    )
    serve.add_argument(
        "--policy-budget",
        type=float,
        default=None,
        help="milliseconds a policy hook may take before the default applies (50)",
    )
    serve.add_argument(
        "--policy-default",
        choices=POLICY_DEFAULTS,
        default=None,
        help="on_join's answer when the hook fails or is too slow: allow (default) or deny",
    )
    serve.add_argument(
        "--webhook-url",
        action="append",
        default=None,
        metavar="URL",
        help="POST each logged event here, signed (repeatable; env: comma-separated): "
        "see docs/webhooks.md",
    )
    serve.add_argument(
        "--webhook-secret",
        default=_env("webhook_secret"),
        help="the HMAC-SHA256 key of X-Parley-Signature (required with --webhook-url)",
    )
    serve.add_argument(
        "--webhook-events",
        default=_env("webhook_events"),
        metavar="TYPES",
        help="comma-separated event types to log and deliver (default: all but chat.message)",
    )
    serve.add_argument(
        "--webhook-timeout",
        type=float,
        default=None,
        help="seconds a webhook receiver has to answer an event before a retry (10)",
    )
    serve.add_argument(
        "--event-retention-days",
        type=float,
        default=None,
        help="days the event log keeps events (7)",
    )
    add_token_parser(sub)
    compose = sub.add_parser(
        "compose",
        help="render a recording into one video file",
        description="Render a recording (a directory with manifest.json and its tracks) into"
        " one file: a grid of the cameras following the meeting, a shared screen large, the"
        " audio mixed (docs/recording.md).",
    )
    compose.add_argument("recording", type=Path, help="the recording's directory")
    compose.add_argument("-o", "--output", type=Path, required=True, help="OUT.mp4 or OUT.webm")
    compose.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    compose.add_argument("--fps", type=int, default=25, choices=(10, 15, 20, 25, 30))
    compose.add_argument(
        "--vtt", action="store_true", help="also write the chat as WebVTT subtitles (OUT.vtt)"
    )
    compose.add_argument(
        "--burn-chat", action="store_true", help="draw the chat into the picture (its last lines)"
    )
    policy = sub.add_parser("policy", help="policy files", description="Policy hook files.")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser(
        "check", help="load a policy file and list its hooks, as the server would"
    )
    check.add_argument("file", type=Path)
    return parser


def run_policy_check(args: argparse.Namespace) -> int:
    from .policy.runner import PolicyError, load

    try:
        loaded = load(args.file)
    except PolicyError as exc:
        print(f"parley policy check: error: {exc}", file=sys.stderr)
        return 1
    hooks = ", ".join(sorted(loaded.hooks)) or "no hooks"
    timers = ", ".join(t.name for t in loaded.timers) or "no timers"
    print(f"{args.file}: ok ({hooks}; {timers})")
    return 0


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def _relay_ip(text: str) -> str:
    """``--relay-ip``: this node's own address on the private network, which the other
    nodes send to (so not a wildcard, a name or a multicast group)."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        raise SystemExit(
            f"--relay-ip {text!r}: an IP address of this node is needed (e.g. 10.0.0.5)"
        ) from None
    if ip.is_unspecified or ip.is_multicast:
        raise SystemExit(
            f"--relay-ip {text}: the other nodes send to this address, so it must be this"
            " node's own (e.g. 10.0.0.5), not a wildcard or a multicast group"
        )
    return str(ip)


def settings_from(args: argparse.Namespace) -> Settings:
    ice: tuple[dict[str, Any], ...] = ()
    if args.ice_servers:
        parsed = json.loads(args.ice_servers)
        if not isinstance(parsed, list) or not all(isinstance(x, dict) for x in parsed):
            raise SystemExit("--ice-servers must be a JSON list of objects")
        ice = tuple(parsed)
    if args.require_token and not (args.jwt_secret or args.jwt_public_key):
        raise SystemExit("--require-token needs --jwt-secret or --jwt-public-key")
    if args.broker and not os.environ.get("PARLEY_SECRET"):
        raise SystemExit(
            "--broker: every node must share PARLEY_SECRET (resume tokens are checked on any node)"
        )
    if bool(args.certfile) != bool(args.keyfile):
        raise SystemExit("--certfile and --keyfile go together")
    origins = _csv(args.allowed_origins)
    if args.turn_secret and not _csv(args.turn_urls):
        raise SystemExit("--turn-secret needs --turn-urls")
    limits = limits_from(vars(args))
    if args.media not in MEDIA_MODES:  # argparse checks the flag, not PARLEY_MEDIA
        raise SystemExit(
            f"PARLEY_MEDIA must be one of {', '.join(MEDIA_MODES)}, not {args.media!r}"
        )
    if args.history_retention_days < 0:
        raise SystemExit("--history-retention-days must be 0 (keep history) or more")
    if (args.media_port or args.media_public_ip) and args.media != "sfu":
        raise SystemExit("--media-port and --media-public-ip need --media sfu")
    relay_secret = os.environ.get("PARLEY_RELAY_SECRET") or None
    if args.relay_port is not None:
        if args.media != "sfu" or not args.broker:
            raise SystemExit("--relay-port needs --media sfu and --broker (a cluster)")
        if not relay_secret:
            raise SystemExit("--relay-port needs PARLEY_RELAY_SECRET, the same on every node")
        if not 0 <= args.relay_port < 65536:
            raise SystemExit("--relay-port must be a UDP port (0: any free one)")
        if args.relay_port and args.workers > 1:
            raise SystemExit("--workers with --relay-port: use --relay-port 0 (a port each)")
        args.relay_ip = _relay_ip(args.relay_ip)
    if (
        args.media == "sfu"
        and args.max_participants is None
        and not os.environ.get("PARLEY_MAX_PARTICIPANTS")
    ):
        # The SFU (the default) uploads each stream once: rooms can be far bigger than a
        # mesh, whose 6 stays the Limits default (``--media mesh``).
        limits = dataclasses.replace(limits, max_participants=50)
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        durability=args.durability or _env_choice("durability", DURABILITY_LEVELS),
        log_level=args.log_level,
        ice_servers=ice,
        allowed_origins=origins,
        require_token=args.require_token,
        jwt_secret=args.jwt_secret,
        jwt_public_key=args.jwt_public_key,
        certfile=args.certfile,
        keyfile=args.keyfile,
        broker_url=args.broker,
        recordings_dir=Path(args.recordings_dir) if args.recordings_dir else None,
        node_url=args.node_url or None,
        recording_retention_days=(
            float(args.recording_retention_days) if args.recording_retention_days else None
        ),
        admin_token=args.admin_token,
        metrics_token=args.metrics_token,
        history_retention_days=args.history_retention_days,
        log_json=args.log_json,
        turn_secret=args.turn_secret,
        turn_urls=_csv(args.turn_urls),
        turn_ttl=args.turn_ttl,
        trusted_proxies=_csv(args.trusted_proxies),
        media=args.media,
        media_ips=tuple(args.media_ip) if args.media_ip else None,
        media_ports=args.media_port,
        media_public_ip=args.media_public_ip,
        last_n=args.last_n,
        node_id=args.node_id,
        relay_port=args.relay_port,
        relay_ip=args.relay_ip,
        relay_secret=relay_secret,
        reuse_port=args.reuse_port,
        policy=args.policy,
        policy_budget=(args.policy_budget or env_value("policy_budget", float) or 50.0) / 1000,
        policy_default=args.policy_default or _env_choice("policy_default", POLICY_DEFAULTS),
        webhook_urls=_webhook_urls(
            args.webhook_url or _csv(_env("webhook_url")), args.webhook_secret
        ),
        webhook_secret=args.webhook_secret,
        webhook_events=_event_types(args.webhook_events),
        webhook_timeout=_positive(
            "--webhook-timeout", args.webhook_timeout, env_value("webhook_timeout", float), 10.0
        ),
        event_retention_days=_positive(
            "--event-retention-days",
            args.event_retention_days,
            env_value("event_retention_days", float),
            7.0,
        ),
        limits=limits,
    )


def _webhook_urls(urls: Sequence[str], secret: str | None) -> tuple[str, ...]:
    from urllib.parse import urlsplit

    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"--webhook-url {url!r}: use an http:// or https:// URL with a host")
    if urls and not secret:
        raise SystemExit(
            "--webhook-url needs --webhook-secret (or PARLEY_WEBHOOK_SECRET): "
            "receivers check each event's signature with it"
        )
    return tuple(urls)


def _event_types(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    from .core.events import EVENT_TYPES

    chosen = _csv(text)
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown or not chosen:
        raise SystemExit(
            f"--webhook-events: unknown event type {', '.join(unknown) or '(none given)'}; "
            f"use some of: {', '.join(EVENT_TYPES)}"
        )
    return chosen


def _positive(flag: str, value: float | None, env: float | None, default: float) -> float:
    chosen = value if value is not None else env if env is not None else default
    if not chosen > 0:
        raise SystemExit(f"{flag}: must be more than 0")
    return float(chosen)


class StartupError(Exception):
    """``parley serve`` cannot start; ``str(error)`` is the one line printed (no traceback)."""


def check_data_dir(data_dir: Path, database_url: str | None) -> None:
    """Stop with one clear line, before anything starts, when the data dir cannot hold what
    the server writes there: the secret (unless PARLEY_SECRET or it exists) and the SQLite
    database with its WAL files (unless --database-url names another database)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc}"
        ) from None
    has_secret = bool(os.environ.get("PARLEY_SECRET")) or (data_dir / "secret").exists()
    if database_url and has_secret:
        return
    try:  # a real write: root passes access() checks, not a read-only mount
        fd, probe = tempfile.mkstemp(prefix=".parley-write-check-", dir=data_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StartupError(
            f"the data directory {data_dir} is not writable ({exc.strerror or exc});"
            " give --data-dir (PARLEY_DATA_DIR) a directory parley can write to"
        ) from None


def join_token_verifier(settings: Settings) -> JoinTokenVerifier | None:
    if settings.jwt_public_key is not None:
        return JoinTokenVerifier(public_key_pem=settings.jwt_public_key.read_bytes())
    if settings.jwt_secret:
        return JoinTokenVerifier(secret=settings.jwt_secret)
    return None


async def serve(settings: Settings) -> None:
    from aiohttp import web
    from sqlalchemy.exc import SQLAlchemyError

    from .policy.runner import PolicyError
    from .server import heap
    from .server.app import Server, make_app
    from .server.site import ParleySite

    if settings.media == "sfu" and settings.media_ips is None:
        # Every address of this host, as aioice finds them, plus 127.0.0.1, which aioice
        # leaves out: browsers on this machine reach the SFU even with no other interface up.
        from .sfu.aiortc.host_addresses import include_loopback

        include_loopback()
    try:
        server = Server(settings, join_tokens=join_token_verifier(settings))
        # An idle kept-alive HTTP connection, or one trickling a request head, is closed
        # after http_timeout (aiohttp counts both as idle); the first request's head is
        # timed by the front door (server/websocket.py).
        runner = web.AppRunner(
            make_app(server),
            handle_signals=False,
            shutdown_timeout=10,
            keepalive_timeout=settings.limits.http_timeout,
            # Room for a long query string (a 10,000-character search gets its typed
            # "too_long" from the API rather than a bare 400 from aiohttp's 8 KiB limit).
            max_line_size=32768,
        )
        await runner.setup()
        ssl_context = None
        if settings.certfile and settings.keyfile:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(settings.certfile, settings.keyfile)
        site = ParleySite(
            runner,
            settings.host,
            settings.port,
            reuse_address=True,
            reuse_port=settings.reuse_port or None,
            ssl_context=ssl_context,
        )
        await site.start()
    except PolicyError as exc:
        raise StartupError(f"--policy: {exc}") from None
    except (OSError, SQLAlchemyError) as exc:
        # The environment, not a bug (database unreachable or unwritable, port taken,
        # unreadable certificate): one line; the details are in the exception's first line.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"cannot start: {first}") from None
    heap.settle()
    scheme = "https" if ssl_context else "http"
    log.info("parley %s listening on %s://%s:%d", __version__, scheme, settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    log.info("stopped")


def run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def run_compose(args: argparse.Namespace) -> int:
    """``parley compose``: one file from a recording (parley.recording.compose)."""
    from .recording.compose.render import ComposeError, compose

    try:
        width, height = (int(v) for v in str(args.size).lower().split("x"))
        if not (160 <= width <= 3840 and 90 <= height <= 2160):
            raise ValueError
    except ValueError:
        print("parley compose: error: --size is WIDTHxHEIGHT, e.g. 1280x720", file=sys.stderr)
        return 2
    output: Path = args.output
    try:
        result = compose(
            args.recording, output, width=width & ~1, height=height & ~1, fps=args.fps,
            vtt=output.with_suffix(".vtt") if args.vtt else None, burn_chat=args.burn_chat,
        )  # fmt: skip
    except ComposeError as exc:
        print(f"parley compose: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{output}: {result.seconds:.1f} s from {result.tracks} tracks in {result.elapsed:.1f} s"
        f" ({result.seconds / max(result.elapsed, 1e-9):.1f}x real time)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token":
        return run_token(args)
    if args.command == "policy":
        return run_policy_check(args)
    if args.command == "compose":
        return run_compose(args)
    try:
        if args.command == "serve" and args.workers != 1:
            from .workers import run_workers

            if args.workers < 1:
                raise SystemExit("--workers must be at least 1")
            configure_logging(args.log_level, args.log_json)
            check_data_dir(Path(args.data_dir), args.database_url)
            return run_workers(args, list(sys.argv[1:] if argv is None else argv))
        if args.command == "serve":
            settings = settings_from(args)
            fields = {"node": settings.node_id} if settings.node_id else None
            configure_logging(settings.log_level, settings.log_json, fields=fields)
            check_data_dir(settings.data_dir, settings.database_url)
            run(serve(settings))
    except StartupError as exc:
        print(f"parley serve: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
