"""A participant made an observer stops being forwarded, through the real server
(``parley serve --media sfu``): the server tells its SFU to stop (``SfuRoom.unpublish``),
the others' layouts drop that participant and ``/metrics`` stops counting its packets.
aiortc peers on 127.0.0.1 publish and subscribe over the protocol's ``signal`` messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import aiohttp
import pytest

from tests.sfu.sfu_media import WAIT, Person, wait_for
from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port
from tests.support.ws_client import Clients

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def sfu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyProcess]:
    base = tmp_path_factory.mktemp("parley-sfu-observer")
    srv = ParleyProcess(
        port=free_port(),
        data_dir=base / "data",
        args=("--media", "sfu", "--media-ip", "127.0.0.1", "--no-rate-limits"),
        log_path=base / "server.log",
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def packets_received(server: ParleyProcess) -> int:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    m = re.search(r"^parley_sfu_packets_received_total (\S+)$", text, re.M)
    assert m is not None, text[-2000:]
    return int(float(m.group(1)))


async def test_made_observer_stops_being_forwarded(
    sfu_server: ParleyProcess, clients: Clients, loopback_only: None, room: str
) -> None:
    host_ws = await clients.join(sfu_server, room, "Host")
    ada = Person("Ada", await clients.join(sfu_server, room, "Ada"))
    bob = Person("Bob", await clients.join(sfu_server, room, "Bob"))
    try:
        await ada.publish()
        await bob.subscribe()
        await wait_for(lambda: bob.decoded(ada.id) >= 10, WAIT, lambda: str(bob.layout()))
        assert await packets_received(sfu_server) > 0

        await host_ws.send({"type": "set-role", "to": ada.id, "role": "observer", "ref": "o"})
        # bob's slots no longer show ada, and the SFU no longer has her packets
        await wait_for(
            lambda: bob.layouts[-1] and not bob.shown("video") and not bob.shown("audio"),
            WAIT,
            lambda: str(bob.layout()),
        )
        assert await packets_received(sfu_server) == 0
    finally:
        await ada.close()
        await bob.close()
