"""A full disk: the server says "unavailable", keeps the meeting going, and loses nothing acked.

The server runs with its data dir on a small tmpfs of its own (a private mount
namespace, ``unshare -m`` as root), filled by the chat itself until SQLite answers
"database or disk is full".  Needs root and util-linux's ``unshare``; skipped
otherwise, but failing under CI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import Host, ci, free_port
from tests.support.ws_client import Clients

#: Enough for the schema and a few dozen 4,000-character messages.
TMPFS_SIZE = "600k"


class PrivateTmpfs(Host):
    """Runs the server with ``data`` on a tmpfs of ``TMPFS_SIZE`` that exists only in its
    own mount namespace (gone with the process); the network is the host's."""

    def __init__(self, data: Path) -> None:
        self.data = data

    def cmd(self, *argv: str) -> list[str]:
        script = f'mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$1" && shift && exec "$@"'
        return [
            "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            str(self.data), *argv,
        ]  # fmt: skip


@pytest.fixture
def full_disk_server(tmp_path: Path) -> Iterator[ParleyProcess]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if ci():
            pytest.fail("the full-disk test needs root and unshare (util-linux) in CI")
        pytest.skip("needs root and unshare for a private tmpfs")
    data = tmp_path / "data"
    data.mkdir()
    srv = ParleyProcess(
        port=free_port(),
        data_dir=data,
        log_path=tmp_path / "server.log",
        args=("--no-rate-limits", "--media", "mesh"),
        ns=PrivateTmpfs(data),
        ready_timeout=30,
    ).start()
    yield srv
    srv.stop()


async def test_full_disk_is_unavailable_not_internal(
    full_disk_server: ParleyProcess, clients: Clients
) -> None:
    srv = full_disk_server
    room = "fill-" + uuid.uuid4().hex[:6]
    ada = await clients.join(srv, room, "Ada")
    bob = await clients.join(srv, room, "Bob")
    acked: list[int] = []
    for n in range(400):  # ~1.6 MB of chat: far more than the disk holds
        await ada.send({"type": "chat", "text": f"{n:04d}" + "x" * 3996, "ref": f"c{n}"})
        ref = f"c{n}"
        answer = await ada.take(lambda m, ref=ref: m.get("ref") == ref, ref, None)  # type: ignore[misc]
        if answer["type"] == "error":
            assert answer["code"] == "unavailable", answer
            break
        acked.append(answer["id"])
    else:
        pytest.fail("the disk never filled up")
    assert acked, "not one message fitted on the disk"

    # Opening a new room needs a row.  SQLite may still fit a few in pages it reuses;
    # the first that the disk cannot take is a clear "unavailable", never "internal".
    for i in range(100):
        eve = await clients.connect(srv)
        await eve.send({"type": "join", "room": f"{room}-{i}", "name": "Eve", "v": 1, "ref": "j"})
        answer = await eve.take(lambda m: m["type"] in ("welcome", "error"), "answer", None)
        if answer["type"] == "error":
            assert (answer["code"], answer["ref"]) == ("unavailable", "j"), answer
            break
        await eve.close()
    else:
        pytest.fail("a full disk took 100 new rooms")

    # The meeting goes on in memory: Bob still hears Ada's reactions, and what was acked
    # is still in the history (stored before it was acknowledged).
    await ada.send({"type": "reaction", "emoji": "👍"})
    await bob.expect("reaction")
    await bob.send({"type": "history", "limit": 200, "ref": "h"})
    page = await bob.expect("history")
    assert {m["id"] for m in page["messages"]} >= set(acked)
