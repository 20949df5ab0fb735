"""The ChatPlatform half: where posts go (a thread from the source message, or in place),
how a result looks (embed, escaped transcript, transcript.txt), idempotent posting with
nonces, status edits and reactions. Driven through the adapter's own methods, with the
thread references the engine would build."""

from typing import Any

import pytest

from adapters.discord.delivery import Hints, Reply
from bot import render
from bot.chat import Platform, Post, Reaction, ThreadRef
from bot.jobs import JobStore
from bot.summary import ActionItem, Decision, Point, Summary
from bot.transcript import Transcript
from tests.fakes.discord import FakeDiscord, Permission, Upload
from tests.fakes.discord_harness import Harness, running_bot, shown
from tests.fakes.discord_model import default_world

pytestmark = pytest.mark.timeout(30)

_WORLD = default_world()
GUILD, DM = _WORLD.guild.id, _WORLD.dm.id


@pytest.fixture
def bot_options() -> dict[str, Any]:
    return {"discord_auto_transcribe": False}


def transcript(*turns: tuple[str, str], seconds: float = 60.0) -> Transcript:
    step = int(seconds * 1000) // max(1, len(turns))
    return Transcript.from_json(
        {
            "id": "t-1",
            "status": "completed",
            "language_code": "en_us",
            "audio_duration": seconds,
            "text": " ".join(text for _, text in turns),
            "utterances": [
                {"speaker": s, "text": t, "start": i * step, "end": (i + 1) * step - 100}
                for i, (s, t) in enumerate(turns)
            ],
        }
    )


def result(doc: render.Document) -> Post:
    rendered = render.fit(doc, render.DISCORD_MESSAGE_LIMIT)
    return Post(rendered.inline, rendered.files, doc)


def where(message: dict[str, Any], title: str = "recording", **hints: Any) -> ThreadRef:
    # Messages as the fake stores them carry no guild_id: in the default world every
    # channel but the DM is in its one guild.
    guild = "@me" if message["channel_id"] == str(DM) else str(GUILD)
    return ThreadRef(
        Platform.DISCORD,
        str(guild),
        message["channel_id"],
        None,
        message["id"],
        "job-1",
        Hints(**hints).extra(),
        title=title,
    )


async def test_posts_go_in_a_thread_started_from_the_source_message(bot: Harness) -> None:
    fake, world = bot.fake, bot.fake.world
    voice = await fake.dispatch_voice_message(duration_secs=4.0)
    ref = where(voice, reply=Reply.THREAD, title="voice message from Alice")

    status = await bot.adapter.post(
        ref, Post("⏳ Queued: starting in a moment"), key="job-1:status"
    )
    (thread,) = fake.threads(world.general)
    assert (thread["id"], thread["name"]) == (voice["id"], "Transcript: voice message from Alice")
    doc = render.render(transcript(("A", "Shall we start?"), ("B", "Yes.")))
    answer = await bot.adapter.post(ref, result(doc), key="job-1:result")
    # The second post found the thread through Discord's 160004: no second thread.
    assert len(fake.threads()) == 1
    assert (
        fake.calls_to("POST /channels/{channel_id}/messages/{message_id}/threads")[-1].status == 400
    )

    # The same key again (a crash before the engine recorded the id): the same message.
    assert await bot.adapter.post(ref, result(doc), key="job-1:result") == answer
    await bot.adapter.edit(ref, status, Post("✅ Transcribed"), key="job-1:status")
    in_thread = bot.bot_messages(int(voice["id"]))
    assert [m["id"] for m in in_thread] == [status, answer]
    assert shown(in_thread[0]) == "✅ Transcribed"
    assert in_thread[1]["embeds"][0]["title"] == doc.header
    assert shown(in_thread[1]) == "Speaker A [00:00]: Shall we start?\nSpeaker B [00:30]: Yes."
    assert fake.messages(world.general) == [fake.messages(world.general)[0]]  # nothing else

    for call in fake.calls_to("POST /channels/{channel_id}/messages"):
        assert call.json["allowed_mentions"]["parse"] == []
        assert call.json["enforce_nonce"] is True and len(call.json["nonce"]) == 25


async def test_reactions_show_the_state_on_the_source_message(bot: Harness) -> None:
    voice = await bot.fake.dispatch_voice_message()
    ref = where(voice, reply=Reply.THREAD)
    await bot.adapter.react(ref, Reaction.WORKING)
    assert [r.emoji for r in bot.fake.reactions(voice)] == ["⏳"]
    await bot.adapter.react(ref, Reaction.DONE)
    assert [r.emoji for r in bot.fake.reactions(voice)] == ["✅"]
    await bot.adapter.react(ref, Reaction.FAILED)
    assert [r.emoji for r in bot.fake.reactions(voice)] == ["✅", "❌"]

    # A slash command has no source message: nothing to react on, and no error.
    await bot.adapter.react(ThreadRef(Platform.DISCORD, "1", "2", None, None), Reaction.DONE)
    # The source message was deleted meanwhile: cosmetic, so no error either.
    gone = await bot.fake.dispatch_message(uploads=[Upload("a.mp3", b"ID3")])
    await bot.fake.author_deletes(gone)
    await bot.adapter.react(where(gone, reply=Reply.THREAD), Reaction.DONE)


@pytest.mark.parametrize("place", ["thread", "forum_post", "dm"])
async def test_replies_go_in_place_in_threads_forum_posts_and_dms(bot: Harness, place) -> None:
    channel = getattr(bot.fake.world, place)
    source = await bot.fake.dispatch_message(channel, uploads=[Upload("memo.ogg", b"OggS")])
    ref = where(source, reply=Reply.IN_PLACE)
    status = await bot.adapter.post(ref, Post("⏳ Working on it"), key="job-1:status")
    await bot.adapter.edit(ref, status, Post("✅ Transcribed"), key="job-1:status")
    (reply,) = bot.bot_messages(channel)
    assert (reply["id"], shown(reply)) == (status, "✅ Transcribed")
    assert reply["message_reference"]["message_id"] == source["id"]
    assert bot.fake.threads() == []


async def test_where_no_thread_can_start_the_reply_goes_in_place(bot: Harness) -> None:
    # Hints say "thread", but the message sits in a thread, where none can be started.
    inside = await bot.fake.dispatch_message(bot.fake.world.thread, content="https://x/a.mp3")
    ref = where(inside, reply=Reply.THREAD)
    status = await bot.adapter.post(ref, Post("⏳ Working on it"), key="job-1:status")
    await bot.adapter.edit(ref, status, Post("✅ Transcribed"), key="job-1:status")
    assert [shown(m) for m in bot.bot_messages(bot.fake.world.thread)] == ["✅ Transcribed"]
    assert bot.fake.threads() == []


async def test_a_long_result_is_a_preview_plus_transcript_txt(bot: Harness) -> None:
    turns = [("A" if i % 2 else "B", f"Point number {i} is *important* to me.") for i in range(120)]
    turns.append(("A", "Ping @everyone and <@1310000000000000003> ~~for~~ `real` > now."))
    doc = render.render(transcript(*turns, seconds=900.0))
    source = await bot.fake.dispatch_message(uploads=[Upload("long.mp3", b"ID3")])
    ref = where(source, reply=Reply.THREAD)
    await bot.adapter.post(ref, result(doc), key="job-1:result")

    (message,) = bot.bot_messages(int(source["id"]))
    content = shown(message)
    assert len(content) <= 2000
    assert content.endswith(f"… full transcript attached ({doc.word_count:,} words)")
    assert "Speaker B [00:00]: Point number 0 is \\*important\\* to me." in content
    (upload,) = bot.fake.files(int(source["id"]))
    assert (upload.filename, upload.text) == ("transcript.txt", doc.text + "\n")
    assert "Ping @everyone and <@1310000000000000003> ~~for~~ `real` > now." in upload.text
    (embed,) = message["embeds"]
    assert embed["title"] == doc.header
    assert embed["fields"][0]["name"] == "Speakers"
    assert embed["fields"][0]["value"].startswith("Speaker B — ")
    assert message["mentions"] == []  # nobody was pinged


async def test_short_results_escape_markdown_and_need_no_file(bot: Harness) -> None:
    doc = render.render(transcript(("A", "Ping @everyone, it is *urgent* > now.")))
    source = await bot.fake.dispatch_message(uploads=[Upload("short.mp3", b"ID3")])
    await bot.adapter.post(where(source, reply=Reply.THREAD), result(doc), key="k")
    (message,) = bot.bot_messages(int(source["id"]))
    assert shown(message) == "Speaker A [00:00]: Ping @everyone, it is \\*urgent\\* > now."
    assert message["attachments"] == [] and message["mention_everyone"] is False


async def test_an_ai_summary_goes_in_the_embed(bot: Harness) -> None:
    summary = Summary(
        (Point("Speaker A", "wants to **start**.", 0), Point("Speaker B", "agrees.", 30_000)),
        (Decision("Start now.", 30_000),),
        (ActionItem("Speaker B", "send the _numbers_", "Friday", 30_000),),
    )
    doc = render.render(transcript(("A", "Shall we start?"), ("B", "Yes.")), summary=summary)
    source = await bot.fake.dispatch_message(uploads=[Upload("short.mp3", b"ID3")])
    await bot.adapter.post(where(source, reply=Reply.THREAD), result(doc), key="k")
    (embed,) = bot.bot_messages(int(source["id"]))[0]["embeds"]
    # Our formatting around the points; what is inside them is shown as written.
    assert embed["description"] == (
        "- **Speaker A** `00:00`: wants to \\*\\*start\\*\\*.\n- **Speaker B** `00:30`: agrees."
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert list(fields) == ["Decisions", "Action items", "Speakers"]
    assert fields["Decisions"] == "- Start now. `00:30`"
    assert fields["Action items"] == "- **Speaker B**: send the \\_numbers\\_ *(by Friday)* `00:30`"


async def test_without_embed_links_everything_goes_in_the_content(bot: Harness) -> None:
    doc = render.render(transcript(("A", "Shall we start?"), ("B", "Yes.")))
    source = await bot.fake.dispatch_message(uploads=[Upload("short.mp3", b"ID3")])
    ref = where(source, reply=Reply.THREAD, embeds=False)
    await bot.adapter.post(ref, result(doc), key="k")
    (message,) = bot.bot_messages(int(source["id"]))
    assert message["embeds"] == []
    assert shown(message).startswith(doc.header + "\n\nSpeakers\nSpeaker A — ")
    assert shown(message).endswith("Speaker B [00:30]: Yes.")


async def test_subtitles_are_attached(bot: Harness) -> None:
    doc = render.render(transcript(("A", "Shall we start?")))
    rendered = render.fit(doc, 2000, srt="1\n00:00:00,000 --> 00:00:01,000\nHi\n", vtt="WEBVTT\n")
    source = await bot.fake.dispatch_message(uploads=[Upload("short.mp3", b"ID3")])
    post = Post(rendered.inline, rendered.files, doc)
    await bot.adapter.post(where(source, reply=Reply.THREAD), post, key="k")
    names = [f.filename for f in bot.fake.files(int(source["id"]))]
    assert names == ["transcript.srt", "transcript.vtt"]


async def test_a_missing_channel_is_a_permanent_platform_error(bot: Harness) -> None:
    from bot.chat import PlatformError

    ref = ThreadRef(Platform.DISCORD, "@me", "42", None, "43", "job", Hints().extra())
    with pytest.raises(PlatformError) as failed:
        await bot.adapter.post(ref, Post("hello"), key="k")
    assert not failed.value.retryable


async def test_a_deleted_source_message_still_gets_its_result(bot: Harness) -> None:
    world = bot.fake.world
    source = await bot.fake.dispatch_message(uploads=[Upload("a.mp3", b"ID3")])
    ref = where(source, reply=Reply.THREAD)
    status = await bot.adapter.post(ref, Post("⏳ Working on it"), key="job-1:status")
    await bot.fake.author_deletes(source)
    # The thread outlives its starter message: the result still goes there.
    answer = await bot.adapter.post(ref, Post("result"), key="job-1:result")
    assert [m["id"] for m in bot.bot_messages(int(source["id"]))] == [status, answer]

    # Deleted before any thread was made: the result goes in the channel instead.
    lost = await bot.fake.dispatch_message(uploads=[Upload("b.mp3", b"ID3")])
    await bot.fake.author_deletes(lost)
    await bot.adapter.post(where(lost, reply=Reply.THREAD), Post("result"), key="job-2:result")
    assert shown(bot.bot_messages(world.general)[-1]) == "result"


async def test_rate_limits_are_waited_out_and_the_post_lands_once(bot: Harness) -> None:
    source = await bot.fake.dispatch_message(bot.fake.world.dm, uploads=[Upload("a.mp3", b"ID")])
    bot.fake.rate_limit("POST /channels/{channel_id}/messages", times=2, retry_after=0.05)
    await bot.adapter.post(where(source), Post("after two 429s"), key="job-1:status")
    statuses = [c.status for c in bot.fake.calls_to("POST /channels/{channel_id}/messages")]
    assert statuses == [429, 429, 200]
    assert [shown(m) for m in bot.bot_messages(bot.fake.world.dm)] == ["after two 429s"]


@pytest.mark.parametrize(
    "denied", [Permission.CREATE_PUBLIC_THREADS, Permission.SEND_MESSAGES_IN_THREADS]
)
async def test_without_thread_permissions_the_reply_goes_in_place(bot: Harness, denied) -> None:
    world = bot.fake.world
    source = await bot.fake.dispatch_voice_message()
    ref = where(source, reply=Reply.THREAD)
    bot.fake.deny_bot(world.general, denied)
    status = await bot.adapter.post(ref, Post("⏳ Working on it"), key="job-1:status")
    await bot.adapter.edit(ref, status, Post("✅ Transcribed"), key="job-1:status")
    reply = bot.bot_messages(world.general)[-1]
    assert (reply["id"], shown(reply)) == (status, "✅ Transcribed")
    assert reply["message_reference"]["message_id"] == source["id"]


async def test_missing_reactions_permission_is_harmless(bot: Harness) -> None:
    source = await bot.fake.dispatch_voice_message()
    bot.fake.deny_bot(bot.fake.world.general, Permission.ADD_REACTIONS)
    await bot.adapter.react(where(source, reply=Reply.THREAD), Reaction.WORKING)
    assert bot.fake.reactions(source) == []


async def test_missing_attach_files_is_a_clear_permanent_error(bot: Harness) -> None:
    from bot.chat import PlatformError

    turns = [("A", f"Sentence number {i} goes on for a while.") for i in range(100)]
    doc = render.render(transcript(*turns))
    source = await bot.fake.dispatch_voice_message(bot.fake.world.thread)
    bot.fake.deny_bot(bot.fake.world.thread, Permission.ATTACH_FILES)
    with pytest.raises(PlatformError) as failed:
        await bot.adapter.post(where(source), result(doc), key="job-1:result")
    assert not failed.value.retryable
    assert "lacks a permission" in failed.value.message
    assert "Attach Files" in failed.value.message
    # The failure notice itself (text only) still gets through.
    await bot.adapter.post(where(source), Post(f"Sorry: {failed.value.message}"), key="k2")


@pytest.mark.parametrize("embeds", [True, False])
def test_the_whole_transcript_always_reaches_the_thread(embeds: bool) -> None:
    """Seeded random transcripts: the message fits Discord's limits, and every line is
    either in it or in the attached transcript.txt."""
    import random

    from adapters.discord.format import escape, outgoing

    rng = random.Random(5)
    words = "the *numbers* are in _and_ > costs ~~are~~ flat `ok` @everyone ok".split()
    for _ in range(60):
        turns = [
            (rng.choice("AB"), " ".join(rng.choices(words, k=rng.randint(1, 120))))
            for _ in range(rng.randint(1, 40))
        ]
        summary = Summary(
            tuple(
                Point(rng.choice(("Speaker A", None)), " ".join(rng.choices(words, k=150)), None)
                for _ in range(rng.randint(1, 6))
            )
        )
        doc = render.render(transcript(*turns), summary=summary if rng.random() < 0.5 else None)
        out = outgoing(result(doc), key="job-1:result", embeds=embeds)
        assert len(out.content) <= 2000
        for embed in out.embeds:
            assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
            assert all(len(f.value) <= 1024 for f in embed.fields)
        files = {f.name: f.content for f in out.files}
        if "transcript.txt" in files:
            assert files["transcript.txt"] == doc.text + "\n"
        else:  # everything is in the message itself
            assert all(escape(line) in out.content for line in doc.transcript_lines)


# -- exactly once past the nonce window -------------------------------------------------

MESSAGES = "POST /channels/{channel_id}/messages"
PAST_THE_NONCE = 6 * 60  # Discord honours enforce_nonce for a few minutes


def is_result(body: dict[str, Any]) -> bool:
    return "Shall we start?" in str(body.get("content", ""))


async def test_a_post_whose_answer_was_lost_is_found_after_the_nonce_window(
    bot: Harness,
) -> None:
    from bot.chat import PlatformError

    voice = await bot.fake.dispatch_voice_message(duration_secs=4.0)
    ref = where(voice, reply=Reply.THREAD)
    status = await bot.adapter.post(ref, Post("⏳ Working on it"), key="job-1:status")
    doc = render.render(transcript(("A", "Shall we start?"), ("B", "Yes.")))
    bot.fake.lose_answers(MESSAGES, advance=PAST_THE_NONCE, match=is_result)
    with pytest.raises(PlatformError) as lost:
        await bot.adapter.post(ref, result(doc), key="job-1:result")
    assert lost.value.retryable  # the engine tries again later
    made = len(bot.fake.calls_to(MESSAGES))

    again = await bot.adapter.post(ref, result(doc), key="job-1:result")
    assert len(bot.fake.calls_to(MESSAGES)) == made  # found in the thread, not posted
    in_thread = bot.bot_messages(int(voice["id"]))
    assert [m["id"] for m in in_thread] == [status, again]
    assert shown(in_thread[1]).startswith("Speaker A [00:00]: Shall we start?")
    # A different key in the same thread is a different post.
    await bot.adapter.post(ref, Post("another"), key="job-2:result")
    assert len(bot.bot_messages(int(voice["id"]))) == 3


async def test_a_restarted_bot_looks_before_posting_for_a_job_from_before_it_started(
    fake_discord: FakeDiscord, store: JobStore, assemblyai
) -> None:
    from bot.chat import PlatformError

    voice = await fake_discord.dispatch_voice_message(duration_secs=4.0)
    ref = where(voice, reply=Reply.THREAD)
    doc = render.render(transcript(("A", "Shall we start?"), ("B", "Yes.")))
    async with running_bot(fake_discord, store, assemblyai) as first:
        fake_discord.lose_answers(MESSAGES, advance=PAST_THE_NONCE, match=is_result)
        with pytest.raises(PlatformError):
            await first.adapter.post(ref, result(doc), key="job-1:result")
    async with running_bot(fake_discord, store, assemblyai) as second:
        # The job began before this process started: the post may exist.
        older = replace_created(ref, hours_ago=1)
        await second.adapter.post(older, result(doc), key="job-1:result")
        assert len(second.bot_messages(int(voice["id"]))) == 1


async def test_a_job_begun_after_the_start_posts_without_looking(bot: Harness) -> None:
    voice = await bot.fake.dispatch_voice_message(duration_secs=4.0)
    fresh = replace_created(where(voice, reply=Reply.THREAD), hours_ago=-1 / 3600)
    await bot.adapter.post(fresh, Post("⏳ Working on it"), key="job-9:status")
    assert bot.fake.calls_to("GET /channels/{channel_id}/messages") == []
    # Once tried, a retry of the same key looks first.
    await bot.adapter.post(fresh, Post("⏳ Working on it"), key="job-9:status")
    assert len(bot.fake.calls_to("GET /channels/{channel_id}/messages")) == 1
    assert len(bot.bot_messages(int(voice["id"]))) == 1


def replace_created(ref: ThreadRef, *, hours_ago: float) -> ThreadRef:
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    return replace(ref, created_at=datetime.now(UTC) - timedelta(hours=hours_ago))


async def test_an_edge_answering_html_is_retried_or_named_never_shown(bot: Harness) -> None:
    from bot.chat import PlatformError

    source = await bot.fake.dispatch_message(bot.fake.world.dm, uploads=[Upload("a.mp3", b"ID")])
    # 503 from the edge: discord.py does not retry it; the engine will, told in words.
    bot.fake.edge_failures(
        MESSAGES, status=503, body="upstream connect error", content_type="text/plain"
    )
    with pytest.raises(PlatformError) as failed:
        await bot.adapter.post(where(source), Post("hello"), key="job-1:status")
    assert failed.value.retryable
    assert failed.value.message == "Discord is not answering properly (503 Service Unavailable)"
    # An HTML 502: discord.py tries again by itself, and the post lands once.
    bot.fake.edge_failures(MESSAGES, status=502)
    await bot.adapter.post(where(source), Post("hello"), key="job-1:status")
    statuses = [c.status for c in bot.fake.calls_to(MESSAGES)]
    assert statuses == [503, 502, 200]
    assert [shown(m) for m in bot.bot_messages(bot.fake.world.dm)] == ["hello"]


def test_discords_own_errors_are_one_short_line() -> None:
    from adapters.discord import texts

    said = texts.refused_by_discord(400, 50035, "Invalid Form Body\n" + "x" * 500)
    assert "\n" not in said and len(said) < 260
    assert texts.refused_by_discord(404, 0, "<html>…</html>") == "Discord answered 404 Not Found"
