"""Real processes for the operations tests: coturn, nginx and ``parley serve`` nodes.

Each is started as a child process and stopped by its PID (never by name).
Binaries missing locally skip the test; under CI (``CI`` set) they fail it,
since ``.ci/run`` installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ops_stun import TurnClient, build, parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from processes import (  # noqa: E402
    LoopbackUrls,
    free_port,  # noqa: F401 - re-exported to tests
    healthz_ok,
    spawn_logged,
    stop_process,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"


def require_binary(name: str) -> str:
    """The path of ``name``; skip (locally) or fail (under CI) when it is not installed."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (and its key), made with openssl."""
    openssl = require_binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


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


def adapt(text: str, replacements: list[tuple[str, str]]) -> str:
    """Apply exact replacements, each of which must match (so config drift fails the test)."""
    for old, new in replacements:
        assert old in text, f"the deploy file no longer contains {old!r}: update the test"
        text = text.replace(old, new)
    return text


@dataclass
class Proc:
    """A child process with its output in ``log``; stopped by PID."""

    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self.proc = spawn_logged(self.argv, self.log, env=self.env, cwd=self.cwd)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        stop_process(self.proc, sig, timeout)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


class Coturn(Proc):
    """``turnserver -c config``; ready once it answers a STUN Binding on ``port``."""

    def __init__(self, config: Path, log: Path, port: int, *args: str) -> None:
        super().__init__([require_binary("turnserver"), "-c", str(config), *args], log)
        self.port = port

    def start(self, timeout: float = 15.0) -> Coturn:
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"turnserver exited:\n{self.text()}")
            # A STUN Binding from a fresh socket each time: coturn ties a client's
            # 5-tuple to a per-client socket, and one probed too early stays mute.
            probe = TurnClient(("127.0.0.1", self.port), "probe", "probe")
            probe.sock.settimeout(0.3)
            try:
                txid = os.urandom(12)
                probe.sock.sendto(build(0x0001, [], txid), probe.server)
                data, _ = probe.sock.recvfrom(4096)
                if parse(data).txid == txid:
                    return self
            except (TimeoutError, ConnectionRefusedError):
                time.sleep(0.1)
            finally:
                probe.close()
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"turnserver not answering:\n{self.text()}")


class ParleyNode(LoopbackUrls, Proc):
    """``python -m parley serve`` on 127.0.0.1:``port``; ready once /healthz answers."""

    def __init__(self, port: int, data_dir: Path, log: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["PYTHONUNBUFFERED"] = "1"
        argv = [
            sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--data-dir", str(data_dir), *args,
        ]  # fmt: skip
        super().__init__(argv, log, env=env, cwd=data_dir.parent)
        self.port = port

    def start(self, timeout: float = 30.0) -> ParleyNode:
        self.spawn()
        assert self.proc is not None
        why = wait_ready(self.proc, lambda: healthz_ok(self.url), timeout)
        if why is not None:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"parley serve {why}:\n{self.text()}")
        return self
