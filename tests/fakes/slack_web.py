"""Slack's Web API, private file hosting, external uploads and response URLs, on aiohttp.

Answers follow Slack's conventions: HTTP 200 with `{"ok": false, "error": ...}` for every
API-level failure, 429 with `Retry-After` when rate limited, `X-OAuth-Scopes` on answers
to an authenticated call, and an HTML login page (HTTP 200) instead of a private file
when the request does not carry a token with `files:read`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.slack_blocks import validate_blocks, validate_view
from tests.fakes.slack_state import (
    JSON,
    ApiCall,
    Channel,
    Download,
    Ephemeral,
    Grant,
    Message,
    OpenedView,
    PendingUpload,
    ResponseUrlPost,
    SlackFile,
    SlackState,
    StaticBytes,
    Team,
    TokenKind,
    UploadedFile,
    file_type,
)

log = logging.getLogger(__name__)

MAX_TEXT = 40_000
MAX_ATTACHMENTS = 100
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60
REACTION_NAME = re.compile(r"[a-z0-9_+'\-]+(::skin-tone-[2-6])?")

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<title>Sign in | Slack</title>
<meta name="referrer" content="no-referrer">
</head>
<body class="signin">
<div id="page"><div id="page_contents">
<h1>Sign in to your workspace</h1>
<form id="signin_form" action="/" method="post">
<input type="hidden" name="signin" value="1">
<input type="email" name="email" placeholder="name@work-email.com">
<input type="password" name="password" placeholder="Your password">
<button type="submit" id="signin_btn">Sign in</button>
</form>
</div></div>
</body>
</html>
"""


class SlackError(Exception):
    """An API-level failure: `{"ok": false, "error": error, **extra}` with HTTP 200."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class ApiRequest:
    """One authenticated call, as a handler sees it."""

    method: str
    params: JSON
    grant: Grant
    state: SlackState

    @property
    def team(self) -> Team:
        return self.state.team(self.grant.team_id)

    @property
    def actor(self) -> str:
        return self.grant.user_id or ""

    def require(self, scope: str) -> None:
        if scope not in self.grant.scopes:
            raise SlackError(
                "missing_scope", needed=scope, provided=",".join(sorted(self.grant.scopes))
            )

    def arg(self, name: str) -> str | None:
        """A plain argument; absent and empty are the same to Slack."""
        value = self.params.get(name)
        if value is None or value == "":
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def need(self, name: str, error: str) -> str:
        """A required argument; `error` is what Slack answers when it is missing."""
        value = self.arg(name)
        if value is None:
            raise SlackError(error)
        return value

    def flag(self, name: str) -> bool:
        return self.params.get(name) in (True, 1, "1", "true", "True")

    def number(self, name: str, default: int) -> int:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise SlackError("invalid_arguments") from exc

    def structured(self, name: str, *, error: str) -> Any:
        """A structured argument: native in a JSON body, a JSON string in a form."""
        value = self.params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise SlackError(error) from exc
        return value

    def channel(self, name: str = "channel") -> Channel:
        """A conversation the caller can see; private ones it is not in do not exist."""
        ref = self.need(name, "channel_not_found")
        ch = self.state.channel(self.grant.team_id, ref)
        if ch is None or ((ch.is_private or ch.is_im) and self.actor not in ch.members):
            raise SlackError("channel_not_found")
        return ch

    def require_for(self, channel: Channel, family: str) -> None:
        """The scope for reading this kind of conversation, e.g. groups:history."""
        prefix = {"channel": "channels", "group": "groups", "im": "im"}[channel.channel_type]
        self.require(f"{prefix}:{family}")

    def member_of(self, channel: Channel) -> None:
        if self.actor not in channel.members:
            raise SlackError("not_in_channel")

    def message(self, channel: Channel, name: str) -> Message:
        ts = self.need(name, "message_not_found")
        msg = self.state.message(channel, ts)
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def thread_parent(self, channel: Channel, thread_ts: str | None) -> str | None:
        """The ts of the thread's parent; a reply's ts is resolved to its parent's.

        Real Slack accepts a thread_ts that matches no message and the reply is then seen
        by nobody; the fake refuses it so that such a bug shows up in tests.
        """
        if thread_ts is None:
            return None
        msg = self.state.message(channel, thread_ts)
        if msg is None:
            raise SlackError(
                "thread_not_found",
                response_metadata={"messages": [f"[FAKE] no message {thread_ts} in {channel.id}"]},
            )
        return msg.thread_ts if msg.is_reply else msg.ts

    def content(self, *, required: bool = True) -> tuple[str | None, list[JSON] | None, Any]:
        """text, blocks, attachments: validated as chat.postMessage does."""
        text = self.arg("text")
        blocks = self.structured("blocks", error="invalid_blocks_format")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            problems = validate_blocks(blocks)
            if problems:
                raise SlackError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
        attachments = self.structured("attachments", error="invalid_attachments")
        if attachments is not None:
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
        if required and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text, blocks, attachments


MethodHandler = Callable[[ApiRequest], Awaitable[JSON]]

HUMAN_TOKENS = frozenset({TokenKind.BOT, TokenKind.USER})


@dataclass(frozen=True)
class MethodSpec:
    handler: MethodHandler
    scopes: tuple[str, ...] = ()  # any one of them is enough to call the method
    token_kinds: frozenset[TokenKind] = HUMAN_TOKENS


#: A method that authenticates its caller itself (oauth.v2.access: client id and secret).
OpenMethod = Callable[[web.Request, ApiCall], Awaitable[JSON]]


@dataclass
class WebApi:
    state: SlackState
    issue_socket_url: Callable[[Grant], str]
    methods: dict[str, MethodSpec] = field(init=False)
    open_methods: dict[str, OpenMethod] = field(default_factory=dict)

    def __post_init__(self) -> None:
        conv_read = ("channels:read", "groups:read", "im:read", "mpim:read")
        conv_history = ("channels:history", "groups:history", "im:history", "mpim:history")
        self.methods = {
            "auth.test": MethodSpec(self.auth_test),
            "chat.postMessage": MethodSpec(self.chat_post_message, ("chat:write",)),
            "chat.update": MethodSpec(self.chat_update, ("chat:write",)),
            "chat.delete": MethodSpec(self.chat_delete, ("chat:write",)),
            "chat.postEphemeral": MethodSpec(self.chat_post_ephemeral, ("chat:write",)),
            "chat.getPermalink": MethodSpec(self.chat_get_permalink),
            "reactions.add": MethodSpec(self.reactions_add, ("reactions:write",)),
            "reactions.remove": MethodSpec(self.reactions_remove, ("reactions:write",)),
            "reactions.get": MethodSpec(self.reactions_get, ("reactions:read",)),
            "conversations.info": MethodSpec(self.conversations_info, conv_read),
            "conversations.replies": MethodSpec(self.conversations_replies, conv_history),
            "conversations.history": MethodSpec(self.conversations_history, conv_history),
            "conversations.join": MethodSpec(self.conversations_join, ("channels:join",)),
            "conversations.members": MethodSpec(self.conversations_members, conv_read),
            "views.open": MethodSpec(self.views_open),
            "users.info": MethodSpec(self.users_info, ("users:read",)),
            "users.list": MethodSpec(self.users_list, ("users:read",)),
            "users.conversations": MethodSpec(self.users_conversations, conv_read),
            "files.info": MethodSpec(self.files_info, ("files:read",)),
            "files.delete": MethodSpec(self.files_delete, ("files:write",)),
            "files.getUploadURLExternal": MethodSpec(self.files_get_upload_url, ("files:write",)),
            "files.completeUploadExternal": MethodSpec(
                self.files_complete_upload, ("files:write",)
            ),
            "apps.connections.open": MethodSpec(
                self.apps_connections_open, ("connections:write",), frozenset({TokenKind.APP})
            ),
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/api/{method}", self.handle_api),
            web.get("/files-pri/{team_file}/{tail:.+}", self.handle_private_file),
            web.post("/upload/v1/{ticket}", self.handle_upload),
            web.post("/commands/{team}/{id}/{secret}", self.handle_response_url),
            web.post("/actions/{team}/{id}/{secret}", self.handle_response_url),
        ]

    # ---------------------------------------------------------------- dispatch

    async def handle_api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        call = ApiCall(method=name, params={}, token=None, token_source=None, encoding="query")
        self.state.calls.append(call)
        headers: dict[str, str] = {}
        edge = self.state.take_fault(name, raw=True)
        if edge is not None and edge.raw is not None:
            # Slack's edge (or a proxy before it) answers before the API sees the call.
            call.http_status = edge.status
            content_type, text = edge.raw
            return web.Response(status=edge.status, text=text, content_type=content_type)
        try:
            form_token = await self._read_params(request, call)
            open_method = self.open_methods.get(name)
            if open_method is not None:
                body = await open_method(request, call)
            else:
                body = await self._authenticated(request, call, form_token, headers)
            call.response = {"ok": True, **body}
        except SlackError as exc:
            call.response = {"ok": False, "error": exc.error, **exc.extra}
        return web.Response(
            status=call.http_status,
            text=json.dumps(call.response),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )

    async def _authenticated(
        self,
        request: web.Request,
        call: ApiCall,
        form_token: str | None,
        headers: dict[str, str],
    ) -> JSON:
        """A method called with a token: authenticate, fault, check scopes, handle."""
        name = call.method
        self._read_token(request, call, form_token)
        spec = self.methods.get(name)
        if spec is None:
            raise SlackError("unknown_method", req_method=name)
        grant = self._authenticate(call.token, spec)
        headers["X-OAuth-Scopes"] = ",".join(sorted(grant.scopes))
        headers["X-Accepted-OAuth-Scopes"] = ",".join(spec.scopes)
        if name in self.state.delays:
            await asyncio.sleep(self.state.delays[name])
        fault = self.state.take_fault(name)
        if fault is not None:
            call.http_status = fault.status
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            raise SlackError(fault.error)
        if spec.scopes and not grant.scopes.intersection(spec.scopes):
            raise SlackError(
                "missing_scope",
                needed=",".join(spec.scopes),
                provided=",".join(sorted(grant.scopes)),
            )
        return await spec.handler(ApiRequest(name, call.params, grant, self.state))

    async def _read_params(self, request: web.Request, call: ApiCall) -> str | None:
        """Query string and body merged, as Slack does; returns a token found in a form."""
        params: JSON = dict(request.query)
        params.pop("token", None)  # Slack no longer takes tokens from the query string
        call.params = params
        if request.method != "POST" or not request.body_exists:
            return None
        ctype = request.content_type
        if ctype == "application/json":
            call.encoding = "json"
            try:
                body = json.loads(await request.text())
            except ValueError as exc:
                raise SlackError("invalid_json") from exc
            if not isinstance(body, dict):
                raise SlackError("json_not_object")
            body.pop("token", None)  # a JSON body must carry the token in a header
            params.update(body)
            return None
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            call.encoding = "form" if ctype.startswith("application/") else "multipart"
            form = await request.post()
            for key in form:
                value = form[key]
                params[key] = value if isinstance(value, str) else value.file.read()
            token = params.pop("token", None)
            return token if isinstance(token, str) else None
        raise SlackError("invalid_post_type")

    @staticmethod
    def _read_token(request: web.Request, call: ApiCall, form_token: str | None) -> None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            call.token, call.token_source = value.strip(), "header"
        elif form_token:
            call.token, call.token_source = form_token, "form"

    def _authenticate(self, token: str | None, spec: MethodSpec) -> Grant:
        if not token:
            raise SlackError("not_authed")
        grant = self.state.grants.get(token)
        if grant is None:
            raise SlackError("invalid_auth")
        if grant.revoked:
            raise SlackError("token_revoked")
        if grant.kind not in spec.token_kinds:
            raise SlackError("not_allowed_token_type")
        return grant

    # ---------------------------------------------------------------- auth, chat

    async def auth_test(self, req: ApiRequest) -> JSON:
        team = req.team
        body: JSON = {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": team.users[req.actor].name if req.actor in team.users else "",
            "team_id": team.id,
            "user_id": req.actor,
            "is_enterprise_install": False,
        }
        if req.grant.kind is TokenKind.BOT:
            body["bot_id"] = team.bot_id
        return body

    def _new_message(self, req: ApiRequest, channel: Channel, **fields: Any) -> Message:
        team = req.team
        bot = req.grant.kind is TokenKind.BOT
        msg = Message(
            channel=channel.id,
            ts=self.state.next_ts(),
            team=team.id,
            user=req.actor,
            bot_id=team.bot_id if bot else None,
            app_id=team.app_id if bot else None,
            token=req.grant.token,
            **fields,
        )
        if msg.thread_ts:
            parent = self.state.message(channel, msg.thread_ts)
            if parent is not None:
                parent.thread_ts = parent.ts
        channel.messages.append(msg)
        return msg

    def _writable(self, req: ApiRequest) -> Channel:
        """A channel the caller may post in: a member, or chat:write.public for public ones.
        A member's id stands for the app's DM with them (the app's Messages tab): a bot
        may post there with chat:write alone, as on Slack."""
        ref = req.arg("channel") or ""
        if req.grant.kind is TokenKind.BOT and ref[:1] in ("U", "W"):
            return self._direct(req, ref)
        ch = req.channel()
        if ch.is_archived:
            raise SlackError("is_archived")
        public_ok = not ch.is_private and "chat:write.public" in req.grant.scopes
        if req.actor not in ch.members and not public_ok:
            raise SlackError("not_in_channel")
        return ch

    def _direct(self, req: ApiRequest, user_id: str) -> Channel:
        person = req.team.users.get(user_id)
        if person is None or person.deleted or person.is_bot:
            raise SlackError("channel_not_found")
        for ch in req.team.channels.values():
            if ch.is_im and ch.members == {user_id, req.actor}:
                return ch
        ch = Channel(self.state.new_id("D"), req.team.id, user_id, {user_id, req.actor}, is_im=True)
        req.team.channels[ch.id] = ch
        return ch

    async def chat_post_message(self, req: ApiRequest) -> JSON:
        ch = self._writable(req)
        text, blocks, attachments = req.content()
        msg = self._new_message(
            req,
            ch,
            text=text or "",
            blocks=blocks or None,
            attachments=attachments or None,
            thread_ts=req.thread_parent(ch, req.arg("thread_ts")),
            reply_broadcast=req.flag("reply_broadcast"),
            metadata=req.structured("metadata", error="invalid_metadata_format"),
        )
        return {"channel": ch.id, "ts": msg.ts, "message": self.state.message_dict(msg)}

    def _own(self, req: ApiRequest, msg: Message, error: str) -> None:
        if msg.user != req.actor or (req.grant.kind is TokenKind.BOT and msg.bot_id is None):
            raise SlackError(error)

    async def chat_update(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        msg = req.message(ch, "ts")
        self._own(req, msg, "cant_update_message")
        text, blocks, attachments = req.content(required=False)
        if text is None and blocks is None and attachments is None:
            raise SlackError("no_text")
        new_text = msg.text if text is None else text
        new_blocks = msg.blocks if blocks is None else (blocks or None)
        if not new_text and not new_blocks and not (attachments or msg.attachments):
            raise SlackError("no_text")
        msg.history.append((msg.text, msg.blocks))
        msg.text, msg.blocks = new_text, new_blocks
        if attachments is not None:
            msg.attachments = attachments or None
        msg.edited_ts = self.state.next_ts()
        return {
            "channel": ch.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": self.state.message_dict(msg),
        }

    async def chat_delete(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        msg = req.message(ch, "ts")
        self._own(req, msg, "cant_delete_message")
        msg.deleted = True
        return {"channel": ch.id, "ts": msg.ts}

    async def chat_post_ephemeral(self, req: ApiRequest) -> JSON:
        ch = self._writable(req)
        user = req.need("user", "user_not_found")
        if user not in req.team.users:
            raise SlackError("user_not_found")
        if user not in ch.members:
            raise SlackError("user_not_in_channel")
        text, blocks, _ = req.content()
        ts = self.state.next_ts()
        self.state.ephemerals.append(
            Ephemeral(ch.id, user, ts, text or "", blocks or None, req.arg("thread_ts"))
        )
        return {"message_ts": ts}

    async def chat_get_permalink(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        msg = req.message(ch, "message_ts")
        link = f"https://{req.team.domain}.slack.com/archives/{ch.id}/p{msg.ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    # ---------------------------------------------------------------- reactions

    def _reaction_target(self, req: ApiRequest) -> tuple[Message, str]:
        ch = req.channel()
        msg = req.message(ch, "timestamp")
        name = req.need("name", "invalid_name")
        if not REACTION_NAME.fullmatch(name):
            raise SlackError("invalid_name")
        return msg, name

    async def reactions_add(self, req: ApiRequest) -> JSON:
        msg, name = self._reaction_target(req)
        users = msg.reactions.setdefault(name, [])
        if req.actor in users:
            raise SlackError("already_reacted")
        users.append(req.actor)
        return {}

    async def reactions_remove(self, req: ApiRequest) -> JSON:
        msg, name = self._reaction_target(req)
        users = msg.reactions.get(name, [])
        if req.actor not in users:
            raise SlackError("no_reaction")
        users.remove(req.actor)
        if not users:
            del msg.reactions[name]
        return {}

    async def reactions_get(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        msg = req.message(ch, "timestamp")
        return {"type": "message", "channel": ch.id, "message": self.state.message_dict(msg)}

    # ---------------------------------------------------------------- conversations, users

    async def conversations_info(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        req.require_for(ch, "read")
        data = ch.to_dict(req.actor)
        if req.flag("include_num_members") and not ch.is_im:
            data["num_members"] = len(ch.members)
        return {"channel": data}

    async def conversations_members(self, req: ApiRequest) -> JSON:
        """A conversation's member ids (a private one only for its members), paged."""
        ch = req.channel()
        req.require_for(ch, "read")
        if (ch.is_private or ch.is_im) and req.actor not in ch.members:
            raise SlackError("channel_not_found")
        members = sorted(ch.members)
        return self._page(req, members, "members")  # type: ignore[arg-type]

    async def views_open(self, req: ApiRequest) -> JSON:
        """Open a modal for the user a trigger id came from: once per trigger id, within
        its lifetime, for a view Block Kit accepts."""
        trigger_id = req.need("trigger_id", "invalid_arguments")
        trigger = self.state.triggers.get(trigger_id)
        if trigger is None or trigger.team_id != req.team.id:
            raise SlackError("invalid_trigger_id")
        if trigger.used or time.monotonic() - trigger.issued_at > self.state.trigger_lifetime:
            raise SlackError("expired_trigger_id")
        view = req.structured("view", error="invalid_arguments")
        problems = validate_view(view)
        if problems:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        trigger.used = True
        view_id = self.state.new_id("V")
        opened = OpenedView(view_id, req.team.id, trigger.user, dict(view), trigger_id)
        self.state.views[view_id] = opened
        body = {
            "id": view_id,
            "team_id": req.team.id,
            "app_id": req.team.app_id,
            "bot_id": req.team.bot_id,
            "state": {"values": {}},
            "hash": uuid.uuid4().hex[:16],
            "root_view_id": view_id,
            "previous_view_id": None,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            **view,
        }
        return {"view": body}

    @staticmethod
    def _page(req: ApiRequest, items: list[JSON], key: str) -> JSON:
        limit = max(1, min(req.number("limit", 1000), 1000))
        cursor = req.arg("cursor")
        try:
            start = int(base64.b64decode(cursor).decode().removeprefix("offset:")) if cursor else 0
        except ValueError as exc:
            raise SlackError("invalid_cursor") from exc
        page = items[start : start + limit]
        more = start + limit < len(items)
        next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {key: page, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}

    def _readable(self, req: ApiRequest) -> Channel:
        ch = req.channel()
        req.require_for(ch, "history")
        req.member_of(ch)
        return ch

    async def conversations_replies(self, req: ApiRequest) -> JSON:
        ch = self._readable(req)
        ts = req.need("ts", "invalid_arguments")
        msg = self.state.message(ch, ts)
        if msg is None:
            raise SlackError("thread_not_found")
        thread = [msg] if msg.is_reply else self.state.thread(ch, ts)
        # The parent comes first whatever the window, as on Slack.
        thread = thread[:1] + [m for m in thread[1:] if _in_window(req, m.ts)]
        metadata = req.flag("include_all_metadata")
        messages = [self.state.message_dict(m, metadata=metadata) for m in thread]
        return self._page(req, messages, "messages")

    async def conversations_history(self, req: ApiRequest) -> JSON:
        ch = self._readable(req)
        shown = [
            m
            for m in ch.messages
            if not m.deleted and (not m.is_reply or m.reply_broadcast) and _in_window(req, m.ts)
        ]
        top = shown[::-1]  # newest first
        metadata = req.flag("include_all_metadata")
        messages = [self.state.message_dict(m, metadata=metadata) for m in top]
        body = self._page(req, messages, "messages")
        return {**body, "pin_count": 0}

    async def conversations_join(self, req: ApiRequest) -> JSON:
        ch = req.channel()
        if ch.is_private or ch.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise SlackError("is_archived")
        ch.members.add(req.actor)
        return {"channel": ch.to_dict(req.actor)}

    async def users_list(self, req: ApiRequest) -> JSON:
        members = [u.to_dict() for u in req.team.users.values()]
        return self._page(req, members, "members")

    async def users_conversations(self, req: ApiRequest) -> JSON:
        """The conversations the caller (or `user`) is a member of, of the asked types,
        each needing its read scope (a type without one is left out, as on Slack)."""
        who = req.arg("user") or req.actor
        wanted = (req.arg("types") or "public_channel").split(",")
        kinds = {"public_channel": "channel", "private_channel": "group", "im": "im"}
        scopes = {"channel": "channels:read", "group": "groups:read", "im": "im:read"}
        found = []
        for ch in req.team.channels.values():
            kind = ch.channel_type
            if kind not in {kinds.get(t.strip()) for t in wanted}:
                continue
            if scopes[kind] not in req.grant.scopes or who not in ch.members:
                continue
            if ch.is_archived and req.flag("exclude_archived"):
                continue
            found.append(ch.to_dict(req.actor))
        return self._page(req, found, "channels")

    async def users_info(self, req: ApiRequest) -> JSON:
        user_id = req.need("user", "user_not_found")
        user = req.team.users.get(user_id)
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_dict()}

    # ---------------------------------------------------------------- files

    async def files_info(self, req: ApiRequest) -> JSON:
        file = self.state.files.get(req.need("file", "file_not_found"))
        if file is None or file.team_id != req.team.id:
            raise SlackError("file_not_found")
        if file.deleted:
            raise SlackError("file_deleted")
        return {
            "file": self.state.file_dict(file),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    async def files_delete(self, req: ApiRequest) -> JSON:
        """A bot deletes the files it uploaded (anything else: cant_delete_file); the
        messages that shared only them go too."""
        file = self.state.files.get(req.need("file", "file_not_found"))
        if file is None or file.team_id != req.team.id:
            raise SlackError("file_not_found")
        if file.deleted:
            raise SlackError("file_deleted")
        if file.user != req.actor:
            raise SlackError("cant_delete_file")
        file.deleted = True
        for team in self.state.teams.values():
            for ch in team.channels.values():
                for msg in ch.messages:
                    if file.id in msg.files:
                        msg.files.remove(file.id)
                        if not msg.files and not msg.text:
                            msg.deleted = True
        return {}

    async def files_get_upload_url(self, req: ApiRequest) -> JSON:
        filename = req.need("filename", "invalid_arguments")
        length = req.number("length", 0)
        if length < 1:
            raise SlackError("invalid_arguments")
        file_id = self.state.new_id("F")
        ticket = uuid.uuid4().hex
        self.state.pending_uploads[ticket] = PendingUpload(
            file_id=file_id,
            ticket=ticket,
            filename=filename,
            length=length,
            team_id=req.team.id,
            user_id=req.actor,
            token=req.grant.token,
            alt_txt=req.arg("alt_txt"),
            snippet_type=req.arg("snippet_type"),
        )
        return {"upload_url": f"{self.state.base_url}upload/v1/{ticket}", "file_id": file_id}

    async def files_complete_upload(self, req: ApiRequest) -> JSON:
        entries = req.structured("files", error="invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments")
        refs = [req.arg("channel_id"), *(req.arg("channels") or "").split(",")]
        channel_refs = list(dict.fromkeys(r.strip() for r in refs if r and r.strip()))
        thread_ts = req.arg("thread_ts")
        if thread_ts and len(channel_refs) != 1:
            raise SlackError("invalid_arguments")
        channels = [self._writable_ref(req, ref) for ref in channel_refs]
        parent = req.thread_parent(channels[0], thread_ts) if thread_ts else None
        pending_by_id = {p.file_id: p for p in self.state.pending_uploads.values()}
        uploads: list[tuple[PendingUpload, str]] = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise SlackError("invalid_arguments")
            pending = pending_by_id.get(entry["id"])
            # the fake's reading: a file never uploaded, or completed before, is not found
            if pending is None or pending.data is None or pending.completed:
                raise SlackError("file_not_found")
            if pending.team_id != req.team.id:
                raise SlackError("file_not_found")
            uploads.append((pending, entry.get("title") or pending.filename))
        comment = req.arg("initial_comment")
        blocks = None
        if not comment:
            _, blocks, _ = req.content(required=False)
        files: list[SlackFile] = []
        for pending, title in uploads:
            pending.completed = True
            mimetype, filetype, pretty = file_type(pending.filename)
            file = SlackFile(
                id=pending.file_id,
                team_id=pending.team_id,
                user=req.actor,
                name=pending.filename,
                title=title,
                mimetype=mimetype,
                filetype=filetype,
                pretty_type=pretty,
                source=StaticBytes(pending.data or b""),
                created=int(time.time()),
                channels=[c.id for c in channels],
            )
            self.state.files[file.id] = file
            files.append(file)
        message_ts: dict[str, str] = {}
        for ch in channels:
            msg = self._new_message(
                req,
                ch,
                text=comment or "",
                blocks=blocks or None,
                files=[f.id for f in files],
                upload=True,
                thread_ts=parent,
            )
            message_ts[ch.id] = msg.ts
        for (pending, title), file in zip(uploads, files, strict=True):
            first = channels[0].id if channels else None
            self.state.uploads.append(
                UploadedFile(
                    file_id=file.id,
                    filename=pending.filename,
                    title=title,
                    declared_length=pending.length,
                    data=pending.data or b"",
                    channel=first,
                    thread_ts=parent,
                    initial_comment=comment,
                    message_ts=message_ts.get(first or ""),
                    token=req.grant.token,
                    upload_content_type=pending.content_type,
                )
            )
        # Slack shares asynchronously: the answer does not say where the files went.
        return {"files": [self.state.file_dict(f) for f in files]}

    def _writable_ref(self, req: ApiRequest, ref: str) -> Channel:
        ch = self.state.channel(req.team.id, ref)
        if ch is None or ((ch.is_private or ch.is_im) and req.actor not in ch.members):
            raise SlackError("channel_not_found")
        if ch.is_archived:
            raise SlackError("is_archived")
        req.member_of(ch)
        return ch

    async def apps_connections_open(self, req: ApiRequest) -> JSON:
        return {"url": self.issue_socket_url(req.grant)}

    # ---------------------------------------------------------------- non-API endpoints

    async def handle_upload(self, request: web.Request) -> web.Response:
        """Step two of files_upload_v2: the bytes, raw or as a multipart form."""
        pending = self.state.pending_uploads.get(request.match_info["ticket"])
        if pending is None:
            return web.Response(status=404, text="invalid upload url", content_type="text/plain")
        if pending.data is not None:
            return web.Response(status=400, text="already uploaded", content_type="text/plain")
        data: bytes | None = None
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
                    data = bytes(await part.read())
                    break
            if data is None:
                return web.Response(status=400, text="no file part", content_type="text/plain")
        else:
            data = await request.read()
        pending.data = data
        pending.content_type = request.content_type
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def handle_private_file(self, request: web.Request) -> web.StreamResponse:
        team_id, _, file_id = request.match_info["team_file"].partition("-")
        tail = request.match_info["tail"]
        token = None
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip() or None
        grant = self.state.grants.get(token or "")
        allowed = (
            grant is not None
            and not grant.revoked
            and grant.kind in HUMAN_TOKENS
            and grant.team_id == team_id
            and "files:read" in grant.scopes
        )
        record = Download(file_id or None, token, served=False, http_method=request.method)
        self.state.downloads.append(record)
        if not allowed:
            return web.Response(text=LOGIN_PAGE, content_type="text/html", charset="utf-8")
        file = self.state.files.get(file_id)
        if (
            file is None
            or file.deleted
            or file.team_id != team_id
            or tail not in (file.name, f"download/{file.name}")
        ):
            return web.Response(status=404, text="<h1>Not found</h1>", content_type="text/html")
        record.served = True
        response = web.StreamResponse(
            headers={
                "Content-Type": file.mimetype,
                "Content-Disposition": f'attachment; filename="{file.name}"',
                "Cache-Control": "private, no-transform",
            }
        )
        response.content_length = file.size
        await response.prepare(request)
        if request.method == "HEAD":
            record.complete = True
            return response
        try:
            # chunk by chunk, so a 1 GiB file costs a chunk of memory, not a gigabyte
            stall = self.state.stalls.get(file.id)
            for chunk in file.source.chunks():
                chunk = chunk[: file.size - record.bytes_sent]
                if stall is not None and record.bytes_sent + len(chunk) > stall:
                    chunk = chunk[: stall - record.bytes_sent]
                    await response.write(chunk)
                    record.bytes_sent += len(chunk)
                    # Nothing more, ever: a stalled download, until the client gives up (aiohttp
                    # does not cancel a handler whose client left: look at the transport).
                    transport = request.transport
                    while transport is not None and not transport.is_closing():  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                    return response
                await response.write(chunk)
                record.bytes_sent += len(chunk)
        except ConnectionError:
            log.info("download of %s abandoned after %d bytes", file.id, record.bytes_sent)
            return response
        if record.bytes_sent < file.size:
            # a source shorter than its size: the connection drops mid-file, as networks do
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        record.complete = True
        return response

    async def handle_response_url(self, request: web.Request) -> web.Response:
        issued = self.state.response_urls.get(request.path)
        if issued is None:
            return web.Response(status=404, text="no_service", content_type="text/plain")
        issued.uses += 1
        post = ResponseUrlPost(url=str(request.url), payload={}, status=200)
        self.state.response_posts.append(post)

        def fail(status: int, error: str) -> web.Response:
            post.status = status
            return web.Response(status=status, text=error, content_type="text/plain")

        if time.monotonic() - issued.issued_at > RESPONSE_URL_TTL:
            return fail(404, "expired_url")
        if issued.uses > RESPONSE_URL_USES:
            return fail(404, "used_url")
        if request.content_type == "application/x-www-form-urlencoded":
            field = (await request.post()).get("payload")
            raw = field if isinstance(field, str) else ""
        else:
            raw = await request.text()
        try:
            payload = json.loads(raw)
        except ValueError:
            return fail(400, "invalid_payload")
        if not isinstance(payload, dict):
            return fail(400, "invalid_payload")
        post.payload = payload
        if payload.get("delete_original"):
            return web.Response(text="ok", content_type="text/plain")
        text, blocks = payload.get("text") or "", payload.get("blocks")
        if not text and not blocks:
            return fail(400, "no_text")
        if blocks is not None and (not isinstance(blocks, list) or validate_blocks(blocks)):
            return fail(400, "invalid_blocks")
        if payload.get("response_type") == "in_channel":
            team = self.state.team(issued.team_id)
            channel = team.channels[issued.channel]
            channel.messages.append(
                Message(
                    channel=channel.id,
                    ts=self.state.next_ts(),
                    team=team.id,
                    text=text,
                    user=team.bot_user_id,
                    bot_id=team.bot_id,
                    app_id=team.app_id,
                    blocks=blocks,
                    thread_ts=payload.get("thread_ts"),
                )
            )
        else:
            self.state.ephemerals.append(
                Ephemeral(
                    issued.channel,
                    issued.user,
                    self.state.next_ts(),
                    text,
                    blocks,
                    payload.get("thread_ts"),
                )
            )
        return web.Response(text="ok", content_type="text/plain")


def _in_window(req: ApiRequest, ts: str) -> bool:
    """Slack's `oldest`/`latest` bounds (exclusive unless `inclusive`) on a message ts."""
    inclusive = req.flag("inclusive")
    oldest, latest = req.arg("oldest"), req.arg("latest")
    try:
        at = float(ts)
        if oldest is not None and (at < float(oldest) or (at == float(oldest) and not inclusive)):
            return False
        return not (
            latest is not None and (at > float(latest) or (at == float(latest) and not inclusive))
        )
    except ValueError as exc:
        raise SlackError("invalid_ts_oldest" if oldest else "invalid_ts_latest") from exc
