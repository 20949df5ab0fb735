"""`bot`: the Discord adapter started on the Discord fake, with the real engine on the
`store` and the `assemblyai` client of tests/component/conftest.py
(tests/fakes/discord_harness.py). A module sets it up otherwise by overriding
`bot_options`: the keyword arguments of `running_bot` (`config=`, Discord settings such
as `discord_auto_transcribe=False`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.assemblyai import AssemblyAIClient
from bot.jobs import JobStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_harness import Harness, running_bot


@pytest.fixture
def bot_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def bot(
    fake_discord: FakeDiscord,
    store: JobStore,
    assemblyai: AssemblyAIClient,
    bot_options: dict[str, Any],
) -> AsyncIterator[Harness]:
    async with running_bot(fake_discord, store, assemblyai, **bot_options) as harness:
        yield harness
