"""The Slack fake's assistant.threads.setStatus, through slack_sdk, as strict as Slack's
reference page: chat:write or assistant:write, a thread of a conversation the app is
in, `status` required (empty clears it), at most ten loading messages."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    GENERAL,
    HIDDEN,
    FakeSlack,
)


async def api_error(call: Awaitable[object]) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    return str(info.value.response["error"])


async def test_set_status_in_a_thread(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client(BOT_TOKEN)
    root = fake_slack.events.post(GENERAL, ALICE, "a recording")
    reply = fake_slack.events.post(GENERAL, ALICE, "a question", thread_ts=root.ts)
    ok = await client.assistant_threads_setStatus(
        channel_id=GENERAL, thread_ts=root.ts, status="is thinking…"
    )
    assert ok["ok"]
    cleared = await client.assistant_threads_setStatus(
        channel_id=GENERAL, thread_ts=root.ts, status=""
    )
    assert cleared["ok"]
    # A reply's ts is no thread; a made-up one neither.
    assert (
        await api_error(
            client.assistant_threads_setStatus(channel_id=GENERAL, thread_ts=reply.ts, status="x")
        )
        == "invalid_thread_ts"
    )
    assert (
        await api_error(
            client.assistant_threads_setStatus(channel_id=GENERAL, thread_ts="1.2", status="x")
        )
        == "invalid_thread_ts"
    )
    many = [f"step {i}" for i in range(11)]
    assert (
        await api_error(
            client.assistant_threads_setStatus(
                channel_id=GENERAL, thread_ts=root.ts, status="x", loading_messages=many
            )
        )
        == "invalid_arguments"
    )


async def test_set_status_needs_a_scope_and_a_channel_the_app_is_in(
    fake_slack: FakeSlack,
) -> None:
    root = fake_slack.events.post(GENERAL, ALICE, "a recording")
    reader = fake_slack.add_token(scopes={"channels:read"})
    assert (
        await api_error(
            fake_slack.web_client(reader).assistant_threads_setStatus(
                channel_id=GENERAL, thread_ts=root.ts, status="x"
            )
        )
        == "missing_scope"
    )
    writer = fake_slack.add_token(scopes={"assistant:write"})
    assert (
        await fake_slack.web_client(writer).assistant_threads_setStatus(
            channel_id=GENERAL, thread_ts=root.ts, status="x"
        )
    )["ok"]
    assert (
        await api_error(
            fake_slack.web_client(BOT_TOKEN).assistant_threads_setStatus(
                channel_id=HIDDEN, thread_ts=root.ts, status="x"
            )
        )
        == "channel_not_found"
    )
