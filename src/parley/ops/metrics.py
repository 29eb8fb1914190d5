"""Prometheus metrics for one Parley server, on its own registry.

The hot paths (every message in, every fan-out, every store write) only bump
plain Python ints and lists: :class:`Metrics` is a custom ``Collector`` that
turns them into Prometheus metric families when ``/metrics`` is scraped.
A ``prometheus_client.Counter.inc()`` takes a lock and costs about a
microsecond; ``metrics.message_in("chat")`` is a dict increment.

Gauges (rooms, participants, connections) and counters the server already
keeps (``hub.frames_out``, ``server.messages_stored``) are read at scrape time
from a ``stats()`` callable returning a :class:`StatsSnapshot`, so they cost
nothing between scrapes.

Every metric is exported under the ``parley_`` prefix::

    parley_rooms, parley_participants, parley_connections        (gauges)
    parley_draining, parley_broker_up                              (gauges, if reported)
    parley_messages_in_total{type}, parley_messages_out_total,
    parley_chat_stored_total, parley_errors_total{code},
    parley_broker_published_total, parley_broker_received_total   (counters)
    parley_fanout_seconds, parley_store_write_seconds,
    parley_broker_lag_seconds                                      (histograms)
    parley_sfu_*_total                                             (media, if reported)
    parley_build_info{version,node}, process_*                     (info, process)

Several servers in one process (tests) each get their own registry.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypedDict, cast

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "BROKER_LAG_BUCKETS",
    "FANOUT_BUCKETS",
    "STORE_WRITE_BUCKETS",
    "LightHistogram",
    "Metrics",
    "StatsSnapshot",
    "add_metrics_route",
    "metrics_handler",
]

#: Receive -> frames queued: normally tens of microseconds; chat includes the store write.
FANOUT_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0,
)  # fmt: skip
#: One store write (a group commit holds several messages).
STORE_WRITE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip
#: Publish on one node -> received on another (includes clock skew between nodes).
BROKER_LAG_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip

#: Distinct label values kept per labelled counter; the rest are counted as "other".
MAX_LABEL_VALUES = 64


class StatsSnapshot(TypedDict, total=False):
    """What the server reports at scrape time. Every key is optional.

    Gauges: ``rooms``, ``participants``, ``connections``, ``draining`` (0/1),
    ``broker_up`` (0/1).  Cumulative counters the server already keeps are
    added to the ones :class:`Metrics` counts itself: ``frames_out``
    (deliveries, e.g. ``hub.frames_out``), ``chat_stored``
    (``server.messages_stored``).  Media counters (exported only when
    present): ``sfu_packets_received``, ``sfu_packets_forwarded``,
    ``sfu_bytes_forwarded``, ``sfu_packets_dropped``, ``sfu_nacks_sent``,
    ``sfu_plis_sent``, ``sfu_retransmitted``.
    """

    rooms: int
    participants: int
    connections: int
    draining: int
    broker_up: int
    frames_out: int
    chat_stored: int
    broker_published: int
    broker_received: int
    sfu_packets_received: int
    sfu_packets_forwarded: int
    sfu_bytes_forwarded: int
    sfu_packets_dropped: int
    sfu_nacks_sent: int
    sfu_plis_sent: int
    sfu_retransmitted: int
    sfu_twcc_feedback_sent: int
    relay_datagrams_sent: int
    relay_datagrams_accepted: int
    relay_datagrams_refused: int


_SFU_COUNTERS: tuple[tuple[str, str], ...] = (
    ("sfu_packets_received", "RTP packets received from publishers"),
    ("sfu_packets_forwarded", "RTP packets forwarded to subscribers"),
    ("sfu_bytes_forwarded", "RTP payload bytes forwarded to subscribers"),
    ("sfu_packets_dropped", "RTP packets dropped (late, duplicate, congested)"),
    ("sfu_nacks_sent", "RTCP NACKs sent to publishers"),
    ("sfu_plis_sent", "RTCP PLIs sent to publishers"),
    ("sfu_retransmitted", "RTP packets retransmitted from the cache"),
    ("sfu_twcc_feedback_sent", "RTCP transport-wide congestion control feedback packets sent"),
    ("relay_datagrams_sent", "Media relay datagrams sent to other nodes (--relay-port)"),
    ("relay_datagrams_accepted", "Media relay datagrams accepted from other nodes"),
    ("relay_datagrams_refused", "Media relay datagrams refused (bad tag, unknown node, replay)"),
)


class LightHistogram:
    """A Prometheus-style histogram made of plain ints: ``observe`` is one bisect."""

    __slots__ = ("bounds", "labels", "counts", "total", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.labels = tuple(_go_float(b) for b in self.bounds)
        #: Per-bucket (not cumulative) counts; the last slot is +Inf.
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for label, n in zip(self.labels, self.counts, strict=False):
            cumulative += n
            buckets.append((label, cumulative))
        cumulative += self.counts[-1]
        buckets.append(("+Inf", cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


#: The ``le`` label spelling prometheus_client uses ("5e-05", "0.1", "1.0").
_go_float: Callable[[float], str] = floatToGoString


def _bump(counts: dict[str, int], key: str, n: int) -> None:
    """``counts[key] += n``, folding new keys into "other" past MAX_LABEL_VALUES."""
    try:
        counts[key] += n
    except KeyError:
        if len(counts) >= MAX_LABEL_VALUES:
            key = "other"
        counts[key] = counts.get(key, 0) + n


def _empty_stats() -> StatsSnapshot:
    return {}


class Metrics(Collector):
    """The metrics of one server; register-free and cheap on hot paths.

    ``stats`` is called at each scrape (on the event loop thread, since the
    handler runs there) and must be quick and side-effect free.
    """

    def __init__(
        self,
        stats: Callable[[], StatsSnapshot] = _empty_stats,
        *,
        version: str = "",
        node: str = "",
        process: bool = True,
    ) -> None:
        self.stats = stats
        self.version = version
        self.node = node
        self.messages_in: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.frames_out = 0
        self.chat_stored = 0
        self.broker_published = 0
        self.broker_received = 0
        self.fanout = LightHistogram(FANOUT_BUCKETS)
        self.store_write = LightHistogram(STORE_WRITE_BUCKETS)
        self.broker_lag = LightHistogram(BROKER_LAG_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        if process:
            ProcessCollector(registry=self.registry)

    # -- hot paths: plain int arithmetic only ---------------------------------------

    def message_in(self, kind: str) -> None:
        """One client message of type ``kind`` decoded (use "invalid" for undecodable)."""
        counts = self.messages_in
        try:
            counts[kind] += 1
        except KeyError:
            _bump(counts, kind, 1)

    def error(self, code: str) -> None:
        """One ``error`` sent to a client, by its stable code."""
        counts = self.errors
        try:
            counts[code] += 1
        except KeyError:
            _bump(counts, code, 1)

    def deliveries(self, n: int) -> None:
        """``n`` frames queued to clients (one delivery = one frame to one client)."""
        self.frames_out += n

    def stored(self, n: int = 1) -> None:
        """``n`` chat messages stored (acknowledged)."""
        self.chat_stored += n

    def published(self, n: int = 1) -> None:
        """``n`` messages handed to the cross-node broker."""
        self.broker_published += n

    def received(self, n: int = 1) -> None:
        """``n`` messages received from other nodes through the broker."""
        self.broker_received += n

    def observe_fanout(self, seconds: float) -> None:
        """Time from receiving a client message to its frames being queued."""
        self.fanout.observe(seconds)

    def observe_store_write(self, seconds: float) -> None:
        """Duration of one store write (one group commit)."""
        self.store_write.observe(seconds)

    def observe_broker_lag(self, seconds: float) -> None:
        """Publish time on the sending node -> receive time here (wall clocks)."""
        self.broker_lag.observe(max(seconds, 0.0))

    # -- scrape ------------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        snap = self.stats()
        values = cast(Mapping[str, int], snap)

        for key, doc in (
            ("rooms", "Rooms open on this node"),
            ("participants", "Participants in rooms on this node (connected or resuming)"),
            ("connections", "WebSocket connections open on this node"),
        ):
            yield GaugeMetricFamily(f"parley_{key}", doc, value=float(values.get(key, 0)))
        if "draining" in snap:
            yield GaugeMetricFamily(
                "parley_draining", "1 while this node drains (refuses joins)",
                value=float(snap["draining"]),
            )  # fmt: skip
        if "broker_up" in snap:
            yield GaugeMetricFamily(
                "parley_broker_up", "1 while the cross-node broker is connected",
                value=float(snap["broker_up"]),
            )  # fmt: skip

        msgs = CounterMetricFamily(
            "parley_messages_in", "Client messages received, by type", labels=["type"]
        )
        for kind, n in sorted(self.messages_in.items()):
            msgs.add_metric([kind], n)
        yield msgs
        yield CounterMetricFamily(
            "parley_messages_out",
            "Frames queued to clients (one delivery = one frame to one client)",
            value=self.frames_out + snap.get("frames_out", 0),
        )
        yield CounterMetricFamily(
            "parley_chat_stored",
            "Chat messages stored (and acknowledged)",
            value=self.chat_stored + snap.get("chat_stored", 0),
        )
        errs = CounterMetricFamily(
            "parley_errors", "Errors answered to clients, by code", labels=["code"]
        )
        for code, n in sorted(self.errors.items()):
            errs.add_metric([code], n)
        yield errs
        yield CounterMetricFamily(
            "parley_broker_published", "Messages published to other nodes",
            value=self.broker_published + snap.get("broker_published", 0),
        )  # fmt: skip
        yield CounterMetricFamily(
            "parley_broker_received", "Messages received from other nodes",
            value=self.broker_received + snap.get("broker_received", 0),
        )  # fmt: skip

        yield self.fanout.family(
            "parley_fanout_seconds", "Client message received -> frames queued (seconds)"
        )
        yield self.store_write.family(
            "parley_store_write_seconds", "Duration of one store write (seconds)"
        )
        yield self.broker_lag.family(
            "parley_broker_lag_seconds",
            "Cross-node delivery lag: publish on one node -> receive on this one (seconds)",
        )

        for key, doc in _SFU_COUNTERS:
            if key in values:
                yield CounterMetricFamily(f"parley_{key}", doc, value=values[key])

        info = InfoMetricFamily("parley_build", "Parley version and node name")
        info.add_metric([], {"version": self.version, "node": self.node})
        yield info

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The current metrics and their content type.

        The Prometheus text format (``CONTENT_TYPE_LATEST``), or OpenMetrics when
        the scraper's ``Accept`` header asks for it (as Prometheus itself does).
        """
        if "application/openmetrics-text" in accept:
            encoder, content_type = choose_encoder(accept)
            return encoder(self.registry), content_type
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


Handler = Callable[[web.Request], Awaitable[web.Response]]


def metrics_handler(metrics: Metrics, token: str | None = None) -> Handler:
    """An aiohttp handler serving ``metrics`` in the Prometheus text format.

    With ``token``, scrapes must send ``Authorization: Bearer <token>``
    (Prometheus: ``authorization: {credentials: ...}``); without, keep
    ``/metrics`` off the public internet at the proxy (deploy/nginx does).
    """
    expected = f"Bearer {token}".encode() if token else None

    async def handle_metrics(request: web.Request) -> web.Response:
        if expected is not None:
            # aiohttp keeps undecodable header bytes as surrogates: compare the bytes sent.
            got = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(got, expected):
                return web.Response(
                    status=401,
                    text="unauthorized\n",
                    headers={"WWW-Authenticate": 'Bearer realm="parley-metrics"'},
                )
        body, content_type = metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    return handle_metrics


def add_metrics_route(
    app: web.Application, metrics: Metrics, path: str = "/metrics", token: str | None = None
) -> None:
    """``GET path`` -> :func:`metrics_handler` (call before the app starts)."""
    app.router.add_get(path, metrics_handler(metrics, token))
