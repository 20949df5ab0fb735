"""The fakes' new surfaces, driven by the real slack_sdk and discord.py, as strict as the
services: Slack's views.publish (Block Kit's limits, hash, unknown people), files.delete
(only the uploader's), users.conversations (scopes, membership), users.list, posting to a
member id (the app's DM); Discord deleting another's message (Manage Messages)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.discord import FakeDiscord, run_client
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    BOT_USER_ID,
    DANA,
    GENERAL,
    HIDDEN,
    SECRET,
    FakeSlack,
)
from tests.fakes.slack_state import DEFAULT_BOT_SCOPES

# isort: split
import discord

pytestmark = pytest.mark.timeout(20)


async def slack_error(call: Awaitable[object]) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    data: dict[str, Any] = caught.value.response.data  # type: ignore[assignment]
    return data


def home(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "home", "blocks": list(blocks)}


def section(text: str, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if accessory:
        block["accessory"] = accessory
    return block


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


async def test_views_publish_takes_a_valid_home_view_and_records_it(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    select = {
        "type": "static_select",
        "action_id": "pick",
        "options": [option("auto", "auto"), option("off", "off")],
        "initial_option": option("off", "off"),
    }
    answer = await client.views_publish(user_id=ALICE, view=home(section("hi", select)))
    assert answer["view"]["type"] == "home" and answer["view"]["id"].startswith("V")
    published = fake_slack.home(ALICE)
    assert published is not None and published.view["blocks"][0]["accessory"] == select
    again = await client.views_publish(
        user_id=ALICE, view=home(section("again")), hash=answer["view"]["hash"]
    )
    assert again["view"]["id"] == answer["view"]["id"]  # the same Home, updated
    stale = await slack_error(
        client.views_publish(user_id=ALICE, view=home(section("x")), hash=answer["view"]["hash"])
    )
    assert stale["error"] == "hash_conflict"


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        (home(*[section(f"{n}") for n in range(101)]), "no more than 100 items allowed"),
        (
            home(
                section("x", {"type": "button", "text": {"type": "plain_text", "text": "y" * 76}})
            ),
            "must be less than 76 characters [json-pointer:/view/blocks/0/accessory/text/text]",
        ),
        (
            home(
                section(
                    "x",
                    {
                        "type": "static_select",
                        "options": [option("a", "a")],
                        "initial_option": option("b", "b"),
                    },
                )
            ),
            "must match one of the options",
        ),
        (
            home(section("x", {"type": "static_select", "options": [option("a" * 80, "a")]})),
            "must be less than 76 characters",
        ),
        ({"type": "modal", "blocks": []}, "must be home [json-pointer:/view/type]"),
        (home(section("y" * 3001)), "must be less than 3001 characters"),
        (home() | {"private_metadata": "m" * 3001}, "[json-pointer:/view/private_metadata]"),
    ],
)
async def test_views_publish_refuses_what_slack_refuses(
    fake_slack: FakeSlack, view: dict[str, Any], problem: str
) -> None:
    error = await slack_error(fake_slack.web_client().views_publish(user_id=ALICE, view=view))
    assert error["error"] == "invalid_arguments"
    assert any(problem in m for m in error["response_metadata"]["messages"])
    assert fake_slack.home(ALICE) is None


async def test_views_publish_to_someone_not_in_the_workspace(fake_slack: FakeSlack) -> None:
    error = await slack_error(
        fake_slack.web_client().views_publish(user_id="U0NOBODY", view=home())
    )
    assert error["error"] == "user_not_found"


async def test_a_bot_deletes_only_the_files_it_uploaded(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    theirs = fake_slack.add_file("alice.mp3", b"ID3 audio")
    assert (await slack_error(client.files_delete(file=theirs.id)))["error"] == "cant_delete_file"
    await client.files_upload_v2(content=b"hello", filename="t.txt", channel=GENERAL)
    [upload] = fake_slack.uploaded_files()
    [shared] = [m for m in fake_slack.messages(GENERAL) if upload.file_id in m.files]
    await client.files_delete(file=upload.file_id)
    assert (await slack_error(client.files_delete(file=upload.file_id)))["error"] == "file_deleted"
    assert fake_slack.messages(GENERAL) == [] and shared.deleted  # only the file was in it
    assert (await slack_error(client.files_delete(file="F0NONE")))["error"] == "file_not_found"


async def test_users_conversations_lists_the_callers_channels_within_its_scopes(
    fake_slack: FakeSlack,
) -> None:
    client = fake_slack.web_client()
    found = await client.users_conversations(types="public_channel,private_channel", limit=1)
    ids = [c["id"] for c in found["channels"]]
    cursor = found["response_metadata"]["next_cursor"]
    assert cursor and len(ids) == 1
    rest = await client.users_conversations(types="public_channel,private_channel", cursor=cursor)
    ids += [c["id"] for c in rest["channels"]]
    assert ids == [GENERAL, SECRET]  # not RANDOM (not a member), not HIDDEN (invisible)
    assert HIDDEN not in ids
    fake_slack.set_scopes(BOT_TOKEN, DEFAULT_BOT_SCOPES - {"groups:read"})
    public = await client.users_conversations(types="public_channel,private_channel")
    assert [c["id"] for c in public["channels"]] == [GENERAL]


async def test_users_list_and_posting_to_a_member_id(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    members = (await client.users_list(limit=200))["members"]
    assert {m["id"] for m in members if m["is_admin"]} == {DANA, "U0OLGA0001"}
    posted = await client.chat_postMessage(channel=DANA, text="the budget is 80 % used")
    dm = fake_slack.team.channels[posted["channel"]]
    assert dm.is_im and dm.members == {DANA, BOT_USER_ID} and posted["channel"].startswith("D")
    again = await client.chat_postMessage(channel=DANA, text="and now 100 %")
    assert again["channel"] == posted["channel"]  # the same DM
    bot = await slack_error(client.chat_postMessage(channel=BOT_USER_ID, text="x"))
    assert bot["error"] == "channel_not_found"


async def test_discord_deleting_anothers_message_needs_manage_messages(
    fake_discord: FakeDiscord,
) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.05)
    async with run_client(client, fake_discord.token):
        pending = client.wait_for("message", timeout=5)
        await fake_discord.dispatch_message(content="hello")
        theirs = await pending
        with pytest.raises(discord.Forbidden) as refused:
            await theirs.delete()
        assert refused.value.code == 50013
        mine = await theirs.channel.send("mine")
        await mine.delete()
    assert [m["content"] for m in fake_discord.messages()] == ["hello"]
