"""The one coturn helper: ``turnserver -c config`` as a child process, and its test config.

:func:`write_coturn_config` writes the config every TURN test uses (the TURN REST API
scheme, ``use-auth-secret``, relaying on 127.0.0.1 to loopback peers); the deploy test
runs the shipped ``deploy/coturn/turnserver.conf`` adapted instead.  :class:`Coturn`
is ready once it answers a STUN Binding where it runs (the host, or the browser
suite's network namespace), and is stopped by its PID only.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import (
    HOST,
    Namespace,
    die_with_parent,
    require_binary,
    spawn_logged,
    stop_process,
    wait_ready,
)


def write_coturn_config(base: Path, port: int, secret: str, realm: str, *extra: str) -> Path:
    """``base``/turnserver.conf: coturn on 127.0.0.1:``port`` with the TURN REST API scheme
    (``use-auth-secret``), relaying on 127.0.0.1 to loopback peers, plain UDP/TCP only,
    logging to ``base``/turn.log; ``extra`` lines are added at the end."""
    config = base / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                f"realm={realm}",
                "no-tls",
                "no-dtls",
                "no-cli",
                "fingerprint",
                # Peers (the TURN clients' relay addresses) are on loopback too.
                "allow-loopback-peers",
                f"userdb={base / 'turndb'}",
                f"pidfile={base / 'turnserver.pid'}",
                f"log-file={base / 'turn.log'}",
                "simple-log",
                *extra,
                "",
            ]
        )
    )
    return config


def stun_binding_answered(port: int) -> bool:
    """Send a STUN Binding request (RFC 5389) to 127.0.0.1:``port`` from a fresh UDP socket
    (coturn ties a client's 5-tuple to a per-client socket, and one probed too early stays
    mute); True if answered."""
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
class Coturn:
    """``turnserver -c config`` listening on 127.0.0.1:``port`` (UDP and TCP)."""

    config: Path
    #: turnserver's stdout and stderr.
    log_path: Path
    port: int
    #: The config's ``log-file`` (where coturn logs allocations), if any.
    turn_log: Path | None = None
    #: Where it runs (the browser suite passes its network namespace).
    ns: Namespace = HOST
    die_with_parent: bool = False
    #: A second listening port (TURN over TLS), for the tests that use it.
    tls_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)

    def start(self, timeout: float = 15.0) -> Coturn:
        argv = [require_binary("turnserver"), "-c", str(self.config), *self.args]
        self.proc = spawn_logged(
            self.ns.cmd(*argv),
            self.log_path,
            cwd=self.log_path.parent,
            preexec_fn=die_with_parent if self.die_with_parent else None,
        )
        probe = lambda: bool(self.ns.call(stun_binding_answered, self.port))  # noqa: E731
        why = wait_ready(self.proc, probe, timeout)
        if why is not None:
            self.stop()
            pytest.fail(f"turnserver {why}:\n{self.text()}", pytrace=False)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        stop_process(self.proc, sig, timeout)

    def turn_log_text(self) -> str:
        try:
            return self.turn_log.read_text(errors="replace") if self.turn_log else ""
        except OSError:
            return ""

    def text(self, chars: int = 6000) -> str:
        """The tails of its output and of its ``turn_log``."""
        parts = []
        for path in (self.log_path, self.turn_log):
            if path is None:
                continue
            try:
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-chars:])
            except OSError:
                pass
        return "\n".join(parts) or "(no log)"
