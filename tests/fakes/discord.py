"""A protocol-level fake of Discord (REST, gateway, CDN) for the real discord.py client.

    async with FakeDiscord() as fake, fake.pointed_at():
        client = discord.Client(intents=intents, guild_ready_timeout=0.05)
        async with run_client(client, fake.token):
            msg = await fake.dispatch_voice_message(audio=b"OggS...", duration_secs=4.2)
            ...
            assert fake.messages(fake.world.general)[-1]["content"] == "..."

discord.py is reached only through its two base URLs (`discord.http.Route.BASE` and
`DiscordWebSocket.DEFAULT_GATEWAY`), which `pointed_at()` sets and restores; nothing in
discord.py is patched. The fake listens on 127.0.0.1 (a free port) and speaks, over real
sockets, the gateway (`discord_gateway`), REST and the CDN (`discord_rest`, in Discord's
HTTP conventions: `discord_http`) and the interaction routes (`discord_interactions`).
Its world (`discord_model.default_world`): one guild with #general (threads start
there), a forum, an existing thread and forum post, alice (a member), morgan (Manage
Server), olivia (the owner) and alice's DM.

A test makes users act with the `dispatch_*` methods, steers faults with `outage`,
`force_resume`, `invalidate_session`, `rate_limit`, `deny_cdn`, `deny_bot` (a channel
overwrite), `reset_token` and `clock.advance`, and reads what the app did with `calls`,
`messages`, `threads`, `reactions`, `interaction_responses`, `original_response`,
`followups`, `files`, `commands` and `cdn_fetches` (`wait_for` waits for any of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, Self, TypeVar

import pytest
import yarl
from aiohttp import web

from tests.fakes.discord_gateway import WAIT_LIMIT, Close, Gateway, Session
from tests.fakes.discord_http import CdnFetch, ForcedRateLimit, RestCall, UploadedFile
from tests.fakes.discord_interactions import FakeInteraction
from tests.fakes.discord_model import (
    BOT_PERMISSIONS,
    JSON,
    CdnSigner,
    ChannelType,
    CommandType,
    FakeChannel,
    FakeClock,
    FakeMember,
    FakeUser,
    GeneratedBytes,
    Intent,
    MessageFlag,
    OptionType,
    Permission,
    Snowflakes,
    StoredAttachment,
    Upload,
    World,
    application_flags,
    default_waveform,
    default_world,
)
from tests.fakes.discord_rest import API_PREFIX, EdgeFailure, LostAnswer, Reaction, RestApi

with warnings.catch_warnings():
    # discord.py imports the stdlib `audioop` (for voice), which Python 3.11 and 3.12 flag
    # with a DeprecationWarning on import; 3.13 drops it and discord.py then uses
    # audioop-lts. Nothing here uses voice. Scoped to this import only, so that test
    # modules importing this one first can `import discord` under -W error.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    import discord.gateway
    import discord.http

__all__ = [
    "CdnFetch",
    "Close",
    "FakeDiscord",
    "FakeInteraction",
    "GeneratedBytes",
    "Intent",
    "Permission",
    "Reaction",
    "RestCall",
    "Upload",
    "UploadedFile",
    "fake_discord_fixture",
    "point_discord_py",
    "run_client",
]

T = TypeVar("T")
ChannelRef = FakeChannel | int


class FakeDiscord:
    """One fake Discord: an application with its bot user, a guild, a gateway and REST.

    Options a test may want: `privileged_intents` (what the Developer Portal switches
    allow; asking for more closes the gateway with 4014), `heartbeat_interval` (seconds),
    `initial_response_window` (3 s) and `token_lifetime` (15 min) for interactions,
    `cdn_url_lifetime` (24 h), `max_file_size`, `rate_limit` requests per `rate_window`
    seconds per route, and `echo_bot_messages` (Discord sends the bot its own messages).
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token.MTMxMDAwMDAwMDAwMDAwMDAwMQ",
        privileged_intents: Intent = Intent.MESSAGE_CONTENT,
        heartbeat_interval: float = 41.25,
        world: World | None = None,
        clock: FakeClock | None = None,
        initial_response_window: float = 3.0,
        token_lifetime: float = 15 * 60,
        cdn_url_lifetime: float = 24 * 3600,
        max_file_size: int = 10 * 1024 * 1024,
        rate_limit: int = 50,
        rate_window: float = 1.0,
        echo_bot_messages: bool = True,
    ) -> None:
        self.token = token
        self.privileged_intents = privileged_intents
        #: whether GET /users/@me/guilds lists the world's server (False: never invited)
        self.bot_in_guild = True
        self.world = world or default_world()
        self.clock = clock or FakeClock()
        self.snowflakes = Snowflakes(self.clock)
        self.signer = CdnSigner(self.clock, lifetime=cdn_url_lifetime)
        self.initial_response_window = initial_response_window
        self.token_lifetime = token_lifetime
        self.max_file_size = max_file_size
        self.echo_bot_messages = echo_bot_messages
        self.gateway = Gateway(self, heartbeat_interval=heartbeat_interval)
        self.rest = RestApi(self, rate_limit=rate_limit, rate_window=rate_window)
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=1024**3)
        self.gateway.add_routes(app)
        self.rest.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self.gateway.close_all()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        await self.close()
        errors = self.rest.internal_errors
        if errors and exc_type is None:
            raise RuntimeError(f"the Discord fake failed {len(errors)} time(s)") from errors[0]

    @property
    def url(self) -> str:
        """Base of the server; the CDN lives here too (`/attachments/...`)."""
        if not self._port:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What `discord.http.Route.BASE` (or DISCORD_API_URL) should be."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What `DiscordWebSocket.DEFAULT_GATEWAY` (or DISCORD_GATEWAY_URL) should be."""
        return f"ws://127.0.0.1:{self._port}/gateway/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/resume/"

    def pointed_at(self) -> point_discord_py:
        """Point discord.py's two base URLs at this fake for a `with` / `async with` block."""
        return point_discord_py(self.api_url, self.gateway_url)

    def reset_token(self, new_token: str) -> None:
        """Like "Reset Token" in the Developer Portal: the old token stops working."""
        self.token = new_token

    # -- identity ------------------------------------------------------------------------

    def bot_user_payload(self) -> JSON:
        return {
            **self.world.bot.payload(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "flags": 0,
            "email": None,
            "bio": "",
            "banner": None,
            "accent_color": None,
        }

    def application_payload(self) -> JSON:
        world = self.world
        return {
            "id": str(world.application_id),
            "name": world.bot.username,
            "icon": None,
            "description": "Transcripts in the thread.",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(b"fake-verify-key").hexdigest(),
            "flags": application_flags(self.privileged_intents),
            "owner": world.owner.payload(),
            "team": None,
            "bot": world.bot.payload(),
            "guild_id": None,
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "install_params": {
                "scopes": ["bot", "applications.commands"],
                "permissions": str(int(BOT_PERMISSIONS)),
            },
            "integration_types_config": {"0": {}},
            "approximate_guild_count": 1,
        }

    def can_see_content(self, message: JSON, *, is_dm: bool) -> bool:
        """Discord's exceptions to the message-content intent: the app's own messages,
        DMs with it, and messages that mention it."""
        bot_id = self.world.bot.id
        return (
            is_dm
            or int(message["author"]["id"]) == bot_id
            or any(int(u["id"]) == bot_id for u in message.get("mentions", []))
        )

    # -- the gateway ----------------------------------------------------------------------

    async def wait_for_session(self) -> Session:
        """Wait until a client has identified (READY and GUILD_CREATE sent)."""
        return await self.gateway.wait_for_session()

    async def dispatch(self, event: str, data: JSON, *, intent: Intent | None = None) -> None:
        """Send any event as-is to every live session that asked for `intent`."""
        await self.gateway.dispatch(event, data, intent=intent)

    def _message_view(self, session: Session, message: JSON) -> JSON:
        channel = self.world.channels[int(message["channel_id"])]
        is_dm = channel.type is ChannelType.DM
        visible = session.has(Intent.MESSAGE_CONTENT) or self.can_see_content(message, is_dm=is_dm)
        view = self.rest.render(message, content_visible=visible)
        if channel.guild_id is not None:
            view["guild_id"] = str(channel.guild_id)
            member = self.world.guild.member(int(message["author"]["id"]))
            if member is not None and "webhook_id" not in message:
                view["member"] = member.payload(with_user=False)
        return view

    def _message_intent(self, channel_id: int) -> Intent:
        dm = self.world.channels[channel_id].type is ChannelType.DM
        return Intent.DIRECT_MESSAGES if dm else Intent.GUILD_MESSAGES

    async def dispatch_stored_message(self, event: str, message: JSON) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE for a stored message, as each session may see it."""
        await self.gateway.dispatch(
            event,
            message,
            intent=self._message_intent(int(message["channel_id"])),
            transform=self._message_view,
        )

    async def dispatch_deleted(self, message: JSON) -> None:
        channel = self.world.channels[int(message["channel_id"])]
        data: JSON = {"id": message["id"], "channel_id": message["channel_id"]}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        await self.gateway.dispatch("MESSAGE_DELETE", data, intent=self._message_intent(channel.id))

    async def author_deletes(self, message: JSON | int) -> None:
        """The message's author deletes it (the bot may delete only its own: that is
        Discord's rule, and the fake's)."""
        mid = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.rest.messages[mid]
        self.rest.remove(stored)
        await self.dispatch_deleted(stored)

    async def dispatch_reaction(self, event: str, reaction: Reaction) -> None:
        channel = self.world.channels[reaction.channel_id]
        name, _, emoji_id = reaction.emoji.partition(":")
        data: JSON = {
            "user_id": str(reaction.user_id),
            "channel_id": str(reaction.channel_id),
            "message_id": str(reaction.message_id),
            "emoji": {"id": emoji_id or None, "name": name},
            "burst": False,
            "type": 0,
        }
        dm = channel.guild_id is None
        if not dm:
            data["guild_id"] = str(channel.guild_id)
            member = self.world.guild.member(reaction.user_id)
            if event == "MESSAGE_REACTION_ADD" and member is not None:
                data["member"] = member.payload()
        intent = Intent.DIRECT_MESSAGE_REACTIONS if dm else Intent.GUILD_MESSAGE_REACTIONS
        await self.gateway.dispatch(event, data, intent=intent)

    def outage(
        self,
        how: Literal["reconnect", "close", "drop"] = "reconnect",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
        redeliver_messages: Sequence[JSON | int] = (),
    ) -> contextlib.AbstractAsyncContextManager[Session]:
        """Disconnect the client (op 7 RECONNECT, a close frame with `close_code`, or a
        dropped TCP connection) and hold its RESUME until the block ends: events
        dispatched inside are missed, then replayed after the RESUME, before RESUMED.
        `redeliver_messages` are sent again as fresh MESSAGE_CREATEs in that replay (an
        already-seen message arriving twice). Exits once RESUMED has been sent."""
        ids = [int(m["id"]) if isinstance(m, dict) else int(m) for m in redeliver_messages]

        def redeliver(session: Session) -> Iterator[tuple[str, JSON]]:
            for mid in ids:
                yield "MESSAGE_CREATE", self._message_view(session, self.rest.messages[mid])

        return self.gateway.outage(how, close_code=close_code, redeliver=redeliver)

    async def force_resume(
        self,
        how: Literal["reconnect", "close", "drop"] = "reconnect",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
        redeliver_messages: Sequence[JSON | int] = (),
    ) -> Session:
        """Make the client reconnect and RESUME now; returns once RESUMED was sent."""
        async with self.outage(
            how, close_code=close_code, redeliver_messages=redeliver_messages
        ) as s:
            return s

    async def invalidate_session(
        self,
        how: Literal["reconnect", "close", "drop"] = "close",
        *,
        close_code: int = Close.UNKNOWN_ERROR,
    ) -> Session:
        """End the session as Discord does when it cannot be resumed: the client's RESUME
        gets op 9 (d=false), so it IDENTIFYs afresh (a new READY, nothing replayed).
        discord.py first sleeps 5 s in `Client.before_identify_hook`; a test client
        overrides that hook to skip it."""
        return await self.gateway.invalidate(how, close_code=close_code)

    # -- what users do --------------------------------------------------------------------

    def _channel(self, channel: ChannelRef | None) -> FakeChannel:
        if channel is None:
            return self.world.general
        return channel if isinstance(channel, FakeChannel) else self.world.channels[channel]

    async def dispatch_message(
        self,
        channel: ChannelRef | None = None,
        *,
        author: FakeUser | None = None,
        content: str = "",
        uploads: Sequence[Upload] = (),
        embeds: Sequence[JSON] = (),
        flags: int = 0,
        reply_to: JSON | None = None,
    ) -> JSON:
        """A user posts a message (default: alice in #general). Mentions are parsed from
        `content` (`<@id>`). Returns the full message as stored."""
        target = self._channel(channel)
        attachments = [self.rest.store_attachment(target.id, u) for u in uploads]
        body: JSON = {"content": content, "embeds": list(embeds)}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to["id"]}
        message = self.rest.new_message(
            target, author or self.world.alice, body, attachments=attachments, flags=flags
        )
        await self.dispatch_stored_message("MESSAGE_CREATE", message)
        return self.rest.render(message)

    async def dispatch_voice_message(
        self,
        channel: ChannelRef | None = None,
        *,
        author: FakeUser | None = None,
        audio: bytes | GeneratedBytes = b"OggS",
        duration_secs: float = 3.0,
        waveform: bytes | None = None,
    ) -> JSON:
        """A voice message: flag IS_VOICE_MESSAGE, no text, one audio/ogg attachment
        with `duration_secs` and a base64 `waveform`."""
        upload = Upload(
            "voice-message.ogg",
            audio,
            "audio/ogg",
            duration_secs=duration_secs,
            waveform=waveform if waveform is not None else default_waveform(duration_secs),
        )
        return await self.dispatch_message(
            channel, author=author, uploads=[upload], flags=MessageFlag.IS_VOICE_MESSAGE
        )

    async def dispatch_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        channel: ChannelRef | None = None,
        permissions: int | None = None,
        created_ago: float = 0.0,
    ) -> FakeInteraction:
        """A user runs `/name` (default: alice in #general). Option values: str, int,
        float, bool, `Upload` (an attachment option: stored on the CDN as an ephemeral
        attachment and put in `resolved`), `FakeUser`, or a mapping for a sub-command.
        If the command was synced, option names, types, choices and required options
        are checked against it (a mistake raises ValueError). `permissions` overrides
        the member's computed permissions; `created_ago` backdates the interaction."""
        command = self._synced(name, CommandType.CHAT_INPUT)
        target = self._channel(channel)
        resolved: dict[str, dict[str, JSON]] = {}
        data: JSON = {"id": self._command_id(command), "name": name, "type": 1}
        schema = None if command is None else command.get("options", [])
        opts = self._options(f"/{name}", schema, options or {}, target, resolved)
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            CommandType.CHAT_INPUT, name, data, user, target, permissions, created_ago
        )

    async def dispatch_message_command(
        self,
        name: str,
        message: JSON,
        *,
        user: FakeUser | None = None,
        permissions: int | None = None,
        created_ago: float = 0.0,
    ) -> FakeInteraction:
        """A user picks Apps -> `name` on `message`. The resolved message carries its
        content whatever the intents (a documented exception)."""
        command = self._synced(name, CommandType.MESSAGE)
        stored = self.rest.messages.get(int(message["id"]), message)
        target = self.world.channels[int(stored["channel_id"])]
        resolved_message = self.rest.render(stored)
        if target.guild_id is not None:
            resolved_message["guild_id"] = str(target.guild_id)
        data: JSON = {
            "id": self._command_id(command),
            "name": name,
            "type": int(CommandType.MESSAGE),
            "target_id": stored["id"],
            "resolved": {"messages": {stored["id"]: resolved_message}},
        }
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            CommandType.MESSAGE, name, data, user, target, permissions, created_ago
        )

    def _synced(self, name: str, kind: CommandType) -> JSON | None:
        for scope in (self.world.guild.id, None):
            for command in self.rest.commands.get(scope, []):
                if command["name"] == name and command["type"] == kind:
                    return command
        return None

    def _command_id(self, command: JSON | None) -> str:
        return command["id"] if command is not None else str(self.snowflakes.next())

    def _options(
        self,
        where: str,
        schema: list[JSON] | None,
        values: Mapping[str, Any],
        channel: FakeChannel,
        resolved: dict[str, dict[str, JSON]],
    ) -> list[JSON]:
        declared = {o["name"]: o for o in schema or []}
        out: list[JSON] = []
        for name, value in values.items():
            option = declared.get(name)
            if schema is not None and option is None:
                raise ValueError(f"{where} has no option {name!r} (synced: {sorted(declared)})")
            kind = OptionType(option["type"]) if option else _infer_option_type(value)
            if kind in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
                if not isinstance(value, Mapping):
                    raise ValueError(f"{where} {name}: a sub-command takes a mapping of options")
                sub_schema = None if option is None else option.get("options", [])
                sub = self._options(f"{where} {name}", sub_schema, value, channel, resolved)
                out.append({"name": name, "type": int(kind), "options": sub})
                continue
            wire = self._option_value(where, name, kind, value, channel, resolved)
            if (
                option
                and option.get("choices")
                and wire not in [c["value"] for c in option["choices"]]
            ):
                raise ValueError(f"{where} {name}: {value!r} is not one of the choices")
            out.append({"name": name, "type": int(kind), "value": wire})
        for option in declared.values():
            if option.get("required") and option["name"] not in values:
                raise ValueError(f"{where}: required option {option['name']!r} missing")
        return out

    def _option_value(
        self,
        where: str,
        name: str,
        kind: OptionType,
        value: Any,
        channel: FakeChannel,
        resolved: dict[str, dict[str, JSON]],
    ) -> Any:
        ok = {
            OptionType.STRING: isinstance(value, str),
            OptionType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
            OptionType.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
            OptionType.BOOLEAN: isinstance(value, bool),
            OptionType.ATTACHMENT: isinstance(value, Upload),
            OptionType.USER: isinstance(value, FakeUser),
        }.get(kind, False)
        if not ok:
            raise ValueError(f"{where} {name}: {value!r} does not fit option type {kind.name}")
        if isinstance(value, Upload):
            payload = self.rest.store_attachment(channel.id, value, ephemeral=True)
            resolved.setdefault("attachments", {})[payload["id"]] = payload
            return payload["id"]
        if isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            member = self.world.guild.member(value.id)
            if channel.guild_id is not None and member is not None:
                resolved.setdefault("members", {})[str(value.id)] = member.payload(with_user=False)
            return str(value.id)
        return value

    async def dispatch_component(
        self, message: JSON, custom_id: str, *, user: FakeUser | None = None
    ) -> FakeInteraction:
        """A user clicks the button `custom_id` of a message the bot posted (default:
        alice). Only a button the message shows can be clicked (ValueError otherwise)."""
        stored = self.rest.messages.get(int(message["id"]))
        if stored is None:
            raise ValueError(f"no message {message['id']}")
        buttons = [
            item
            for row in stored.get("components") or ()
            for item in row.get("components") or ()
            if item.get("type") == 2 and not item.get("disabled")
        ]
        if not any(b.get("custom_id") == custom_id for b in buttons):
            raise ValueError(f"message {message['id']} shows no button {custom_id!r}")
        target = self.world.channels[int(stored["channel_id"])]
        data: JSON = {"custom_id": custom_id, "component_type": 2}
        extra: JSON = {"message": self.rest.render(stored)}
        return await self._interact(
            CommandType.CHAT_INPUT, custom_id, data, user, target, None, 0.0, type_=3, extra=extra
        )

    async def submit_modal(
        self, opened_by: FakeInteraction, values: Mapping[str, str], *, user: FakeUser | None = None
    ) -> FakeInteraction:
        """The user fills in and submits the modal the app answered `opened_by` with:
        `values` by text input custom_id (the others keep their prefilled value). A value
        longer than the input's max_length, or a required one left empty, cannot be sent."""
        modal = opened_by.modal
        if modal is None:
            raise ValueError("the app did not answer that interaction with a modal")
        rows = []
        known = set()
        for row in modal["components"]:
            text = row["components"][0]
            known.add(text["custom_id"])
            value = values.get(text["custom_id"], text.get("value") or "")
            high = text.get("max_length", 4000)
            if len(value) > high:
                raise ValueError(f"{text['custom_id']} takes {high} characters")
            if text.get("required", True) and not value:
                raise ValueError(f"{text['custom_id']} is required")
            rows.append(
                {
                    "type": 1,
                    "components": [{"type": 4, "custom_id": text["custom_id"], "value": value}],
                }
            )
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"the modal has no inputs {sorted(unknown)}")
        data: JSON = {"custom_id": modal["custom_id"], "components": rows}
        extra: JSON = {}
        if "message" in opened_by.payload:
            extra["message"] = opened_by.payload["message"]
        return await self._interact(
            CommandType.CHAT_INPUT,
            modal["custom_id"],
            data,
            user or opened_by.user,
            opened_by.channel,
            None,
            0.0,
            type_=5,
            extra=extra,
        )

    async def _interact(
        self,
        kind: CommandType,
        name: str,
        data: JSON,
        user: FakeUser | None,
        channel: FakeChannel,
        permissions: int | None,
        created_ago: float,
        *,
        type_: int = 2,
        extra: JSON | None = None,
    ) -> FakeInteraction:
        world = self.world
        user = user or world.alice
        created_at = self.clock.now() - created_ago
        iid = self.snowflakes.next(at=created_at)
        token = f"aW50ZXJhY3Rpb246{iid}.{hashlib.sha256(str(iid).encode()).hexdigest()[:40]}"
        payload: JSON = {
            "id": str(iid),
            "application_id": str(world.application_id),
            "type": type_,
            "data": data,
            "channel_id": str(channel.id),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": self.max_file_size,
        }
        if channel.guild_id is not None:
            guild = world.guild
            member = guild.member(user.id) or FakeMember(user, [], self.clock.iso())
            perms = guild.permissions_of(user.id) if permissions is None else permissions
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={**member.payload(), "permissions": str(perms)},
                channel={**channel.payload(), "permissions": str(perms)},
                app_permissions=str(self.rest.bot_permissions(channel)),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            payload.update(
                user=user.payload(),
                channel=channel.payload(),
                app_permissions=str(int(BOT_PERMISSIONS)),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        payload.update(extra or {})
        ix = FakeInteraction(iid, token, kind, name, channel, user, created_at, payload, type=type_)
        self.rest.interactions[iid] = ix
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return ix

    # -- steering REST and the CDN --------------------------------------------------------

    def rate_limit(
        self,
        route: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        scope: Literal["user", "global", "shared"] = "user",
    ) -> ForcedRateLimit:
        """Answer the next `times` calls to `route` ("POST /channels/{channel_id}/messages",
        discord.py's Route.key form) with 429 and `retry_after` seconds."""
        rule = ForcedRateLimit(route, times, retry_after, scope)
        self.rest.limiter.rules.append(rule)
        return rule

    def edge_failures(
        self,
        route: str,
        *,
        times: int = 1,
        status: int = 502,
        body: str = "<html><head><title>502 Bad Gateway</title></head>"
        "<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center>"
        "</body></html>",
        content_type: str = "text/html",
    ) -> EdgeFailure:
        """Answer the next `times` calls to `route` from the edge, before Discord sees
        them: `status` with a body that is not Discord's JSON (an HTML page by default)."""
        rule = EdgeFailure(route, times, status, body, content_type)
        self.rest.edge_failures.append(rule)
        return rule

    def lose_answers(
        self,
        route: str,
        *,
        times: int = 1,
        advance: float = 0.0,
        hold: float = 0.0,
        match: Callable[[JSON], bool] = lambda body: True,
    ) -> LostAnswer:
        """Let the next `times` calls to `route` whose JSON body passes `match` do their
        work, then lose the answer (a text/plain 503 from the edge, after `hold` seconds);
        the clock moves on `advance` seconds meanwhile (past the nonce window, say). The
        rule's `lost` event is set when an answer has been lost."""
        rule = LostAnswer(route, times, advance, hold, match)
        self.rest.lost_answers.append(rule)
        return rule

    def deny_bot(self, channel: ChannelRef, *permissions: Permission) -> None:
        """A channel overwrite taking `permissions` from the bot (threads inherit it):
        REST answers 403 50013 Missing Permissions, embeds are dropped without Embed
        Links, and interactions in the channel carry the reduced `app_permissions`."""
        target = self._channel(channel)
        for permission in permissions:
            self.rest.bot_denied[target.id] = self.rest.bot_denied.get(target.id, 0) | permission

    def deny_cdn(
        self, attachment_id: int | str, status: int = 403, *, times: int | None = None
    ) -> None:
        """Make the CDN refuse one attachment: always, or for its next `times` fetches
        (expiry is done by advancing the clock)."""
        self.rest.cdn_denied[int(attachment_id)] = status
        if times is not None:
            self.rest.cdn_denials_left[int(attachment_id)] = times

    def attachment(self, attachment_id: int | str) -> StoredAttachment:
        return self.rest.attachments[int(attachment_id)]

    # -- what was recorded ----------------------------------------------------------------

    @property
    def calls(self) -> list[RestCall]:
        """Every REST call, in order (CDN fetches are in `cdn_fetches`)."""
        return self.rest.calls

    def calls_to(self, route: str) -> list[RestCall]:
        return [c for c in self.rest.calls if c.route == route]

    @property
    def cdn_fetches(self) -> list[CdnFetch]:
        return self.rest.cdn_fetches

    def messages(
        self, channel: ChannelRef | None = None, *, from_bot: bool | None = None
    ) -> list[JSON]:
        """Messages now in a channel (default #general), oldest first, full content."""
        target = self._channel(channel)
        out = [
            self.rest.render(self.rest.messages[m])
            for m in self.rest.channel_messages.get(target.id, [])
        ]
        if from_bot is not None:
            bot_id = str(self.world.bot.id)
            out = [m for m in out if (m["author"]["id"] == bot_id) == from_bot]
        return out

    def threads(self, parent: ChannelRef | None = None) -> list[JSON]:
        """Threads the bot started from messages (their ids are the messages' ids)."""
        parent_id = None if parent is None else self._channel(parent).id
        return [t.payload() for t in self.rest.threads if parent_id in (None, t.parent_id)]

    def reactions(self, message: JSON | int | None = None) -> list[Reaction]:
        """Reactions the bot has on messages now (added and not removed)."""
        if message is None:
            return list(self.rest.reactions)
        mid = int(message["id"]) if isinstance(message, dict) else message
        return [r for r in self.rest.reactions if r.message_id == mid]

    def interaction_responses(self, interaction: FakeInteraction | None = None) -> list[JSON]:
        """Bodies POSTed to /interactions/{id}/{token}/callback ({"type": 5, ...})."""
        chosen = [interaction] if interaction is not None else self.rest.interactions.values()
        return [body for ix in chosen for body in ix.callbacks]

    def original_response(self, interaction: FakeInteraction) -> JSON | None:
        if interaction.original_id is None or interaction.original_id not in self.rest.messages:
            return None
        return self.rest.render(self.rest.messages[interaction.original_id])

    def followups(self, interaction: FakeInteraction) -> list[JSON]:
        """Messages returned by POST /webhooks/{app}/{token}, as they are now. The first
        followup after a deferral is the (edited) original response, as on Discord."""
        ids = dict.fromkeys(interaction.followup_ids)
        return [self.rest.render(self.rest.messages[m]) for m in ids if m in self.rest.messages]

    def files(self, channel: ChannelRef | None = None) -> list[UploadedFile]:
        """File parts of multipart requests (bytes as sent), optionally for one channel."""
        if channel is None:
            return list(self.rest.files)
        channel_id = self._channel(channel).id
        return [f for f in self.rest.files if f.channel_id == channel_id]

    def commands(self, guild: int | None = None) -> list[JSON]:
        """Application commands now registered, globally or for one guild."""
        return self.rest.commands.get(guild, [])

    @property
    def command_syncs(self) -> list[tuple[int | None, list[JSON]]]:
        """Every bulk overwrite: (guild id or None, the body sent)."""
        return self.rest.command_syncs

    async def wait_for(self, predicate: Callable[[], T]) -> T:
        """Wait until `predicate()` is truthy (re-checked on every REST call and every
        20 ms); returns its value. Gives up after WAIT_LIMIT seconds; wrap the call in
        `asyncio.timeout()` for a shorter bound."""
        async with asyncio.timeout(WAIT_LIMIT):
            while not (result := predicate()):
                async with self.rest.recorded:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.rest.recorded.wait(), 0.02)
        return result


def _infer_option_type(value: Any) -> OptionType:
    if isinstance(value, Mapping):
        return OptionType.SUB_COMMAND
    if isinstance(value, bool):
        return OptionType.BOOLEAN
    if isinstance(value, int):
        return OptionType.INTEGER
    if isinstance(value, float):
        return OptionType.NUMBER
    if isinstance(value, Upload):
        return OptionType.ATTACHMENT
    if isinstance(value, FakeUser):
        return OptionType.USER
    return OptionType.STRING


class point_discord_py:
    """Set discord.py's REST base and default gateway URL for a block, then restore them;
    usable with `with` and `async with`.

    These are discord.py's two configuration points (class attributes it reads on every
    request / connection); no behaviour is replaced.
    """

    def __init__(self, api_url: str, gateway_url: str) -> None:
        self._urls = api_url.rstrip("/"), yarl.URL(gateway_url)
        self._saved: tuple[str, yarl.URL] | None = None

    def __enter__(self) -> None:
        route, websocket = discord.http.Route, discord.gateway.DiscordWebSocket
        self._saved = route.BASE, websocket.DEFAULT_GATEWAY
        route.BASE, websocket.DEFAULT_GATEWAY = self._urls

    def __exit__(self, *exc_info: object) -> None:
        assert self._saved is not None
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()


@contextlib.asynccontextmanager
async def run_client(client: discord.Client, token: str) -> AsyncIterator[discord.Client]:
    """Log `client` in, connect it, wait for on_ready; close it (and its sockets) after.

    Login errors (LoginFailure) and connect errors (ConnectionClosed 4004,
    PrivilegedIntentsRequired) are raised here, after the client is closed.
    """
    try:
        await client.login(token)
    except BaseException:
        await client.close()
        raise
    connect = asyncio.create_task(client.connect(), name="discord-client-connect")
    ready = asyncio.create_task(client.wait_until_ready(), name="discord-client-ready")
    try:
        done, _ = await asyncio.wait(
            {connect, ready}, timeout=WAIT_LIMIT, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            if connect in done:
                connect.result()  # raises what stopped the client
            raise TimeoutError("discord.py client did not become ready")
        yield client
    finally:
        ready.cancel()
        await client.close()
        async with asyncio.timeout(WAIT_LIMIT):
            # connect() returns once the client is closed; a failure already surfaced.
            await asyncio.gather(connect, ready, return_exceptions=True)


@pytest.fixture(name="fake_discord")
async def fake_discord_fixture() -> AsyncIterator[FakeDiscord]:
    """`fake_discord`: a started FakeDiscord with discord.py pointed at it (a plugin of
    tests/conftest.py, so every test may ask for it)."""
    async with FakeDiscord(heartbeat_interval=41.25) as fake:
        with fake.pointed_at():
            yield fake
