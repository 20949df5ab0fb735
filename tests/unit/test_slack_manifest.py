"""slack-manifest.yml grants exactly what the code uses and subscribes exactly what it
listens to; and the small pieces of translation the triggers are made of. (That the app
answers each subscribed event: tests/component/slack/test_http.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from adapters.slack import BOT_SCOPES
from adapters.slack.app import SHORTCUT
from adapters.slack.commands import COMMAND
from adapters.slack.controls import FORGET_SHORTCUT, SETTINGS_COMMAND
from adapters.slack.incoming import SLACK_HOSTS, SlackMessage, attachment, unescape
from bot.chat import JobOptions, Platform
from bot.errors import OptionsError
from bot.intake import classify_links, find_links, parse_request
from tests.fakes.slack import (
    ALICE,
    BOT_ID,
    BOT_USER_ID,
)
from tests.helpers import REPO

MANIFEST = REPO / "slack-manifest.yml"
#: Slack's scope for each event the manifest may subscribe to (None: no scope needed).
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "app_uninstalled": None,
    "tokens_revoked": None,
    "app_home_opened": None,
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def test_scopes_are_exactly_the_codes(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]

    assert sorted(scopes) == sorted(BOT_SCOPES) and len(set(scopes)) == len(scopes)
    assert "user" not in manifest["oauth_config"]["scopes"]


def test_every_event_has_its_scope_and_the_command_and_shortcut_match(
    manifest: dict[str, Any],
) -> None:
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    features = manifest["features"]

    assert set(events) == set(EVENT_SCOPES)
    assert {EVENT_SCOPES[e] for e in events} - {None} <= set(BOT_SCOPES)
    assert [c["command"] for c in features["slash_commands"]] == [COMMAND, SETTINGS_COMMAND]
    shortcuts = [(s["type"], s["callback_id"]) for s in features["shortcuts"]]
    assert shortcuts == [("message", SHORTCUT), ("message", FORGET_SHORTCUT)]
    assert features["app_home"]["home_tab_enabled"] is True
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True and settings["interactivity"]["is_enabled"]
    assert features["app_home"]["messages_tab_enabled"] is True  # files sent to the bot


# -- translation -------------------------------------------------------------------------


def test_links_in_slack_text_are_unwrapped_and_decoded() -> None:
    text = "see <https://a.example/x.mp3?a=1&amp;b=2|the call> and <https://b.example/talk>"

    assert find_links(unescape(text)) == [
        "https://a.example/x.mp3?a=1&b=2",
        "https://b.example/talk",
    ]


def test_links_worth_probing() -> None:
    media, unclear = classify_links(
        [
            "https://a.example/call.M4A",
            "https://acme.slack.com/files/U1/F1/call.mp3",
            "https://a.example/slides.pdf",
            "https://a.example/watch?v=42",
            "https://a.example/stream/",
        ],
        SLACK_HOSTS,
    )

    assert media == ["https://a.example/call.M4A"]
    assert unclear == ["https://a.example/watch?v=42", "https://a.example/stream/"]


def test_a_file_reference_holds_where_the_file_is_never_a_token() -> None:
    file = {
        "id": "F1",
        "name": "a.mp3",
        "mimetype": "audio/mpeg",
        "size": 10,
        "url_private_download": "https://files.slack.com/files-pri/T-F1/download/a.mp3",
        "url_private": "https://files.slack.com/files-pri/T-F1/a.mp3",
        "permalink_public": "https://slack-files.com/T-F1-x",
        "duration_ms": 1500,
        "thumb_video": "https://files.slack.com/x.jpg",
    }

    found = attachment(file)

    assert dict(found.ref) == {
        "id": "F1",
        "name": "a.mp3",
        "mimetype": "audio/mpeg",
        "size": 10,
        "url": "https://files.slack.com/files-pri/T-F1/download/a.mp3",
        "duration_ms": 1500,
    }
    assert (found.name, found.mimetype, found.size, found.duration) == (
        "a.mp3",
        "audio/mpeg",
        10,
        1.5,
    )


def test_who_counts_as_a_person() -> None:
    def message(**fields: Any) -> SlackMessage:
        return SlackMessage.of({"ts": "1.0", **fields}, team="T", channel="C")

    assert message(user=ALICE).from_person(BOT_USER_ID, BOT_ID)
    assert not message(user=BOT_USER_ID).from_person(BOT_USER_ID, BOT_ID)
    assert not message(user=BOT_USER_ID, bot_id=BOT_ID).from_person(BOT_USER_ID, BOT_ID)
    assert not message(bot_id="B0OTHER", subtype="bot_message").from_person(BOT_USER_ID, BOT_ID)


def test_a_reply_is_answered_in_its_thread_and_a_parent_under_itself() -> None:
    reply = SlackMessage.of({"ts": "2.0", "thread_ts": "1.0"}, team="T", channel="C")
    parent = SlackMessage.of({"ts": "1.0", "thread_ts": "1.0"}, team="T", channel="C")

    in_reply = reply.trigger([], requester=ALICE, explicit=True)
    in_parent = parent.trigger([], requester=ALICE, explicit=True)

    assert (in_reply.thread, in_reply.message) == ("1.0", "2.0")
    assert (in_parent.thread, in_parent.message) == (None, "1.0")
    assert in_reply.own_hosts == SLACK_HOSTS and in_reply.platform is Platform.SLACK


def test_options_beside_a_mention() -> None:
    request = parse_request("please do this one speakers=3 thanks VTT", words=True)
    assert request.options == JobOptions(speakers_expected=3, formats=("vtt",))
    assert request.url is None
    assert parse_request("just a chat", words=True).options == JobOptions()
    with pytest.raises(OptionsError):
        parse_request("lang=english!", words=True)
