"""Room passwords (Argon2id hashes) and per-address throttling of wrong guesses.

Hashing happens rarely (only when a host sets a password), but *verifying*
happens on every password join attempt and anyone can trigger it, so the cost
of one verify is what bounds the damage a flood of guesses can do:

* Argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1): about
  20-30 ms and 19 MiB per verify on a small server.  (argon2-cffi's default,
  RFC 9106's low-memory profile at m=64 MiB, t=3, p=4, costs ~5x the time and
  3x the memory per attempt, which an unauthenticated client could exploit.)
  The server should run :func:`verify_password` off the event loop
  (``asyncio.to_thread``), bound how many run at once (a semaphore), and only
  after :meth:`AttemptThrottle.check` allowed the attempt;
* the parameters live in the hash string, so they can be raised later
  without invalidating stored hashes (:func:`password_needs_rehash`);
* passwords are capped at :data:`MAX_PASSWORD_CHARS` characters.

:class:`AttemptThrottle` is sans-I/O: the caller passes the clock in.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict, deque

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

__all__ = [
    "MAX_PASSWORD_CHARS",
    "AttemptThrottle",
    "hash_password",
    "password_needs_rehash",
    "throttle_key",
    "verify_password",
]

#: Longest password accepted (characters).  Longer guesses simply fail.
MAX_PASSWORD_CHARS = 1024

# OWASP Password Storage Cheat Sheet, Argon2id: m=19 MiB, t=2, p=1; 16-byte salt, 32-byte
# hash.  Written out so that a change of library defaults cannot change them silently.
_HASHER = PasswordHasher(
    time_cost=2,
    memory_cost=19 * 1024,  # KiB
    parallelism=1,
    hash_len=32,
    salt_len=16,
)


def hash_password(password: str) -> str:
    """Hash ``password`` with Argon2id; the result is a self-describing ``$argon2id$...`` string.

    Raises :class:`ValueError` for an empty or over-long password.
    """
    if not isinstance(password, str) or not password:
        raise ValueError("a password must be a non-empty string")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"a password must be at most {MAX_PASSWORD_CHARS} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if ``password`` matches ``stored_hash``.  Never raises: anything wrong is False."""
    if not isinstance(stored_hash, str) or not isinstance(password, str):
        return False
    if not password or len(password) > MAX_PASSWORD_CHARS:
        return False
    if not stored_hash.startswith("$argon2"):
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (Argon2Error, InvalidHashError, ValueError, TypeError):
        # VerifyMismatchError, VerificationError, InvalidHashError, bad parameters in the hash.
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    """True if ``stored_hash`` was made with other parameters than :func:`hash_password` uses."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError, TypeError):
        return True


@functools.lru_cache(maxsize=4096)  # twice per connection; parsing costs ~10 µs
def throttle_key(address: str) -> str:
    """The throttling key for a client address.

    IPv4 addresses are used as they are; IPv6 addresses are reduced to their /64
    prefix, since one client typically controls a whole /64.  IPv4-mapped IPv6
    addresses count as IPv4.  Anything unparsable is returned unchanged.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AttemptThrottle:
    """Throttles failed attempts per key (client address), sans-I/O.

    At most ``max_failures`` failures are allowed within any ``window`` seconds;
    after that, attempts from the key are refused until the oldest of those
    failures leaves the window.  A success clears the key.

    Memory is bounded: a key's record holds at most ``max_failures`` timestamps,
    keys whose failures have all left the window are evicted, and at most
    ``max_keys`` keys are tracked (the key with the least recent failure is
    evicted first).  ``now`` must not go backwards (use ``time.monotonic()``).

    Usage::

        wait = throttle.check(key, now)
        if wait > 0:
            refuse(retry_after=wait)
        elif verify_password(stored, guess):
            throttle.success(key)
        else:
            throttle.failure(key, now)
    """

    def __init__(self, max_failures: int = 5, window: float = 60.0, max_keys: int = 10_000) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if window <= 0:
            raise ValueError("window must be positive")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_failures = max_failures
        self.window = float(window)
        self.max_keys = max_keys
        # key -> timestamps of its recent failures; ordered by the most recent failure.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        return len(self._failures)

    def check(self, key: str, now: float) -> float:
        """0.0 if ``key`` may make an attempt now, else the seconds to wait."""
        self._evict_stale(now)
        stamps = self._failures.get(key)
        if stamps is None or len(stamps) < self.max_failures:
            return 0.0
        wait = stamps[0] + self.window - now
        return wait if wait > 0 else 0.0

    def failure(self, key: str, now: float) -> None:
        """Record a failed attempt by ``key`` at ``now``."""
        self._evict_stale(now)
        stamps = self._failures.get(key)
        if stamps is None:
            stamps = deque(maxlen=self.max_failures)
            self._failures[key] = stamps
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        stamps.append(now)

    def success(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful attempt)."""
        self._failures.pop(key, None)

    def _evict_stale(self, now: float) -> None:
        # Keys are ordered by their latest failure, so stale ones are at the front.
        cutoff = now - self.window
        failures = self._failures
        while failures:
            key, stamps = next(iter(failures.items()))
            if stamps[-1] > cutoff:
                break
            del failures[key]
