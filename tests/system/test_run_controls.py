"""The controls from `.env` to the thread, in a real `threadscribe run` process: a
channel nobody configured is on request only (SLACK_AUTO_TRANSCRIBE=on-request), an admin
sets it to auto, the recording shared then is redacted (REDACT_PII) and deleted at
AssemblyAI after delivery with its receipt (DELETE_AFTER_DELIVERY), its seconds show in
/metrics, and `/transcribe usage` shows them against MONTHLY_BUDGET_HOURS."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot import messages
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    DANA,
    GENERAL,
    SIGNING_SECRET,
    TEAM_ID,
    FakeSlack,
)
from tests.helpers.audio import make_pii_dialogue, write_script
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.processes import assemblyai_lines, env_file, free_port, running, until

pytestmark = pytest.mark.timeout(120)


async def test_the_controls_from_the_env_file_to_the_thread(
    fake_slack: FakeSlack, emulator: EmulatorServer, tmp_path: Path
) -> None:
    port = free_port()
    env_file(
        tmp_path,
        **assemblyai_lines(emulator),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        PORT=str(port),
        SLACK_AUTO_TRANSCRIBE="on-request",
        REDACT_PII="true",
        MONTHLY_BUDGET_HOURS="1",
        DELETE_AFTER_DELIVERY="true",
    )
    sample = make_pii_dialogue(tmp_path / "audio")
    write_script(sample, emulator.scripts_dir)
    url = f"http://127.0.0.1:{port}/slack/events"
    events = fake_slack.events

    async def command(text: str, name: str) -> str:
        form = events.slash_command(text, channel=GENERAL, user=DANA, command=name)
        answer = await fake_slack.send_to_app(url, events.http_command(form))
        assert answer.status == 200, answer.text
        return str(json.loads(answer.text)["text"])

    def share() -> str:
        file = fake_slack.add_file("call.mp3", sample.path.read_bytes())
        return str(events.post(GENERAL, ALICE, "the call", files=[file]).ts)

    async with running(tmp_path, port), aiohttp.ClientSession() as http:
        ignored = share()
        msg = fake_slack.state.message(fake_slack.state.find_channel(GENERAL), ignored)
        assert msg is not None
        assert (
            await fake_slack.send_to_app(url, events.http_event(events.message(msg)))
        ).status == 200
        assert "Policy: auto" not in await command("", "/transcribe-settings")
        assert "Policy: auto:" in await command("policy auto", "/transcribe-settings")

        ts = share()
        msg = fake_slack.state.message(fake_slack.state.find_channel(GENERAL), ts)
        assert msg is not None
        assert (
            await fake_slack.send_to_app(url, events.http_event(events.message(msg)))
        ).status == 200
        await until(lambda: fake_slack.reactions(GENERAL, ts).get("white_check_mark"))

        def result() -> str:
            for m in fake_slack.bot_messages(GENERAL, thread_ts=ts):
                text = json.dumps(m.blocks, ensure_ascii=False)
                if messages.DELETED_RECEIPT in text:
                    return text
            return ""

        text = await until(result)
        assert "[PHONE_NUMBER]" in text and "555-0100" not in text
        assert "🔒 PII redacted: " in text
        async with http.get(f"http://127.0.0.1:{port}/metrics") as metrics:
            exposed = await metrics.text()
        labels = f'model="assemblyai-stt-3-7",platform="slack",workspace="{TEAM_ID}"'
        assert f"threadscribe_audio_seconds_total{{{labels}}}" in exposed
        usage = await command("usage", "/transcribe")
        assert "of 1 h (" in usage and f"<#{GENERAL}>" in usage

    assert fake_slack.bot_messages(GENERAL, thread_ts=ignored) == []  # on request only
    records = emulator.running.emulator.store.records.values()
    assert len(records) == 1 and all(r.deleted for r in records)
