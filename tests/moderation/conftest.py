"""Fixtures for the moderation, access-control and hardening end-to-end tests.

All servers these tests need are launched together, once per session, the first
time any of them is asked for (``fleet``): starting Python processes one after
another is what would cost most time on a busy machine.  Every test uses its own
room, and tests that touch per-address state (bans, password throttling, rate
and connection limits) use a loopback source address of their own.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.moderation.harness import Fleet, Net, rsa_keypair_pem
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port
from tests.support.tls import self_signed_cert

#: The shared server: three wrong passwords per address and minute, one extra origin.
MSERVER_FLAGS = ("--max-join-failures", "3", "--allowed-origins", "http://good.example")


@pytest.fixture(scope="session")
def mserver_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., ParleyProcess]]:
    """Factory: ``mserver_factory("--max-rooms", "2", launch_only=True)`` makes a server.

    ``data_dir=``/``port=`` reuse an earlier server's; ``tls=True`` serves HTTPS.
    All servers made here are stopped by PID at the end of the session.
    """
    started: list[ParleyProcess] = []

    def make(*args: str, tls: bool = False, launch_only: bool = False) -> ParleyProcess:
        base = tmp_path_factory.mktemp("modsrv")
        srv = ParleyProcess(
            port=free_port(),
            data_dir=base / "data",
            args=tuple(args),
            log_path=base / "server.log",
            tls=tls,
            ready_timeout=180,  # several start at once on a busy machine
            stop_timeout=30,
        )
        started.append(srv)
        return srv.launch() if launch_only else srv.start()

    yield make
    for srv in started:  # signal them all first: they shut down in parallel
        srv.send_signal(signal.SIGTERM)
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def fleet(
    mserver_factory: Callable[..., ParleyProcess], tmp_path_factory: pytest.TempPathFactory
) -> Fleet:
    keys = tmp_path_factory.mktemp("keys")
    secret = secrets.token_urlsafe(32)
    private_pem, public_pem = rsa_keypair_pem()
    (keys / "jwt-public.pem").write_bytes(public_pem)
    certfile, keyfile = self_signed_cert(keys)
    make = mserver_factory
    fleet = Fleet(
        main=make(*MSERVER_FLAGS, launch_only=True),
        # "=": a url-safe secret may start with "-", which argparse would take for an option
        hs256=make("--require-token", f"--jwt-secret={secret}", launch_only=True),
        rs256=make(
            "--require-token", "--jwt-public-key", str(keys / "jwt-public.pem"), launch_only=True
        ),
        limits=make("--max-connections-per-address", "3", "--max-rooms", "2", launch_only=True),
        tls=make(
            "--certfile", str(certfile), "--keyfile", str(keyfile), tls=True, launch_only=True
        ),
        plain=make(launch_only=True),
        jwt_secret=secret,
        rsa_private_pem=private_pem,
        rsa_public_pem=public_pem,
        certfile=certfile,
    )
    for srv in (fleet.main, fleet.hs256, fleet.rs256, fleet.limits, fleet.tls, fleet.plain):
        srv.wait_ready()
    return fleet


@pytest.fixture(scope="session")
def mserver(fleet: Fleet) -> ParleyProcess:
    return fleet.main


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    n = Net()
    yield n
    await n.close()
