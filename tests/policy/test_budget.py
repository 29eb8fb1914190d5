"""The budget of a sync hook run in place (SIGALRM), in-process: a hook past its budget is
cut off, and the shared timer interrupts nothing but a hook past its budget, and goes off
once no hook runs."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import pytest

from parley.policy.api import ChatInfo
from parley.policy.runner import Policy

pytestmark = [
    pytest.mark.skipif(
        threading.current_thread() is not threading.main_thread(), reason="SIGALRM: main thread"
    ),
    # pytest-timeout's own SIGALRM would make the policy fall back to a worker thread.
    pytest.mark.timeout(120, method="thread"),
]

INFO = ChatInfo("room", "p_1", "Ada", "hello")


def fn_of(p: Policy) -> object:
    return p.loaded.hooks["on_chat"]


def policy(tmp_path: Path, source: str, budget: float) -> Policy:
    path = tmp_path / "policy.py"
    path.write_text(source)
    return Policy(path, budget=budget)


async def test_a_spinning_hook_is_cut_off_and_the_message_passes(tmp_path: Path) -> None:
    p = policy(
        tmp_path,
        "def on_chat(msg):\n"
        "    while True:\n"
        "        try:\n"
        "            pass\n"
        "        except Exception:\n"
        "            pass\n",
        budget=0.05,
    )
    try:
        assert await p.on_chat(INFO) == "hello"  # the default: unchanged
        assert fn_of(p) in p._threaded  # noqa: SLF001 - it ran in place and overran
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        await p.close()


async def test_the_shared_timer_never_interrupts_anything_but_a_hook(tmp_path: Path) -> None:
    # A budget so short that the timer often fires around the calls' edges, between
    # them, and in this test's own code.
    p = policy(tmp_path, "def on_chat(msg):\n    return msg.text.upper()\n", budget=0.0002)
    try:
        for _ in range(3000):
            assert await p.on_chat(INFO) in ("HELLO", "hello")
            sum(range(200))  # the test's own work: a stray alarm would raise here
        assert signal.getsignal(signal.SIGALRM) != signal.SIG_DFL  # it did run in place
        await asyncio.sleep(0.05)  # the timer fires once more, finds no hook, stays off
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        await p.close()


async def test_a_hook_that_waits_moves_to_a_thread_after_five_calls(tmp_path: Path) -> None:
    p = policy(
        tmp_path, "import time\ndef on_chat(msg):\n    time.sleep(0.005)\n    return msg\n", 1
    )
    try:
        for _ in range(4):
            await p.on_chat(INFO)
        assert fn_of(p) not in p._threaded  # noqa: SLF001
        await p.on_chat(INFO)
        assert fn_of(p) in p._threaded  # noqa: SLF001 - it blocked five times in a row
        assert await p.on_chat(INFO) == "hello"  # and still answers, from the thread
    finally:
        await p.close()
