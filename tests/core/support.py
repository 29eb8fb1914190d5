"""Helpers for the core's tests."""

from __future__ import annotations

import dataclasses

from parley.core.effects import Effect, RoomEmptied, SaveMeeting


def bare(effects: list[Effect]) -> list[Effect]:
    """``effects`` with the logged events taken off the storing effects, for tests that
    check what is stored (tests/core/test_events.py checks the events)."""
    return [
        dataclasses.replace(e, events=()) if isinstance(e, SaveMeeting | RoomEmptied) else e
        for e in effects
    ]
