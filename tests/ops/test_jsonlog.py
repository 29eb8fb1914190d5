"""Logging set-up: one JSON object per line on request, plain text otherwise."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from parley.ops.jsonlog import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out, fields={"node": "n1"})
    log = logging.getLogger("parley.test")
    log.info("joined %s", "team", extra={"room": "team", "pid": "p_1", "n": 3})
    log.debug("not shown")
    log.warning('odd\nline \u00e9 "quoted"')
    [first, second] = lines(out)
    assert first["level"] == "info"
    assert first["logger"] == "parley.test"
    assert first["msg"] == "joined team"
    assert first["room"] == "team" and first["pid"] == "p_1" and first["n"] == 3
    assert first["node"] == "n1"
    assert isinstance(first["ts"], str) and first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["msg"] == 'odd\nline \u00e9 "quoted"'
    assert len(out.getvalue().splitlines()) == 2  # one line each, newlines escaped
    assert "exc" not in first


def test_exceptions_are_formatted_into_exc() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("parley").exception("it failed")
    [rec] = lines(out)
    assert rec["level"] == "error"
    assert rec["msg"] == "it failed"
    assert isinstance(rec["exc"], str)
    assert "Traceback" in rec["exc"] and "ValueError: boom" in rec["exc"]


def test_unserialisable_extras_do_not_break_logging() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    logging.getLogger("x").info("m", extra={"obj": object(), "tags": {"a"}, "pair": (1, 2)})
    [rec] = lines(out)
    assert isinstance(rec["obj"], str)
    assert rec["tags"] == ["a"] and rec["pair"] == [1, 2]


def test_plain_text() -> None:
    out = io.StringIO()
    configure_logging("warning", json=False, stream=out)
    logging.getLogger("parley.x").info("hidden")
    logging.getLogger("parley.x").warning("shown %d", 5)
    text = out.getvalue()
    assert "hidden" not in text
    assert "WARNING parley.x: shown 5" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", json=False, stream=first)
    configure_logging("info", json=True, stream=second)
    logging.getLogger("parley").info("once")
    assert first.getvalue() == ""
    assert lines(second)[0]["msg"] == "once"
    assert len(logging.getLogger().handlers) == 1


def test_access_log_quiet() -> None:
    configure_logging("debug", json=True, stream=io.StringIO())
    assert logging.getLogger("aiohttp.access").getEffectiveLevel() == logging.WARNING
