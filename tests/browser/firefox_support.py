"""Firefox for the browser tests: Debian's ``firefox-esr`` over WebDriver BiDi.

Playwright's Firefox is a patched build it downloads; the tests use the stock Debian
browser instead, driven by puppeteer-core (npm, pinned in ``firefox/package.json``;
``PUPPETEER_SKIP_DOWNLOAD=1``: it never fetches a browser) from a small Node process,
``firefox/driver.mjs``, that answers JSON requests on its stdin.  That process runs in
the tests' network namespace (Firefox's BiDi endpoint is a WebSocket on its 127.0.0.1),
and Firefox with it.

The profile: fake camera and microphone without a permission prompt, no OpenH264 (the
plugin is a download Firefox would fetch; the tests need the "Firefox cannot decode
H.264" case, as offline or plugin-disabled users have it), real host ICE candidates
(no mDNS names), autoplay allowed, no background throttling of media.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
DRIVER_DIR = HERE / "firefox"
FIREFOX = os.environ.get("PARLEY_TEST_FIREFOX", "/usr/bin/firefox-esr")

FIREFOX_PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # No OpenH264: never downloaded, never used (the VP8-only subscriber case).
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-manager.url": "",
    "media.gmp-provider.enabled": False,
    # Host candidates as addresses, not mDNS names nobody in the namespace resolves.
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.suspend-bkgnd-video.enabled": False,
    "dom.min_background_timeout_value": 4,
    "dom.timeout.enable_budget_timer_throttling": False,
}


def missing() -> str | None:
    """Why Firefox tests cannot run here, or None."""
    if not Path(FIREFOX).exists():
        return f"{FIREFOX} not found (apt-get install -y firefox-esr)"
    if shutil.which("node") is None:
        return "node not found (apt-get install -y nodejs)"
    if not (DRIVER_DIR / "node_modules" / "puppeteer-core").is_dir():
        return (
            "puppeteer-core is not installed: "
            f"(cd {DRIVER_DIR} && PUPPETEER_SKIP_DOWNLOAD=1 npm ci)"
        )
    return None


class DriverError(RuntimeError):
    pass


class FirefoxDriver:
    """The Node process driving one Firefox; ``call(op, **args)`` -> the reply's value."""

    def __init__(self, argv_prefix: list[str], log_path: Path, preexec: Any = None) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"}
        self.proc = subprocess.Popen(
            [*argv_prefix, shutil.which("node") or "node", str(DRIVER_DIR / "driver.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=DRIVER_DIR,
            env=env,
            preexec_fn=preexec,
        )
        self._seq = 0
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                continue
        self._replies.put(None)  # the process ended

    def call(self, op: str, timeout: float = 90, **args: Any) -> Any:
        if self.proc.poll() is not None:
            raise DriverError(f"the Firefox driver exited ({self.proc.returncode}): {self.tail()}")
        self._seq += 1
        ident = self._seq
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": ident, "op": op, **args}) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            try:
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                raise DriverError(f"Firefox driver: no answer to {op} in {timeout}s") from None
            if reply is None:
                raise DriverError(f"the Firefox driver exited during {op}: {self.tail()}")
            if reply.get("id") != ident:
                continue  # the answer to an earlier call that timed out
            if not reply.get("ok"):
                raise DriverError(f"Firefox {op}: {reply.get('error')}")
            return reply.get("value")

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=30)
            except DriverError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
