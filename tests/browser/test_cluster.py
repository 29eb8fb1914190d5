"""Issue 5 in Chromium: a call across two cluster nodes, and a call forced through TURN.

* ``test_call_across_nodes``: redis-server and two ``parley serve --broker`` nodes in
  the test namespace; one page pinned to node A, the other to node B, in the same
  room: they see each other, media flows both ways (signalling relayed through
  Redis), chat crosses nodes.
* ``test_call_through_turn_relay``: a real coturn (``use-auth-secret``) in the
  namespace, a server handing out its ephemeral credentials (``--turn-secret``), two
  pages with ``?relay=1`` (``iceTransportPolicy: "relay"``): media flows, the selected
  ICE candidate pair is a relay one on both pages, and coturn logged the allocations.
* ``test_sfu_call_through_turn_relay``: the same coturn, the SFU, one relay-only page:
  both its connections to the SFU run over its relay candidate.

Everything (redis-server, nodes, coturn, Chromium) runs inside the loopback-only
namespace of conftest.py, and every process started here is stopped by its PID.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.cluster_support import RelayPages, metric, selected_pairs
from tests.support.coturn import Coturn, write_coturn_config
from tests.support.processes import free_udp_tcp_port
from tests.support.redis_server import RedisServer

# conftest.py's classes are only used through its fixtures (no `import conftest`).
Meeting = Participant = ParleyServer = NetNS = Any

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

TIMEOUT_MS = 30_000
TURN_SECRET = "turn-" + secrets.token_hex(16)
TURN_REALM = "parley.test"


class _NoDefaultServer:
    """This module pins every page to a server explicitly (``server=``)."""

    url = "(none)"

    def room_url(self, room: str) -> str:  # pragma: no cover - a test bug if reached
        raise AssertionError("pass server= to meeting.join(): this module has no default server")


@pytest.fixture
def server() -> Any:
    # Overrides conftest's module server: the `meeting` fixture wants one, but every
    # page here names its node, so no extra `parley serve` is started for nothing.
    return _NoDefaultServer()


@pytest.fixture
def redis(netns: NetNS, tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server on the namespace's 127.0.0.1 (no persistence)."""
    port = netns.call(free_udp_tcp_port)
    proc = RedisServer(port, tmp_path / "redis.log", ns=netns, die_with_parent=True).start()
    yield proc
    proc.stop()


@pytest.fixture
def nodes(
    redis: RedisServer,
    parley_server: Callable[..., ParleyServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ParleyServer, ParleyServer]]:
    """Two nodes of one cluster: same Redis, same PARLEY_SECRET, same database.

    The database is one SQLite file shared by both nodes: PostgreSQL listens on the
    host's loopback, which the test namespace cannot reach.  SQLite in WAL mode (with
    the store's busy_timeout) serves two processes on one machine well enough for a
    two-person call; production clusters use PostgreSQL.  The nodes start one after
    the other, so only one of them runs the schema migrations on the fresh file."""
    # Read by conftest's server env at start time (os.environ); undone after the test.
    monkeypatch.setenv("PARLEY_SECRET", secrets.token_hex(32))
    db = tmp_path / "shared.db"
    # A mesh call: its signalling is what crosses the nodes here (the SFU across nodes is
    # tests/cluster/test_sfu.py's).
    common = ("--broker", redis.url, "--database-url", f"sqlite+aiosqlite:///{db}")
    common += ("--media", "mesh")
    a = parley_server(*common, "--node-id", "node-a")
    b = parley_server(*common, "--node-id", "node-b")
    yield a, b
    # Before Redis goes (fixture teardown order): a node never waits for a dead broker.
    a.stop()
    b.stop()


@pytest.fixture
def coturn(netns: NetNS, tmp_path: Path) -> Iterator[Coturn]:
    """coturn on the namespace's 127.0.0.1 (``use-auth-secret``), relaying on 127.0.0.1."""
    port = netns.call(free_udp_tcp_port)
    proc = Coturn(
        config=write_coturn_config(tmp_path, port, TURN_SECRET, TURN_REALM, "verbose"),
        log_path=tmp_path / "turnserver.out",
        port=port,
        turn_log=tmp_path / "turn.log",  # the config's log-file
        ns=netns,
        die_with_parent=True,
    ).start()
    yield proc
    proc.stop()


def _both_see_each_other(a: Participant, b: Participant) -> None:
    for person, other in ((a, b), (b, a)):
        person.open_participants()
        expect(person.entry(other.name)).to_have_count(1, timeout=TIMEOUT_MS)
        expect(person.participants.get_by_role("listitem")).to_have_count(2, timeout=TIMEOUT_MS)


def _media_both_ways(a: Participant, b: Participant) -> None:
    for person in (a, b):
        person.wait_media_flowing(video_streams=1, audio_streams=1, timeout_ms=TIMEOUT_MS)
        person.wait_remote_videos(1, timeout_ms=TIMEOUT_MS)


def test_call_across_nodes(
    nodes: tuple[ParleyServer, ParleyServer], meeting: Meeting, room: str
) -> None:
    node_a, node_b = nodes
    assert node_a.port != node_b.port
    assert node_a.api("/healthz")["node"] == "node-a"
    assert node_b.api("/healthz")["node"] == "node-b"

    ada = meeting.join("Ada", room, server=node_a)
    bob = meeting.join("Bob", room, server=node_b)
    assert ada.page.url.startswith(node_a.url + "/") and bob.page.url.startswith(node_b.url + "/")

    # Each node serves exactly its own page (the pages are pinned, no balancer).
    for node in (node_a, node_b):
        _, text = node.http_get("/metrics", timeout=5)
        assert metric(text, "parley_participants") == 1, (node.url, text[:3000])

    # Presence is the cluster's: each page lists both, and so does either node's API.
    _both_see_each_other(ada, bob)
    node_a.wait_room_names(room, ["Ada", "Bob"])
    node_b.wait_room_names(room, ["Ada", "Bob"])

    # Signalling went A -> Redis -> B and back: the mesh call is up, media both ways.
    _media_both_ways(ada, bob)

    # Chat crosses nodes in both directions.
    ada.send_chat("hello from node A")
    bob.wait_chat_entry("hello from node A", "Ada")
    bob.send_chat("hello back from node B")
    ada.wait_chat_entry("hello back from node B", "Bob")

    # ... and all of it went through Redis: both nodes are connected to the broker and
    # timed messages arriving from the other node.  (parley_broker_published_total and
    # parley_broker_received_total would say it more directly, but nothing in the
    # server increments them yet: they stay 0 on a working cluster.)
    for node in (node_a, node_b):
        _, text = node.http_get("/metrics", timeout=5)
        assert metric(text, "parley_broker_up") == 1, (node.url, text[:3000])
        assert (metric(text, "parley_broker_lag_seconds_count") or 0) > 0, (node.url, text[:3000])


def test_call_through_turn_relay(
    coturn: Coturn, parley_server: Callable[..., ParleyServer], meeting: Meeting, room: str
) -> None:
    turn_url = f"turn:127.0.0.1:{coturn.port}?transport=udp"
    # A mesh: both ends of each page's selected pair are relay candidates (through an SFU
    # the remote end would be the server's host candidate).
    srv = parley_server(
        "--media", "mesh",
        "--turn-secret", TURN_SECRET, "--turn-urls", turn_url, "--turn-ttl", "600",
    )  # fmt: skip
    relay = RelayPages(srv)

    ada = meeting.join("Ada", room, server=relay)
    bob = meeting.join("Bob", room, server=relay)
    assert ada.page.url.endswith("?relay=1") and bob.page.url.endswith("?relay=1")
    _both_see_each_other(ada, bob)
    _media_both_ways(ada, bob)

    for person in (ada, bob):
        pairs = selected_pairs(person.page)
        assert pairs, f"{person.name}: no selected candidate pair: {pairs}"
        for pair in pairs:
            assert pair["policy"] == "relay", f"{person.name}: ?relay=1 not honoured: {pair}"
            assert "relay" in (pair["local"], pair["remote"]), (
                f"{person.name}: media not through TURN: {pair}"
            )
            # With policy "relay" a page gathers nothing but relay candidates.
            assert pair["local"] == "relay" and pair["remote"] == "relay", pair
            # ... allocated on our coturn, through the URL the server handed out.
            assert pair["localUrl"] == turn_url, f"{person.name}: {pair}"
            assert pair["localAddress"].startswith("127.0.0.1:"), pair
            assert pair["bytesReceived"] > 0 and pair["bytesSent"] > 0, pair

    # coturn itself saw it: authenticated allocations by the server's ephemeral users
    # ("<expiry>:<participant id>") and permissions/channels towards the other relay.
    def allocations() -> list[str]:
        return [
            ln
            for ln in coturn.turn_log_text().splitlines()
            if re.search(r"ALLOCATE processed, success", ln)
        ]

    def usernames() -> set[str]:
        return set(re.findall(r"username=<(\d+:[^>]+)>", coturn.turn_log_text()))

    assert len(allocations()) >= 2, f"coturn logged no allocations:\n{coturn.text()}"
    users = usernames()
    assert len(users) >= 2, f"not two ephemeral TURN users:\n{coturn.text()}"
    now = time.time()
    for user in users:  # "<expiry>:<participant id>", expiring after --turn-ttl 600
        expiry, pid = user.split(":", 1)
        assert now - 120 <= int(expiry) - 600 <= now, user
        assert pid.startswith("p_"), user
    assert re.search(
        r"(CREATE_PERMISSION|CHANNEL_BIND) processed, success", coturn.turn_log_text()
    ), coturn.text()


def test_sfu_call_through_turn_relay(
    coturn: Coturn, parley_server: Callable[..., ParleyServer], meeting: Meeting, room: str
) -> None:
    """A page that may not send UDP to the server (``?relay=1``) reaches the SFU through
    coturn: its publish and subscribe connections both run over a relay candidate."""
    turn_url = f"turn:127.0.0.1:{coturn.port}?transport=udp"
    srv = parley_server(
        "--media", "sfu", "--media-ip", "127.0.0.1",
        "--turn-secret", TURN_SECRET, "--turn-urls", turn_url, "--turn-ttl", "600",
    )  # fmt: skip
    ada = meeting.join("Ada", room, server=RelayPages(srv))  # through TURN only
    bob = meeting.join("Bob", room, server=srv)  # straight to the SFU
    assert ada.page.url.endswith("?relay=1")
    _both_see_each_other(ada, bob)
    _media_both_ways(ada, bob)
    pairs = selected_pairs(ada.page)
    assert len(pairs) == 2, f"Ada: not one publish and one subscribe connection: {pairs}"
    for pair in pairs:
        assert pair["policy"] == "relay", pair
        # Ada's end is her relay on our coturn; the SFU's end is its own host candidate.
        assert pair["local"] == "relay" and pair["localUrl"] == turn_url, pair
        assert pair["remote"] == "host", pair
        assert pair["bytesReceived"] > 0 and pair["bytesSent"] > 0, pair
    for pair in selected_pairs(bob.page):
        assert pair["local"] != "relay", pair  # Bob was not asked to relay
