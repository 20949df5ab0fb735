"""The REST and CDN half of the Discord fake: its resources, and the pipeline every call
goes through (record, authorise, rate-limit, answer in Discord's conventions).

Bot routes check `Authorization: Bot <token>`; interaction routes (in
`tests.fakes.discord_interactions`) are authorised by the token in their path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord_http import (
    BODY,
    FILES,
    ApiError,
    CdnFetch,
    Handler,
    RateLimited,
    RateLimiter,
    RestCall,
    UploadedFile,
    file_index,
    guess_type,
    invalid_form,
    json_response,
    major_parameters,
    not_found,
    read_body,
    snowflake,
    unauthorized,
    unknown,
    validate_message,
)
from tests.fakes.discord_interactions import FakeInteraction, InteractionRoutes
from tests.fakes.discord_model import (
    BOT_PERMISSIONS,
    JSON,
    ChannelType,
    CommandType,
    FakeChannel,
    FakeUser,
    Intent,
    MessageFlag,
    MessageType,
    Permission,
    StoredAttachment,
    Upload,
    attachment_payload,
    mentioned_ids,
    snowflake_time,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
NONCE_WINDOW = 5 * 60  # seconds during which Discord honours `enforce_nonce`


@dataclass(frozen=True)
class Reaction:
    channel_id: int
    message_id: int
    emoji: str
    user_id: int


@dataclass
class _Route:
    method: str
    path: str
    handler: Handler
    auth: bool


@dataclass
class EdgeFailure:
    """Cloudflare or a proxy in front of Discord answers instead of Discord: not JSON."""

    route: str
    times: int
    status: int
    body: str
    content_type: str


@dataclass
class LostAnswer:
    """Do what a call asks, then lose its answer: a 503 from the edge (after `hold`
    seconds without a word, if set), the clock moved on by `advance` seconds."""

    route: str
    times: int
    advance: float
    hold: float
    match: Callable[[JSON], bool]
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # end a hold early


class RestApi:
    def __init__(self, fake: FakeDiscord, *, rate_limit: int, rate_window: float) -> None:
        self._fake = fake
        self.calls: list[RestCall] = []
        self.cdn_fetches: list[CdnFetch] = []
        self.limiter = RateLimiter(limit=rate_limit, window=rate_window)
        self.recorded = asyncio.Condition()
        self._routes: list[_Route] = []

        self.messages: dict[int, JSON] = {}
        self.channel_messages: dict[int, list[int]] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self.files: list[UploadedFile] = []
        self.reactions: list[Reaction] = []
        self.threads: list[FakeChannel] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.commands: dict[int | None, list[JSON]] = {}
        self.command_syncs: list[tuple[int | None, list[JSON]]] = []
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self.cdn_denied: dict[int, int] = {}
        self.cdn_denials_left: dict[int, int] = {}
        # Permissions a channel overwrite takes from the bot (channel id -> bits).
        self.bot_denied: dict[int, int] = {}
        self.internal_errors: list[Exception] = []
        self.lost_answers: list[LostAnswer] = []
        self.edge_failures: list[EdgeFailure] = []

        r = self._route
        r("GET", "/gateway", self.get_gateway, auth=False)
        r("GET", "/gateway/bot", self.get_gateway_bot)
        r("GET", "/users/@me", self.get_me)
        r("GET", "/users/@me/guilds", self.get_my_guilds)
        r("GET", "/users/{user_id}", self.get_user)
        r("POST", "/users/@me/channels", self.create_dm)
        r("GET", "/oauth2/applications/@me", self.get_application)
        r("GET", "/applications/@me", self.get_application)
        r("GET", "/guilds/{guild_id}", self.get_guild)
        r("GET", "/guilds/{guild_id}/members", self.list_members)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)
        r("GET", "/channels/{channel_id}", self.get_channel)
        r("POST", "/channels/{channel_id}/typing", self.typing)
        r("GET", "/channels/{channel_id}/messages", self.list_messages)
        r("POST", "/channels/{channel_id}/messages", self.create_message)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        r("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.start_thread)
        reaction = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
        r("PUT", reaction, self.add_reaction)
        r("DELETE", reaction, self.remove_reaction)
        for scope in ("", "/guilds/{guild_id}"):
            path = "/applications/{application_id}" + scope + "/commands"
            r("GET", path, self.get_commands)
            r("PUT", path, self.put_commands)
            r("POST", path, self.post_command)
        for method, path, handler in InteractionRoutes(fake, self).routes():
            r(method, path, handler, auth=False)

    def _route(self, method: str, path: str, handler: Handler, *, auth: bool = True) -> None:
        self._routes.append(_Route(method, path, handler, auth))

    def add_routes(self, app: web.Application) -> None:
        self._auth_by_key = {f"{r.method} {r.path}": r.auth for r in self._routes}
        for route in self._routes:
            app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.unknown_route)
        for folder in ("attachments", "ephemeral-attachments"):
            app.router.add_get(f"/{folder}/{{channel_id}}/{{attachment_id}}/{{filename}}", self.cdn)
        app.middlewares.append(self.middleware)

    # -- the pipeline: record, authorise, rate-limit --------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else ""
        route_key = f"{request.method} {canonical.removeprefix(API_PREFIX)}"
        known = route_key in self._auth_by_key
        call = RestCall(
            method=request.method,
            path=request.path.removeprefix(API_PREFIX),
            route=route_key if known else f"{request.method} {request.path}",
            params=dict(request.match_info),
            query=dict(request.query),
            headers=dict(request.headers),
            json=None,
            files=[],
            at=self._fake.clock.now(),
        )
        self.calls.append(call)
        extra_headers: dict[str, str] = {"Via": "1.1 google"}
        try:
            call.json, call.files = await read_body(request)
            for upload in call.files:
                upload.route = call.route
            request[BODY], request[FILES] = call.json, call.files
            if known and self._auth_by_key[route_key] and not self._authorised(request):
                raise unauthorized()
            edge = self._edge(route_key)
            if edge is not None:
                response = web.Response(
                    status=edge.status, text=edge.body, content_type=edge.content_type
                )
                return await self._finish_async(call, response, {})
            if known:
                forced = self.limiter.forced(route_key)
                if forced is not None:
                    response = self.limiter.too_many_requests(forced, route_key)
                    return await self._finish_async(call, response, {})
                extra_headers.update(self.limiter.count(route_key, major_parameters(call.params)))
            response = await handler(request)
            lost = self._lost(route_key, call.json) if response.status < 300 else None
            if lost is not None:
                response = await self._lose(lost)
        except RateLimited as exc:
            response, extra_headers = exc.response, {}
        except ApiError as exc:
            response = json_response(exc.body(), exc.status)
        except Exception as exc:
            # A bug in the fake, not Discord behaviour: kept to fail the test at close.
            log.exception("Discord fake failed on %s", call.route)
            self.internal_errors.append(exc)
            response = json_response({"message": f"fake: {exc!r}", "code": 0}, 500)
        return await self._finish_async(call, response, extra_headers)

    def _edge(self, route_key: str) -> EdgeFailure | None:
        for rule in self.edge_failures:
            if rule.route == route_key and rule.times > 0:
                rule.times -= 1
                return rule
        return None

    def _lost(self, route_key: str, body: JSON | None) -> LostAnswer | None:
        for rule in self.lost_answers:
            if rule.route == route_key and rule.times > 0 and rule.match(body or {}):
                rule.times -= 1
                return rule
        return None

    async def _lose(self, rule: LostAnswer) -> web.Response:
        """The work is done; the answer never reaches the bot."""
        self._fake.clock.advance(rule.advance)
        rule.lost.set()
        if rule.hold:  # the bot is killed meanwhile, or gives up waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rule.release.wait(), rule.hold)
        return web.Response(
            status=503,
            text="upstream connect error or disconnect/reset before headers",
            content_type="text/plain",
        )

    async def _finish_async(
        self, call: RestCall, response: web.StreamResponse, headers: dict[str, str]
    ) -> web.StreamResponse:
        self._finish(call, response, headers)
        async with self.recorded:
            self.recorded.notify_all()
        return response

    def _finish(
        self, call: RestCall, response: web.StreamResponse, headers: dict[str, str]
    ) -> web.StreamResponse:
        response.headers.update(headers)
        call.status = response.status
        call.response_headers = dict(response.headers)
        if isinstance(response, web.Response) and response.body:
            body = response.body
            if isinstance(body, bytes) and response.headers.get("Content-Type") == (
                "application/json"
            ):
                call.response = json.loads(body)
        return response

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self._fake.token}"

    async def unknown_route(self, request: web.Request) -> web.StreamResponse:
        raise not_found()

    # -- helpers ---------------------------------------------------------------------------

    def channel(self, request: web.Request) -> FakeChannel:
        channel = self._fake.world.channels.get(snowflake(request.match_info["channel_id"]))
        if channel is None:
            raise unknown("Channel")
        return channel

    def message_in(self, channel: FakeChannel, message_id: str) -> JSON:
        mid = snowflake(message_id)
        if mid not in self.channel_messages.get(channel.id, []):
            raise unknown("Message")
        return self.messages[mid]

    def bot_permissions(self, channel: FakeChannel) -> int:
        """The bot's permissions in `channel`: its role's, less any overwrite a test set
        (on the channel, or for a thread on its parent). DMs allow what a DM allows."""
        world = self._fake.world
        if channel.guild_id is None:
            return int(BOT_PERMISSIONS)
        denied = self.bot_denied.get(channel.id, 0)
        if channel.parent_id is not None:
            denied |= self.bot_denied.get(channel.parent_id, 0)
        return world.guild.permissions_of(world.bot.id) & ~denied

    def require(self, channel: FakeChannel, *needed: Permission) -> None:
        have = self.bot_permissions(channel)
        if any(not have & p for p in needed):
            raise ApiError(403, 50013, "Missing Permissions")

    def store_attachment(self, channel_id: int, upload: Upload, *, ephemeral: bool = False) -> JSON:
        """Put a file on the CDN; returns its attachment object (with a signed URL)."""
        att = StoredAttachment(
            id=self._fake.snowflakes.next(),
            channel_id=channel_id,
            filename=upload.filename,
            data=upload.data,
            content_type=upload.content_type or guess_type(upload.filename),
            ephemeral=ephemeral,
            duration_secs=upload.duration_secs,
            waveform=upload.waveform,
            description=upload.description,
        )
        self.attachments[att.id] = att
        return attachment_payload(att, base_url=self._fake.url, signer=self._fake.signer)

    def new_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        body: JSON,
        *,
        attachments: list[JSON] | None = None,
        type: MessageType = MessageType.DEFAULT,
        flags: int = 0,
        extra: JSON | None = None,
    ) -> JSON:
        """Store a message (full content; what each reader sees is decided on the way out)."""
        mid = self._fake.snowflakes.next()
        content = body.get("content") or ""
        users = self._fake.world.users
        message: JSON = {
            "id": str(mid),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": self._fake.clock.iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [users[u].payload() for u in mentioned_ids(content) if u in users],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": int(type),
            "flags": flags | (body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if reference and reference.get("message_id"):
            referenced = self.messages.get(snowflake(reference["message_id"]))
            if referenced is None:
                if reference.get("fail_if_not_exists", True):
                    raise invalid_form(
                        {"message_reference": ("REPLIES_UNKNOWN_MESSAGE", "Unknown message")}
                    )
            else:
                message["type"] = int(MessageType.REPLY) if type == 0 else int(type)
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": referenced["channel_id"],
                    **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
                }
                message["referenced_message"] = referenced
        if extra:
            message.update(extra)
        self.messages[mid] = message
        self.channel_messages.setdefault(channel.id, []).append(mid)
        channel.last_message_id = mid
        if channel.is_thread:
            channel.message_count += 1
        return message

    def render(self, message: JSON, *, content_visible: bool = True) -> JSON:
        """A message as it leaves the fake: attachment URLs freshly signed (Discord signs
        them anew whenever it hands a message out) and content blanked if not visible."""
        out = dict(message)
        out["attachments"] = [self._resign(a) for a in message["attachments"]]
        if isinstance(out.get("referenced_message"), dict):
            out["referenced_message"] = self.render(out["referenced_message"])
        if not content_visible:
            out.update(content="", embeds=[], attachments=[], components=[])
            out.pop("poll", None)
        return out

    def _resign(self, attachment: JSON) -> JSON:
        stored = self.attachments.get(int(attachment["id"]))
        if stored is None:
            return attachment
        return attachment_payload(stored, base_url=self._fake.url, signer=self._fake.signer)

    def rest_view(self, message: JSON, *, created: bool = False) -> JSON:
        """REST follows what the app may read (the portal switch), not what it identified with.
        A nonce comes back only in the answer to the create (and the gateway's
        MESSAGE_CREATE), never when a message is read later."""
        fake = self._fake
        channel = fake.world.channels.get(int(message["channel_id"]))
        visible = bool(fake.privileged_intents & Intent.MESSAGE_CONTENT) or fake.can_see_content(
            message, is_dm=channel is not None and channel.type is ChannelType.DM
        )
        out = self.render(message, content_visible=visible)
        if not created:
            out.pop("nonce", None)
        return out

    def attachments_from(
        self, channel: FakeChannel, body: JSON, files: list[UploadedFile]
    ) -> list[JSON]:
        limit = self._fake.max_file_size
        if any(len(f.data) > limit for f in files):
            raise ApiError(413, 40005, "Request entity too large")
        # Discord pairs `files[n]` with the `attachments` entry whose id is n.
        by_index = {file_index(f.field, i): f for i, f in enumerate(files)}
        wanted = body.get("attachments")
        picked: list[tuple[UploadedFile, JSON]] = []
        if wanted is None:
            picked = [(f, {}) for f in files]
        else:
            for entry in wanted:
                index = snowflake(entry.get("id", -1))
                if index in by_index:
                    picked.append((by_index[index], entry))
        out = []
        for upload, entry in picked:
            filename = entry.get("filename") or upload.filename
            # Discord sniffs the type itself; what the client labelled the part is ignored.
            as_stored = Upload(filename, upload.data, description=entry.get("description"))
            payload = self.store_attachment(channel.id, as_stored)
            upload.channel_id, upload.attachment_id = channel.id, int(payload["id"])
            out.append(payload)
        return out

    async def created(self, message: JSON, channel: FakeChannel) -> None:
        for upload in self.files:
            if upload.attachment_id and any(
                int(a["id"]) == upload.attachment_id for a in message["attachments"]
            ):
                upload.message_id = int(message["id"])
        if not message["flags"] & MessageFlag.EPHEMERAL and self._fake.echo_bot_messages:
            await self._fake.dispatch_stored_message("MESSAGE_CREATE", message)

    # -- identity ---------------------------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.StreamResponse:
        return json_response({"url": self._fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "url": self._fake.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        return json_response(self._fake.bot_user_payload())

    async def get_my_guilds(self, request: web.Request) -> web.StreamResponse:
        """The servers the bot is in (partial guilds), as GET /users/@me/guilds lists them."""
        if not self._fake.bot_in_guild:
            return json_response([])
        guild = self._fake.world.guild
        partial = {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "banner": None,
            "owner": False,
            "permissions": str(int(BOT_PERMISSIONS)),
            "features": [],
            "approximate_member_count": None,
            "approximate_presence_count": None,
        }
        return json_response([partial])

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        user = self._fake.world.users.get(snowflake(request.match_info["user_id"]))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def create_dm(self, request: web.Request) -> web.StreamResponse:
        world = self._fake.world
        recipient = world.users.get(snowflake((request[BODY] or {}).get("recipient_id", 0)))
        if recipient is None:
            raise invalid_form({"recipient_id": ("NUMBER_TYPE_COERCE", "Unknown user")})
        for channel in world.channels.values():
            if channel.type is ChannelType.DM and channel.recipients == [recipient]:
                return json_response(channel.payload())
        channel = FakeChannel(self._fake.snowflakes.next(), ChannelType.DM, recipients=[recipient])
        world.channels[channel.id] = channel
        return json_response(channel.payload())

    async def get_application(self, request: web.Request) -> web.StreamResponse:
        return json_response(self._fake.application_payload())

    async def get_guild(self, request: web.Request) -> web.StreamResponse:
        guild = self._fake.world.guild
        if snowflake(request.match_info["guild_id"]) != guild.id:
            raise unknown("Guild")
        world = self._fake.world
        data = {
            "id": str(guild.id),
            "name": guild.name,
            "owner_id": str(guild.owner_id),
            "roles": [r.payload() for r in guild.roles],
            "features": [],
            "emojis": [],
            "stickers": [],
            "icon": None,
            "system_channel_id": str(world.general.id),
            "preferred_locale": "en-US",
        }
        return json_response(data)

    async def list_members(self, request: web.Request) -> web.StreamResponse:
        """List Guild Members: only for an app whose Server Members intent is on in the
        Developer Portal (403 50001 Missing Access otherwise); `limit` 1-1000, `after`."""
        guild = self._fake.world.guild
        if snowflake(request.match_info["guild_id"]) != guild.id:
            raise unknown("Guild")
        if not self._fake.privileged_intents & Intent.GUILD_MEMBERS:
            raise ApiError(403, 50001, "Missing Access")
        limit = snowflake(request.query.get("limit", "1"))
        if not 1 <= limit <= 1000:
            raise invalid_form(
                {"limit": ("NUMBER_TYPE_MAX", "int value should be less than or equal to 1000.")}
            )
        after = snowflake(request.query.get("after", "0"))
        members = sorted((m for m in guild.members if m.user.id > after), key=lambda m: m.user.id)
        return json_response([m.payload() for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.StreamResponse:
        guild = self._fake.world.guild
        if snowflake(request.match_info["guild_id"]) != guild.id:
            raise unknown("Guild")
        member = guild.member(snowflake(request.match_info["user_id"]))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    # -- channels and messages ------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.channel(request).payload())

    async def typing(self, request: web.Request) -> web.StreamResponse:
        self.channel(request)
        return web.Response(status=204)

    async def list_messages(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        limit = max(1, min(100, snowflake(request.query.get("limit", "50"))))
        ids = sorted(self.channel_messages.get(channel.id, []), reverse=True)
        if "before" in request.query:
            ids = [i for i in ids if i < snowflake(request.query["before"])]
        if "after" in request.query:
            ids = sorted(i for i in ids if i > snowflake(request.query["after"]))[:limit][::-1]
        return json_response([self.rest_view(self.messages[i]) for i in ids[:limit]])

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        body: JSON = request[BODY] or {}
        files: list[UploadedFile] = request[FILES]
        validate_message(body, n_files=len(files), creating=True)
        in_thread = channel.is_thread
        send = Permission.SEND_MESSAGES_IN_THREADS if in_thread else Permission.SEND_MESSAGES
        self.require(channel, Permission.VIEW_CHANNEL, send)
        if files:
            self.require(channel, Permission.ATTACH_FILES)
        if body.get("embeds") and not self.bot_permissions(channel) & Permission.EMBED_LINKS:
            body = {**body, "embeds": []}  # Discord drops them without a word
        duplicate = self._same_nonce(channel, body)
        if duplicate is not None:
            return json_response(self.rest_view(duplicate, created=True))
        attachments = self.attachments_from(channel, body, files)
        self.files.extend(files)
        message = self.new_message(channel, self._fake.world.bot, body, attachments=attachments)
        await self.created(message, channel)
        return json_response(self.rest_view(message, created=True))

    def _same_nonce(self, channel: FakeChannel, body: JSON) -> JSON | None:
        """With `enforce_nonce`, a nonce the bot used in the last few minutes returns that
        message instead of creating another (Discord's own idempotency key)."""
        nonce = body.get("nonce")
        if not body.get("enforce_nonce") or nonce is None:
            return None
        bot_id, now = str(self._fake.world.bot.id), self._fake.clock.now()
        for mid in reversed(self.channel_messages.get(channel.id, [])):
            message = self.messages[mid]
            if now - snowflake_time(mid) > NONCE_WINDOW:
                break
            if str(message.get("nonce")) == str(nonce) and message["author"]["id"] == bot_id:
                return message
        return None

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        return json_response(
            self.rest_view(self.message_in(channel, request.match_info["message_id"]))
        )

    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        message = self.message_in(channel, request.match_info["message_id"])
        if int(message["author"]["id"]) != self._fake.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        await self.edit(message, channel, request)
        return json_response(self.rest_view(message))

    async def edit(self, message: JSON, channel: FakeChannel, request: web.Request) -> None:
        body: JSON = request[BODY] or {}
        files: list[UploadedFile] = request[FILES]
        validate_message(body, n_files=len(files), creating=False)
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "attachments" in body or files:
            keep = {snowflake(a.get("id", -1)) for a in body.get("attachments") or []}
            kept = [a for a in message["attachments"] if int(a["id"]) in keep]
            new = self.attachments_from(channel, body, files)
            self.files.extend(files)
            for upload in files:
                upload.message_id = int(message["id"])
            message["attachments"] = kept + new
        message["flags"] &= ~int(MessageFlag.LOADING)
        message["edited_timestamp"] = self._fake.clock.iso()
        if not message["flags"] & MessageFlag.EPHEMERAL and self._fake.echo_bot_messages:
            await self._fake.dispatch_stored_message("MESSAGE_UPDATE", message)

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        message = self.message_in(channel, request.match_info["message_id"])
        if int(message["author"]["id"]) != self._fake.world.bot.id:
            # Another's message: only with Manage Messages (which the bot is not given).
            self.require(channel, Permission.MANAGE_MESSAGES)
        self.remove(message)
        await self._fake.dispatch_deleted(message)
        return web.Response(status=204)

    def remove(self, message: JSON) -> None:
        mid = int(message["id"])
        self.channel_messages[int(message["channel_id"])].remove(mid)
        del self.messages[mid]

    async def start_thread(self, request: web.Request) -> web.StreamResponse:
        channel = self.channel(request)
        if channel.type not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        message = self.message_in(channel, request.match_info["message_id"])
        self.require(channel, Permission.VIEW_CHANNEL, Permission.CREATE_PUBLIC_THREADS)
        if message["flags"] & MessageFlag.HAS_THREAD:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        body: JSON = request[BODY] or {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise invalid_form(
                {"name": ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")}
            )
        archive = body.get("auto_archive_duration") or 1440
        if archive not in (60, 1440, 4320, 10080):
            raise invalid_form(
                {
                    "auto_archive_duration": (
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {60, 1440, 4320, 10080}.",
                    )
                }
            )
        thread_type = (
            ChannelType.ANNOUNCEMENT_THREAD
            if channel.type is ChannelType.GUILD_ANNOUNCEMENT
            else ChannelType.PUBLIC_THREAD
        )
        # A thread started from a message takes the message's id.
        thread = FakeChannel(
            int(message["id"]),
            thread_type,
            name,
            channel.guild_id,
            parent_id=channel.id,
            owner_id=self._fake.world.bot.id,
            created_at=self._fake.clock.iso(),
        )
        self._fake.world.channels[thread.id] = thread
        self.threads.append(thread)
        message["flags"] |= MessageFlag.HAS_THREAD
        message["thread"] = thread.payload()
        await self._fake.gateway.dispatch(
            "THREAD_CREATE", {**thread.payload(), "newly_created": True}, intent=Intent.GUILDS
        )
        return json_response(thread.payload())

    async def add_reaction(self, request: web.Request) -> web.StreamResponse:
        reaction = self._reaction(request)
        channel = self._fake.world.channels[reaction.channel_id]
        self.require(channel, Permission.ADD_REACTIONS, Permission.READ_MESSAGE_HISTORY)
        if reaction not in self.reactions:
            self.reactions.append(reaction)
            await self._fake.dispatch_reaction("MESSAGE_REACTION_ADD", reaction)
        return web.Response(status=204)

    async def remove_reaction(self, request: web.Request) -> web.StreamResponse:
        reaction = self._reaction(request)
        if reaction in self.reactions:
            self.reactions.remove(reaction)
            await self._fake.dispatch_reaction("MESSAGE_REACTION_REMOVE", reaction)
        return web.Response(status=204)

    def _reaction(self, request: web.Request) -> Reaction:
        channel = self.channel(request)
        message = self.message_in(channel, request.match_info["message_id"])
        emoji = request.match_info["emoji"]  # aiohttp has percent-decoded it
        if not emoji:
            raise ApiError(400, 10014, "Unknown Emoji")
        return Reaction(channel.id, int(message["id"]), emoji, self._fake.world.bot.id)

    # -- application commands ------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if snowflake(request.match_info["application_id"]) != self._fake.world.application_id:
            raise ApiError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if snowflake(guild_id) != self._fake.world.guild.id:
            raise ApiError(403, 50001, "Missing Access")
        return int(guild_id)

    async def get_commands(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.StreamResponse:
        scope = self._command_scope(request)
        body = request[BODY]
        if not isinstance(body, list):
            raise invalid_form({"_": ("LIST_TYPE_CONVERT", "Must be an array.")})
        commands = [self._command(scope, c, f"{i}.") for i, c in enumerate(body)]
        self.commands[scope] = commands
        self.command_syncs.append((scope, body))
        return json_response(commands)

    async def post_command(self, request: web.Request) -> web.StreamResponse:
        scope = self._command_scope(request)
        command = self._command(scope, request[BODY] or {}, "")
        existing = self.commands.setdefault(scope, [])
        existing[:] = [c for c in existing if c["id"] != command["id"]] + [command]
        return json_response(command, 201)

    def _command(self, scope: int | None, data: JSON, where: str) -> JSON:
        kind = int(data.get("type", CommandType.CHAT_INPUT))
        name = data.get("name")
        errors: dict[str, tuple[str, str]] = {}
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            errors[where + "name"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        elif kind == CommandType.CHAT_INPUT and (name != name.lower() or " " in name):
            errors[where + "name"] = ("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        description = data.get("description") or ""
        if kind == CommandType.CHAT_INPUT and not 1 <= len(description) <= 100:
            errors[where + "description"] = (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        if kind != CommandType.CHAT_INPUT and description:
            errors[where + "description"] = (
                "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                "Context menu commands cannot have description",
            )
        if errors:
            raise invalid_form(errors)
        key = (scope, kind, str(name))
        if key not in self._command_ids:
            self._command_ids[key] = self._fake.snowflakes.next()
        command: JSON = {
            "id": str(self._command_ids[key]),
            "application_id": str(self._fake.world.application_id),
            "version": str(self._fake.snowflakes.next()),
            "type": kind,
            "name": name,
            "description": description,
            "options": data.get("options") or [],
            # Discord answers with permissions as a decimal string, whatever was sent.
            "default_member_permissions": _permissions(data.get("default_member_permissions")),
            "dm_permission": data.get("dm_permission", True),
            "nsfw": data.get("nsfw", False),
            "integration_types": data.get("integration_types") or [0],
            "contexts": data.get("contexts"),
            "name_localizations": data.get("name_localizations"),
            "description_localizations": data.get("description_localizations"),
        }
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    # -- the CDN ---------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.StreamResponse:
        status = 200
        try:
            att = self.attachments.get(snowflake(request.match_info["attachment_id"]))
            path = request.path
            if att is None or att.path != path:
                status = 404
                return web.Response(status=404, text="404: Not Found")
            denied = self.cdn_denied.get(att.id)
            left = self.cdn_denials_left.get(att.id)
            if denied is not None and left is not None:
                if left <= 1:
                    del self.cdn_denied[att.id], self.cdn_denials_left[att.id]
                else:
                    self.cdn_denials_left[att.id] = left - 1
            if denied is not None:
                status = denied
                return web.Response(status=denied, text=f"{denied}: Forbidden")
            q = request.query
            if not self._fake.signer.valid(path, q.get("ex"), q.get("is"), q.get("hm")):
                status = 404
                return web.Response(status=404, text="This content is no longer available.")
            response = web.StreamResponse(
                headers={
                    "Content-Type": att.content_type or "application/octet-stream",
                    "Cache-Control": "public, max-age=31536000",
                }
            )
            response.content_length = att.size
            await response.prepare(request)
            if request.method != "HEAD":
                chunks = [att.data] if isinstance(att.data, bytes) else att.data.chunks()
                for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            self.cdn_fetches.append(
                CdnFetch(request.path, status, request.headers.get("Authorization"), request.method)
            )


def _permissions(value: object) -> str | None:
    return None if value is None else str(value)
