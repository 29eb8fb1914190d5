"""A network namespace with only ``lo`` up: nothing in it reaches past the machine.

For a server that must fail to reach the outside without a single packet leaving (an
address that does not resolve: the resolver in ``/etc/resolv.conf`` is unreachable from
here, so the lookup fails at once).  Needs root (``unshare --net``), ``nsenter`` and
``ip``; :func:`loopback_namespace` skips the test otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from tests.support.processes import die_with_parent

T = TypeVar("T")


class LoopbackNamespace:
    """:class:`tests.support.processes.Namespace` for a held ``unshare --net``."""

    def __init__(self, holder: subprocess.Popen[bytes]) -> None:
        self.holder = holder
        self._pool: ThreadPoolExecutor | None = None

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def cmd(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 15) -> T:
        """``fn(*args)`` in a thread that joined the namespace (setns is per thread)."""
        if self._pool is None:
            fd = os.open(self.path, os.O_RDONLY)
            self._pool = ThreadPoolExecutor(1, "netns", initializer=_setns, initargs=(fd,))
            self._pool.submit(lambda: None).result(10)
            os.close(fd)
        return self._pool.submit(fn, *args).result(timeout)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _setns(fd: int) -> None:
    if ctypes.CDLL("libc.so.6", use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def loopback_namespace() -> Iterator[LoopbackNamespace]:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        pytest.skip("needs root, unshare, nsenter and ip for a loopback-only namespace")
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sleep", "infinity"], preexec_fn=die_with_parent
    )
    ns = LoopbackNamespace(holder)
    try:
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(ns.path) == own:
            assert holder.poll() is None and time.monotonic() < deadline, "unshare failed"
            time.sleep(0.02)
        subprocess.run(ns.cmd("ip", "link", "set", "lo", "up"), check=True, timeout=10)
        yield ns
    finally:
        ns.close()
        holder.kill()
        holder.wait(10)
