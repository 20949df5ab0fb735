"""What Slack sends to an app: Events API envelopes, slash commands, message shortcuts, and
the v0 request signature that goes with them in HTTP mode.

Messages people post are stored in the fake first (`SlackEvents.post`), so an event always
describes a message that exists: the bot can thread under it, react to it, read it back.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.fakes.slack_state import (
    JSON,
    Message,
    OpenedView,
    ResponseUrl,
    SlackFile,
    SlackState,
    Team,
    TriggerId,
)

VERIFICATION_TOKEN = "fake-verification-token"  # the deprecated token Slack still sends


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Signature and X-Slack-Request-Timestamp for `body`, as Slack computes them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


@dataclass(frozen=True)
class SignedRequest:
    """A body and the headers Slack would send it with to the app's request URL."""

    body: bytes
    headers: dict[str, str]


def signed_request(
    body: bytes | str,
    secret: str,
    *,
    content_type: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> SignedRequest:
    raw = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type, **sign(raw, secret, timestamp)}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return SignedRequest(raw, headers)


def rich_text(text: str, urls: Sequence[str] = ()) -> list[JSON]:
    """The rich_text block Slack's clients attach to what a person types."""
    elements: list[JSON] = [{"type": "text", "text": text}] if text else []
    for url in urls:
        if elements:
            elements.append({"type": "text", "text": " "})
        elements.append({"type": "link", "url": url})
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


class SlackEvents:
    """Builders bound to one workspace of the fake."""

    def __init__(self, state: SlackState, team_id: str, signing_secret: str) -> None:
        self.state = state
        self.team_id = team_id
        self.signing_secret = signing_secret
        self._serial = itertools.count(1)

    @property
    def _team(self) -> Team:
        return self.state.team(self.team_id)

    # ---------------------------------------------------------------- what people post

    def post(
        self,
        channel: str,
        user: str,
        text: str = "",
        *,
        files: Sequence[SlackFile] = (),
        thread_ts: str | None = None,
        urls: Sequence[str] = (),
    ) -> Message:
        """Store a message a person posted; `urls` are appended the way Slack formats links."""
        ch = self.state.find_channel(channel)
        wire_text = " ".join([text, *(f"<{u}>" for u in urls)]).strip()
        msg = Message(
            channel=ch.id,
            ts=self.state.next_ts(),
            team=self.team_id,
            text=wire_text,
            user=user,
            subtype="file_share" if files else None,
            blocks=rich_text(text, urls) if (text or urls) else None,
            thread_ts=thread_ts,
            files=[f.id for f in files],
        )
        for f in files:
            if ch.id not in f.channels:
                f.channels.append(ch.id)
        if thread_ts:
            parent = self.state.message(ch, thread_ts)
            if parent is not None:
                parent.thread_ts = parent.ts
        ch.messages.append(msg)
        return msg

    # ---------------------------------------------------------------- Events API

    def envelope(self, event: JSON, *, event_id: str | None = None) -> JSON:
        """The event_callback wrapper: what arrives at /slack/events or in a socket payload."""
        team = self._team
        event_time = int(float(event.get("event_ts") or time.time()))
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team.id,
            "context_team_id": team.id,
            "context_enterprise_id": None,
            "api_app_id": team.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._serial):010d}",
            "event_time": event_time,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team.id,
                    "user_id": team.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }

    def _message_event(self, msg: Message) -> JSON:
        ch = self.state.find_channel(msg.channel)
        event = {
            **self.state.message_dict(msg),
            "channel": ch.id,
            "event_ts": msg.ts,
            "channel_type": ch.channel_type,
        }
        if msg.user and not msg.bot_id:
            event["client_msg_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ch.id}/{msg.ts}"))
        return event

    def message(self, msg: Message, *, event_id: str | None = None) -> JSON:
        """The `message` event for a stored message, whoever posted it (the bot included)."""
        return self.envelope(self._message_event(msg), event_id=event_id)

    def app_mention(self, msg: Message, *, event_id: str | None = None) -> JSON:
        """The `app_mention` event for a stored message (Slack sends it beside `message`)."""
        event = self._message_event(msg)
        event["type"] = "app_mention"
        event.pop("subtype", None)
        event.pop("channel_type", None)
        return self.envelope(event, event_id=event_id)

    def file_share(
        self,
        channel: str,
        user: str,
        files: Sequence[SlackFile],
        text: str = "",
        *,
        thread_ts: str | None = None,
    ) -> JSON:
        """A person shares files: post them, and return the `file_share` message event."""
        return self.message(self.post(channel, user, text, files=files, thread_ts=thread_ts))

    def link_message(self, channel: str, user: str, urls: Sequence[str], text: str = "") -> JSON:
        return self.message(self.post(channel, user, text, urls=urls))

    def bot_message(
        self, channel: str, text: str, *, bot_id: str = "B0OTHERBOT", username: str = "Zapier"
    ) -> JSON:
        """A message from another integration (subtype bot_message)."""
        msg = Message(
            channel=channel,
            ts=self.state.next_ts(),
            team=self.team_id,
            text=text,
            bot_id=bot_id,
            subtype="bot_message",
        )
        self.state.find_channel(channel).messages.append(msg)
        event = self._message_event(msg)
        event.pop("bot_profile", None)
        event.pop("app_id", None)
        event["username"] = username
        return self.envelope(event)

    # ---------------------------------------------------------------- commands, shortcuts

    def _response_url(self, kind: str, channel: str, user: str) -> str:
        path = f"/{kind}/{self.team_id}/{next(self._serial)}/{uuid.uuid4().hex[:24]}"
        url = self.state.base_url.rstrip("/") + path
        self.state.response_urls[path] = ResponseUrl(url, self.team_id, channel, user)
        return url

    def _trigger_id(self, user: str) -> str:
        trigger_id = f"{int(time.time())}.{next(self._serial)}.{uuid.uuid4().hex}"
        self.state.triggers[trigger_id] = TriggerId(self.team_id, user)
        return trigger_id

    def slash_command(
        self, text: str = "", *, channel: str, user: str, command: str = "/transcribe"
    ) -> dict[str, str]:
        """The form fields of a slash command (the socket payload is the same dict)."""
        team = self._team
        ch = self.state.find_channel(channel)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team.id,
            "team_domain": team.domain,
            "channel_id": ch.id,
            "channel_name": ch.name,
            "user_id": user,
            "user_name": team.users[user].name if user in team.users else user,
            "command": command,
            "text": text,
            "api_app_id": team.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands", ch.id, user),
            "trigger_id": self._trigger_id(user),
        }

    def message_shortcut(self, msg: Message, *, user: str, callback_id: str = "transcribe") -> JSON:
        """A message shortcut ("message_action") invoked by `user` on a stored message."""
        team = self._team
        ch = self.state.find_channel(msg.channel)
        name = team.users[user].name if user in team.users else user
        return {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": f"{time.time():.6f}",
            "team": {"id": team.id, "domain": team.domain},
            "user": {"id": user, "username": name, "team_id": team.id, "name": name},
            "channel": {"id": ch.id, "name": ch.name},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger_id(user),
            "response_url": self._response_url("actions", ch.id, user),
            "message_ts": msg.ts,
            "message": self.state.message_dict(msg),
        }

    # ---------------------------------------------------------------- interactivity

    def block_action(
        self, msg: Message, *, user: str, action_id: str, option: str | None = None
    ) -> JSON:
        """`user` clicks the element `action_id` of a message the bot posted: a button,
        or a static select's option whose value is `option`. Only what the message shows
        can be clicked (a ValueError otherwise, as no client could send it)."""
        team = self._team
        ch = self.state.find_channel(msg.channel)
        block, element = _element(msg, action_id)
        action: JSON = {
            "action_id": action_id,
            "block_id": block.get("block_id") or "",
            "type": element["type"],
            "action_ts": f"{time.time():.6f}",
        }
        if element["type"] == "button":
            action["text"] = element["text"]
            if "value" in element:
                action["value"] = element["value"]
        elif element["type"] == "static_select":
            options = list(element.get("options") or ())
            for group in element.get("option_groups") or ():
                options += group["options"]
            chosen = next((o for o in options if o["value"] == option), None)
            if chosen is None:
                raise ValueError(f"{action_id} offers no option {option!r}")
            action["selected_option"] = chosen
            action["placeholder"] = element.get("placeholder")
        else:
            raise ValueError(f"the fake cannot click a {element['type']}")
        name = team.users[user].name if user in team.users else user
        return {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": team.id},
            "api_app_id": team.app_id,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": msg.ts,
                "channel_id": ch.id,
                "is_ephemeral": False,
                **({"thread_ts": msg.thread_ts} if msg.thread_ts else {}),
            },
            "trigger_id": self._trigger_id(user),
            "team": {"id": team.id, "domain": team.domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": ch.id, "name": ch.name},
            "message": self.state.message_dict(msg),
            "state": {"values": {}},
            "response_url": self._response_url("actions", ch.id, user),
            "actions": [action],
        }

    def view_submission(self, view_id: str, *, user: str, values: dict[str, str]) -> JSON:
        """`user` submits a modal the app opened for them, typing `values` (input block
        id -> text) into its text inputs; the other inputs keep their initial values.
        A text longer than an input's max_length cannot be typed (ValueError)."""
        opened: OpenedView | None = self.state.views.get(view_id)
        if opened is None or opened.user != user:
            raise ValueError(f"no view {view_id} open for {user}")
        team = self._team
        state: dict[str, JSON] = {}
        for block in opened.view.get("blocks") or ():
            if block.get("type") != "input":
                continue
            element = block["element"]
            text = values.get(block["block_id"], element.get("initial_value"))
            if text is not None and len(text) > element.get("max_length", 3000):
                raise ValueError(f"{block['block_id']} takes {element['max_length']} characters")
            state[block["block_id"]] = {
                element["action_id"]: {"type": element["type"], "value": text or None}
            }
        unknown = set(values) - set(state)
        if unknown:
            raise ValueError(f"the view has no inputs {sorted(unknown)}")
        opened.submitted += 1
        name = team.users[user].name if user in team.users else user
        view = {
            "id": opened.id,
            "team_id": team.id,
            "type": "modal",
            "app_id": team.app_id,
            "bot_id": team.bot_id,
            "hash": uuid.uuid4().hex[:16],
            "root_view_id": opened.id,
            "previous_view_id": None,
            "state": {"values": state},
            **opened.view,
        }
        return {
            "type": "view_submission",
            "team": {"id": team.id, "domain": team.domain},
            "user": {"id": user, "username": name, "name": name, "team_id": team.id},
            "api_app_id": team.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(user),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # ---------------------------------------------------------------- HTTP mode bodies

    def http_event(
        self,
        envelope: JSON,
        *,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> SignedRequest:
        return signed_request(
            json.dumps(envelope),
            self.signing_secret,
            content_type="application/json",
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )

    def http_command(self, form: dict[str, str], *, timestamp: int | None = None) -> SignedRequest:
        return signed_request(
            urlencode(form),
            self.signing_secret,
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
        )

    def http_interactive(self, payload: JSON, *, timestamp: int | None = None) -> SignedRequest:
        return signed_request(
            urlencode({"payload": json.dumps(payload)}),
            self.signing_secret,
            content_type="application/x-www-form-urlencoded",
            timestamp=timestamp,
        )


def _element(msg: Message, action_id: str) -> tuple[JSON, JSON]:
    for block in msg.blocks or ():
        for element in block.get("elements") or ():
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    raise ValueError(f"message {msg.ts} shows no element {action_id!r}")
