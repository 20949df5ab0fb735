"""The fakes' new surfaces are as strict as the platforms: Slack's views.open (trigger ids
used once, within 3 s; views within Block Kit's limits), conversations.members, actions
blocks, clicks on what a message shows and submissions of opened views; Discord's
components, modals and their interactions, and List Guild Members behind the Server
Members intent. Driven over real sockets with slack_sdk and plain HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.discord import FakeDiscord, Intent
from tests.fakes.slack import (
    ALICE,
    BOT_TOKEN,
    GENERAL,
    HIDDEN,
    FakeSlack,
)
from tests.fakes.slack_blocks import validate_blocks

MODAL = {
    "type": "modal",
    "callback_id": "x",
    "title": {"type": "plain_text", "text": "Rename speakers"},
    "submit": {"type": "plain_text", "text": "Rename"},
    "blocks": [
        {
            "type": "input",
            "block_id": "speaker_0",
            "optional": True,
            "label": {"type": "plain_text", "text": "Speaker A"},
            "element": {"type": "plain_text_input", "action_id": "name", "max_length": 35},
        }
    ],
}


async def slack_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return str(caught.value.response["error"])


# -- Slack -------------------------------------------------------------------------------


async def test_views_open_takes_each_trigger_id_once_and_in_time(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    form = fake_slack.events.slash_command("", channel=GENERAL, user=ALICE)
    opened = await client.views_open(trigger_id=form["trigger_id"], view=MODAL)
    assert opened["view"]["id"] in fake_slack.state.views
    assert await slack_error(client.views_open(trigger_id=form["trigger_id"], view=MODAL)) == (
        "expired_trigger_id"
    )
    assert await slack_error(client.views_open(trigger_id="1.2.nope", view=MODAL)) == (
        "invalid_trigger_id"
    )
    fake_slack.state.trigger_lifetime = 0.0
    late = fake_slack.events.slash_command("", channel=GENERAL, user=ALICE)
    assert await slack_error(client.views_open(trigger_id=late["trigger_id"], view=MODAL)) == (
        "expired_trigger_id"
    )


async def test_views_open_refuses_views_over_block_kits_limits(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    bad = [
        {**MODAL, "title": {"type": "plain_text", "text": "A title of twenty-five ch"}},
        {**MODAL, "submit": None} | {"submit": {"type": "plain_text", "text": ""}},
        {key: value for key, value in MODAL.items() if key != "submit"},
        {**MODAL, "private_metadata": "x" * 3001},
        {**MODAL, "type": "home"},
    ]
    for view in bad:
        form = fake_slack.events.slash_command("", channel=GENERAL, user=ALICE)
        assert await slack_error(client.views_open(trigger_id=form["trigger_id"], view=view)) == (
            "invalid_arguments"
        )


async def test_conversations_members_needs_its_scope_and_sight_of_the_channel(
    fake_slack: FakeSlack,
) -> None:
    client = fake_slack.web_client()
    page = await client.conversations_members(channel=GENERAL)
    assert ALICE in page["members"]
    info = await client.conversations_info(channel=GENERAL, include_num_members=True)
    assert info["channel"]["num_members"] == len(page["members"])
    assert await slack_error(client.conversations_members(channel=HIDDEN)) == "channel_not_found"
    fake_slack.set_scopes(BOT_TOKEN, {"chat:write"})
    assert await slack_error(client.conversations_members(channel=GENERAL)) == "missing_scope"


def test_actions_blocks_within_slacks_limits() -> None:
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Go"}}
    select = {
        "type": "static_select",
        "action_id": "b",
        "option_groups": [
            {
                "label": {"type": "plain_text", "text": "Language"},
                "options": [{"text": {"type": "plain_text", "text": "French"}, "value": "lang:fr"}],
            }
        ],
    }
    assert validate_blocks([{"type": "actions", "elements": [button, select]}]) == []
    cases = [
        [{**button, "text": {"type": "plain_text", "text": "x" * 76}}],
        [button, {**button}],  # duplicate action_id
        [
            {
                **select,
                "option_groups": [
                    {
                        **select["option_groups"][0],
                        "options": [
                            {"text": {"type": "plain_text", "text": "x"}, "value": "v" * 151}
                        ],
                    }
                ],
            }
        ],
        [{**select, "options": select["option_groups"][0]["options"]}],  # both kinds
        [{"type": "datepicker", "action_id": "c"}],
    ]
    for elements in cases:
        assert validate_blocks([{"type": "actions", "elements": elements}]) != [], elements


async def test_only_what_a_message_shows_can_be_clicked_or_submitted(
    fake_slack: FakeSlack,
) -> None:
    message = fake_slack.events.post(GENERAL, ALICE, "no buttons here")
    with pytest.raises(ValueError, match="shows no element"):
        fake_slack.events.block_action(message, user=ALICE, action_id="threadscribe_rename")
    with pytest.raises(ValueError, match="no view"):
        fake_slack.events.view_submission("V404", user=ALICE, values={})
    client = fake_slack.web_client()
    form = fake_slack.events.slash_command("", channel=GENERAL, user=ALICE)
    view_id = (await client.views_open(trigger_id=form["trigger_id"], view=MODAL))["view"]["id"]
    with pytest.raises(ValueError, match="takes 35 characters"):
        fake_slack.events.view_submission(view_id, user=ALICE, values={"speaker_0": "x" * 36})
    with pytest.raises(ValueError, match="no inputs"):
        fake_slack.events.view_submission(view_id, user=ALICE, values={"other": "x"})
    payload = fake_slack.events.view_submission(view_id, user=ALICE, values={"speaker_0": "Ada"})
    assert payload["view"]["state"]["values"] == {
        "speaker_0": {"name": {"type": "plain_text_input", "value": "Ada"}}
    }


# -- Discord -----------------------------------------------------------------------------


async def rest(fake: FakeDiscord, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.api_url + path, json=body, headers=headers) as response,
    ):
        body = await response.json() if response.status != 204 else None
        return response.status, body


async def test_components_within_discords_limits(fake_discord: FakeDiscord) -> None:
    channel = f"/channels/{fake_discord.world.general.id}/messages"

    def row(*buttons: dict[str, Any]) -> dict[str, Any]:
        return {"type": 1, "components": list(buttons)}

    ok = {"type": 2, "style": 1, "label": "Rename", "custom_id": "threadscribe:rename:x"}
    status, _ = await rest(fake_discord, "POST", channel, {"content": "x", "components": [row(ok)]})
    assert status == 200
    bad = [
        [row({**ok, "custom_id": "x" * 101})],
        [row(ok, {**ok})],  # the same custom_id twice
        [row(*({**ok, "custom_id": f"b{i}"} for i in range(6)))],
        [row({**ok, "label": "x" * 81})],
        [row(ok)] * 6,
    ]
    for components in bad:
        status, body = await rest(
            fake_discord, "POST", channel, {"content": "x", "components": components}
        )
        assert status == 400 and body["code"] == 50035, body


async def test_modals_and_component_answers_follow_discords_rules(
    fake_discord: FakeDiscord,
) -> None:
    ix = await fake_discord.dispatch_slash_command(
        "transcribe", {"url": "https://example.com/a.mp3"}
    )
    callback = f"/interactions/{ix.id}/{ix.token}/callback"
    modal = {
        "custom_id": "m",
        "title": "x" * 46,
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "v", "label": "L", "style": 1}]}
        ],
    }
    status, body = await rest(fake_discord, "POST", callback, {"type": 9, "data": modal})
    assert status == 400 and "title" in body["errors"]["data"]
    status, body = await rest(fake_discord, "POST", callback, {"type": 6})
    assert status == 400  # a command has no message to update
    status, _ = await rest(
        fake_discord, "POST", callback, {"type": 9, "data": {**modal, "title": "Ok"}}
    )
    assert status == 204 and ix.modal is not None
    submitted = await fake_discord.submit_modal(ix, {"v": "hello"})
    answer = f"/interactions/{submitted.id}/{submitted.token}/callback"
    status, body = await rest(
        fake_discord, "POST", answer, {"type": 9, "data": {**modal, "title": "Ok"}}
    )
    assert status == 400 and body["code"] == 40067  # no modal in answer to a modal
    with pytest.raises(ValueError, match="takes 4000 characters"):
        await fake_discord.submit_modal(ix, {"v": "x" * 4001})
    message = {"id": str(ix.original_id or 0)}
    with pytest.raises(ValueError):
        await fake_discord.dispatch_component(message, "threadscribe:rename:nope")


async def test_the_member_list_needs_the_server_members_intent(fake_discord: FakeDiscord) -> None:
    path = f"/guilds/{fake_discord.world.guild.id}/members?limit=5"
    status, body = await rest(fake_discord, "GET", path)
    assert (status, body["code"]) == (403, 50001)
    fake_discord.privileged_intents |= Intent.GUILD_MEMBERS
    status, body = await rest(fake_discord, "GET", path)
    assert status == 200 and {m["user"]["username"] for m in body} >= {"alice", "morgan"}
