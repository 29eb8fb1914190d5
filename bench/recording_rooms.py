"""Many rooms recorded at once on one core, in real time (issue 14: "at least 20 rooms
with one speaker (audio + 720p camera) recorded at once on one core").

Each room: one publisher sending a 1280x720 30 fps VP8 camera (aiortc's encoder, about
1.2 Mbit/s) and an Opus microphone, and one subscriber (``send`` a no-op: forwarding
without SRTP and sockets), as in ``bench/recording.py``.  One event loop paces every
room's packets in real time (a 10 s clip looped, sequence numbers and timestamps carried
on; the rooms start staggered) through ``Publisher.on_rtp``.  The whole process, the
loop and the recordings' thread (the process's ``RecordingWorker``), is pinned to **one
CPU**.

Two phases in the same run: the rooms forwarding without recording (the baseline), then
the same rooms recorded (``Router.set_recorder(RoomRecording(...))``, all drained by one
thread as in the server, writing WebM files to a temporary directory).  For each
phase: the process's CPU time (``getrusage``: all threads) per second of wall time, i.e.
the share of the one core used, and the packets sent.  For the recording phase also: the
packets the recordings had to drop (a full queue: the thread did not keep up), frames
written and dropped per file, and the largest queue seen.

    python bench/recording_rooms.py                       # 20 rooms, 15 s a phase, CPU 1
    python bench/recording_rooms.py --rooms 40 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recording import V_SSRC, media, room, rtp_round  # noqa: E402

from parley.recording import worker  # noqa: E402
from parley.recording.session import RoomRecording  # noqa: E402

#: The clip's length (seconds): looped.
CLIP = 10


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def switches() -> int:
    """Context switches of the process so far (voluntary and not: thread hand-offs)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_nvcsw + r.ru_nivcsw


def loop_cpu() -> float:
    """CPU seconds of this thread (the event loop's) so far."""
    return time.thread_time()


async def run_phase(
    rooms: int, seconds: float, clip: list[tuple[int, int, int, bool, bytes]], record: Path | None
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    # each packet's send time in the clip (s), from its RTP timestamp (both start at 0)
    times = [ts / (90000 if ssrc == V_SSRC else 48000) for ssrc, _s, ts, _m, _p in clip]
    # the clip's repeats, packed before the clock starts (the same in both phases)
    datas = [rtp_round(clip, k) for k in range(int(seconds // CLIP) + 2)]
    pubs, recs = [], []
    for r in range(rooms):
        router, pub = room()
        if record is not None:
            rec = RoomRecording(
                record / f"room{r}", f"20260101T000000Z-{r:06d}", f"room{r}",
                started_by={"id": "admin", "name": "bench"},
                call_soon=loop.call_soon_threadsafe,
            )  # fmt: skip
            rec.start()
            router.set_recorder(rec)
            recs.append(rec)
        pubs.append(pub)
    offsets = [r / rooms for r in range(rooms)]  # starts staggered over a second
    pos = [0] * rooms  # next packet index per room (over the looped clip)
    sent = 0
    max_queue = 0
    t0 = time.monotonic()
    c0, l0, s0 = cpu(), loop_cpu(), switches()
    while True:
        now = time.monotonic()
        el = now - t0
        if el >= seconds:
            break
        for r in range(rooms):
            pub = pubs[r]
            while True:
                k, i = divmod(pos[r], len(clip))
                if k * CLIP + times[i] + offsets[r] > el:
                    break
                pub.on_rtp(datas[k][i], now)
                sent += 1
                pos[r] += 1
        for rec in recs:
            max_queue = max(max_queue, len(rec._queue))
        await asyncio.sleep(0.005)
    wall = time.monotonic() - t0
    used, in_loop, switched = cpu() - c0, loop_cpu() - l0, switches() - s0
    out: dict[str, Any] = {"wall": wall, "cpu": used, "share": used / wall, "sent": sent,
                           "loop": in_loop, "switches": switched}  # fmt: skip
    if recs:
        c1 = cpu()
        for rec in recs:
            rec.stop()
        for rec in recs:
            rec.join()
        out["stop_cpu"] = cpu() - c1
        tracks = [t for rec in recs for t in rec.manifest()["tracks"]]
        out["dropped_queue"] = sum(rec.queue_dropped for rec in recs)
        out["files"] = len(tracks)
        out["frames"] = sum(t["frames"] for t in tracks)
        out["frames_dropped"] = sum(t["frames_dropped"] for t in tracks)
        out["packets_lost"] = sum(t["packets_lost"] for t in tracks)
        out["max_queue"] = max_queue
        out["failed"] = [rec.failure for rec in recs if rec.failure]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--cpu", type=int, default=1, help="the one CPU everything runs on")
    ap.add_argument("--drain-every", type=float, help="the recording worker's period (s)")
    args = ap.parse_args()
    if args.drain_every:
        worker.DRAIN_EVERY = args.drain_every
    os.sched_setaffinity(0, {args.cpu})  # threads started later inherit it
    print("coding the source ...", file=sys.stderr)
    clip = media(CLIP, 1280, 720)
    pps = len(clip) / CLIP
    print(f"{args.rooms} rooms x {pps:.0f} packets/s (audio + 720p camera), "
          f"{args.seconds:.0f} s a phase, pinned to CPU {args.cpu}, "
          f"the recording worker drains every {worker.DRAIN_EVERY} s")  # fmt: skip
    base = asyncio.run(run_phase(args.rooms, args.seconds, clip, None))
    with tempfile.TemporaryDirectory() as tmp:
        rec = asyncio.run(run_phase(args.rooms, args.seconds, clip, Path(tmp)))
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*.webm"))
    for name, r in (("forwarding only", base), ("forwarding + recording", rec)):
        print(f"  {name:24s} {r['sent'] / r['wall']:7.0f} packets/s  CPU {r['cpu']:.2f} s "
              f"in {r['wall']:.2f} s = {100 * r['share']:.1f} % of one core "
              f"(event loop {r['loop']:.2f} s, other threads {r['cpu'] - r['loop']:.2f} s; "
              f"{r['switches'] / r['wall']:.0f} context switches/s)")  # fmt: skip
    extra = (rec["cpu"] / rec["sent"] - base["cpu"] / base["sent"]) * 1e6
    in_loop = (rec["loop"] / rec["sent"] - base["loop"] / base["sent"]) * 1e6
    print(
        f"  of which on the event loop's thread {in_loop:.2f} µs a packet, on the "
        f"recording threads {(rec['cpu'] - rec['loop']) / rec['sent'] * 1e6:.2f} µs"
    )
    print(
        f"  recording adds {extra:.2f} µs of CPU per packet (in real time, threads "
        f"and all); {100 * (rec['share'] - base['share']):.1f} points of the core"
    )
    print(f"  recordings: {rec['files']} files, {rec['frames']} frames written, "
          f"{rec['frames_dropped']} dropped (waiting for the first key frame), "
          f"{rec['packets_lost']} packets lost, {rec['dropped_queue']} dropped from a full "
          f"queue, largest queue {rec['max_queue']}, failures {rec['failed'] or 'none'}, "
          f"{size / 1e6:.1f} MB written; stopping took {rec['stop_cpu']:.2f} s CPU")  # fmt: skip


if __name__ == "__main__":
    main()
