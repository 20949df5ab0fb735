"""Interaction responses and followups: the routes an app answers interactions on.

`POST /interactions/{id}/{token}/callback` (within 3 s, once) and the webhook routes
`/webhooks/{application_id}/{token}[/messages/{id|@original}]` (for 15 minutes). They need
no bot token: the interaction token in the path is the credential, as on Discord.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord_http import (
    BODY,
    FILES,
    ApiError,
    Handler,
    UploadedFile,
    invalid_form,
    invalid_webhook_token,
    json_response,
    modal_errors,
    snowflake,
    unknown,
    validate_message,
)
from tests.fakes.discord_model import (
    JSON,
    CommandType,
    FakeChannel,
    FakeUser,
    MessageFlag,
    MessageType,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord_rest import RestApi


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and what the app did with it."""

    id: int
    token: str
    kind: CommandType
    name: str
    channel: FakeChannel
    user: FakeUser
    created_at: float
    payload: JSON
    callbacks: list[JSON] = field(default_factory=list)  # bodies POSTed to /callback
    acknowledged: int | None = None  # callback type
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    #: the interaction's type: 2 a command, 3 a component (a button), 5 a modal's submit
    type: int = 2
    #: the modal the app answered with (callback type 9)
    modal: JSON | None = None


class InteractionRoutes:
    def __init__(self, fake: FakeDiscord, rest: RestApi) -> None:
        self._fake, self._rest = fake, rest

    def routes(self) -> list[tuple[str, str, Handler]]:
        webhook = "/webhooks/{application_id}/{interaction_token}"
        return [
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self.callback),
            ("POST", webhook, self.create_followup),
            ("GET", webhook + "/messages/{message_id}", self.get_message),
            ("PATCH", webhook + "/messages/{message_id}", self.edit_message),
            ("DELETE", webhook + "/messages/{message_id}", self.delete_message),
        ]

    def _by_token(self, request: web.Request) -> FakeInteraction:
        if snowflake(request.match_info["application_id"]) != self._fake.world.application_id:
            raise unknown("Webhook")
        token = request.match_info["interaction_token"]
        ix = next((i for i in self._rest.interactions.values() if i.token == token), None)
        if ix is None or self._fake.clock.now() - ix.created_at > self._fake.token_lifetime:
            raise invalid_webhook_token()
        return ix

    def _message(
        self, ix: FakeInteraction, body: JSON, files: list[UploadedFile], *, loading: bool
    ) -> JSON:
        world = self._fake.world
        attachments = self._rest.attachments_from(ix.channel, body, files)
        self._rest.files.extend(files)
        flags = (body.get("flags") or 0) & MessageFlag.EPHEMERAL
        if loading:
            flags |= MessageFlag.LOADING
        owners = {"0": str(world.guild.id)} if ix.channel.guild_id else {"1": str(ix.user.id)}
        metadata: JSON = {
            "id": str(ix.id),
            "type": ix.type,
            "user": ix.user.payload(),
            "authorizing_integration_owners": owners,
        }
        if ix.type == 2:
            metadata.update(name=ix.name, command_type=int(ix.kind))
            if ix.kind is CommandType.MESSAGE:
                metadata["target_message_id"] = ix.payload["data"]["target_id"]
            message_type = (
                MessageType.CHAT_INPUT_COMMAND
                if ix.kind is CommandType.CHAT_INPUT
                else MessageType.CONTEXT_MENU_COMMAND
            )
        else:
            # A button's (or a modal's) answer is a plain message to its user.
            message_type = MessageType.DEFAULT
            if "message" in ix.payload:
                metadata["interacted_message_id"] = ix.payload["message"]["id"]
        return self._rest.new_message(
            ix.channel,
            world.bot,
            {k: v for k, v in body.items() if k != "flags"},
            attachments=attachments,
            type=message_type,
            flags=flags,
            extra={
                "webhook_id": str(world.application_id),
                "application_id": str(world.application_id),
                "interaction_metadata": metadata,
            },
        )

    async def callback(self, request: web.Request) -> web.StreamResponse:
        ix = self._rest.interactions.get(snowflake(request.match_info["interaction_id"]))
        if ix is None or ix.token != request.match_info["interaction_token"]:
            raise unknown("interaction")
        body: JSON = request[BODY] or {}
        ix.callbacks.append(body)
        # Not answered within 3 s, the interaction is gone for good.
        if self._fake.clock.now() - ix.created_at > self._fake.initial_response_window:
            raise unknown("interaction")
        if ix.acknowledged is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        kind = body.get("type")
        data: JSON = body.get("data") or {}
        files: list[UploadedFile] = request[FILES]
        message: JSON | None = None
        if kind == 4:
            validate_message(data, n_files=len(files), creating=True)
            message = self._message(ix, data, files, loading=False)
        elif kind == 5:
            message = self._message(ix, {"flags": data.get("flags")}, [], loading=True)
        elif kind == 9:
            if ix.type == 5:  # a modal cannot answer a modal
                raise ApiError(400, 40067, "A modal can not be sent in response to a modal.")
            problems = modal_errors(data)
            if problems:
                raise invalid_form(problems)
            ix.modal = data
        elif kind in (6, 7) and ix.type in (3, 5):
            if kind == 7:  # UPDATE_MESSAGE: the clicked message itself
                clicked = self._rest.messages.get(int(ix.payload.get("message", {}).get("id", 0)))
                if clicked is None:
                    raise unknown("Message")
                validate_message(data, n_files=len(files), creating=False)
                clicked.update(
                    {k: v for k, v in data.items() if k in ("content", "embeds", "components")}
                )
        elif kind in (8, 12):
            pass  # autocomplete result, launch activity: recorded, nothing to build
        else:
            allowed = "(4, 5, 6, 7, 8, 9, 12)" if ix.type in (3, 5) else "(4, 5, 8, 9, 12)"
            raise invalid_form({"type": ("BASE_TYPE_CHOICES", f"Value must be one of {allowed}.")})
        ix.acknowledged = kind
        if message is not None:
            ix.original_id = int(message["id"])
            await self._rest.created(message, ix.channel)
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        interaction: JSON = {"id": str(ix.id), "type": 2}
        if message is not None:
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=bool(message["flags"] & MessageFlag.LOADING),
                response_message_ephemeral=bool(message["flags"] & MessageFlag.EPHEMERAL),
            )
        resource: JSON = {"type": kind}
        if kind == 4 and message is not None:
            resource["message"] = self._rest.render(message)
        return json_response({"interaction": interaction, "resource": resource})

    async def create_followup(self, request: web.Request) -> web.StreamResponse:
        ix = self._by_token(request)
        if ix.acknowledged is None:
            raise unknown("Webhook")
        body: JSON = request[BODY] or {}
        files: list[UploadedFile] = request[FILES]
        validate_message(body, n_files=len(files), creating=True)
        original = self._rest.messages.get(ix.original_id or 0)
        if original is not None and original["flags"] & MessageFlag.LOADING:
            # Documented: the first followup after a deferred response edits the loading
            # message instead of creating one (its ephemeral state is kept).
            await self._rest.edit(original, ix.channel, request)
            message = original
        else:
            message = self._message(ix, body, files, loading=False)
            await self._rest.created(message, ix.channel)
        ix.followup_ids.append(int(message["id"]))
        return json_response(self._rest.render(message))

    def _owned(self, ix: FakeInteraction, message_id: str) -> JSON:
        mid = ix.original_id if message_id == "@original" else snowflake(message_id)
        if mid is None or (mid != ix.original_id and mid not in ix.followup_ids):
            raise unknown("Message")
        message = self._rest.messages.get(mid)
        if message is None:
            raise unknown("Message")
        return message

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        ix = self._by_token(request)
        return json_response(self._rest.render(self._owned(ix, request.match_info["message_id"])))

    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        ix = self._by_token(request)
        message = self._owned(ix, request.match_info["message_id"])
        await self._rest.edit(message, ix.channel, request)
        return json_response(self._rest.render(message))

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        ix = self._by_token(request)
        message = self._owned(ix, request.match_info["message_id"])
        self._rest.remove(message)
        await self._fake.dispatch_deleted(message)
        return web.Response(status=204)
