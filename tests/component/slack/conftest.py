"""`bot`: the Slack adapter (HTTP mode), store and engine on the Slack fake, started
(tests/fakes/slack_harness.py). A module sets it up otherwise by overriding `bot_options`:
the keyword arguments of `slack_bot` (`config=`, `emulator=`, settings such as
`slack_admin_users=`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_harness import SlackBot, slack_bot


@pytest.fixture
def bot_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, tmp_path: Path, bot_options: dict[str, Any]
) -> AsyncIterator[SlackBot]:
    async with slack_bot(fake_slack, tmp_path, **bot_options) as running:
        yield running
