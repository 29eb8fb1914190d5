"""End-to-end load on parley.sfu: server CPU per forwarded packet, everything on 127.0.0.1.

The SFU (``parley.sfu.peer.SfuRoom`` on uvloop) runs in its own process, pinned to
``--sfu-cpu``; the load runs in this process, pinned to ``--load-cpu``:

* publishers are aiortc peers replaying a pre-encoded VP8 clip (480x272, 30 fps,
  about 1.1 Mbit/s, generated once into ``bench/sfu/.cache``), so the load spends no
  CPU on encoding;
* subscribers are aiortc peers whose ``RTCRtpReceiver._handle_rtp_packet`` only counts
  (SRTP decryption, no jitter buffer, no decoding) -- the same load as the Janus
  measurements in ../shared/bench/sfu/RESULTS.md (video only, no audio).

Signalling is JSON lines over TCP on 127.0.0.1 (``{"pid", "payload"}`` -> replies).
Metric: SFU CPU seconds (utime+stime of the SFU process over the window, /proc) divided
by RTP packets received by all subscribers in the window.  Every run has a fixed length.

    python bench/sfu/sfu_load_bench.py --scenario fanout --subs 10 40 80
    python bench/sfu/sfu_load_bench.py --scenario room --room 10
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import multiprocessing
import os
import pickle
import random
import sys
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).parent / ".cache"
CLK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- clip
def make_clip(path: Path, seconds: int = 6) -> dict[str, Any]:
    import av
    import numpy as np

    width, height, fps = 480, 272, 30
    cc = av.CodecContext.create("libvpx", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
    cc.time_base = fractions.Fraction(1, fps)
    cc.framerate = fps
    cc.bit_rate = 900_000
    cc.gop_size = 60
    cc.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "error-resilient": "1",
    }
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (height * 3 // 16 + 1, width // 8 + 1), dtype=np.uint8)
    base = np.kron(small, np.ones((8, 8), dtype=np.uint8))[: height * 3 // 2, :width]
    frames: list[tuple[bytes, bool]] = []
    for i in range(fps * seconds):
        img = np.roll(base, shift=(i * 3) % width, axis=1).copy()
        y0, x0 = (i * 7) % (height - 48), (i * 11) % (width - 96)
        img[y0 : y0 + 16, x0 : x0 + 32] = rng.integers(0, 255, (16, 32), dtype=np.uint8)
        f = av.VideoFrame.from_ndarray(img, format="yuv420p")
        f.pts = i
        frames += [(bytes(p), bool(p.is_keyframe)) for p in cc.encode(f)]
    frames += [(bytes(p), bool(p.is_keyframe)) for p in cc.encode(None)]
    clip = {"fps": fps, "frames": frames}
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / ".gitignore").write_text("*\n")
    path.write_bytes(pickle.dumps(clip))
    return clip


def load_clip() -> dict[str, Any]:
    path = CACHE / "vp8_clip.pkl"
    if path.exists():
        clip: dict[str, Any] = pickle.loads(path.read_bytes())
        return clip
    return make_clip(path)


# ----------------------------------------------------------------------------- SFU process
def sfu_main(port_q: Any, last_n: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import uvloop

    from parley.sfu.aiortc import host_addresses
    from parley.sfu.peer import SfuRoom

    host_addresses.restrict_host_addresses(["127.0.0.1"])

    async def serve() -> None:
        room = SfuRoom(lambda pid, payload: None, last_n=last_n, audio_slots=0)

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                msg = json.loads(line)
                if msg.get("stop"):
                    writer.close()
                    await room.close()
                    asyncio.get_running_loop().stop()
                    return
                replies = await room.handle_signal(msg["pid"], msg["payload"])
                writer.write(json.dumps(replies).encode() + b"\n")
                await writer.drain()

        server = await asyncio.start_server(client, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        await asyncio.Future()

    try:
        uvloop.run(serve())
    except RuntimeError:
        pass  # loop stopped


# ----------------------------------------------------------------------------- load
def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


RX = {"pkts": 0}


def append_line(path: str, line: str) -> None:
    with open(path, "a") as fh:
        fh.write(line + "\n")


async def run(args: argparse.Namespace, subs: int, pubs: int, room_mode: bool) -> dict[str, Any]:
    import av
    from aiortc import (
        MediaStreamTrack,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    async def count_only(self: Any, packet: Any, arrival_time_ms: int) -> None:
        RX["pkts"] += 1

    RTCRtpReceiver._handle_rtp_packet = count_only  # type: ignore[method-assign]  # load only

    clip = load_clip()

    class ReplayTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.i = random.randrange(len(clip["frames"]))
            self.n = 0
            self.t0: float | None = None

        async def recv(self) -> Any:
            if self.t0 is None:
                self.t0 = time.monotonic()
            delay = self.t0 + self.n / clip["fps"] - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            data, _ = clip["frames"][self.i % len(clip["frames"])]
            pkt = av.Packet(data)
            pkt.pts = self.n * 3000
            pkt.time_base = fractions.Fraction(1, 90000)
            self.i += 1
            self.n += 1
            return pkt

    q: Any = multiprocessing.get_context("spawn").Queue()
    last_n = max(pubs - 1 if room_mode else pubs, 1)
    proc = multiprocessing.get_context("spawn").Process(
        target=sfu_main, args=(q, last_n, args.sfu_cpu), daemon=True
    )
    proc.start()
    pcs: list[Any] = []
    try:
        port = q.get(timeout=30)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def signal(pid: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
            writer.write(json.dumps({"pid": pid, "payload": payload}).encode() + b"\n")
            await writer.drain()
            result: list[dict[str, Any]] = json.loads(await reader.readline())
            return result

        def new_pc() -> Any:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            return pc

        for i in range(pubs):
            pc = new_pc()
            pc.addTransceiver(ReplayTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            [ans] = await signal(f"p{i}", {"sfu": "publish", "sdp": pc.localDescription.sdp})
            await pc.setRemoteDescription(RTCSessionDescription(ans["sdp"], "answer"))
        viewers = [f"p{i}" for i in range(pubs)] if room_mode else [f"v{i}" for i in range(subs)]
        t_setup = time.monotonic()
        for pid in viewers:
            pc = new_pc()
            [offer] = await signal(pid, {"sfu": "subscribe"})
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await signal(pid, {"sfu": "subscribe-answer", "sdp": pc.localDescription.sdp})
        setup_s = time.monotonic() - t_setup
        await asyncio.sleep(args.warmup)
        cpu0, rx0, t0 = proc_cpu_s(proc.pid), RX["pkts"], time.monotonic()
        load0 = time.process_time()
        await asyncio.sleep(args.window)
        cpu1, rx1, t1 = proc_cpu_s(proc.pid), RX["pkts"], time.monotonic()
        load1 = time.process_time()
        rss = proc_rss_mb(proc.pid)
        pkts = rx1 - rx0
        streams = pubs * (pubs - 1) if room_mode else subs
        res = {
            "scenario": f"{pubs} x {pubs - 1} room" if room_mode else f"1 x {subs}",
            "fwd_streams": streams,
            "fwd_pkt_s": round(pkts / (t1 - t0)),
            "sfu_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "sfu_us_per_pkt": round((cpu1 - cpu0) / max(pkts, 1) * 1e6, 1),
            "sfu_rss_mb": round(rss),
            "load_cpu_pct": round(100 * (load1 - load0) / (t1 - t0), 1),
            "setup_s": round(setup_s, 2),
        }
        writer.write(b'{"stop": true}\n')
        await writer.drain()
        return res
    finally:
        for pc in pcs:
            await pc.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=["fanout", "room"], default="fanout")
    ap.add_argument("--subs", type=int, nargs="*", default=[10, 40, 80])
    ap.add_argument("--room", type=int, nargs="*", default=[10])
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--sfu-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--out", help="append one JSON line per run to this file")
    args = ap.parse_args()
    if args.load_cpu >= 0:
        os.sched_setaffinity(0, {args.load_cpu})
    if args.sfu_cpu < 0:
        args.sfu_cpu = None

    from parley.sfu.aiortc import host_addresses

    host_addresses.restrict_host_addresses(["127.0.0.1"])
    load_clip()
    sizes = args.subs if args.scenario == "fanout" else args.room
    rows = []
    for size in sizes:
        for _ in range(args.repeats):
            RX["pkts"] = 0
            if args.scenario == "fanout":
                res = await run(args, size, 1, False)
            else:
                res = await run(args, 0, size, True)
            print(json.dumps(res), flush=True)
            if args.out:
                append_line(args.out, json.dumps(res))
            rows.append(res)
    print(
        "| scenario | fwd streams | fwd pkt/s | SFU CPU % | **SFU µs/pkt** | SFU RSS MB "
        "| load CPU % | subscribe setup s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['fwd_streams']} | {r['fwd_pkt_s']} | {r['sfu_cpu_pct']} "
            f"| **{r['sfu_us_per_pkt']}** | {r['sfu_rss_mb']} | {r['load_cpu_pct']} "
            f"| {r['setup_s']} |"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    asyncio.run(main())
