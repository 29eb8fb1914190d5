"""A full disk: the server says "unavailable", keeps the meeting going, and loses nothing acked.

The server runs with its data dir on a small tmpfs of its own (a private mount
namespace, ``unshare -m`` as root), filled by the chat itself until SQLite answers
"database or disk is full".  Needs root and util-linux's ``unshare``; skipped
otherwise, but failing under CI.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import healthz_ok, spawn_logged, stop_process, wait_ready
from server_harness import Clients, ServerProc, free_port

#: Enough for the schema and a few dozen 4,000-character messages.
TMPFS_SIZE = "600k"


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def full_disk_server(tmp_path: Path) -> Iterator[ServerProc]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if _ci():
            pytest.fail("the full-disk test needs root and unshare (util-linux) in CI")
        pytest.skip("needs root and unshare for a private tmpfs")
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    # The tmpfs exists only in the server's own mount namespace, gone with the process.
    script = (
        f'mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$1" && shift && exec "$@"'
    )
    argv = [
        "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(data),
        sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data), "--no-rate-limits", "--media", "mesh",
    ]  # fmt: skip
    srv = ServerProc(port=port, data_dir=data, args=(), log_path=tmp_path / "server.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    srv.proc = spawn_logged(argv, srv.log_path, env={**env, "PYTHONUNBUFFERED": "1"})
    why = wait_ready(srv.proc, lambda: healthz_ok(srv.url), 30)
    if why is not None:
        stop_process(srv.proc)
        pytest.fail(f"parley serve {why}:\n{srv.log()}")
    yield srv
    stop_process(srv.proc)


async def test_full_disk_is_unavailable_not_internal(
    full_disk_server: ServerProc, clients: Clients
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
