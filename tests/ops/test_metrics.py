"""Prometheus metrics: values, exposition format, per-server registries, the handler."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from parley.ops.metrics import (
    MAX_LABEL_VALUES,
    LightHistogram,
    Metrics,
    StatsSnapshot,
    add_metrics_route,
    metrics_handler,
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.exposition()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def test_gauges_come_from_stats_at_scrape_time() -> None:
    state: StatsSnapshot = {"rooms": 1, "participants": 2, "connections": 3}
    m = Metrics(lambda: state, process=False)
    assert value(m, "parley_rooms") == 1
    assert value(m, "parley_participants") == 2
    assert value(m, "parley_connections") == 3
    state["rooms"] = 7
    assert value(m, "parley_rooms") == 7
    assert ("parley_draining", ()) not in samples(m)
    state["draining"] = 1
    state["broker_up"] = 0
    assert value(m, "parley_draining") == 1
    assert value(m, "parley_broker_up") == 0


def test_counters() -> None:
    state: StatsSnapshot = {"frames_out": 100, "chat_stored": 5}
    m = Metrics(lambda: state, process=False)
    for kind in ["chat", "chat", "signal", "join"]:
        m.message_in(kind)
    m.error("too_long")
    m.error("too_long")
    m.error("rate_limited")
    m.deliveries(10)
    m.deliveries(1)
    m.stored()
    m.published(3)
    m.received(2)
    assert value(m, "parley_messages_in_total", type="chat") == 2
    assert value(m, "parley_messages_in_total", type="signal") == 1
    assert value(m, "parley_errors_total", code="too_long") == 2
    assert value(m, "parley_errors_total", code="rate_limited") == 1
    # Self-counted plus what the server already counts (hub.frames_out, messages_stored).
    assert value(m, "parley_messages_out_total") == 111
    assert value(m, "parley_chat_stored_total") == 6
    assert value(m, "parley_broker_published_total") == 3
    assert value(m, "parley_broker_received_total") == 2


def test_label_values_are_bounded() -> None:
    m = Metrics(process=False)
    for i in range(MAX_LABEL_VALUES + 50):
        m.message_in(f"junk{i}")
    m.message_in("junk0")
    got = {labels: v for (name, labels), v in samples(m).items() if name.startswith("parley_mes")}
    types = {dict(labels)["type"] for labels in got if labels}
    assert len(types) == MAX_LABEL_VALUES + 1  # the first 64 and "other"
    assert got[(("type", "other"),)] == 50
    assert got[(("type", "junk0"),)] == 2


def test_histograms() -> None:
    m = Metrics(process=False)
    for v in (0.00004, 0.0001, 0.0003, 2.0):
        m.observe_fanout(v)
    m.observe_store_write(0.003)
    m.observe_broker_lag(-0.001)  # clock skew: clamped to 0
    s = samples(m)
    assert s[("parley_fanout_seconds_bucket", (("le", "5e-05"),))] == 1
    assert s[("parley_fanout_seconds_bucket", (("le", "0.0001"),))] == 2  # le is inclusive
    assert s[("parley_fanout_seconds_bucket", (("le", "0.0005"),))] == 3
    assert s[("parley_fanout_seconds_bucket", (("le", "1.0"),))] == 3
    assert s[("parley_fanout_seconds_bucket", (("le", "+Inf"),))] == 4
    assert s[("parley_fanout_seconds_count", ())] == 4
    assert s[("parley_fanout_seconds_sum", ())] == pytest.approx(2.00044)
    assert s[("parley_store_write_seconds_bucket", (("le", "0.0025"),))] == 0
    assert s[("parley_store_write_seconds_bucket", (("le", "0.005"),))] == 1
    assert s[("parley_broker_lag_seconds_bucket", (("le", "0.0001"),))] == 1


def test_light_histogram_matches_prometheus_semantics() -> None:
    h = LightHistogram([1.0, 0.1, 0.5])
    assert h.bounds == (0.1, 0.5, 1.0)
    for v in (0.1, 0.2, 0.5, 0.7, 1.0, 5.0):
        h.observe(v)
    fam = h.family("x_seconds", "x")
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 1, "0.5": 3, "1.0": 5, "+Inf": 6}


def test_media_counters_appear_when_reported() -> None:
    state: StatsSnapshot = {}
    m = Metrics(lambda: state, process=False)
    assert not any(name.startswith("parley_sfu") for name, _ in samples(m))
    state["sfu_packets_forwarded"] = 42
    state["sfu_bytes_forwarded"] = 4200
    assert value(m, "parley_sfu_packets_forwarded_total") == 42
    assert value(m, "parley_sfu_bytes_forwarded_total") == 4200


def test_build_info_and_process_metrics() -> None:
    m = Metrics(version="1.2.3", node="n7")
    s = samples(m)
    assert s[("parley_build_info", (("node", "n7"), ("version", "1.2.3")))] == 1
    assert any(name.startswith("process_") for name, _ in s)


def test_servers_have_separate_registries() -> None:
    a, b = Metrics(), Metrics()  # two with process collectors: no duplicate-name clash
    a.message_in("chat")
    assert value(a, "parley_messages_in_total", type="chat") == 1
    assert ("parley_messages_in_total", (("type", "chat"),)) not in samples(b)
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("parley_rooms") is None


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    m = Metrics(lambda: {"rooms": 3}, version="0.1.0", node="n1")
    m.message_in("chat")
    app = web.Application()
    add_metrics_route(app, m)
    app.router.add_get("/secured", metrics_handler(m, token="scrape-token"))
    c: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await c.start_server()
    yield c
    await c.close()


async def test_handler_serves_the_text_format(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["parley_rooms"].samples[0].value == 3
    assert families["parley_messages_in"].type == "counter"
    assert families["parley_fanout_seconds"].type == "histogram"


async def test_handler_negotiates_openmetrics(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).rstrip().endswith("# EOF")


async def test_handler_token(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get("/secured")).status == 401
    bad = await client.get("/secured", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    ok = await client.get("/secured", headers={"Authorization": "Bearer scrape-token"})
    assert ok.status == 200
    assert "parley_rooms 3.0" in await ok.text()
