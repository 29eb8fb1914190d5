"""5 % packet loss through the SFU: video keeps decoding, because lost packets are resent.

Two people in Chromium through the server's SFU (``--media sfu --media-ip 127.0.0.1``):
"Pub" publishes a camera, "Sub" has no camera and watches it.  Once Sub decodes Pub's
video, ``tc qdisc add dev lo root netem loss 5%`` (run *inside* the test namespace, whose
only interface is ``lo``) drops 5 % of every packet on the path -- Pub -> SFU and
SFU -> Sub alike -- for about nine seconds.  During that window, from getStats():

* Sub's inbound video keeps decoding: ``framesDecoded`` sampled every 1.5 s rises at every
  sample (no freeze as long as a sampling interval);
* Sub NACKs the SFU (inbound-rtp ``nackCount`` rises) and the freezes stay bounded
  (``totalFreezesDuration`` grows by less than half the window);
* the SFU NACKs upstream: Pub's outbound-rtp ``nackCount`` or ``retransmittedPacketsSent``
  rises (when Chromium reports them);
* and, from the server's ``/metrics``, the SFU answered NACKs from its cache
  (``parley_sfu_retransmitted_total``) and sent NACKs to the publisher
  (``parley_sfu_nacks_sent_total``), when the server reports SFU counters.

Kernels built without netem (``tc`` says "Specified qdisc kind is unknown") get the same
5 % random drop from nftables instead (``numgen random mod 100 < 5 drop`` on input from
``lo``).  The loss is always removed (``finally``).  Needs root and ``tc`` with netem or
``nft``: skipped without them locally, failed under ``CI`` (like the rest of the browser
suite).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.browser_camera import init_script_camera
from tests.browser.stats_js import js_each_stat

# Fixtures (netns, parley_server, meeting) come from conftest.py; its helpers are reached
# through the module pytest loaded (no `import conftest`: several conftest.py exist).
Meeting = NetNS = Participant = ParleyServer = Any

pytestmark = [pytest.mark.browser, pytest.mark.exclusive, pytest.mark.timeout(120)]

STEP_MS = 30_000
LOSS_PERCENT = 5
WINDOW_S = 9.0  # how long the loss lasts
SAMPLE_S = 1.5  # framesDecoded must rise between consecutive samples this far apart
FREEZE_BOUND_S = WINDOW_S / 2  # total freeze time allowed during the window

# One small camera (the client asks for 720p; 640x360 still spans several packets a frame).
INIT_SCRIPT_CAMERA_360P = init_script_camera(640, 360)

# Video RTP stats of every recorded RTCPeerConnection; a field Chromium does not report
# is null (so "not reported" is told apart from 0).
JS_VIDEO_RTP_STATS = js_each_stat(
    "{ inbound: [], outbound: [] }",
    prelude="  const num = (s, k) => (typeof s[k] === 'number' ? s[k] : null);\n",
    visit="""
      if (s.kind !== 'video') return;
      if (s.type === 'inbound-rtp') {
        out.inbound.push({
          key: i + ':' + s.ssrc,
          framesDecoded: s.framesDecoded || 0,
          framesReceived: num(s, 'framesReceived'),
          packetsReceived: num(s, 'packetsReceived'),
          packetsLost: num(s, 'packetsLost'),
          nackCount: num(s, 'nackCount'),
          pliCount: num(s, 'pliCount'),
          freezeCount: num(s, 'freezeCount'),
          totalFreezesDuration: num(s, 'totalFreezesDuration'),
          retransmittedPacketsReceived: num(s, 'retransmittedPacketsReceived'),
        });
      } else if (s.type === 'outbound-rtp') {
        out.outbound.push({
          key: i + ':' + s.ssrc,
          packetsSent: num(s, 'packetsSent'),
          nackCount: num(s, 'nackCount'),
          retransmittedPacketsSent: num(s, 'retransmittedPacketsSent'),
          pliCount: num(s, 'pliCount'),
        });
      }
""",
)

METRIC_RE = re.compile(r"^parley_(sfu_\w+)_total\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


def _conftest(obj: Any) -> Any:
    """tests/browser/conftest.py as pytest loaded it (the module defining ``obj``'s type).

    Reached through a method's globals: several conftest modules share the name
    "conftest", so sys.modules may hold another one.
    """
    for value in vars(type(obj)).values():
        code = getattr(value, "__code__", None)
        if code is not None and code.co_filename.endswith("conftest.py"):
            return types.SimpleNamespace(**value.__globals__)
    raise RuntimeError(f"no method of {type(obj).__name__} defined in conftest.py")


@dataclass(frozen=True)
class Loss:
    """How random loss is put on the namespace's ``lo``: ``tc`` netem, or nftables where
    the kernel has no netem (``sch_netem``) but has nftables' ``numgen``."""

    kind: str  # "netem" | "nft"
    tool: str  # absolute path of tc or nft

    def add(self, netns: NetNS, percent: int) -> subprocess.CompletedProcess[str]:
        if self.kind == "netem":
            return netns.run(
                self.tool, "qdisc", "add", "dev", "lo", "root", "netem", "loss", f"{percent}%"
            )
        return _nft(netns, self.tool, NFT_LOSS.replace("{percent}", str(percent)))

    def remove(self, netns: NetNS) -> None:
        if self.kind == "netem":
            netns.run(self.tool, "qdisc", "del", "dev", "lo", "root")
        else:
            netns.run(self.tool, "delete", "table", "inet", NFT_TABLE)

    def show(self, netns: NetNS) -> str:
        if self.kind == "netem":
            return netns.run(self.tool, "qdisc", "show", "dev", "lo").stdout.strip()
        return netns.run(self.tool, "list", "ruleset").stdout.strip()

    def active(self, netns: NetNS, percent: int) -> bool:
        shown = self.show(netns)
        if self.kind == "netem":
            return "netem" in shown and f"loss {percent}%" in shown
        return NFT_TABLE in shown and f"< {percent}" in shown and "drop" in shown


NFT_TABLE = "parley_loss"
# Dropped on input (after lo), so senders see no error -- like a lossy wire.
NFT_LOSS = """
table inet parley_loss {
  chain lossy {
    type filter hook input priority -300; policy accept;
    iifname "lo" numgen random mod 100 < {percent} drop
  }
}
"""


def _nft(netns: NetNS, nft: str, script: str) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".nft", dir=netns.tmp, delete=False) as f:
        f.write(script)
    try:
        return netns.run(nft, "-f", f.name)
    finally:
        os.unlink(f.name)


@pytest.fixture(scope="module")
def loss(netns: NetNS) -> Loss:
    """A way to drop packets on the namespace's ``lo``, proven to work (added with 0 %
    and removed again) before any browser starts: ``tc`` netem, else nftables."""
    conf = _conftest(netns)
    errors = []
    for kind, name in (("netem", "tc"), ("nft", "nft")):
        path = shutil.which(name)
        if path is None:
            errors.append(f"`{name}` not found")
            continue
        method = Loss(kind, path)
        probe = method.add(netns, 0)
        method.remove(netns)
        if probe.returncode == 0:
            return method
        errors.append(f"{name}: {probe.stderr.strip()}")
    conf._unavailable(
        "cannot put packet loss on lo (tc netem from iproute2, or nftables): " + "; ".join(errors)
    )
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    """This module's server forwards media through the SFU, candidates on 127.0.0.1 only."""
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


@contextmanager
def lossy_lo(netns: NetNS, loss: Loss, percent: int) -> Iterator[str]:
    """``percent`` % loss on the namespace's ``lo`` while the block runs; yields how the
    loss is configured (``tc qdisc show`` / ``nft list ruleset``).  Always removed."""
    add = loss.add(netns, percent)
    try:
        assert add.returncode == 0, f"adding {loss.kind} loss failed: {add.stderr.strip()}"
        assert loss.active(netns, percent), f"loss not in place: {loss.show(netns)!r}"
        yield loss.show(netns)
    finally:
        loss.remove(netns)


def join(meeting: Meeting, name: str, room: str, *, camera: bool) -> Participant:
    """Open ``/r/<room>`` in a fresh context and join like a user (a 360p camera or none)."""
    person: Participant = meeting.open(
        name,
        room,
        camera=camera,
        viewport={"width": 960, "height": 600},
        init_scripts=(INIT_SCRIPT_CAMERA_360P,) if camera else (),
        timeout_ms=STEP_MS,
    )
    person.page.get_by_role("textbox", name="Your name").fill(name)
    person.page.get_by_role("button", name="Join meeting").click()
    expect(person.button("Leave")).to_be_visible(timeout=STEP_MS)
    return person


def video_stats(person: Participant) -> dict[str, list[dict[str, Any]]]:
    stats: dict[str, list[dict[str, Any]]] = person.page.evaluate(JS_VIDEO_RTP_STATS)
    return stats


def sfu_metrics(server: ParleyServer) -> dict[str, float]:
    """The server's ``parley_sfu_*_total`` counters ({} if it reports none)."""
    status, body = server.http_get("/metrics", timeout=5)
    if status != 200:
        return {}
    return {name: float(value) for name, value in METRIC_RE.findall(body)}


def delta(after: Any, before: Any) -> Any:
    """``after - before`` for counters Chromium reports, else None."""
    if after is None or before is None:
        return None
    return after - before


def outbound_sum(stats: dict[str, list[dict[str, Any]]], field: str) -> int | None:
    values = [s[field] for s in stats["outbound"] if s[field] is not None]
    return sum(values) if values else None


def test_video_keeps_decoding_with_5_percent_loss(
    loss: Loss, meeting: Meeting, server: ParleyServer, room: str
) -> None:
    t_start = time.monotonic()
    pub = join(meeting, "Pub", room, camera=True)
    sub = join(meeting, "Sub", room, camera=False)

    # The room forwards through the server, and both pages say so in the meeting bar.
    for person in (pub, sub):
        badge = person.page.get_by_text("Media: via server")
        expect(badge).to_be_visible()
        expect(badge).to_have_attribute("title", "Video is forwarded by the server")

    sub.wait_media_flowing(video_streams=1, audio_streams=0, timeout_ms=STEP_MS)
    pub.wait_media_flowing(video_streams=0, audio_streams=1, timeout_ms=STEP_MS)

    # Sub's stream of Pub's camera: the inbound video that decoded the most frames.
    base_sub = video_stats(sub)
    assert base_sub["inbound"], f"Sub has no inbound video: {base_sub}"
    stream = max(base_sub["inbound"], key=lambda s: s["framesDecoded"])
    key = stream["key"]
    base_pub = video_stats(pub)
    assert base_pub["outbound"], f"Pub sends no video: {base_pub}"
    base_metrics = sfu_metrics(server)

    samples: list[dict[str, Any]] = []
    with lossy_lo(server.ns, loss, LOSS_PERCENT):
        t0 = time.monotonic()
        first = {s["key"]: s for s in video_stats(sub)["inbound"]}.get(key)
        assert first is not None, f"Sub's stream {key} vanished"
        samples.append({**first, "t": 0.0})
        for n in range(1, int(WINDOW_S / SAMPLE_S) + 1):
            wait_ms = (t0 + n * SAMPLE_S - time.monotonic()) * 1000
            if wait_ms > 0:
                sub.page.wait_for_timeout(wait_ms)
            now = {s["key"]: s for s in video_stats(sub)["inbound"]}.get(key)
            assert now is not None, (
                f"Sub's stream {key} vanished {n * SAMPLE_S:.1f} s into the loss"
            )
            samples.append({**now, "t": round(time.monotonic() - t0, 2)})
        end_pub = video_stats(pub)
        end_metrics = sfu_metrics(server)
        window_s = time.monotonic() - t0

    assert not loss.active(server.ns, LOSS_PERCENT), f"loss still on lo: {loss.show(server.ns)}"

    first, last = samples[0], samples[-1]
    decoded = [s["framesDecoded"] for s in samples]
    sub_nacks = delta(last["nackCount"], first["nackCount"])
    freezes = delta(last["freezeCount"], first["freezeCount"])
    frozen_s = delta(last["totalFreezesDuration"], first["totalFreezesDuration"])
    pub_nacks = delta(outbound_sum(end_pub, "nackCount"), outbound_sum(base_pub, "nackCount"))
    pub_rtx = delta(
        outbound_sum(end_pub, "retransmittedPacketsSent"),
        outbound_sum(base_pub, "retransmittedPacketsSent"),
    )
    server_deltas = {
        k: end_metrics[k] - base_metrics[k]
        for k in ("sfu_nacks_sent", "sfu_retransmitted", "sfu_plis_sent")
        if k in end_metrics and k in base_metrics
    }
    report = (
        f"{window_s:.1f} s of {LOSS_PERCENT} % loss ({loss.kind}): framesDecoded {decoded};"
        f" Sub: nackCount +{sub_nacks}, freezes +{freezes} ({frozen_s} s),"
        f" packetsLost +{delta(last['packetsLost'], first['packetsLost'])},"
        f" retransmittedPacketsReceived"
        f" +{delta(last['retransmittedPacketsReceived'], first['retransmittedPacketsReceived'])},"
        f" pliCount +{delta(last['pliCount'], first['pliCount'])};"
        f" Pub: nackCount +{pub_nacks}, retransmittedPacketsSent +{pub_rtx};"
        f" server: {server_deltas}"
    )
    print("\n" + report)

    # Video keeps decoding through the loss: every sample has more frames than the last.
    stalls = [
        (a["t"], b["t"])
        for a, b in zip(samples, samples[1:], strict=False)
        if b["framesDecoded"] <= a["framesDecoded"]
    ]
    assert not stalls, (
        f"video stopped decoding between samples (s into the loss) {stalls}: {report}"
    )
    # The subscriber asks the SFU for what it lost ...
    assert sub_nacks is not None, f"Chromium reports no inbound nackCount: {report}"
    assert sub_nacks > 0, f"Sub sent no NACK during the loss: {report}"
    # ... and freezes stay bounded (a bound on how long, not on how fast).
    assert frozen_s is not None, f"Chromium reports no totalFreezesDuration: {report}"
    assert frozen_s < FREEZE_BOUND_S, f"video froze {frozen_s:.1f} s of {window_s:.1f} s: {report}"
    # The SFU NACKs the publisher for what it lost upstream (if Chromium reports either).
    if pub_nacks is not None or pub_rtx is not None:
        assert (pub_nacks or 0) > 0 or (pub_rtx or 0) > 0, f"no NACK reached Pub: {report}"
    # The server's own counters, when it reports them: NACKs answered from the cache,
    # NACKs sent upstream.
    if "sfu_retransmitted" in server_deltas:
        assert server_deltas["sfu_retransmitted"] > 0, f"SFU resent nothing: {report}"
    if "sfu_nacks_sent" in server_deltas:
        assert server_deltas["sfu_nacks_sent"] > 0, f"SFU NACKed no publisher: {report}"

    # With the loss gone, video still flows.
    sub.wait_media_flowing(video_streams=1, audio_streams=0, timeout_ms=STEP_MS)
    print(f"test body: {time.monotonic() - t_start:.1f} s")


def test_media_mode_badge_in_a_mesh_room(meeting: Meeting, parley_server: Any, room: str) -> None:
    """The other mode's badge (the loss test above checks "Media: via server")."""
    mesh = parley_server("--media", "mesh")
    solo = meeting.join("Solo", room, server=mesh)
    badge = solo.page.locator("#media-mode")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-mode", "mesh")
    expect(badge).to_have_attribute("title", "Video goes directly between browsers")
    expect(solo.page.get_by_text("Media: peer-to-peer")).to_be_visible()
    expect(solo.page.get_by_text("Media: via server")).to_have_count(0)
    solo.leave()
    expect(badge).to_be_hidden()
