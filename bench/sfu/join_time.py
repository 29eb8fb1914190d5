"""Glass-to-glass join time: from clicking "Join meeting" to the first decoded remote frame.

Six people join one room one after another in headless Chromium (fake camera and
microphone); for each joiner the page itself records ``performance.now()`` at the click
and when one of its RTCPeerConnections first reports an inbound video with
``framesDecoded > 0``.  The 3rd and the 6th joiner are the numbers the SFU issue asks
for; the table shows every joiner.

Everything runs in a private network namespace with only ``lo`` (as the browser tests
do): needs root, ``unshare``/``nsenter``/``ip``, Chromium and Playwright for Python.

    python bench/sfu/join_time.py                      # SFU, 3 runs
    python bench/sfu/join_time.py --media mesh --runs 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PARLEY_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--autoplay-policy=no-user-gesture-required",
]
RECORD = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native || Native.__parleyWrapped) return;
  window.__pcs = [];
  class Recorded extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  }
  Recorded.__parleyWrapped = true;
  window.RTCPeerConnection = Recorded;
  window.__t = {};
  document.addEventListener('click', (e) => {
    const b = e.target && e.target.closest && e.target.closest('button');
    if (b && /Join meeting/.test(b.textContent) && !window.__t.click) {
      window.__t.click = performance.now();
    }
  }, true);
  const poll = async () => {
    for (const pc of window.__pcs) {
      let report;
      try { report = await pc.getStats(); } catch (e) { continue; }
      let ok = false;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0) ok = true;
      });
      if (ok && window.__t.click) { window.__t.frame = performance.now(); return; }
    }
    setTimeout(poll, 20);
  };
  poll();
})();
"""


def netns_up(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
    own = os.readlink("/proc/self/ns/net")
    for _ in range(500):
        try:
            if os.readlink(f"/proc/{holder.pid}/ns/net") != own:
                break
        except OSError:
            pass
        time.sleep(0.01)
    ns = f"--net=/proc/{holder.pid}/ns/net"
    subprocess.run(["nsenter", ns, "ip", "link", "set", "lo", "up"], check=True)
    wrapper = tmp / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter {ns} -- {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return holder, wrapper


def start_server(holder: subprocess.Popen[bytes], tmp: Path, media: str) -> tuple[Any, int]:
    with socket.socket() as s:  # a port number; the namespace has its own ports
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [sys.executable, "-m", "parley", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(tmp / "data"), "--media", media, "--no-rate-limits"]
    if media == "sfu":
        argv += ["--media-ip", "127.0.0.1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    probe = "import sys,urllib.request;urllib.request.urlopen(sys.argv[1],timeout=2);print('ok')"
    for _ in range(300):
        out = subprocess.run(
            ["nsenter", f"--net=/proc/{holder.pid}/ns/net", sys.executable, "-c", probe,
             f"http://127.0.0.1:{port}/healthz"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.stdout.strip() == "ok":
            return proc, port
        time.sleep(0.1)
    raise SystemExit("server did not start:\n" + (tmp / "server.log").read_text()[-2000:])


def run_room(browser: Any, port: int, room: str, people: int) -> list[float | None]:
    contexts = []
    times: list[float | None] = []
    try:
        for i in range(people):
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            ctx.add_init_script(RECORD)
            contexts.append(ctx)
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{port}/r/{room}")
            page.get_by_role("textbox", name="Your name").fill(f"P{i + 1}")
            page.get_by_role("button", name="Join meeting").click()
            if i == 0:
                page.get_by_role("button", name="Leave", exact=True).wait_for(timeout=30_000)
                times.append(None)  # nobody to see yet
                continue
            try:
                page.wait_for_function("() => window.__t && window.__t.frame", timeout=30_000)
                t = page.evaluate("() => window.__t.frame - window.__t.click")
                times.append(float(t) / 1000)
            except Exception:
                times.append(None)
    finally:
        for ctx in contexts:
            ctx.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", choices=("sfu", "mesh"), default="sfu")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--people", type=int, default=6)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="parley-join-"))
    holder, wrapper = netns_up(tmp)
    server = None
    try:
        server, port = start_server(holder, tmp, args.media)
        results: list[list[float | None]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(wrapper), args=ARGS, headless=True)
            try:
                for run in range(args.runs):
                    results.append(
                        run_room(browser, port, f"join-{run}-{os.getpid()}", args.people)
                    )
            finally:
                browser.close()
        load = os.getloadavg()[0]
        print(
            f"\nmedia={args.media} runs={args.runs} load average {load:.1f} ({os.cpu_count()} CPUs)"
        )
        print(
            "| joiner | " + " | ".join(f"run {r + 1} s" for r in range(args.runs)) + " | median s |"
        )
        print("|---|" + "---|" * (args.runs + 1))
        for j in range(1, args.people):
            vals = [r[j] for r in results]
            ok = [v for v in vals if v is not None]
            cells = " | ".join(f"{v:.2f}" if v is not None else "none" for v in vals)
            med = f"{statistics.median(ok):.2f}" if ok else "-"
            mark = " *" if j + 1 in (3, 6) else ""
            print(f"| {j + 1}{mark} | {cells} | {med} |")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        holder.kill()
        holder.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
