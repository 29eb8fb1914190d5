"""Reading a UDP socket in batches: ``recvmmsg(2)`` through :mod:`ctypes` (Linux).

uvloop (libuv) reads a UDP socket with one ``recvmsg(2)`` per datagram and then one
more that finds nothing (it reads until ``EAGAIN``), and makes an address tuple for
each.  On a VM a system call costs about a microsecond before any work, which the
relay's receiving node paid once or twice per relayed packet.  :class:`BatchReceiver`
takes up to ``BATCH`` waiting datagrams in one call, into buffers allocated once, and
stops as soon as a call returns fewer (no call that finds nothing); the address of each
comes from a small cache keyed by its raw ``sockaddr``.

Datagrams longer than ``size`` are cut to ``size + 1`` bytes: a receiver given a
buffer one byte longer than anything it accepts refuses them by their length.
:func:`available` says whether this works here (Linux with a C library that has
``recvmmsg``); elsewhere the relay uses the event loop's own datagram endpoint.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["BATCH", "BatchReceiver", "available"]

log = logging.getLogger(__name__)

#: Datagrams read per call at most (uvloop's own loop reads up to 32 per wake-up).
BATCH = 32
#: Distinct sender addresses remembered (cleared when full: a flood of spoofed
#: sources costs a conversion each, not memory).
MAX_ADDRESSES = 256


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint32)]


_LEN_OFFSET = _Mmsghdr.msg_len.offset
_STRIDE = ctypes.sizeof(_Mmsghdr)


def _recvmmsg() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_RECVMMSG = _recvmmsg()


def available() -> bool:
    """True if :class:`BatchReceiver` can be used on this system."""
    return _RECVMMSG is not None and _STRIDE % 4 == 0 and _LEN_OFFSET % 4 == 0


def _address(family: int, raw: bytes) -> tuple[str, int]:
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port


class BatchReceiver:
    """Reads ``sock`` (a bound, non-blocking UDP socket) when the loop says it is
    readable; each datagram goes to ``deliver(data, (host, port))``."""

    def __init__(
        self,
        sock: socket.socket,
        deliver: Callable[[bytes, tuple[str, int]], None],
        size: int,
        batch: int = BATCH,
    ) -> None:
        if not available():
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        self.sock = sock
        self.deliver = deliver
        self.family = sock.family
        self.batch = batch
        self.stride = size + 1  # one byte more than accepted: a longer datagram shows
        self._data = (ctypes.c_char * (self.stride * batch))()
        namelen = 16 if sock.family == socket.AF_INET else 28  # sockaddr_in(6)
        self._namelen = namelen
        self._names = (ctypes.c_char * (namelen * batch))()
        self._iovs = (_Iovec * batch)()
        self._hdrs = (_Mmsghdr * batch)()
        data, names = ctypes.addressof(self._data), ctypes.addressof(self._names)
        for i in range(batch):
            self._iovs[i].iov_base = data + i * self.stride
            self._iovs[i].iov_len = self.stride
            hdr = self._hdrs[i].msg_hdr
            hdr.msg_name = names + i * namelen
            hdr.msg_namelen = namelen  # the kernel writes back the same for this family
            hdr.msg_iov = ctypes.addressof(self._iovs[i])
            hdr.msg_iovlen = 1
        self._data_view = memoryview(self._data).cast("B")
        self._name_view = memoryview(self._names).cast("B")
        self._lens = memoryview(self._hdrs).cast("B").cast("I")
        self._addresses: dict[bytes, tuple[str, int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0  # recvmmsg calls that returned datagrams
        self.received = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()

    def _readable(self) -> None:
        fd, batch, hdrs = self.sock.fileno(), self.batch, ctypes.addressof(self._hdrs)
        recvmmsg, stride, namelen = _RECVMMSG, self.stride, self._namelen
        lens, data, names = self._lens, self._data_view, self._name_view
        addresses, deliver = self._addresses, self.deliver
        len_index, len_step = _LEN_OFFSET // 4, _STRIDE // 4
        while True:
            n = recvmmsg(fd, hdrs, batch, 0, None)
            if n <= 0:
                if n < 0:
                    err = ctypes.get_errno()
                    if err == errno.EINTR:
                        continue
                    if err not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        log.debug("relay socket: %s", os.strerror(err))
                return
            self.calls += 1
            self.received += n
            for i in range(n):
                start = i * stride
                payload = bytes(data[start : start + lens[len_index + i * len_step]])
                raw = bytes(names[i * namelen : (i + 1) * namelen])
                address = addresses.get(raw)
                if address is None:
                    if len(addresses) >= MAX_ADDRESSES:
                        addresses.clear()
                    address = addresses[raw] = _address(self.family, raw)
                try:
                    deliver(payload, address)
                except Exception:  # one bad datagram must not stop the others
                    log.exception("relay: datagram handling failed")
            if n < batch:
                return
