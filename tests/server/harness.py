"""Helpers of the server suite: the real ``parley serve`` as a subprocess
(:class:`~tests.support.parley_process.ParleyProcess`, made by ``conftest.parley_server``),
real WebSocket clients (:class:`~tests.support.ws_client.Clients`, the ``clients`` fixture
of tests/conftest.py), and a REST GET."""

from __future__ import annotations

from typing import Any

from tests.support.parley_process import ParleyProcess
from tests.support.ws_client import fetch_json

TIMEOUT = 10.0  # generous bound for any single expected event


async def get_json(server: ParleyProcess, path: str, bearer: str | None = None) -> tuple[int, Any]:
    """GET a JSON route; ``bearer``: a credential (a member's resume token, a join token)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return await fetch_json(server.url + path, headers=headers)
