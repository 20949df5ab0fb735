"""Socket Mode through the fake's websocket: envelopes are acknowledged after the intake,
Slack's retries (`retry_attempt`) make no second job, and an envelope arriving while the
adapter stops is left for Slack to deliver again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.errors import ConfigError
from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    GENERAL,
    FakeSlack,
)
from tests.fakes.slack_harness import slack_bot

AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 64


async def test_an_envelope_is_acked_once_its_job_is_stored(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async with slack_bot(fake_slack, tmp_path, socket=True) as bot:
        assert bot.adapter.routes() == []  # nothing to serve: Slack is reached by the socket
        await fake_slack.socket.wait_for_connections(1)
        file = fake_slack.add_file("standup.wav", AUDIO)
        envelope = fake_slack.events.file_share(GENERAL, ALICE, [file])

        delivery = await fake_slack.socket.deliver_event(envelope)
        ack = await delivery.acknowledged()
        jobs = await bot.jobs()

    assert ack.payload is None
    [job] = jobs
    assert job.message == envelope["event"]["ts"]
    assert {c.token for c in fake_slack.calls("apps.connections.open")} == {APP_TOKEN}
    assert fake_slack.socket.connection_count == 1


async def test_retried_envelopes_make_one_job(fake_slack: FakeSlack, tmp_path: Path) -> None:
    async with slack_bot(fake_slack, tmp_path, socket=True) as bot:
        await fake_slack.socket.wait_for_connections(1)
        file = fake_slack.add_file("standup.wav", AUDIO)
        delivery = await fake_slack.socket.deliver_event(
            fake_slack.events.file_share(GENERAL, ALICE, [file])
        )
        retries = [await fake_slack.socket.redeliver(delivery) for _ in range(3)]
        await fake_slack.until(
            lambda: (
                {a.envelope_id for a in fake_slack.socket.acks}
                >= {e.envelope_id for e in delivery.envelopes}
            )
        )
        jobs = await bot.jobs()

    assert [e.retry_attempt for e in delivery.envelopes] == [0, 1, 2, 3]
    assert len(retries) == 3 and len(jobs) == 1


async def test_an_envelope_arriving_while_stopping_is_delivered_again_after_restart(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    fake_slack.socket.ack_timeout = 0.3
    file = fake_slack.add_file("standup.wav", AUDIO)
    async with slack_bot(fake_slack, tmp_path, socket=True) as first:
        await fake_slack.socket.wait_for_connections(1)
        first.adapter.bolt.gate.is_open = False  # the first moment of stop(): intake shut
        delivery = await fake_slack.socket.deliver_event(
            fake_slack.events.file_share(GENERAL, ALICE, [file])
        )
        await asyncio.sleep(0.1)
        assert delivery.ack is None and await first.jobs() == []
    async with slack_bot(fake_slack, tmp_path, socket=True) as second:
        ack = await delivery.acknowledged()  # Slack's retry, on the new connection
        jobs = await second.jobs()

    assert ack.connection == 2 and len(jobs) == 1
    assert delivery.envelopes[-1].retry_attempt >= 1


async def test_a_refresh_request_reconnects_and_events_keep_coming(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async with slack_bot(fake_slack, tmp_path, socket=True) as bot:
        await fake_slack.socket.wait_for_connections(1)
        await fake_slack.socket.disconnect("refresh_requested")
        await fake_slack.socket.wait_for_connections(2)
        file = fake_slack.add_file("standup.wav", AUDIO)
        delivery = await fake_slack.socket.deliver_event(
            fake_slack.events.file_share(GENERAL, ALICE, [file])
        )
        ack = await delivery.acknowledged()
        jobs = await bot.jobs()

    assert ack.connection == 2 and len(jobs) == 1


async def test_the_bots_own_messages_are_acked_and_ignored(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async with slack_bot(fake_slack, tmp_path, socket=True) as bot:
        await fake_slack.socket.wait_for_connections(1)
        client = fake_slack.web_client()
        await client.chat_postMessage(channel=GENERAL, text="https://m.example/own.mp3")
        await client.files_upload_v2(
            content=AUDIO, filename="echo.mp3", channel=GENERAL, title="echo.mp3"
        )
        own = [fake_slack.events.message(m) for m in fake_slack.bot_messages(GENERAL)]
        other_bot = fake_slack.events.bot_message(GENERAL, "https://m.example/zap.mp3")
        deliveries = [await fake_slack.socket.deliver_event(e) for e in [*own, other_bot]]
        for delivery in deliveries:
            await delivery.acknowledged()
        jobs = await bot.jobs()

    assert len(own) == 2 and jobs == []


async def test_a_slash_command_is_answered_in_the_ack(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async with slack_bot(fake_slack, tmp_path, socket=True):
        form = fake_slack.events.slash_command("help", channel=GENERAL, user=ALICE)
        delivery = await fake_slack.socket.deliver_command(form)
        ack = await delivery.acknowledged()

    assert ack.payload is not None and "/transcribe on" in ack.payload["text"]


@pytest.mark.parametrize(
    ("revoked", "named"), [(BOT_TOKEN, "SLACK_BOT_TOKEN"), (APP_TOKEN, "SLACK_APP_TOKEN")]
)
async def test_a_token_slack_refuses_stops_the_start_with_its_name(
    fake_slack: FakeSlack, tmp_path: Path, revoked: str, named: str
) -> None:
    fake_slack.revoke_token(revoked)

    async with slack_bot(fake_slack, tmp_path, socket=True, start=False) as bot:
        with pytest.raises(ConfigError) as info:
            await bot.adapter.start()

    [problem] = info.value.problems
    assert problem.startswith(f"{named} was refused by Slack (token_revoked): copy it again")
    assert revoked not in problem
