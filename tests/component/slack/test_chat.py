"""The engine's side of the adapter against the Slack fake: posts in the thread (Block Kit
and text), files in the thread, edits, reactions, idempotent keys, and Slack's errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.slack import create
from adapters.slack.chat import POST_EVENT
from bot.chat import Post, Reaction, ThreadRef
from bot.config import Secret
from bot.errors import PlatformError
from bot.jobs import IntakeRecord, Job, JobStore, Platform, UrlSource
from bot.render import RenderedFile
from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    GENERAL,
    RANDOM,
    TEAM_ID,
    FakeSlack,
)
from tests.fakes.slack_blocks import validate_blocks
from tests.fakes.slack_harness import SlackBot, slack_bot, slack_settings
from tests.helpers.transcripts import posted, transcript


async def new_job(bot: SlackBot, *, message: str | None, channel: str = GENERAL) -> Job:
    record = IntakeRecord(
        platform=Platform.SLACK,
        workspace=TEAM_ID,
        channel=channel,
        requester=ALICE,
        source=UrlSource("https://media.example/standup.mp3"),
        message=message,
        event_id=None if message else "command:trigger-1",
    )
    job, created = await bot.store.admission.intake(record)
    assert created
    bot.adapter.chat.created(job.id)
    return job


async def test_status_goes_in_the_thread_with_its_key_as_metadata(bot: SlackBot) -> None:
    source = bot.fake.events.post(GENERAL, ALICE, "standup", urls=["https://m.example/a.mp3"])
    job = await new_job(bot, message=source.ts)

    ts = await bot.adapter.post(ThreadRef.of(job), Post("⏳ Queued"), key=f"{job.id}:status")

    [reply] = bot.fake.bot_messages(GENERAL, thread_ts=source.ts)
    assert (reply.ts, reply.text) == (ts, "⏳ Queued")
    assert reply.metadata == {
        "event_type": POST_EVENT,
        "event_payload": {"key": f"{job.id}:status"},
    }
    assert validate_blocks(reply.blocks or []) == []
    assert bot.fake.calls("conversations.replies") == []  # a fresh job: nothing to look for


async def test_the_result_is_block_kit_with_its_files_in_the_thread(bot: SlackBot) -> None:
    source = bot.fake.events.post(GENERAL, ALICE, "standup")
    job = await new_job(bot, message=source.ts)
    turns = [("AB"[i % 2], f"Line {i} about the quarterly numbers. " * 3) for i in range(200)]
    post = posted(transcript(turns))
    srt = RenderedFile("transcript.srt", "1\n00:00:00,000 --> 00:00:01,000\nHi\n", "text/plain")
    post = Post(post.text, (*post.files, srt), post.document)

    ts = await bot.adapter.post(ThreadRef.of(job), post, key=f"{job.id}:result")

    result, files = bot.fake.bot_messages(GENERAL, thread_ts=source.ts)
    assert result.ts == ts and result.blocks and result.blocks[0]["type"] == "header"
    assert {u.filename for u in bot.fake.uploaded_files()} == {"transcript.txt", "transcript.srt"}
    [upload] = [u for u in bot.fake.uploaded_files() if u.filename == "transcript.txt"]
    assert upload.thread_ts == source.ts and "Line 199 about" in upload.text
    assert files.files and files.thread_ts == source.ts


async def test_a_key_posted_before_a_crash_is_found_not_posted_again(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    source = fake_slack.events.post(GENERAL, ALICE, "standup")
    doc = posted(transcript([("A", "Hello."), ("B", "Hi.")]))
    post = Post(doc.text, (RenderedFile("transcript.txt", "whole\n", "text/plain"),), doc.document)
    async with slack_bot(fake_slack, tmp_path) as first:
        job = await new_job(first, message=source.ts)
        fake_slack.fail("files.getUploadURLExternal", "internal_error")  # dies before the file
        with pytest.raises(PlatformError):
            await first.adapter.post(ThreadRef.of(job), post, key=f"{job.id}:result")
    async with slack_bot(fake_slack, tmp_path) as restarted:  # a new process: memory is gone
        again = await restarted.adapter.post(ThreadRef.of(job), post, key=f"{job.id}:result")
        twice = await restarted.adapter.post(ThreadRef.of(job), post, key=f"{job.id}:result")

    result, files = fake_slack.bot_messages(GENERAL, thread_ts=source.ts)
    assert again == twice == result.ts
    assert [u.filename for u in fake_slack.uploaded_files()] == ["transcript.txt"]
    assert files.files == [fake_slack.uploaded_files()[0].file_id]


async def test_a_slash_command_thread_starts_with_who_asked(bot: SlackBot) -> None:
    job = await new_job(bot, message=None)

    root = await bot.adapter.post(ThreadRef.of(job), Post("⏳ Queued"), key=f"{job.id}:status")
    where = ThreadRef.of(job, thread=root)
    await bot.adapter.edit(where, root, Post("✅ Transcribed"), key="job-1:status")
    reply = await bot.adapter.post(where, Post("the result"), key=f"{job.id}:result")

    [top] = [m for m in bot.fake.bot_messages(GENERAL) if not m.is_reply]
    assert top.ts == root and top.text == "✅ Transcribed"
    assert top.blocks is not None
    context = top.blocks[-1]["elements"][0]["text"]
    assert context == f"<@{ALICE}> asked for a transcript of <https://media.example/standup.mp3>"
    assert [m.ts for m in bot.fake.bot_messages(GENERAL, thread_ts=root)] == [reply]


async def test_a_restarted_root_post_is_found_in_the_channel_history(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    async with slack_bot(fake_slack, tmp_path) as first:
        job = await new_job(first, message=None)
        root = await first.adapter.post(ThreadRef.of(job), Post("⏳"), key=f"{job.id}:status")
    async with slack_bot(fake_slack, tmp_path) as restarted:
        again = await restarted.adapter.post(ThreadRef.of(job), Post("⏳"), key=f"{job.id}:status")

    assert again == root
    assert len(fake_slack.bot_messages(GENERAL)) == 1


async def test_reactions_replace_each_other_even_across_a_restart(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    source = fake_slack.events.post(GENERAL, ALICE, "standup")
    async with slack_bot(fake_slack, tmp_path) as first:
        job = await new_job(first, message=source.ts)
        await first.adapter.react(ThreadRef.of(job), Reaction.WORKING)
        await first.adapter.react(ThreadRef.of(job), Reaction.WORKING)
        assert fake_slack.reactions(GENERAL, source.ts) == {"hourglass_flowing_sand": [BOT_USER_ID]}
    async with slack_bot(fake_slack, tmp_path) as restarted:
        await restarted.adapter.react(ThreadRef.of(job), Reaction.DONE)

    assert fake_slack.reactions(GENERAL, source.ts) == {"white_check_mark": [BOT_USER_ID]}


async def test_a_reaction_slack_refuses_for_good_does_not_fail_the_job(bot: SlackBot) -> None:
    source = bot.fake.events.post(GENERAL, ALICE, "standup")
    job = await new_job(bot, message=source.ts)
    source.deleted = True

    await bot.adapter.react(ThreadRef.of(job), Reaction.FAILED)  # no exception

    assert bot.fake.calls("reactions.add")[0].error == "message_not_found"


async def test_blocks_slack_refuses_fall_back_to_text(bot: SlackBot) -> None:
    source = bot.fake.events.post(GENERAL, ALICE, "standup")
    job = await new_job(bot, message=source.ts)
    bot.fake.fail("chat.postMessage", "invalid_blocks")
    post = posted(transcript([("A", "Hello there.")]))

    await bot.adapter.post(ThreadRef.of(job), post, key=f"{job.id}:result")

    [reply] = bot.fake.bot_messages(GENERAL, thread_ts=source.ts)
    assert reply.blocks is None and "Speaker A [00:00]: Hello there." in reply.text


async def test_rate_limits_are_waited_out(bot: SlackBot) -> None:
    source = bot.fake.events.post(GENERAL, ALICE, "standup")
    job = await new_job(bot, message=source.ts)
    bot.fake.rate_limit("chat.postMessage", retry_after=1)

    await bot.adapter.post(ThreadRef.of(job), Post("⏳"), key=f"{job.id}:status")

    assert [c.http_status for c in bot.fake.calls("chat.postMessage")] == [429, 200]
    assert len(bot.fake.bot_messages(GENERAL, thread_ts=source.ts)) == 1


async def test_a_channel_without_the_bot_is_a_final_error_that_says_what_to_do(
    bot: SlackBot,
) -> None:
    source = bot.fake.events.post(RANDOM, ALICE, "standup")
    job = await new_job(bot, message=source.ts, channel=RANDOM)

    with pytest.raises(PlatformError) as info:
        await bot.adapter.post(ThreadRef.of(job), Post("⏳"), key=f"{job.id}:status")

    assert info.value.retryable is False
    assert "not_in_channel" in info.value.message and "invite @threadscribe" in info.value.message


async def test_a_revoked_token_is_worth_retrying_after_a_reinstall(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    source = fake_slack.events.post(GENERAL, ALICE, "standup")
    async with slack_bot(fake_slack, tmp_path) as bot:
        job = await new_job(bot, message=source.ts)
        fake_slack.revoke_token(BOT_TOKEN)  # after the start, which checks the token
        with pytest.raises(PlatformError) as info:
            await bot.adapter.post(ThreadRef.of(job), Post("⏳"), key=f"{job.id}:status")

    assert info.value.retryable and "token_revoked" in info.value.message


async def test_create_refuses_settings_that_cannot_work(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        no_token = slack_settings(fake_slack, tmp_path / "x.db", slack_bot_token=None)
        unsigned = slack_settings(fake_slack, tmp_path / "x.db", slack_signing_secret=None)
        with pytest.raises(ValueError, match="SLACK_BOT_TOKEN"):
            create(no_token, store)
        with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
            create(unsigned, store)
        assert create(replace(unsigned, slack_app_token=Secret(APP_TOKEN)), store).mode == "socket"
    finally:
        await store.close()
