"""The privacy and cost controls on Slack, end to end: signed requests from the Slack
fake into the real adapter (HTTP mode), the real store and engine, the AssemblyAI
emulator, real audio. Who gets transcribed (policies, opt-outs, allowlists), who may
change it, usage and the budget, forget (also of a job still running), PII redaction and
DELETE_AFTER_DELIVERY in the thread, and the Home tab within Block Kit's limits."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import texts
from adapters.slack.home import MAX_CHANNELS, OPT_IN_ACTION, OPT_OUT_ACTION, POLICY_ACTION
from adapters.slack.incoming import unescape
from bot import messages
from bot.jobs import ChannelPolicy, Platform
from tests.fakes.slack import (
    ALICE,
    BOB,
    BOT_USER_ID,
    DANA,
    GENERAL,
    OLGA,
    SECRET,
    TEAM_ID,
    FakeSlack,
)
from tests.fakes.slack_blocks import MAX_VIEW_BLOCKS
from tests.fakes.slack_harness import SlackBot, slack_bot
from tests.fakes.slack_state import Message
from tests.helpers.audio import AudioSample, make_pii_dialogue, write_script
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer, start_emulator
from tests.helpers.engine import FAST_ENGINE

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def dialogue(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    return audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)


@pytest.fixture
def bot_options(emulator: EmulatorServer) -> dict[str, Any]:
    return {"emulator": emulator}


async def drain(bot: SlackBot) -> None:
    async with asyncio.timeout(30):
        await bot.engine.run_until_idle()


async def send(bot: SlackBot, envelope: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_event(envelope))
    assert answer.status == 200, answer.text


async def command(
    bot: SlackBot,
    text: str,
    *,
    user: str = ALICE,
    channel: str = GENERAL,
    name: str = "/transcribe",
) -> str:
    form = bot.fake.events.slash_command(text, channel=channel, user=user, command=name)
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_command(form))
    assert answer.status == 200, answer.text
    body = json.loads(answer.text)
    assert body.get("response_type") == "ephemeral"
    return str(body["text"])


async def settings(bot: SlackBot, text: str, *, user: str = DANA) -> str:
    return await command(bot, text, user=user, name="/transcribe-settings")


async def interact(bot: SlackBot, payload: dict[str, Any]) -> None:
    answer = await bot.fake.send_to_app(bot.events_url, bot.fake.events.http_interactive(payload))
    assert answer.status == 200, answer.text


async def shortcut(bot: SlackBot, message: Message, *, user: str, callback: str) -> str:
    """A message shortcut, and the ephemeral answer posted to its response URL."""
    before = len(bot.fake.response_posts())
    await interact(bot, bot.fake.events.message_shortcut(message, user=user, callback_id=callback))
    posts = await bot.fake.until(lambda: bot.fake.response_posts()[before:])
    assert posts[0].payload["response_type"] == "ephemeral"
    return unescape(str(posts[0].payload["text"]))


def share(bot: SlackBot, sample: AudioSample, user: str = ALICE, **file: Any) -> Message:
    uploaded = bot.fake.add_file("standup.mp3", sample.path.read_bytes(), user=user, **file)
    return bot.fake.events.post(GENERAL, user, "standup", files=[uploaded])


async def policy(bot: SlackBot, channel: str = GENERAL) -> ChannelPolicy | None:
    saved = await bot.store.settings.get(Platform.SLACK, TEAM_ID, channel)
    return None if saved is None else saved.policy


# -- who gets transcribed ------------------------------------------------------------------


async def test_only_admins_set_a_channels_policy_and_on_request_means_asked_for(
    bot: SlackBot, dialogue: AudioSample
) -> None:
    assert await settings(bot, "policy on-request", user=ALICE) == texts.ADMINS_ONLY
    assert await policy(bot) is None  # refused: nothing changed
    answer = unescape(await settings(bot, "policy on-request", user=DANA))
    assert answer.startswith(f"Settings of <#{GENERAL}>:\nPolicy: on-request: only recordings")

    quiet = share(bot, dialogue)
    await send(bot, bot.fake.events.message(quiet))
    assert await bot.jobs() == [] and bot.fake.bot_messages(GENERAL) == []

    await interact(bot, bot.fake.events.message_shortcut(quiet, user=BOB))
    [job] = await bot.jobs()
    assert (job.requester, job.author) == (BOB, ALICE)
    assert (
        unescape(await settings(bot, "", user=ALICE))
        .splitlines()[1]
        .startswith("Policy: on-request: only")
    )  # anyone may look
    assert (
        await settings(bot, "policy sometimes")
        == "policy must be auto, on-request or off (got 'sometimes')"
    )


async def test_off_refuses_even_what_someone_asks_for(bot: SlackBot, dialogue: AudioSample) -> None:
    await settings(bot, "policy off")
    message = share(bot, dialogue)
    await send(bot, bot.fake.events.message(message))
    answer = await shortcut(bot, message, user=ALICE, callback="transcribe")
    link = await command(bot, "https://media.example/a.mp3")

    refusal = messages.refused([messages.transcription_off(direct=False)])
    assert answer == refusal and unescape(link) == refusal
    assert await bot.jobs() == []
    await settings(bot, "policy default")
    assert await policy(bot) is None


async def test_an_opted_out_person_is_transcribed_only_when_they_ask(
    bot: SlackBot, dialogue: AudioSample
) -> None:
    assert unescape(await command(bot, "optout")).startswith("You opted out: recordings you")
    mine = share(bot, dialogue)
    await send(bot, bot.fake.events.message(mine))
    assert await bot.jobs() == [] and bot.fake.bot_messages(GENERAL, thread_ts=mine.ts) == []

    # Nobody else can ask for their recording...
    refused = await shortcut(bot, mine, user=BOB, callback="transcribe")
    assert refused == messages.refused([messages.SHARER_OPTED_OUT])
    assert await bot.jobs() == []
    # ...but they can.
    await interact(bot, bot.fake.events.message_shortcut(mine, user=ALICE))
    [job] = await bot.jobs()
    assert job.requester == ALICE and job.message == mine.ts
    # Opted back in, their shares are transcribed again.
    assert unescape(await command(bot, "optin")).startswith("You opted back in")
    await send(bot, bot.fake.events.message(share(bot, dialogue)))
    assert len(await bot.jobs()) == 2


async def test_outside_the_allowlist_the_bot_says_once_it_is_not_enabled(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample
) -> None:
    async with slack_bot(fake_slack, tmp_path, allowed_workspaces=("T0ELSEWHERE",)) as bot:
        first, second = share(bot, dialogue), share(bot, dialogue)
        await send(bot, bot.fake.events.message(first))
        await send(bot, bot.fake.events.message(second))
        [said] = await bot.fake.until(lambda: bot.fake.bot_messages(GENERAL))
        assert said.thread_ts == first.ts
        assert unescape(said.text) == messages.refused(
            [messages.not_enabled("slack", workspace=True)]
        )
        assert "not enabled in this workspace" in said.text
        # Asked for explicitly, it is said every time.
        link = unescape(await command(bot, "https://media.example/a.mp3"))
        assert "not enabled in this workspace" in link
        await asyncio.sleep(0.2)
        assert len(bot.fake.bot_messages(GENERAL)) == 1 and await bot.jobs() == []


async def test_a_channel_allowlist(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample
) -> None:
    async with slack_bot(fake_slack, tmp_path, allowed_channels=(SECRET,)) as bot:
        await send(bot, bot.fake.events.message(share(bot, dialogue)))
        [said] = await bot.fake.until(lambda: bot.fake.bot_messages(GENERAL))
        assert "not enabled in this channel" in said.text
        listed = bot.fake.add_file("s.mp3", dialogue.path.read_bytes())
        await send(bot, bot.fake.events.file_share(SECRET, ALICE, [listed]))
        [job] = await bot.jobs()
        assert job.channel == SECRET


# -- what it costs -------------------------------------------------------------------------


async def test_usage_for_admins_by_channel_and_person_with_the_cost(
    bot: SlackBot, dialogue: AudioSample
) -> None:
    await send(bot, bot.fake.events.message(share(bot, dialogue)))
    await drain(bot)
    [job] = await bot.jobs()
    assert job.billed_seconds and job.speech_model == "assemblyai-stt-3-7"

    assert await command(bot, "usage", user=ALICE) == texts.ADMINS_ONLY
    answer = unescape(await command(bot, "usage", user=DANA))

    seconds = f"{job.billed_seconds:.0f} s"
    cost = job.billed_seconds / 3600 * 0.21
    assert answer.splitlines() == [
        f"Usage this month (since 1 {job.created_at:%B}, UTC): {seconds} transcribed, 1 recording",
        f"Estimated cost: {messages.usd(cost)} (assemblyai-stt-3-7 at $0.21/h)",
        "By channel:",
        f"• <#{GENERAL}>: {seconds}",
        "By person:",
        f"• <@{ALICE}>: {seconds}",
    ]


async def test_a_budget_crossed_by_two_shares_at_once_admits_exactly_it(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample, emulator: EmulatorServer
) -> None:
    """30 seconds a month; two clips Slack measured at 20 s each, shared at the same time:
    one is taken, the other refused in its thread naming the budget, and every admin is
    told once, in the app's direct messages."""
    async with slack_bot(
        fake_slack, tmp_path, emulator=emulator, monthly_budget_hours=30 / 3600,
        slack_admin_users=(BOB,), config=replace(FAST_ENGINE, budget_hours=30 / 3600),
    ) as bot:  # fmt: skip
        one = share(bot, dialogue, duration_ms=20_000)
        two = share(bot, dialogue, duration_ms=20_000)
        await asyncio.gather(
            send(bot, bot.fake.events.message(one)), send(bot, bot.fake.events.message(two))
        )
        [job] = await bot.jobs()
        refused = two if job.message == one.ts else one
        [said] = await bot.fake.until(lambda: bot.fake.bot_messages(GENERAL, thread_ts=refused.ts))
        assert unescape(said.text).startswith(
            "Sorry, I cannot transcribe this: that recording needs 20 s, and only 10 s of "
            "this workspace's monthly transcription budget of 30 s is left"
        )
        await drain(bot)

        def alerts() -> dict[str, str]:
            found = {}
            for channel in bot.fake.team.channels.values():
                if channel.is_im:
                    [person] = channel.members - {BOT_USER_ID}
                    found[person] = " ".join(m.text for m in channel.messages)
            return found

        told = await bot.fake.until(lambda: len(alerts()) == 3 and alerts())
        assert set(told) == {DANA, OLGA, BOB}  # admins, owners, SLACK_ADMIN_USERS
        assert all("transcription budget of 30 s is used up" in text for text in told.values())
        assert all(text.count("threadscribe:") == 1 for text in told.values())


# -- forget ----------------------------------------------------------------------------


async def test_forget_removes_the_posts_the_transcript_and_the_record(
    bot: SlackBot, dialogue: AudioSample, emulator: EmulatorServer
) -> None:
    message = share(bot, dialogue)
    await send(bot, bot.fake.events.message(message))
    await drain(bot)
    [job] = await bot.jobs()
    thread = bot.fake.bot_messages(GENERAL, thread_ts=message.ts)
    assert len(thread) == 2 and bot.fake.reactions(GENERAL, message.ts)

    # Bob neither shared nor asked for it, and is no admin: refused, nothing changes.
    assert await shortcut(bot, thread[1], user=BOB, callback="forget") == (
        messages.NOT_YOURS_TO_FORGET
    )
    assert len(await bot.jobs()) == 1
    # Alice shared it: forget it from the bot's own result in the thread.
    answer = await shortcut(bot, thread[1], user=ALICE, callback="forget")
    assert answer.startswith("Forgetting standup.mp3: my posts about it are being removed")
    await drain(bot)

    assert bot.fake.bot_messages(GENERAL, thread_ts=message.ts) == []
    assert bot.fake.reactions(GENERAL, message.ts) == {}
    assert bot.fake.messages(GENERAL)[0].ts == message.ts  # her own message stays
    assert emulator.running.emulator.store.records[job.transcript_id].deleted
    assert await bot.jobs() == []
    assert await shortcut(bot, message, user=ALICE, callback="forget") == (
        messages.NOTHING_TO_FORGET
    )
    assert unescape(await command(bot, "forget")) == texts.FORGET_HOW


async def test_forget_of_a_job_still_being_transcribed(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample
) -> None:
    with start_emulator(tmp_path / "slow", processing_time=2.0) as slow:
        write_script(dialogue, slow.scripts_dir)
        async with slack_bot(fake_slack, tmp_path, emulator=slow, start=True) as bot:
            message = share(bot, dialogue)
            await send(bot, bot.fake.events.message(message))
            await bot.engine.start()
            records = slow.running.emulator.store.records
            await bot.fake.until(lambda: records)  # submitted: AssemblyAI is working on it
            [record] = records.values()
            assert not record.done

            answer = await shortcut(bot, message, user=DANA, callback="forget")  # an admin
            assert "It was still being transcribed" in answer

            async with asyncio.timeout(20):
                # The emulator's state and the store, in-process: nothing to wait on but time.
                while not record.deleted or await bot.jobs():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert bot.fake.bot_messages(GENERAL, thread_ts=message.ts) == []
            results = [m for m in bot.fake.bot_messages(GENERAL) if m.text.startswith("Transcript")]
            assert results == []  # never delivered


# -- redaction and deletion, as the thread shows them ------------------------------------


async def test_pii_redacted_in_a_channel_with_the_redacted_audio_posted(
    bot: SlackBot, emulator: EmulatorServer, tmp_path: Path
) -> None:
    sample = make_pii_dialogue(tmp_path / "pii")
    write_script(sample, emulator.scripts_dir)
    assert await settings(bot, "redact on", user=BOB) == texts.ADMINS_ONLY
    answer = unescape(await settings(bot, "redacted-audio on"))
    assert "PII redaction: on (phone numbers, email addresses" in answer
    assert answer.endswith("; redacted audio posted too")

    message = share(bot, sample)
    await send(bot, bot.fake.events.message(message))
    await drain(bot)

    [result] = [
        m
        for m in bot.fake.bot_messages(GENERAL, thread_ts=message.ts)
        if m.blocks and m.blocks[0]["type"] == "header"
    ]
    text = json.dumps(result.blocks)
    assert "[PHONE_NUMBER]" in text and "[EMAIL_ADDRESS]" in text and "[LOCATION]" in text
    assert "555-0100" not in text and "bob@example.com" not in text and "Baker" not in text
    assert result.blocks is not None
    assert result.blocks[-1]["type"] == "context"
    assert "PII redacted: " in result.blocks[-1]["elements"][0]["text"]
    [upload] = [u for u in bot.fake.uploaded_files() if u.filename == "redacted-audio.mp3"]
    assert upload.thread_ts == message.ts and len(upload.data) > 1000


async def test_delete_after_delivery_shows_its_receipt_in_the_result(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample, emulator: EmulatorServer
) -> None:
    config = replace(FAST_ENGINE, delete_after_delivery=True)
    async with slack_bot(fake_slack, tmp_path, emulator=emulator, config=config) as bot:
        message = share(bot, dialogue)
        await send(bot, bot.fake.events.message(message))
        await drain(bot)
        [_status, result] = bot.fake.bot_messages(GENERAL, thread_ts=message.ts)
        assert result.edit_count == 1
        assert result.blocks is not None
        assert messages.DELETED_RECEIPT in json.dumps(result.blocks[-1], ensure_ascii=False)
        [job] = await bot.jobs()
        assert emulator.running.emulator.store.records[job.transcript_id].deleted


# -- the Home tab ----------------------------------------------------------------------------


def blocks_of(bot: SlackBot, user: str) -> list[dict[str, Any]]:
    home = bot.fake.home(user)
    assert home is not None, f"nothing published to {user}"
    return list(home.view["blocks"])


async def test_the_home_tab_for_a_member_and_for_an_admin(
    bot: SlackBot, dialogue: AudioSample
) -> None:
    await send(bot, bot.fake.events.message(share(bot, dialogue)))
    await drain(bot)
    await send(bot, bot.fake.home_opened(ALICE))
    await send(bot, bot.fake.home_opened(DANA))
    await bot.fake.until(lambda: bot.fake.home(ALICE) and bot.fake.home(DANA))

    mine = json.dumps(blocks_of(bot, ALICE), ensure_ascii=False)
    assert "Opt out" in mine and f"standup.mp3 in <#{GENERAL}>" in mine and ": done" in mine
    assert POLICY_ACTION not in mine and "This month" not in mine  # not an admin's
    admin = blocks_of(bot, DANA)
    selects = [b for b in admin if b.get("block_id", "").startswith("policy:")]
    assert [b["block_id"] for b in selects] == [f"policy:{GENERAL}", f"policy:{SECRET}"]
    assert selects[0]["accessory"]["initial_option"]["value"] == "auto"
    assert "transcribed, 1 recording" in json.dumps(admin)
    assert "None yet." in json.dumps(admin)  # Dana has no transcripts of her own


async def test_home_changes_are_applied_for_admins_and_refused_for_others(bot: SlackBot) -> None:
    await send(bot, bot.fake.home_opened(DANA))
    await bot.fake.until(lambda: bot.fake.home(DANA))
    off = {"text": {"type": "plain_text", "text": "off: nothing"}, "value": "off"}

    # Alice forges Dana's select: refused, nothing changes, she is told in her tab.
    forged = bot.fake.home_action(
        ALICE, action_id=POLICY_ACTION, block_id=f"policy:{GENERAL}", selected=off, view_of=DANA
    )
    await interact(bot, forged)
    home = await bot.fake.until(lambda: bot.fake.home(ALICE))
    assert texts.ADMINS_ONLY in json.dumps(home.view["blocks"])
    assert await policy(bot) is None

    chosen = bot.fake.home_action(
        DANA, action_id=POLICY_ACTION, block_id=f"policy:{GENERAL}", selected=off
    )
    await interact(bot, chosen)
    await bot.fake.until(lambda: len([p for p in bot.fake.views.published if p.user == DANA]) == 2)
    assert await policy(bot) is ChannelPolicy.OFF
    general = next(b for b in blocks_of(bot, DANA) if b.get("block_id") == f"policy:{GENERAL}")
    assert general["accessory"]["initial_option"]["value"] == "off"


async def test_the_opt_out_switch_in_the_home_tab(bot: SlackBot) -> None:
    await send(bot, bot.fake.home_opened(ALICE))
    await bot.fake.until(lambda: bot.fake.home(ALICE))
    await interact(bot, bot.fake.home_action(ALICE, action_id=OPT_OUT_ACTION, block_id="optout"))
    await bot.fake.until(lambda: "Opt back in" in json.dumps(blocks_of(bot, ALICE)))
    assert await bot.store.opt_outs.opted_out(Platform.SLACK, ALICE)
    await interact(bot, bot.fake.home_action(ALICE, action_id=OPT_IN_ACTION, block_id="optout"))
    await bot.fake.until(lambda: "Opt out" in json.dumps(blocks_of(bot, ALICE)))
    assert not await bot.store.opt_outs.opted_out(Platform.SLACK, ALICE)


async def test_the_home_tab_keeps_within_block_kits_limits_in_a_big_workspace(
    bot: SlackBot,
) -> None:
    for n in range(150):
        bot.fake.add_channel(f"team-{n:03d}-" + "x" * 60, members={DANA, BOT_USER_ID})
    await send(bot, bot.fake.home_opened(DANA))
    await bot.fake.until(lambda: bot.fake.home(DANA))  # the fake validates every limit

    blocks = blocks_of(bot, DANA)
    listed = [b for b in blocks if b.get("block_id", "").startswith("policy:")]
    assert len(blocks) <= MAX_VIEW_BLOCKS and len(listed) == MAX_CHANNELS
    assert f"… and {152 - MAX_CHANNELS} more channels" in json.dumps(blocks, ensure_ascii=False)
    assert not [c for c in bot.fake.calls("views.publish") if not c.response.get("ok")]


async def test_direct_messages_follow_their_own_setting(
    fake_slack: FakeSlack, tmp_path: Path, dialogue: AudioSample
) -> None:
    im = fake_slack.add_channel("alice-dm", "D0ALICE001", members={ALICE, BOT_USER_ID}, is_im=True)
    async with slack_bot(fake_slack, tmp_path, slack_dm_transcribe=ChannelPolicy.OFF) as bot:
        for _ in range(2):
            file = bot.fake.add_file("memo.mp3", dialogue.path.read_bytes())
            await send(bot, bot.fake.events.file_share(im.id, ALICE, [file]))
        [said] = await bot.fake.until(lambda: bot.fake.bot_messages(im.id))
        assert unescape(said.text) == messages.refused([messages.transcription_off(direct=True)])
        await asyncio.sleep(0.2)
        assert len(bot.fake.bot_messages(im.id)) == 1 and await bot.jobs() == []
