"""Browser end-to-end test infrastructure: real Chromium, real server, loopback only.

Everything here runs inside a private network namespace that has nothing but
``lo``, so no browser or WebRTC traffic can leave the machine:

* ``netns`` (session): a holder process ``unshare --net -- sleep infinity`` owns
  the namespace; ``lo`` is brought up with ``nsenter --net=/proc/PID/ns/net ip
  link set lo up``.  Servers are started with ``nsenter`` into it, and Chromium
  through a generated wrapper script that ``exec``s ``nsenter ... chromium`` --
  Playwright drives Chromium over a pipe, which does not care about namespaces.
* ``parley_server`` (module): a factory for ``python -m parley serve`` processes
  in the namespace (:class:`~tests.support.parley_process.ParleyProcess` with
  ``ns=netns``); each can be stopped (SIGTERM), restarted on the same port and data
  dir, or killed.
* ``browser`` (module): one headless Chromium with fake camera/microphone/screen.
* ``new_participant`` (function): opens ``/r/<room>`` in a fresh browser context,
  types the name, clicks "Join meeting" and waits until the participant is in.

Needs root (for ``unshare --net``), ``/usr/bin/chromium`` and Playwright for
Python.  Without them the tests are skipped locally, but fail when ``CI`` is set:
CI must never skip the browser suite silently.  Only the processes started here
are ever signalled, by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.browser.firefox_support import FIREFOX, FIREFOX_PREFS, FirefoxDriver
from tests.browser.firefox_support import DriverError as FirefoxDriverError
from tests.browser.firefox_support import missing as firefox_missing
from tests.browser.polling import wait_until
from tests.browser.stats_js import js_each_stat
from tests.support.parley_process import ParleyProcess
from tests.support.processes import ci, die_with_parent, free_port, http_get

try:  # Playwright is a test dependency; without it the suite skips (fails in CI).
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - exercised only on machines without it
    sync_playwright = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")

CHROMIUM = os.environ.get("PARLEY_TEST_CHROMIUM", "/usr/bin/chromium")

#: Generous upper bound for anything a user waits for (joining, media, presence).
TIMEOUT_MS = int(os.environ.get("PARLEY_TEST_TIMEOUT_MS", "30000"))

#: Frame rate of the fake camera (Chromium's default is 20): 10 halves the encode and
#: decode work of a meeting on a small CI machine and still proves video flows.
FAKE_FPS = int(os.environ.get("PARLEY_TEST_FAKE_FPS", "10"))

CHROMIUM_ARGS = [
    f"--use-fake-device-for-media-stream=fps={FAKE_FPS}",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Keep timers and media running at full speed in background contexts: several
    # participants share one browser, and only one page can be "in front".
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--autoplay-policy=no-user-gesture-required",
]

# Recorded in every page before the client runs: each RTCPeerConnection the client
# creates, so the tests can read getStats() and tell remote tracks from local ones.
INIT_SCRIPT_RECORD_PCS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || Native.__parleyWrapped) return;
  window.__pcs = [];
  class Recorded extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  }
  Recorded.__parleyWrapped = true;
  window.RTCPeerConnection = Recorded;
  window.webkitRTCPeerConnection = Recorded;
})();
"""

# A machine without a camera: asking for video fails like Chromium does when no
# camera exists, and enumerateDevices() lists no videoinput.
INIT_SCRIPT_NO_CAMERA = """
(() => {
  const md = navigator.mediaDevices;
  if (!md) return;
  const gum = md.getUserMedia.bind(md);
  const enumerate = md.enumerateDevices.bind(md);
  md.getUserMedia = async (constraints) => {
    if (constraints && constraints.video) {
      throw new DOMException('Requested device not found', 'NotFoundError');
    }
    return gum(constraints);
  };
  md.enumerateDevices = async () =>
    (await enumerate()).filter((d) => d.kind !== 'videoinput');
})();
"""

# Media as the page sees it: inbound RTP streams of every recorded peer connection,
# and the <video> elements that play a remote track (a track some receiver owns).
JS_INBOUND_STATS = js_each_stat(
    "[]",
    """
      if (s.type !== 'inbound-rtp') return;
      out.push({
        key: i + ':' + s.kind + ':' + s.ssrc,
        pc: i,
        kind: s.kind,
        framesDecoded: s.framesDecoded || 0,
        packetsReceived: s.packetsReceived || 0,
      });
""",
)

# The chat entry holding ``text``: from the deepest element containing it, walk up
# (inside the log) to the first element whose text also names the sender.  An entry
# that only reaches the sender's name at the level of the whole log is no entry.
JS_CHAT_ENTRY = """
(log, [text, sender]) => {
  const holders = [...log.querySelectorAll('*')].filter((e) => e.textContent.includes(text));
  const deepest = holders.filter((e) => ![...e.children].some((c) => c.textContent.includes(text)));
  for (const start of deepest.length ? deepest : (log.textContent.includes(text) ? [log] : [])) {
    for (let e = start; e; e = e.parentElement) {
      if (e.textContent.includes(sender)) {
        if (e === log && log.children.length > 1) break;
        return e.textContent;
      }
      if (e === log) break;
    }
  }
  return null;
}
"""

JS_REMOTE_VIDEOS = """
() => {
  const remote = new Set();
  for (const pc of (window.__pcs || [])) {
    for (const r of pc.getReceivers()) if (r.track) remote.add(r.track.id);
  }
  const out = [];
  for (const v of document.querySelectorAll('video')) {
    const s = v.srcObject;
    const tracks = (s && typeof s.getVideoTracks === 'function') ? s.getVideoTracks() : [];
    const mine = tracks.filter((t) => remote.has(t.id));
    if (!mine.length) continue;
    const r = v.getBoundingClientRect();
    const visible = (typeof v.checkVisibility === 'function'
      ? v.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
      : v.offsetParent !== null) && r.width > 0 && r.height > 0;
    out.push({
      tracks: mine.map((t) => t.id),
      live: mine.some((t) => t.readyState === 'live'),
      width: v.videoWidth,
      height: v.videoHeight,
      visible,
    });
  }
  return out;
}
"""


def _unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where the browser suite must run."""
    if ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------- netns


@dataclass
class NetNS:
    """A network namespace with only ``lo``, held open by ``holder`` (a sleep)."""

    holder: subprocess.Popen[bytes]
    tmp: Path
    chromium: Path  # wrapper script: runs Chromium inside the namespace
    pool: ThreadPoolExecutor | None = None

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def cmd(self, *argv: str) -> list[str]:
        """``argv`` prefixed so it runs inside the namespace (nsenter execs it: same PID)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def free_port(self) -> int:
        """A TCP port free on the namespace's 127.0.0.1."""
        return self.call(free_port, timeout=10)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 15) -> T:
        """``fn(*args)`` in a worker thread that has joined the namespace (setns applies
        to one thread): probing costs no process start."""
        return self._worker().submit(fn, *args).result(timeout)

    def http_get(self, url: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``url`` from inside the namespace: (status, body); status 0 if unreachable.

        Runs in a worker thread that has joined the namespace (setns applies to one
        thread), so polling costs no process start."""
        return self.call(http_get, url, timeout, timeout=timeout + 10)

    def _worker(self) -> ThreadPoolExecutor:
        if self.pool is None:
            fd = os.open(self.path, os.O_RDONLY)
            self.pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="netns", initializer=_setns, initargs=(fd,)
            )
            self.pool.submit(lambda: None).result(10)  # fail early if setns is refused
            os.close(fd)
        return self.pool

    def http_json(self, url: str) -> Any:
        status, body = self.http_get(url)
        assert status == 200, f"GET {url} -> {status}: {body[:500]}"
        return json.loads(body)


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


#: The veth pair of the Firefox tests' namespace: both ends inside it, private addresses.
VETH = (("pv0", "10.231.0.1/24"), ("pv1", "10.231.0.2/24"))


def _browser_tools_available() -> None:
    if sync_playwright is None:
        _unavailable("Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install -y chromium)")
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            _unavailable(f"`{tool}` not found (util-linux / iproute2)")
    if os.geteuid() != 0:
        _unavailable("needs root to create a loopback-only network namespace (unshare --net)")


@contextlib.contextmanager
def _namespace(veth: bool = False) -> Iterator[NetNS]:
    """A new network namespace with ``lo`` up (and, with ``veth``, the pair ``VETH``)."""
    tmp = Path(tempfile.mkdtemp(prefix="parley-browser-"))
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sleep", "infinity"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,
    )
    try:
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:
            if holder.poll() is not None:
                err = holder.stderr.read().decode() if holder.stderr else ""
                _unavailable(f"`unshare --net` failed: {err.strip() or holder.returncode}")
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/net") != own:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                _unavailable("the unshare holder never entered a new network namespace")
            time.sleep(0.02)
        wrapper = tmp / "chromium-in-netns"
        wrapper.write_text(
            f'#!/bin/sh\nexec nsenter --net=/proc/{holder.pid}/ns/net -- {CHROMIUM} "$@"\n'
        )
        wrapper.chmod(0o755)
        ns = NetNS(holder=holder, tmp=tmp, chromium=wrapper)
        steps = [("ip", "link", "set", "lo", "up")]
        if veth:
            # Firefox gathers no ICE candidate where only lo exists, nor without a default
            # route: a veth pair, both ends in this namespace, and a default route into
            # it give Firefox addresses that reach nothing outside (the namespace does
            # not forward; nothing else is connected to it).
            (a, a_addr), (b, b_addr) = VETH
            steps += [
                ("ip", "link", "add", a, "type", "veth", "peer", "name", b),
                ("ip", "addr", "add", a_addr, "dev", a),
                ("ip", "addr", "add", b_addr, "dev", b),
                ("ip", "link", "set", a, "up"),
                ("ip", "link", "set", b, "up"),
                ("ip", "route", "add", "default", "via", b_addr.split("/")[0], "dev", a),
            ]
        for step in steps:
            done = ns.run(*step)
            if done.returncode != 0:
                _unavailable(f"`{' '.join(step)}` in the namespace: {done.stderr.strip()}")

        links = ns.run("ip", "-o", "link", "show").stdout.strip().splitlines()
        names = sorted(ln.split(":")[1].strip().split("@")[0] for ln in links)
        want = sorted(["lo", *(name for name, _ in VETH)] if veth else ["lo"])
        assert names == want, f"the test namespace must only have {want}, has {names}"
        yield ns
        if ns.pool is not None:
            ns.pool.shutdown(wait=True)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def netns() -> Iterator[NetNS]:
    """Server and Chromium: a namespace with only ``lo``."""
    _browser_tools_available()
    with _namespace() as ns:
        yield ns


@pytest.fixture(scope="session")
def veth_netns() -> Iterator[NetNS]:
    """The Firefox tests' namespace: ``lo`` and a private veth pair (see ``VETH``).

    A Firefox test module overrides ``netns`` with it, so its server, Chromium and
    Firefox all run there."""
    _browser_tools_available()
    with _namespace(veth=True) as ns:
        yield ns


# --------------------------------------------------------------------------- server


def _server_env() -> dict[str, str]:
    """This environment as it is now (a test may set PARLEY_SECRET for its nodes).

    The checkout's source first, so an un-installed tree (or a stale install) runs as is."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


#: Servers of the running module, whose logs a failing test report shows.
_SERVERS: list[ParleyProcess] = []


@pytest.fixture(scope="module")
def parley_server(
    netns: NetNS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ParleyProcess]]:
    """Factory: ``parley_server("--max-participants", "2")`` starts a fresh server.

    ``port=`` and ``data_dir=`` reuse an earlier server's (e.g. to run a second one
    on the same data).  Every server started here is stopped at module teardown.
    """
    started: list[ParleyProcess] = []
    _SERVERS[:] = []

    def start(*args: str, port: int | None = None, data_dir: Path | None = None) -> ParleyProcess:
        base = tmp_path_factory.mktemp("parley-server")
        server = ParleyProcess(
            port=port or netns.free_port(),
            data_dir=data_dir or base / "data",
            args=tuple(args),
            log_path=base / "server.log",
            env=_server_env(),
            ns=netns,
            die_with_parent=True,
            fail_on_hang=True,
        )
        started.append(server)
        _SERVERS.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    _SERVERS[:] = []


@pytest.fixture(scope="module")
def server(parley_server: Callable[..., ParleyProcess]) -> ParleyProcess:
    """The module's shared server with default settings."""
    return parley_server()


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def playwright_driver(netns: NetNS) -> Iterator[Any]:
    # Module scope on purpose: the sync driver owns an asyncio loop in this thread,
    # which must not outlive the module into other (pytest-asyncio) tests.
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_driver: Any, netns: NetNS) -> Iterator[Browser]:
    b = playwright_driver.chromium.launch(
        executable_path=str(netns.chromium),
        args=CHROMIUM_ARGS,
        headless=True,
        timeout=60_000,
    )
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name unique to this test (letters, digits, '-' only)."""
    base = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name.removeprefix("test_"))[:40]
    return f"{base.strip('-')}-{uuid.uuid4().hex[:6]}"


def participants_list(page: Page) -> Any:
    return page.get_by_role("list", name=re.compile(r"^Participants"))


def _open_panel(page: Page, target: Any, button_name: str) -> Any:
    """Make ``target`` visible, opening its panel with its toggle button if it is closed.

    The toggle is only clicked when it says the panel is collapsed (aria-expanded
    "false"), so a slow page never gets a panel toggled shut by mistake."""
    if target.is_visible():
        return target
    toggle = page.get_by_role("button", name=button_name, exact=True)
    if toggle.count() == 1 and toggle.get_attribute("aria-expanded") == "false":
        toggle.click()
    expect(target).to_be_visible(timeout=TIMEOUT_MS)
    return target


class MediaView:
    """What a page sees of the media (getStats of its recorded peer connections, its
    <video> elements); the browser-specific part is ``evaluate`` and ``pause``."""

    name: str

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        raise NotImplementedError

    def pause(self, ms: int) -> None:
        raise NotImplementedError

    def inbound_stats(self) -> list[dict[str, Any]]:
        return self.evaluate(JS_INBOUND_STATS)

    def remote_videos(self) -> list[dict[str, Any]]:
        return self.evaluate(JS_REMOTE_VIDEOS)

    def playing_remote_videos(self) -> list[dict[str, Any]]:
        return [
            v
            for v in self.remote_videos()
            if v["visible"] and v["live"] and v["width"] > 0 and v["height"] > 0
        ]

    def wait_remote_videos(self, count: int, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait until exactly ``count`` visible <video> elements play a remote track
        (and no other visible element shows a remote video)."""
        last: list[dict[str, Any]] = []

        def ok() -> bool:
            nonlocal last
            last = self.remote_videos()
            shown = [v for v in last if v["visible"]]
            playing = [v for v in shown if v["live"] and v["width"] > 0 and v["height"] > 0]
            return len(playing) == count and len(shown) == count

        wait_until(
            ok,
            timeout_ms,
            lambda: f"{self.name}: expected {count} remote videos playing, page has {last}",
        )

    def wait_media_flowing(
        self, video_streams: int, audio_streams: int, timeout_ms: int = TIMEOUT_MS
    ) -> None:
        """Wait until at least ``video_streams`` inbound video streams decode more frames
        and ``audio_streams`` inbound audio streams receive more packets between two
        getStats() samples, over all of the page's RTCPeerConnections."""
        detail = ""

        def ok() -> bool:
            nonlocal detail
            before = {s["key"]: s for s in self.inbound_stats()}
            self.pause(1_000)
            after = self.inbound_stats()
            video = [
                s
                for s in after
                if s["kind"] == "video"
                and s["key"] in before
                and s["framesDecoded"] > before[s["key"]]["framesDecoded"]
            ]
            audio = [
                s
                for s in after
                if s["kind"] == "audio"
                and s["key"] in before
                and s["packetsReceived"] > before[s["key"]]["packetsReceived"]
            ]
            detail = (
                f"{len(video)} video streams decoding, {len(audio)} audio streams receiving;"
                f" pcs={self.evaluate('() => (window.__pcs||[]).map(p=>p.connectionState)')}"
                f" inbound={after}"
            )
            return len(video) >= video_streams and len(audio) >= audio_streams

        wait_until(
            ok,
            timeout_ms,
            lambda: (
                f"{self.name}: media not flowing (want {video_streams} video and"
                f" {audio_streams} audio inbound streams increasing): {detail}"
            ),
        )


@dataclass
class Participant(MediaView):
    """One person in a meeting: their own browser context and page."""

    name: str
    room: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    # -- locators from the UI contract (issue 3)
    @property
    def participants(self) -> Any:
        return participants_list(self.page)

    def entry(self, name: str) -> Any:
        """The participants-list item of ``name``."""
        return self.participants.get_by_role("listitem").filter(has_text=name)

    @property
    def chat_log(self) -> Any:
        return self.page.get_by_role("log", name="Chat")

    @property
    def message_box(self) -> Any:
        return self.page.get_by_role("textbox", name="Message")

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    def open_participants(self) -> Any:
        return _open_panel(self.page, self.participants, "Participants")

    def click_join(self, timeout_ms: int = TIMEOUT_MS) -> None:
        """On the pre-join screen: type the name, click "Join meeting", wait until in."""
        self.page.get_by_role("textbox", name="Your name").fill(self.name)
        self.page.get_by_role("button", name="Join meeting").click()
        expect(self.button("Leave")).to_be_visible(timeout=timeout_ms)

    def open_chat(self) -> Any:
        # An empty log has no size (Playwright calls it hidden): wait on the input.
        _open_panel(self.page, self.message_box, "Chat")
        return self.chat_log

    # -- actions
    def send_chat(self, text: str) -> None:
        self.open_chat()
        self.message_box.fill(text)
        self.button("Send").click()

    def toggle(self, name: str, expect_pressed: bool) -> None:
        self.button(name).click()
        expect(self.button(name)).to_have_attribute(
            "aria-pressed", "true" if expect_pressed else "false", timeout=TIMEOUT_MS
        )

    def leave(self) -> None:
        self.button("Leave").click()

    def chat_entry(self, text: str, sender: str) -> str | None:
        """Text of the chat-log entry holding ``text`` (the nearest enclosing element that
        also names ``sender``), or None if the log has no such entry."""
        return self.chat_log.evaluate(JS_CHAT_ENTRY, [text, sender])

    def wait_chat_entry(self, text: str, sender: str, timeout_ms: int = TIMEOUT_MS) -> str:
        """Wait until the chat log shows ``text`` in an entry naming ``sender``."""
        self.open_chat()
        found: list[str | None] = [None]

        def ok() -> bool:
            found[0] = self.chat_entry(text, sender)
            return found[0] is not None and sender in found[0]

        wait_until(
            ok,
            timeout_ms,
            lambda: (
                f"{self.name}: no chat entry by {sender!r} with {text!r}; entry:"
                f" {found[0]!r}; log: {self.chat_log.inner_text()[-1500:]!r}"
            ),
        )
        return found[0] or ""

    # -- MediaView: the page's script
    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self.page.evaluate(fn, arg)

    def pause(self, ms: int) -> None:
        self.page.wait_for_timeout(ms)


@dataclass
class Meeting:
    """Opens pages and joins participants; closes its contexts at the end."""

    browser: Browser
    server: ParleyProcess
    participants: list[Participant] = field(default_factory=list)

    def open(
        self,
        name: str,
        room: str,
        *,
        camera: bool = True,
        server: ParleyProcess | None = None,
        viewport: dict[str, int] | None = None,
        init_scripts: tuple[str, ...] = (),
        timeout_ms: int = TIMEOUT_MS,
        query: str = "",
    ) -> Participant:
        """A new person on the pre-join screen of ``room`` (not joined yet).

        ``init_scripts`` run in the page before its own scripts (after the recorder of
        RTCPeerConnections); ``timeout_ms`` bounds each Playwright step; ``query`` is
        appended to the page's URL (``?codec=h264``).
        """
        srv = server or self.server
        context = self.browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        context.set_default_timeout(timeout_ms)
        context.add_init_script(INIT_SCRIPT_RECORD_PCS)
        if not camera:
            context.add_init_script(INIT_SCRIPT_NO_CAMERA)
        for script in init_scripts:
            context.add_init_script(script)
        page = context.new_page()
        person = Participant(name=name, room=room, context=context, page=page)
        page.on("console", lambda m: person.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: person.console.append(f"[pageerror] {e}"))
        self.participants.append(person)
        page.goto(srv.room_url(room) + query)
        return person

    def join(
        self,
        name: str,
        room: str,
        *,
        camera: bool = True,
        server: ParleyProcess | None = None,
        viewport: dict[str, int] | None = None,
    ) -> Participant:
        """Open ``/r/<room>``, type the name, click "Join meeting", wait until in."""
        person = self.open(name, room, camera=camera, server=server, viewport=viewport)
        person.click_join()
        person.open_participants()
        expect(person.entry(name)).to_have_count(1, timeout=TIMEOUT_MS)
        return person

    def close(self) -> None:
        for person in self.participants:
            try:
                person.context.close()
            except Exception:
                pass


@pytest.fixture
def meeting(
    browser: Browser, server: ParleyProcess, request: pytest.FixtureRequest
) -> Iterator[Meeting]:
    m = Meeting(browser=browser, server=server)
    request.node._parley_meeting = m
    yield m
    m.close()


@pytest.fixture
def new_participant(meeting: Meeting) -> Callable[..., Participant]:
    """``new_participant(name, room, camera=True)`` -> a joined :class:`Participant`."""
    return meeting.join


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    m: Meeting | None = getattr(item, "_parley_meeting", None)
    if m is not None:
        for person in m.participants:
            lines = person.console[-80:]
            report.sections.append(
                (f"browser console: {person.name}", "\n".join(lines) or "(empty)")
            )
    ff: FirefoxMeeting | None = getattr(item, "_parley_firefox", None)
    if ff is not None:
        for fperson in ff.participants:
            lines = fperson.console()[-80:]
            report.sections.append(
                (f"firefox console: {fperson.name}", "\n".join(lines) or "(empty)")
            )
        report.sections.append(("firefox driver log", ff.driver.tail(40)))
    for srv in _SERVERS:
        report.sections.append((f"server log {srv.url}", srv.log(8000)))


# --------------------------------------------------------------------------- firefox


@dataclass
class FirefoxParticipant(MediaView):
    """One person in Firefox (its own browser context), driven over WebDriver BiDi.

    Elements are found by the ids of room.html (the driver has no accessibility-tree
    queries over BiDi); clicks and typing are real input events."""

    name: str
    room: str
    driver: FirefoxDriver
    page_id: str

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self.driver.call("eval", page=self.page_id, fn=fn, arg=arg)

    def pause(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def click(self, selector: str) -> None:
        self.driver.call("click", page=self.page_id, selector=selector)

    def console(self) -> list[str]:
        try:
            return list(self.driver.call("console", page=self.page_id, timeout=10))
        except FirefoxDriverError as e:
            return [f"(console unavailable: {e})"]

    def wait_js(self, fn: str, what: str, arg: Any = None, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait until the page function ``fn(arg)`` returns something truthy."""
        wait_until(lambda: bool(self.evaluate(fn, arg)), timeout_ms, lambda: f"{self.name}: {what}")

    def click_join(self) -> None:
        self.driver.call("type", page=self.page_id, selector="#name-input", text=self.name)
        self.click("#join-btn")
        self.wait_js(
            "() => { const b = document.getElementById('btn-leave');"
            " return !!b && b.checkVisibility(); }",
            "never got into the meeting (no Leave button)",
        )

    def pressed(self, selector: str) -> str | None:
        return self.evaluate(
            "(s) => document.querySelector(s)?.getAttribute('aria-pressed')", selector
        )

    def toggle(self, selector: str, expect_pressed: bool) -> None:
        self.click(selector)
        want = "true" if expect_pressed else "false"
        wait_until(
            lambda: self.pressed(selector) == want,
            TIMEOUT_MS,
            lambda: f"{self.name}: {selector} aria-pressed is {self.pressed(selector)}",
        )

    def open_chat(self) -> None:
        if self.evaluate("() => document.getElementById('chat-input').checkVisibility()"):
            return
        self.click("#btn-chat")
        self.wait_js(
            "() => document.getElementById('chat-input').checkVisibility()", "chat never opened"
        )

    def send_chat(self, text: str) -> None:
        self.open_chat()
        self.driver.call("type", page=self.page_id, selector="#chat-input", text=text)
        self.click("#chat-send")

    def wait_chat_entry(self, text: str, sender: str, timeout_ms: int = TIMEOUT_MS) -> str:
        self.open_chat()
        fn = f"([t, s]) => ({JS_CHAT_ENTRY})(document.getElementById('chat-log'), [t, s])"
        found: list[str | None] = [None]

        def ok() -> bool:
            found[0] = self.evaluate(fn, [text, sender])
            return found[0] is not None and sender in found[0]

        wait_until(
            ok, timeout_ms, lambda: f"{self.name}: no chat entry by {sender!r} with {text!r}"
        )
        return found[0] or ""


@dataclass
class FirefoxMeeting:
    """Opens Firefox pages of the module's server; closes them at the end."""

    driver: FirefoxDriver
    server: ParleyProcess
    participants: list[FirefoxParticipant] = field(default_factory=list)

    def open(
        self, name: str, room: str, *, server: ParleyProcess | None = None, query: str = ""
    ) -> FirefoxParticipant:
        srv = server or self.server
        page_id = self.driver.call(
            "page", url=srv.room_url(room) + query, scripts=[INIT_SCRIPT_RECORD_PCS]
        )
        person = FirefoxParticipant(name=name, room=room, driver=self.driver, page_id=page_id)
        self.participants.append(person)
        return person

    def join(
        self, name: str, room: str, *, server: ParleyProcess | None = None, query: str = ""
    ) -> FirefoxParticipant:
        person = self.open(name, room, server=server, query=query)
        person.click_join()
        return person

    def close(self) -> None:
        for person in self.participants:
            try:
                self.driver.call("close_page", page=person.page_id, timeout=30)
            except FirefoxDriverError:
                pass


@pytest.fixture(scope="module")
def firefox(netns: NetNS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirefoxDriver]:
    """Debian's firefox-esr in the module's namespace (a Firefox module overrides ``netns``
    with ``veth_netns``: Firefox gathers no ICE candidate where only ``lo`` exists)."""
    reason = firefox_missing()
    if reason is not None:
        _unavailable(reason)
    log = tmp_path_factory.mktemp("firefox") / "driver.log"
    driver = FirefoxDriver(netns.cmd(), log, preexec=die_with_parent)
    try:
        driver.call("launch", executablePath=FIREFOX, prefs=FIREFOX_PREFS, timeout=120)
        yield driver
    finally:
        driver.close()


@pytest.fixture
def firefox_meeting(
    firefox: FirefoxDriver, server: ParleyProcess, request: pytest.FixtureRequest
) -> Iterator[FirefoxMeeting]:
    m = FirefoxMeeting(driver=firefox, server=server)
    request.node._parley_firefox = m
    yield m
    m.close()
