"""Page functions over the getStats() of the RTCPeerConnections a page recorded.

conftest.py's init script records every RTCPeerConnection in ``window.__pcs``.
Module name is unique across tests/ (there are no ``__init__.py`` files); modules in
this folder (conftest.py included) import it directly.
"""

from __future__ import annotations

from string import Template

_EACH_STAT = Template("""
async () => {
$prelude  const out = $out;
  const pcs = window.__pcs || [];
  for (let i = 0; i < pcs.length; i++) {
    const pc = pcs[i];
    if (pc.connectionState === 'closed') continue;
    let report;
    try { report = await pc.getStats(); } catch (e) { continue; }
    report.forEach((s) => {
$visit
    });
  }
  return out;
}
""")


def js_each_stat(out: str, visit: str, prelude: str = "") -> str:
    """An async page function returning ``out`` (a JS expression, evaluated first) after
    running ``visit`` on every stats entry ``s`` of every live recorded peer connection
    (``i``: its index in ``window.__pcs``); ``prelude``: JS lines (indented, each ending in
    a newline) run before anything else.  A getStats() that throws skips that connection."""
    return _EACH_STAT.substitute(out=out, visit=visit.strip("\n"), prelude=prelude)
