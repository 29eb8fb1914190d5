"""Helpers for test_cluster.py: pages that relay through TURN, their selected ICE pairs.

redis-server and coturn run in the test namespace through the one Redis and coturn
helpers of tests/support (``ns=netns``): the namespace has its own ``lo``, so a
service on the host's 127.0.0.1 is unreachable from there.
"""

from __future__ import annotations

from typing import Any


class RelayPages:
    """Stands in for a server in ``meeting.join(server=...)``: opens ``/r/<room>?relay=1``,
    the client's test-only switch for ``iceTransportPolicy: "relay"``."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url

    def room_url(self, room: str) -> str:
        return f"{self.server.room_url(room)}?relay=1"


# The selected ICE candidate pair of every live recorded RTCPeerConnection, with the
# type of both ends (host / srflx / prflx / relay) and the bytes it carried.
JS_SELECTED_PAIRS = """
async () => {
  const out = [];
  const pcs = window.__pcs || [];
  for (let i = 0; i < pcs.length; i++) {
    const pc = pcs[i];
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const pairIds = new Set();
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        pairIds.add(s.selectedCandidatePairId);
      }
    });
    if (!pairIds.size) {  // older stats: the nominated, succeeded pair
      report.forEach((s) => {
        const ok = s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded';
        if (ok) pairIds.add(s.id);
      });
    }
    for (const id of pairIds) {
      const pair = byId.get(id) || {};
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      out.push({
        pc: i,
        policy: pc.getConfiguration().iceTransportPolicy,
        state: pair.state,
        local: local.candidateType,
        localAddress: (local.address || local.ip || '') + ':' + local.port,
        localRelayProtocol: local.relayProtocol || null,
        localUrl: local.url || null,
        remote: remote.candidateType,
        remoteAddress: (remote.address || remote.ip || '') + ':' + remote.port,
        bytesSent: pair.bytesSent || 0,
        bytesReceived: pair.bytesReceived || 0,
      });
    }
  }
  return out;
}
"""


def selected_pairs(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(JS_SELECTED_PAIRS))


def metric(text: str, name: str) -> float | None:
    """The value of an unlabelled sample ``name`` in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{}"):
            return float(line.rsplit(" ", 1)[1])
    return None
