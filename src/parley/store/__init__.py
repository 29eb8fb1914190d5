"""Persistent storage: rooms and chat history."""

from __future__ import annotations

from .base import MeetingState, RoomRecord, Store
from .sql import SqlStore


def open_store(url: str) -> Store:
    """A store for a SQLAlchemy async URL (``sqlite+aiosqlite:///path`` or
    ``postgresql+asyncpg://...``); call ``await store.start()`` before use."""
    return SqlStore(url)


__all__ = ["MeetingState", "RoomRecord", "SqlStore", "Store", "open_store"]
