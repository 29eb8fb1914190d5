"""Transport-wide congestion control between Chromium and the SFU.

The publish answer keeps Chromium's transport-cc offer (extension + ``a=rtcp-fb``), the
server reports arrival times every 100 ms and sends no fixed REMB cap any more, so the
browser's own estimator (GCC) decides: its estimate (``availableOutgoingBitrate`` of the
publishing connection) rises above the 2.5 Mbit/s REMB cap the server used to send,
and the camera's top simulcast layer goes out at full resolution.  The server log
counts the feedback packets.  A control run (the transport-cc lines taken out of the
offer on its way to the server) shows the old behaviour: REMB, estimate capped.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

Meeting = Participant = ParleyServer = Any

pytestmark = [pytest.mark.browser, pytest.mark.exclusive, pytest.mark.timeout(300)]

#: The REMB the server sends publishers without transport-cc (Router.max_video_bitrate).
OLD_REMB_CAP = 2_500_000
#: Generous: a loaded 2-core box, Chromium encoding three simulcast layers.
WAIT_S = 90

# The publishing connection (the one sending a video track): its estimate, its video
# layers and whether the negotiated answer has transport-cc.
JS_PUBLISH_STATS = """
async () => {
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const video = pc.getSenders().find((s) => s.track && s.track.kind === 'video');
    if (!video) continue;
    const report = await pc.getStats();
    let estimate = null;
    const layers = [];
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded'
          && s.availableOutgoingBitrate !== undefined) {
        estimate = s.availableOutgoingBitrate;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        layers.push({
          rid: s.rid || '', width: s.frameWidth || 0, height: s.frameHeight || 0,
          target: s.targetBitrate || 0, limit: s.qualityLimitationReason || '',
          active: s.active !== false,
        });
      }
    });
    const sdp = pc.remoteDescription ? pc.remoteDescription.sdp : '';
    const settings = video.track.getSettings();
    return {
      estimate, layers, capture: [settings.width || 0, settings.height || 0],
      transportCc: /a=rtcp-fb:\\S+ transport-cc/.test(sdp)
        && sdp.includes('transport-wide-cc-extensions-01'),
    };
  }
  return null;
}
"""

# Control: the page's publish offer reaches the server without transport-cc.
INIT_SCRIPT_NO_TWCC = """
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === 'string' && data.includes('"publish"') && data.includes('transport-cc')) {
      try {
        const msg = JSON.parse(data);
        for (const obj of [msg, msg.payload, msg.data]) {
          if (obj && typeof obj.sdp === 'string') {
            obj.sdp = obj.sdp.split('\\r\\n').filter((l) => !l.includes('transport-cc')
              && !l.includes('transport-wide-cc')).join('\\r\\n');
          }
        }
        data = JSON.stringify(msg);
      } catch (e) { /* not JSON: as is */ }
    }
    return send.call(this, data);
  };
})();
"""


@pytest.fixture(scope="module")
def server(parley_server: Any) -> ParleyServer:
    return parley_server("--media", "sfu", "--media-ip", "127.0.0.1")


def publish_stats(person: Participant) -> dict[str, Any] | None:
    return person.page.evaluate(JS_PUBLISH_STATS)  # type: ignore[no-any-return]


def watch(person: Participant, until: Any, seconds: float) -> tuple[dict[str, Any] | None, float]:
    """Poll the publishing stats until ``until(stats)`` or ``seconds``; (last, max estimate)."""
    deadline = time.monotonic() + seconds
    last: dict[str, Any] | None = None
    best = 0.0
    while time.monotonic() < deadline:
        last = publish_stats(person)
        if last is not None:
            best = max(best, float(last["estimate"] or 0))
            if until(last):
                break
        person.page.wait_for_timeout(1000)
    return last, best


def top_layer_full(stats: dict[str, Any]) -> bool:
    width, height = stats["capture"]
    return any(
        layer["width"] >= width and layer["height"] >= height and width > 0
        for layer in stats["layers"]
    )


def feedback_logged(server: ParleyServer) -> int:
    text = server.log_path.read_text(errors="replace")
    counts = [int(n) for n in re.findall(r"(\d+) transport-cc feedback packets sent", text)]
    return max(counts, default=0)


def test_publisher_estimate_rises_with_transport_cc(meeting: Meeting, room: str) -> None:
    ada = meeting.join("Ada", room)
    stats, best = watch(
        ada,
        lambda s: (s["estimate"] or 0) > OLD_REMB_CAP and top_layer_full(s),
        WAIT_S,
    )
    print(f"\ntransport-cc: max estimate {best / 1e6:.2f} Mbit/s, last stats {stats}")
    assert stats is not None, "no publishing connection"
    assert stats["transportCc"], "the publish answer does not negotiate transport-cc"
    assert best > OLD_REMB_CAP, f"estimate stayed at {best / 1e6:.2f} Mbit/s: {stats}"
    assert top_layer_full(stats), f"top layer never at the capture size: {stats}"
    log = meeting.server.log_path.read_text(errors="replace")
    assert "publishes with transport-cc feedback" in log
    deadline = time.monotonic() + 30
    while (sent := feedback_logged(meeting.server)) < 10 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sent >= 10, "the server logged no transport-cc feedback"
    print(f"server: {sent}+ transport-cc feedback packets sent")


def test_control_without_transport_cc_stays_under_the_remb_cap(meeting: Meeting, room: str) -> None:
    person = meeting.open("Bob", room)
    person.context.add_init_script(INIT_SCRIPT_NO_TWCC)
    person.page.reload()
    person.page.get_by_role("textbox", name="Your name").fill("Bob")
    person.page.get_by_role("button", name="Join meeting").click()
    stats, best = watch(person, lambda s: False, 30)
    print(f"\nREMB only: max estimate {best / 1e6:.2f} Mbit/s, last stats {stats}")
    assert stats is not None and not stats["transportCc"]
    assert 0 < best <= OLD_REMB_CAP * 1.05
