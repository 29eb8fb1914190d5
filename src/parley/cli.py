"""The ``parley`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .config import LIMIT_OPTIONS, Settings, env_name, limits_from

log = logging.getLogger("parley")


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(env_name(name), default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Self-hosted online meetings.")
    parser.add_argument("--version", action="version", version=f"parley {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the meeting server",
        description="Run the meeting server. Every option can also be set as PARLEY_<OPTION>.",
    )
    serve.add_argument("--host", default=_env("host", "127.0.0.1"), help="address to listen on")
    serve.add_argument("--port", type=int, default=int(_env("port", 8000)), help="TCP port")
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
        "--no-rate-limits",
        action="store_true",
        default=None,
        help="turn off per-connection rate limits (benchmarks, trusted deployments)",
    )
    for name, (typ, help_text) in LIMIT_OPTIONS.items():
        serve.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=help_text)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    ice: tuple[dict[str, Any], ...] = ()
    if args.ice_servers:
        parsed = json.loads(args.ice_servers)
        if not isinstance(parsed, list) or not all(isinstance(x, dict) for x in parsed):
            raise SystemExit("--ice-servers must be a JSON list of objects")
        ice = tuple(parsed)
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        log_level=args.log_level,
        ice_servers=ice,
        limits=limits_from(vars(args)),
    )


async def serve(settings: Settings) -> None:
    from aiohttp import web

    from .server.app import Server, make_app

    server = Server(settings)
    runner = web.AppRunner(make_app(server), handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    log.info("parley %s listening on http://%s:%d", __version__, settings.host, settings.port)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        settings = settings_from(args)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
