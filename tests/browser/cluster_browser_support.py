"""Helpers for test_cluster_browser.py: redis-server and coturn inside the test namespace.

The browser suite runs everything in a loopback-only network namespace (see
conftest.py), which has its own ``lo``: a redis-server or coturn listening on the
host's 127.0.0.1 is unreachable from there.  So both are started here with the
namespace's ``netns.cmd(...)`` prefix (``nsenter --net=... --``, which execs: the
Popen PID is the service's own), probed from a thread that has joined the
namespace, and stopped by that PID only.

Module name is unique across tests/ (there are no ``__init__.py`` files).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# One port picker and config for coturn in every test that runs it (tests/ops/ops_procs.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from ops_procs import free_udp_tcp_port, write_coturn_config  # noqa: E402
from processes import spawn_logged, stop_process, wait_ready  # noqa: E402


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_binary(name: str) -> str:
    """Path of ``name``; skip locally, fail under CI (where ``.ci/run`` installs it)."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install it)"
        if _ci():
            pytest.fail(f"browser cluster tests cannot run in CI: {message}", pytrace=False)
        pytest.skip(message)
    return path


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """preexec_fn: SIGKILL this child if pytest dies, so nothing outlives a killed run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _setns(fd: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class InNamespace:
    """Runs callables in a worker thread that joined the namespace at ``ns_path``
    (setns applies to one thread): probing costs no process start."""

    def __init__(self, ns_path: str) -> None:
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            self.pool = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="netns-cluster",
                initializer=_setns,
                initargs=(fd,),
            )
            self.pool.submit(lambda: None).result(10)
        finally:
            os.close(fd)

    def call(self, fn: Any, *args: Any, timeout: float = 15) -> Any:
        return self.pool.submit(fn, *args).result(timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stun_binding(port: int) -> bool:
    """Send a STUN Binding request (RFC 5389) from a fresh UDP socket; True if answered."""
    txid = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(request, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[8:20] == txid and struct.unpack("!H", data[:2])[0] == 0x0101


@dataclass
class NsProc:
    """A service started in the namespace (``argv`` already prefixed), stopped by PID."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_logs: list[Path] = field(default_factory=list)

    def spawn(self) -> NsProc:
        self.proc = spawn_logged(
            self.argv, self.log, cwd=self.log.parent, preexec_fn=_die_with_parent
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout)

    def text(self, limit: int = 6000) -> str:
        parts = []
        for path in [self.log, *self.extra_logs]:
            try:
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-limit:])
            except OSError:
                pass
        return "\n".join(parts) or "(no log)"

    def wait_ready(self, probe: Any, timeout: float = 15) -> NsProc:
        assert self.proc is not None, "spawn() first"
        why = wait_ready(self.proc, probe, timeout)
        if why is not None:
            self.stop()
            pytest.fail(f"{self.name} {why} while starting:\n{self.text()}", pytrace=False)
        return self


@dataclass
class Redis(NsProc):
    port: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(netns: Any, inside: InNamespace, base: Path) -> Redis:
    """redis-server on the namespace's 127.0.0.1 (no persistence)."""
    binary = require_binary("redis-server")
    port = int(inside.call(free_udp_tcp_port))
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--protected-mode", "no", "--dir", str(base),
    ]  # fmt: skip
    redis = Redis(name="redis-server", argv=netns.cmd(*argv), log=base / "redis.log", port=port)
    redis.spawn()
    return redis.wait_ready(lambda: bool(inside.call(_redis_ping, port)))  # type: ignore[return-value]


@dataclass
class Coturn(NsProc):
    port: int = 0
    turn_log: Path | None = None

    def turn_log_text(self) -> str:
        try:
            return self.turn_log.read_text(errors="replace") if self.turn_log else ""
        except OSError:
            return ""


def start_coturn(netns: Any, inside: InNamespace, base: Path, secret: str, realm: str) -> Coturn:
    """coturn on the namespace's 127.0.0.1 with the TURN REST API scheme
    (``use-auth-secret``), relaying on 127.0.0.1 to loopback peers, plain UDP/TCP only."""
    binary = require_binary("turnserver")
    port = int(inside.call(free_udp_tcp_port))
    turn_log = base / "turn.log"  # written by coturn, see write_coturn_config
    config = write_coturn_config(base, port, secret, realm, "verbose")
    coturn = Coturn(
        name="turnserver",
        argv=netns.cmd(binary, "-c", str(config)),
        log=base / "turnserver.out",
        port=port,
        turn_log=turn_log,
        extra_logs=[turn_log],
    )
    coturn.spawn()
    return coturn.wait_ready(lambda: bool(inside.call(_stun_binding, port)))  # type: ignore[return-value]


class RelayPages:
    """Stands in for a server in ``meeting.join(server=...)``: opens ``/r/<room>?relay=1``,
    the client's test-only switch for ``iceTransportPolicy: "relay"``."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url

    def room_url(self, room: str) -> str:
        return f"{self.server.room_url(room)}?relay=1"


# The selected ICE candidate pair of every live recorded RTCPeerConnection, with the
# type of both ends (host / srflx / prflx / relay) and the bytes it carried.
JS_SELECTED_PAIRS = """
async () => {
  const out = [];
  const pcs = window.__pcs || [];
  for (let i = 0; i < pcs.length; i++) {
    const pc = pcs[i];
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const pairIds = new Set();
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        pairIds.add(s.selectedCandidatePairId);
      }
    });
    if (!pairIds.size) {  // older stats: the nominated, succeeded pair
      report.forEach((s) => {
        const ok = s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded';
        if (ok) pairIds.add(s.id);
      });
    }
    for (const id of pairIds) {
      const pair = byId.get(id) || {};
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      out.push({
        pc: i,
        policy: pc.getConfiguration().iceTransportPolicy,
        state: pair.state,
        local: local.candidateType,
        localAddress: (local.address || local.ip || '') + ':' + local.port,
        localRelayProtocol: local.relayProtocol || null,
        localUrl: local.url || null,
        remote: remote.candidateType,
        remoteAddress: (remote.address || remote.ip || '') + ':' + remote.port,
        bytesSent: pair.bytesSent || 0,
        bytesReceived: pair.bytesReceived || 0,
      });
    }
  }
  return out;
}
"""


def selected_pairs(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(JS_SELECTED_PAIRS))


def metric(text: str, name: str) -> float | None:
    """The value of an unlabelled sample ``name`` in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return None
