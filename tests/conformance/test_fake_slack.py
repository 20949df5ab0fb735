"""The Slack fake, driven by the real slack_sdk and slack-bolt code the bot will use."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.say.async_say import AsyncSay
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import (
    ALICE,
    APP_TOKEN,
    BOB,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    DANA,
    GENERAL,
    HIDDEN,
    OLGA,
    RANDOM,
    SECRET,
    SIGNING_SECRET,
    TEAM_ID,
    FakeSlack,
)
from tests.fakes.slack_events import SignedRequest, sign
from tests.fakes.slack_state import DEFAULT_BOT_SCOPES, ChunkedSource, GeneratedBytes

AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 64


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api_error(call: Awaitable[object]) -> SlackApiError:
    """The SlackApiError the call raises (the call must fail)."""
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# ------------------------------------------------------------------ auth and scopes


async def test_auth_test_identifies_the_bot_and_reports_granted_scopes(
    fake_slack: FakeSlack,
) -> None:
    resp = await fake_slack.web_client().auth_test()

    assert (resp["team_id"], resp["user_id"], resp["bot_id"]) == (TEAM_ID, BOT_USER_ID, BOT_ID)
    assert resp["url"] == "https://acme.slack.com/"
    assert set(resp.headers["X-OAuth-Scopes"].split(",")) == DEFAULT_BOT_SCOPES


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, "not_authed"),
        ("xoxb-1-T0TEAM0001-forged", "invalid_auth"),
        ("not-a-slack-token", "invalid_auth"),
        (APP_TOKEN, "not_allowed_token_type"),
    ],
)
async def test_bad_tokens_are_refused_with_slacks_errors(
    fake_slack: FakeSlack, token: str | None, error: str
) -> None:
    client = fake_slack.web_client(token)

    exc = await api_error(client.chat_postMessage(channel=GENERAL, text="hi"))

    assert exc.response.status_code == 200
    assert exc.response["error"] == error
    assert fake_slack.messages(GENERAL) == []


async def test_revoked_token_is_refused(fake_slack: FakeSlack) -> None:
    fake_slack.revoke_token(BOT_TOKEN)

    exc = await api_error(fake_slack.web_client().auth_test())

    assert exc.response["error"] == "token_revoked"


async def test_token_is_taken_from_a_form_body_but_not_from_json_or_the_query(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    url = fake_slack.api_url + "auth.test"
    async with http.post(url, data={"token": BOT_TOKEN}) as resp:
        assert (await resp.json())["ok"] is True
    async with http.post(url, json={"token": BOT_TOKEN}) as resp:
        assert (await resp.json())["error"] == "not_authed"
    async with http.get(url, params={"token": BOT_TOKEN}) as resp:
        assert (await resp.json())["error"] == "not_authed"

    calls = fake_slack.calls("auth.test")
    assert [(c.token_source, c.encoding) for c in calls] == [
        ("form", "form"),
        (None, "json"),
        (None, "query"),
    ]
    assert calls[0].token == BOT_TOKEN


async def test_missing_scope_names_what_was_needed_and_provided(fake_slack: FakeSlack) -> None:
    token = fake_slack.add_token(scopes={"chat:write", "channels:read"})
    parent = fake_slack.events.post(GENERAL, ALICE, "hello")

    exc = await api_error(
        fake_slack.web_client(token).reactions_add(
            channel=GENERAL, timestamp=parent.ts, name="eyes"
        )
    )

    assert exc.response["error"] == "missing_scope"
    assert exc.response["needed"] == "reactions:write"
    assert exc.response["provided"] == "channels:read,chat:write"
    assert exc.response.headers["X-OAuth-Scopes"] == "channels:read,chat:write"
    assert fake_slack.reactions(GENERAL, parent.ts) == {}


async def test_conversation_scopes_follow_the_channel_type(fake_slack: FakeSlack) -> None:
    token = fake_slack.add_token(scopes={"channels:read"})
    client = fake_slack.web_client(token)

    public = await client.conversations_info(channel=GENERAL)
    exc = await api_error(client.conversations_info(channel=SECRET))

    assert public["channel"]["is_member"] is True
    assert (exc.response["error"], exc.response["needed"]) == ("missing_scope", "groups:read")


# ------------------------------------------------------------------ chat


async def test_post_message_in_a_thread_is_recorded_and_readable(fake_slack: FakeSlack) -> None:
    parent = fake_slack.events.post(GENERAL, ALICE, "standup recording")
    client = fake_slack.web_client()
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Queued* (position 1)"}}]

    resp = await client.chat_postMessage(
        channel=GENERAL, thread_ts=parent.ts, text="Queued (position 1)", blocks=blocks
    )
    replies = await client.conversations_replies(channel=GENERAL, ts=parent.ts)

    assert resp["channel"] == GENERAL
    assert resp["message"]["thread_ts"] == parent.ts
    [reply] = fake_slack.messages(GENERAL, thread_ts=parent.ts)
    assert (reply.ts, reply.user, reply.bot_id) == (resp["ts"], BOT_USER_ID, BOT_ID)
    assert reply.blocks == blocks
    assert [m["ts"] for m in replies["messages"]] == [parent.ts, resp["ts"]]
    assert replies["messages"][0]["reply_count"] == 1
    [call] = fake_slack.calls("chat.postMessage")
    assert (call.token, call.encoding, call.params["thread_ts"]) == (BOT_TOKEN, "json", parent.ts)


async def test_history_and_replies_keep_slacks_window_and_metadata_rules(
    fake_slack: FakeSlack,
) -> None:
    parent = fake_slack.events.post(GENERAL, ALICE, "standup recording")
    client = fake_slack.web_client()
    meta = {"event_type": "threadscribe_post", "event_payload": {"key": "k1"}}
    first = await client.chat_postMessage(
        channel=GENERAL, thread_ts=parent.ts, text="one", metadata=meta
    )
    second = await client.chat_postMessage(channel=GENERAL, thread_ts=parent.ts, text="two")

    plain = await client.conversations_replies(channel=GENERAL, ts=parent.ts)
    assert all("metadata" not in m for m in plain["messages"])  # only when asked
    asked = await client.conversations_replies(
        channel=GENERAL, ts=parent.ts, include_all_metadata=True
    )
    assert asked["messages"][1]["metadata"] == meta

    after_first = await client.conversations_replies(
        channel=GENERAL, ts=parent.ts, oldest=first["ts"]
    )
    assert [m["ts"] for m in after_first["messages"]] == [parent.ts, second["ts"]]
    from_first = await client.conversations_replies(
        channel=GENERAL, ts=parent.ts, oldest=first["ts"], inclusive=True
    )
    assert [m["ts"] for m in from_first["messages"]] == [parent.ts, first["ts"], second["ts"]]
    before = await client.conversations_history(channel=GENERAL, latest=parent.ts)
    assert parent.ts not in [m["ts"] for m in before["messages"]]
    upto = await client.conversations_history(channel=GENERAL, latest=parent.ts, inclusive=True)
    assert upto["messages"][0]["ts"] == parent.ts


async def test_form_encoded_post_is_read_like_json(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    blocks = [{"type": "divider"}]
    form = {"channel": GENERAL, "text": "hello", "blocks": json.dumps(blocks)}

    async with http.post(
        fake_slack.api_url + "chat.postMessage", data=form, headers=bearer(BOT_TOKEN)
    ) as resp:
        body = await resp.json()

    assert body["ok"] is True
    [msg] = fake_slack.messages(GENERAL)
    assert (msg.text, msg.blocks) == ("hello", blocks)
    assert fake_slack.calls("chat.postMessage")[0].encoding == "form"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C0NOSUCH01", "text": "x"}, "channel_not_found"),
        ({"channel": HIDDEN, "text": "x"}, "channel_not_found"),
        ({"channel": RANDOM, "text": "x"}, "not_in_channel"),
        ({"channel": GENERAL, "text": "x" * 40_001}, "msg_too_long"),
        (
            {
                "channel": GENERAL,
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            },
            "invalid_blocks",
        ),
        ({"channel": GENERAL, "text": "x", "blocks": [{"type": "nonsense"}]}, "invalid_blocks"),
        ({"channel": GENERAL, "text": "x", "thread_ts": "1700000000.000001"}, "thread_not_found"),
    ],
)
async def test_post_message_is_as_strict_as_slack(
    fake_slack: FakeSlack, kwargs: dict[str, Any], error: str
) -> None:
    exc = await api_error(fake_slack.web_client().chat_postMessage(**kwargs))

    assert exc.response["error"] == error
    assert fake_slack.bot_messages(GENERAL) == []


async def test_post_message_needs_text_or_blocks(fake_slack: FakeSlack) -> None:
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        exc = await api_error(fake_slack.web_client().chat_postMessage(channel=GENERAL))

    assert exc.response["error"] == "no_text"


async def test_limits_are_inclusive_and_block_errors_point_at_the_culprit(
    fake_slack: FakeSlack,
) -> None:
    client = fake_slack.web_client()
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3000}}

    await client.chat_postMessage(channel=GENERAL, text="x" * 40_000, blocks=[section])
    section["text"]["text"] += "y"
    exc = await api_error(client.chat_postMessage(channel=GENERAL, text="x", blocks=[section]))

    assert len(fake_slack.bot_messages(GENERAL)) == 1
    assert exc.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]


async def test_update_edits_in_place_and_keeps_history(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    posted = await client.chat_postMessage(channel=GENERAL, text="Queued (position 2)")
    human = fake_slack.events.post(GENERAL, ALICE, "my words")

    updated = await client.chat_update(channel=GENERAL, ts=posted["ts"], text="Transcribing… 0:05")
    exc = await api_error(client.chat_update(channel=GENERAL, ts=human.ts, text="hijacked"))

    [msg] = fake_slack.bot_messages(GENERAL)
    assert updated["ts"] == posted["ts"] == msg.ts
    assert msg.text == "Transcribing… 0:05"
    assert (msg.edit_count, msg.history[0][0]) == (1, "Queued (position 2)")
    assert exc.response["error"] == "cant_update_message"


async def test_ephemeral_and_permalink(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    parent = fake_slack.events.post(GENERAL, ALICE, "a file")
    reply = await client.chat_postMessage(channel=GENERAL, thread_ts=parent.ts, text="done")

    eph = await client.chat_postEphemeral(
        channel=GENERAL, user=ALICE, text="Usage: /transcribe URL"
    )
    outside = await api_error(client.chat_postEphemeral(channel=RANDOM, user=ALICE, text="x"))
    link = await client.chat_getPermalink(channel=GENERAL, message_ts=reply["ts"])

    [recorded] = fake_slack.ephemerals(GENERAL)
    assert (recorded.user, recorded.text, recorded.ts) == (
        ALICE,
        "Usage: /transcribe URL",
        eph["message_ts"],
    )
    assert outside.response["error"] == "not_in_channel"
    assert link["permalink"].startswith(f"https://acme.slack.com/archives/{GENERAL}/p")
    assert f"thread_ts={parent.ts}" in link["permalink"]


async def test_reactions_add_and_remove_with_slacks_errors(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    msg = fake_slack.events.post(GENERAL, ALICE, "meeting.mp3")

    await client.reactions_add(channel=GENERAL, timestamp=msg.ts, name="hourglass_flowing_sand")
    again = await api_error(
        client.reactions_add(channel=GENERAL, timestamp=msg.ts, name="hourglass_flowing_sand")
    )
    assert fake_slack.reactions(GENERAL, msg.ts) == {"hourglass_flowing_sand": [BOT_USER_ID]}

    await client.reactions_remove(channel=GENERAL, timestamp=msg.ts, name="hourglass_flowing_sand")
    await client.reactions_add(channel=GENERAL, timestamp=msg.ts, name="white_check_mark")
    gone = await api_error(
        client.reactions_remove(channel=GENERAL, timestamp=msg.ts, name="hourglass_flowing_sand")
    )
    nowhere = await api_error(client.reactions_add(channel=GENERAL, timestamp="1.2", name="x"))
    colons = await api_error(client.reactions_add(channel=GENERAL, timestamp=msg.ts, name=":x:"))

    assert fake_slack.reactions(GENERAL, msg.ts) == {"white_check_mark": [BOT_USER_ID]}
    assert [e.response["error"] for e in (again, gone, nowhere, colons)] == [
        "already_reacted",
        "no_reaction",
        "message_not_found",
        "invalid_name",
    ]


async def test_users_info_carries_permission_flags(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()

    users = {u: (await client.users_info(user=u))["user"] for u in (ALICE, DANA, OLGA)}
    unknown = await api_error(client.users_info(user="U0NOBODY01"))

    assert [(users[u]["is_admin"], users[u]["is_owner"]) for u in (ALICE, DANA, OLGA)] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert unknown.response["error"] == "user_not_found"


# ------------------------------------------------------------------ uploads


async def test_files_upload_v2_shares_the_bytes_in_the_thread(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    client = fake_slack.web_client()
    audio = fake_slack.add_file("meeting.mp3", AUDIO)
    parent = fake_slack.events.post(GENERAL, ALICE, files=[audio])
    transcript = "A: Shall we start?\nB: Yes, the numbers are in.\n" * 500

    resp = await client.files_upload_v2(
        channel=GENERAL,
        thread_ts=parent.ts,
        content=transcript,
        filename="meeting-transcript.txt",
        title="Transcript",
        initial_comment="Full transcript attached.",
    )

    assert [c.method for c in fake_slack.calls()] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    [up] = fake_slack.uploaded_files()
    assert (up.text, up.filename, up.title) == (transcript, "meeting-transcript.txt", "Transcript")
    assert (up.channel, up.thread_ts, up.declared_length) == (GENERAL, parent.ts, len(transcript))
    [share] = fake_slack.messages(GENERAL, thread_ts=parent.ts)
    assert (share.files, share.text, share.ts) == (
        [up.file_id],
        "Full transcript attached.",
        up.message_ts,
    )
    assert (resp["file"]["id"], resp["file"]["mimetype"]) == (up.file_id, "text/plain")

    info = await client.files_info(file=up.file_id)
    async with http.get(info["file"]["url_private_download"], headers=bearer(BOT_TOKEN)) as got:
        assert await got.text() == transcript


async def test_upload_url_accepts_multipart_and_completes_only_once(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    client = fake_slack.web_client()
    srt = b"1\n00:00:00,000 --> 00:00:02,000\nShall we start?\n"
    step1 = await client.files_getUploadURLExternal(filename="meeting.srt", length=len(srt))
    never_uploaded = await client.files_getUploadURLExternal(filename="x.txt", length=1)

    form = aiohttp.FormData()
    form.add_field("file", srt, filename="meeting.srt", content_type="application/x-subrip")
    async with http.post(step1["upload_url"], data=form) as resp:
        assert (resp.status, await resp.text()) == (200, f"OK - {len(srt)}")
    files = [{"id": step1["file_id"], "title": "Subtitles"}]
    await client.files_completeUploadExternal(files=files, channel_id=GENERAL)
    twice = await api_error(client.files_completeUploadExternal(files=files, channel_id=GENERAL))
    empty = await api_error(
        client.files_completeUploadExternal(files=[{"id": never_uploaded["file_id"]}])
    )

    [up] = fake_slack.uploaded_files()
    assert (up.data, up.title, up.upload_content_type) == (srt, "Subtitles", "multipart/form-data")
    assert twice.response["error"] == empty.response["error"] == "file_not_found"


async def test_upload_into_a_channel_the_bot_is_not_in_fails(fake_slack: FakeSlack) -> None:
    exc = await api_error(
        fake_slack.web_client().files_upload_v2(channel=RANDOM, content="x", filename="t.txt")
    )

    assert exc.response["error"] == "not_in_channel"
    assert fake_slack.uploaded_files() == []


# ------------------------------------------------------------------ rate limits


async def test_rate_limit_then_success_with_the_retry_handler(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit("chat.postMessage", times=1, retry_after=0)
    client = fake_slack.web_client(
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )

    resp = await client.chat_postMessage(channel=GENERAL, text="hello")

    assert resp["ok"] is True
    calls = fake_slack.calls("chat.postMessage")
    assert [(c.http_status, c.error) for c in calls] == [(429, "ratelimited"), (200, None)]
    assert len(fake_slack.bot_messages(GENERAL)) == 1


async def test_rate_limit_surfaces_retry_after_without_a_handler(fake_slack: FakeSlack) -> None:
    fake_slack.rate_limit("reactions.add", times=1, retry_after=7)
    msg = fake_slack.events.post(GENERAL, ALICE, "hi")
    client = fake_slack.web_client()

    exc = await api_error(client.reactions_add(channel=GENERAL, timestamp=msg.ts, name="eyes"))
    await client.reactions_add(channel=GENERAL, timestamp=msg.ts, name="eyes")

    assert (exc.response.status_code, exc.response["error"]) == (429, "ratelimited")
    assert exc.response.headers["Retry-After"] == "7"
    assert fake_slack.reactions(GENERAL, msg.ts) == {"eyes": [BOT_USER_ID]}


async def test_injected_failure(fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.update", "internal_error", status=500)

    exc = await api_error(fake_slack.web_client().chat_update(channel=GENERAL, ts="1.1", text="x"))

    assert (exc.response.status_code, exc.response["error"]) == (500, "internal_error")


# ------------------------------------------------------------------ private files


async def test_private_file_needs_a_token_with_files_read(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    audio = fake_slack.add_file("meeting.mp3", AUDIO)
    url = fake_slack.file_dict(audio)["url_private_download"]
    weak = fake_slack.add_token(scopes={"chat:write"})
    elsewhere = fake_slack.add_team("T0OTHER001", "Other", "other")
    foreign = fake_slack.add_token(team_id=elsewhere.id)

    async with http.get(url, headers=bearer(BOT_TOKEN)) as resp:
        assert (resp.status, resp.content_type, resp.content_length) == (
            200,
            "audio/mpeg",
            len(AUDIO),
        )
        assert await resp.read() == AUDIO
    for headers in ({}, bearer(weak), bearer(foreign), bearer("xoxb-forged")):
        async with http.get(url, headers=headers) as resp:
            assert (resp.status, resp.content_type) == (200, "text/html")
            assert "Sign in" in await resp.text()

    assert [(d.served, d.complete) for d in fake_slack.downloads(audio.id)] == [
        (True, True),
        (False, False),
        (False, False),
        (False, False),
        (False, False),
    ]


async def test_big_file_is_streamed_not_buffered(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    big = GeneratedBytes(64 * 1024 * 1024, seed=7)
    file = fake_slack.add_file("all-hands.wav", big)
    url = fake_slack.file_dict(file)["url_private_download"]
    digest = hashlib.sha256()

    async with http.get(url, headers=bearer(BOT_TOKEN)) as resp:
        assert resp.content_length == big.size
        assert "Transfer-Encoding" not in resp.headers
        first = await resp.content.readexactly(64 * 1024)
        await asyncio.sleep(0.1)  # give a buffering server every chance to run ahead
        ahead = big.generated
        digest.update(first)
        received = len(first)
        async for chunk in resp.content.iter_chunked(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)

    # what socket buffers hold, not the file: the fake reads its source as the client reads
    assert ahead < big.size // 2
    assert (received, digest.hexdigest()) == (big.size, big.sha256())
    [download] = fake_slack.downloads(file.id)
    assert (download.bytes_sent, download.complete) == (big.size, True)


async def test_short_source_drops_the_download_midway(
    fake_slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    file = fake_slack.add_file("cut.mp3", ChunkedSource(10_000, lambda: iter([AUDIO[:4000]])))
    url = fake_slack.file_dict(file)["url_private_download"]

    async with http.get(url, headers=bearer(BOT_TOKEN)) as resp:
        assert resp.content_length == 10_000
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()

    [download] = fake_slack.downloads(file.id)
    assert (download.bytes_sent, download.complete) == (4000, False)


# ------------------------------------------------------------------ payloads and signatures


async def test_file_share_event_is_shaped_like_slacks(fake_slack: FakeSlack) -> None:
    audio = fake_slack.add_file("standup.m4a", AUDIO, duration_ms=93_000)

    envelope = fake_slack.events.file_share(GENERAL, ALICE, [audio], "please transcribe")

    assert envelope["type"] == "event_callback"
    assert (envelope["team_id"], envelope["api_app_id"]) == (TEAM_ID, fake_slack.team.app_id)
    assert envelope["event_id"].startswith("Ev") and isinstance(envelope["event_time"], int)
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID
    event = envelope["event"]
    assert (event["type"], event["subtype"], event["user"]) == ("message", "file_share", ALICE)
    assert (event["channel"], event["channel_type"], event["text"]) == (
        GENERAL,
        "channel",
        "please transcribe",
    )
    [f] = event["files"]
    assert (f["id"], f["name"], f["mimetype"], f["filetype"]) == (
        audio.id,
        "standup.m4a",
        "audio/x-m4a",
        "m4a",
    )
    assert (f["size"], f["mode"], f["user"], f["media_display_type"]) == (
        len(AUDIO),
        "hosted",
        ALICE,
        "audio",
    )
    assert (
        f["url_private_download"]
        == f"{fake_slack.base_url}files-pri/{TEAM_ID}-{audio.id}/download/standup.m4a"
    )
    [stored] = fake_slack.messages(GENERAL)
    assert stored.ts == event["ts"] == event["event_ts"]


async def test_link_mention_bot_and_own_message_events(fake_slack: FakeSlack) -> None:
    url = "https://media.example.com/podcast/ep1.mp3"

    link = fake_slack.events.link_message(GENERAL, BOB, [url], "listen:")["event"]
    mention_msg = fake_slack.events.post(GENERAL, ALICE, f"<@{BOT_USER_ID}> transcribe this")
    mention = fake_slack.events.app_mention(mention_msg)["event"]
    other_bot = fake_slack.events.bot_message(GENERAL, "Daily report")["event"]
    await fake_slack.web_client().chat_postMessage(channel=GENERAL, text="Transcript ready")
    own = fake_slack.events.message(fake_slack.bot_messages(GENERAL)[-1])["event"]

    assert link["text"] == f"listen: <{url}>"
    assert {"type": "link", "url": url} in link["blocks"][0]["elements"][0]["elements"]
    assert (mention["type"], mention["user"], mention["ts"]) == (
        "app_mention",
        ALICE,
        mention_msg.ts,
    )
    assert (other_bot["subtype"], other_bot["bot_id"]) == ("bot_message", "B0OTHERBOT")
    assert "user" not in other_bot
    assert (own["user"], own["bot_id"], own.get("subtype")) == (BOT_USER_ID, BOT_ID, None)


async def test_slash_command_shortcut_and_response_url(fake_slack: FakeSlack) -> None:
    audio = fake_slack.add_file("call.webm", AUDIO)
    msg = fake_slack.events.post(GENERAL, ALICE, files=[audio])

    form = fake_slack.events.slash_command(
        "https://x.example/a.mp3 speakers=2", channel=GENERAL, user=BOB
    )
    shortcut = fake_slack.events.message_shortcut(msg, user=BOB)
    webhook = AsyncWebhookClient(form["response_url"])
    queued = await webhook.send(text="Queued (position 1)")
    public = await webhook.send(text="Transcript ready", response_type="in_channel")
    for _ in range(3):
        await webhook.send(text="again")
    used = await webhook.send(text="one too many")

    assert form["command"] == "/transcribe" and form["text"] == "https://x.example/a.mp3 speakers=2"
    assert (form["channel_id"], form["user_id"], form["team_id"]) == (GENERAL, BOB, TEAM_ID)
    assert form["trigger_id"] and form["response_url"].startswith(f"{fake_slack.base_url}commands/")
    assert (shortcut["type"], shortcut["callback_id"], shortcut["message_ts"]) == (
        "message_action",
        "transcribe",
        msg.ts,
    )
    assert shortcut["message"]["files"][0]["id"] == audio.id
    assert shortcut["response_url"].startswith(f"{fake_slack.base_url}actions/")
    assert (queued.status_code, public.status_code, used.status_code) == (200, 200, 404)
    assert used.body == "used_url"
    assert fake_slack.ephemerals(GENERAL)[0].text == "Queued (position 1)"
    assert fake_slack.messages(GENERAL)[-1].text == "Transcript ready"
    assert [p.payload.get("text") for p in fake_slack.response_posts()][:2] == [
        "Queued (position 1)",
        "Transcript ready",
    ]


async def test_signatures_verify_with_slack_sdk(fake_slack: FakeSlack) -> None:
    envelope = fake_slack.events.link_message(GENERAL, ALICE, ["https://x.example/a.mp3"])
    request = fake_slack.events.http_event(envelope)
    verifier = SignatureVerifier(SIGNING_SECRET)
    now = int(time.time())

    assert verifier.is_valid_request(request.body, request.headers)
    assert verifier.is_valid_request(request.body, sign(request.body, SIGNING_SECRET, now))
    assert not verifier.is_valid_request(
        request.body, sign(request.body, SIGNING_SECRET, now - 301)
    )
    assert not verifier.is_valid_request(request.body, sign(request.body, "wrong-secret", now))
    assert not verifier.is_valid_request(request.body + b" ", request.headers)
    retried = fake_slack.events.http_event(envelope, retry_num=1)
    assert (retried.headers["X-Slack-Retry-Num"], retried.headers["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )


async def test_send_to_app_gives_up_at_the_deadline_and_retries_carry_headers(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.app_deadline = 0.2
    release = asyncio.Event()
    seen: list[str | None] = []

    async def slow_app(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Slack-Retry-Num"))
        if len(seen) == 1:
            await release.wait()
        return web.Response()

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slow_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    envelope = fake_slack.events.link_message(GENERAL, ALICE, ["https://x.example/a.mp3"])
    try:
        first = await fake_slack.send_to_app(url, fake_slack.events.http_event(envelope))
        retry = await fake_slack.send_to_app(
            url, fake_slack.events.http_event(envelope, retry_num=1)
        )
    finally:
        release.set()
        await runner.cleanup()

    assert (first.timed_out, retry.status) == (True, 200)
    assert seen == [None, "1"]


async def test_workspaces_are_isolated(fake_slack: FakeSlack) -> None:
    other = fake_slack.add_team("T0OTHER001", "Other Co", "other")
    lobby = fake_slack.add_channel("lobby", team_id=other.id, members={other.bot_user_id})
    token = fake_slack.add_token(team_id=other.id)
    client = fake_slack.web_client(token)

    who = await client.auth_test()
    await client.chat_postMessage(channel=lobby.id, text="hello other")
    across = await api_error(client.chat_postMessage(channel=GENERAL, text="x"))
    envelope = fake_slack.events_for(other.id).envelope({"type": "app_home_opened"})

    assert (who["team_id"], who["user_id"], who["bot_id"]) == (
        other.id,
        other.bot_user_id,
        other.bot_id,
    )
    assert [m.text for m in fake_slack.messages(lobby.id)] == ["hello other"]
    assert across.response["error"] == "channel_not_found"
    assert (envelope["team_id"], envelope["authorizations"][0]["user_id"]) == (
        other.id,
        other.bot_user_id,
    )


# ------------------------------------------------------------------ Socket Mode


def socket_client(fake: FakeSlack, **kwargs: object) -> SocketModeClient:
    return SocketModeClient(app_token=APP_TOKEN, web_client=fake.web_client(None), **kwargs)  # type: ignore[arg-type]


async def test_socket_mode_hello_envelope_and_ack(fake_slack: FakeSlack) -> None:
    raw: list[dict[str, Any]] = []
    requests: list[SocketModeRequest] = []

    async def on_message(
        client: AsyncBaseSocketModeClient, message: dict[str, Any], _: str | None
    ) -> None:
        raw.append(message)

    async def on_request(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        requests.append(req)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client = socket_client(fake_slack, auto_reconnect_enabled=False)
    client.message_listeners.append(on_message)
    client.socket_mode_request_listeners.append(on_request)
    try:
        await client.connect()
        await fake_slack.socket.wait_for_connections(1)
        envelope = fake_slack.events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("a.mp3", AUDIO)]
        )
        delivery = await fake_slack.socket.deliver_event(envelope)
        ack = await delivery.acknowledged()
    finally:
        await client.close()

    assert (
        raw[0]["type"] == "hello" and raw[0]["connection_info"]["app_id"] == fake_slack.team.app_id
    )
    [req] = requests
    assert (req.type, req.envelope_id, req.payload) == (
        "events_api",
        delivery.envelope_id,
        envelope,
    )
    assert (req.retry_attempt, req.retry_reason, req.accepts_response_payload) == (0, "", False)
    assert (ack.envelope_id, ack.payload) == (delivery.envelope_id, None)
    assert [c.token for c in fake_slack.calls("apps.connections.open")] == [APP_TOKEN]


async def test_socket_mode_redelivers_until_acked(fake_slack: FakeSlack) -> None:
    fake_slack.socket.ack_timeout = 0.2
    received: asyncio.Queue[SocketModeRequest] = asyncio.Queue()

    async def ack_only_retries(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        received.put_nowait(req)
        if req.retry_attempt:
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client = socket_client(fake_slack, auto_reconnect_enabled=False)
    client.socket_mode_request_listeners.append(ack_only_retries)
    try:
        await client.connect()
        envelope = fake_slack.events.link_message(GENERAL, ALICE, ["https://x.example/a.mp3"])
        delivery = await fake_slack.socket.deliver_event(envelope)  # queued until connected
        ack = await delivery.acknowledged()
        await fake_slack.socket.redeliver(delivery, reason="on_demand")
        async with asyncio.timeout(5):
            requests = [await received.get() for _ in range(3)]
    finally:
        await client.close()

    attempts = [(r.retry_attempt, r.retry_reason) for r in requests]
    assert attempts == [(0, ""), (1, "timeout"), (2, "on_demand")]
    assert len({r.envelope_id for r in requests}) == 3
    assert {r.payload["event_id"] for r in requests} == {envelope["event_id"]}
    assert ack.envelope_id == requests[1].envelope_id == delivery.envelopes[1].envelope_id


async def test_socket_mode_disconnect_makes_the_client_reconnect(fake_slack: FakeSlack) -> None:
    requests: list[SocketModeRequest] = []

    async def on_request(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        requests.append(req)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client = socket_client(fake_slack)
    client.socket_mode_request_listeners.append(on_request)
    try:
        await client.connect()
        await fake_slack.socket.wait_for_connections(1)
        await fake_slack.socket.disconnect("refresh_requested")
        await fake_slack.socket.wait_for_connections(2)
        delivery = await fake_slack.socket.deliver_event(
            fake_slack.events.bot_message(GENERAL, "x")
        )
        ack = await delivery.acknowledged()
    finally:
        await client.close()

    assert ack.connection == 2
    assert len(fake_slack.calls("apps.connections.open")) == 2


async def test_socket_mode_needs_an_app_token_with_connections_write(fake_slack: FakeSlack) -> None:
    weak = fake_slack.add_token("xapp-1-A0APP00001-2-weak", scopes=set())

    bot = await api_error(fake_slack.web_client(None).apps_connections_open(app_token=BOT_TOKEN))
    scopeless = await api_error(fake_slack.web_client(None).apps_connections_open(app_token=weak))

    assert bot.response["error"] == "not_allowed_token_type"
    assert (scopeless.response["error"], scopeless.response["needed"]) == (
        "missing_scope",
        "connections:write",
    )


# ------------------------------------------------------------------ through slack-bolt


async def test_bolt_socket_mode_app_acks_commands_and_ignores_its_own_messages(
    fake_slack: FakeSlack,
) -> None:
    app = AsyncApp(client=fake_slack.web_client(), signing_secret=SIGNING_SECRET)

    @app.command("/transcribe")
    async def transcribe(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack(text="Queued (position 1)")
        await respond(text="Transcript ready", response_type="in_channel")

    @app.event("message")
    async def message(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")

    handler = AsyncSocketModeHandler(app, APP_TOKEN)
    try:
        await handler.connect_async()
        form = fake_slack.events.slash_command(
            "https://x.example/a.mp3", channel=GENERAL, user=ALICE
        )
        command = await fake_slack.socket.deliver_command(form)
        command_ack = await command.acknowledged()
        await fake_slack.until(fake_slack.response_posts)

        await fake_slack.web_client().chat_postMessage(channel=GENERAL, text="bot says")
        own = await fake_slack.socket.deliver_event(
            fake_slack.events.message(fake_slack.bot_messages(GENERAL)[-1])
        )
        human = fake_slack.events.file_share(GENERAL, ALICE, [fake_slack.add_file("a.mp3", AUDIO)])
        theirs = await fake_slack.socket.deliver_event(human)
        await own.acknowledged()
        await theirs.acknowledged()
        await fake_slack.until(lambda: fake_slack.reactions(GENERAL, human["event"]["ts"]))
    finally:
        await handler.close_async()

    assert command_ack.payload == {"text": "Queued (position 1)"}
    texts = [m.text for m in fake_slack.bot_messages(GENERAL)]
    assert texts == ["Transcript ready", "bot says"]  # the first via the response_url
    [reacted] = fake_slack.calls("reactions.add")  # the bot's own message was ignored
    assert reacted.params["timestamp"] == human["event"]["ts"]


async def test_bolt_http_mode_verifies_signatures_and_replies_in_thread(
    fake_slack: FakeSlack,
) -> None:
    app = AsyncApp(client=fake_slack.web_client(), signing_secret=SIGNING_SECRET)

    @app.event("message")
    async def message(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text="On it", thread_ts=event["ts"])

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        envelope = fake_slack.events.file_share(
            GENERAL, ALICE, [fake_slack.add_file("a.mp3", AUDIO)]
        )
        parent_ts = envelope["event"]["ts"]
        stale = await fake_slack.send_to_app(
            url, fake_slack.events.http_event(envelope, timestamp=int(time.time()) - 600)
        )
        good = fake_slack.events.http_event(envelope)
        forged = await fake_slack.send_to_app(url, SignedRequest(good.body + b" ", good.headers))
        accepted = await fake_slack.send_to_app(url, good)
        await fake_slack.until(lambda: fake_slack.bot_messages(GENERAL, thread_ts=parent_ts))
    finally:
        await runner.cleanup()

    assert (stale.status, forged.status, accepted.status) == (401, 401, 200)
    assert accepted.elapsed < 3.0
    [reply] = fake_slack.bot_messages(GENERAL, thread_ts=parent_ts)
    assert reply.text == "On it"
    assert [c.method for c in fake_slack.calls()] == ["auth.test", "chat.postMessage"]
