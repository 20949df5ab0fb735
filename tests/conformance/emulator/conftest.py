"""Fixtures shared by the emulator's conformance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers.emulator_server import EmulatorServer


@pytest.fixture
async def api(emulator: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared emulator, with its API key (modules may define their own)."""
    async with httpx.AsyncClient(
        base_url=emulator.base_url, headers={"authorization": emulator.api_key}, timeout=10
    ) as client:
        yield client
