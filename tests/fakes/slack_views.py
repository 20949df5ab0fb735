"""The Home tab: `views.publish`, as strict as Slack, and the record of what was published.

Slack validates a view before it takes it: a `home` view of at most 100 blocks, each block
and element within its limits (tests/fakes/slack_blocks.py), private_metadata of at most
3,000 characters. A view it refuses is answered `invalid_arguments` with the problems in
`response_metadata.messages`, and nothing is shown. `hash` guards against a stale update
(`hash_conflict`). Only a workspace member's Home can be published to.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

from tests.fakes.slack_blocks import validate_view
from tests.fakes.slack_state import JSON, SlackState
from tests.fakes.slack_web import ApiRequest, SlackError

#: The size Slack allows a view's JSON (its documented 250 kB for a view payload).
MAX_VIEW_BYTES = 250_000


@dataclass
class PublishedView:
    team: str
    user: str
    view: JSON  # as the app sent it
    id: str
    hash: str


class Views:
    def __init__(self, state: SlackState) -> None:
        self.state = state
        self.published: list[PublishedView] = []
        self._serial = itertools.count(1)

    def home(self, user: str) -> PublishedView | None:
        """The Home tab `user` sees now (the latest published), None if none was."""
        mine = [p for p in self.published if p.user == user]
        return mine[-1] if mine else None

    async def views_publish(self, req: ApiRequest) -> JSON:
        user_id = req.need("user_id", "invalid_arguments")
        person = req.team.users.get(user_id)
        if person is None or person.deleted:
            raise SlackError("user_not_found")
        view: Any = req.structured("view", error="invalid_arguments")
        if view is None:
            raise SlackError("invalid_arguments")
        if len(json.dumps(view)) > MAX_VIEW_BYTES:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["too large"]})
        problems = validate_view(view, surface="home")
        if problems:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        current = self.home(user_id)
        wanted_hash = req.arg("hash")
        if wanted_hash is not None and (current is None or current.hash != wanted_hash):
            raise SlackError("hash_conflict")
        serial = next(self._serial)
        view_id = current.id if current is not None else f"V{serial:010d}"
        published = PublishedView(
            req.team.id, user_id, copy.deepcopy(view), view_id, f"{serial}.{user_id}"
        )
        self.published.append(published)
        team = req.team
        return {
            "view": {
                **view,
                "id": view_id,
                "team_id": team.id,
                "app_id": team.app_id,
                "bot_id": team.bot_id,
                "hash": published.hash,
                "state": {"values": {}},
                "previous_view_id": None,
                "root_view_id": view_id,
            }
        }


def home_opened(state: SlackState, team_id: str, user: str, *, tab: str = "home") -> JSON:
    """The `app_home_opened` event (the envelope is built by SlackEvents.envelope)."""
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": f"D{user[1:]}",
        "tab": tab,
        "event_ts": state.next_ts(),
    }


def block_action(
    state: SlackState,
    team_id: str,
    user: str,
    published: PublishedView,
    *,
    action_id: str,
    block_id: str,
    value: str | None = None,
    selected: JSON | None = None,
) -> JSON:
    """A `block_actions` payload for an element of a published Home view: a button
    (`value`) or a static select (`selected`, one of its options). The element must be in
    the view, as only what is shown can be clicked."""
    block = next((b for b in published.view["blocks"] if b.get("block_id") == block_id), None)
    if block is None:
        raise ValueError(f"no block {block_id!r} in the published view")
    elements = [block["accessory"]] if "accessory" in block else block.get("elements", [])
    element = next((e for e in elements if e.get("action_id") == action_id), None)
    if element is None:
        raise ValueError(f"no element {action_id!r} in block {block_id!r}")
    team = state.team(team_id)
    action: JSON = {
        "type": element["type"],
        "action_id": action_id,
        "block_id": block_id,
        "action_ts": state.next_ts(),
    }
    if element["type"] == "button":
        action |= {"text": element["text"], "value": element.get("value", value)}
    elif element["type"] == "static_select":
        if selected not in element["options"]:
            raise ValueError("the selected option is not one of the select's options")
        action |= {"selected_option": selected, "placeholder": element.get("placeholder")}
    name = team.users[user].name if user in team.users else user
    return {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": team.id},
        "api_app_id": team.app_id,
        "token": "fake-verification-token",
        "container": {"type": "view", "view_id": published.id},
        "trigger_id": f"{state.next_ts()}.{team.id}",
        "team": {"id": team.id, "domain": team.domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {
            **published.view,
            "id": published.id,
            "team_id": team.id,
            "hash": published.hash,
            "state": {"values": {}},
        },
        "actions": [action],
    }
