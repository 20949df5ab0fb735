"""The engine's side of Slack: post in the thread, edit the status line, set reactions.

Posting is made idempotent with message metadata. Every post carries
`{"event_type": "threadscribe_post", "event_payload": {"key": key}}`; before posting a key
that may have been posted already, the thread (or, for a new thread, the channel) is
searched for it, so a crash between posting and recording the message id does not show
the message twice. A key "may have been posted" unless this process created the job, has
not tried that key yet, and is the only process working on the store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as fmt
from adapters.slack.errors import AUTH_ERRORS, CALL_ERRORS, error_code, platform_error
from adapters.slack.texts import requested_by
from bot.chat import PlatformError, Post, Reaction, ThreadRef, UrlSource
from bot.render import RenderedFile

log = logging.getLogger(__name__)

POST_EVENT: Final = "threadscribe_post"
REACTIONS: Final = {
    Reaction.WORKING: "hourglass_flowing_sand",
    Reaction.DONE: "white_check_mark",
    Reaction.FAILED: "x",
}
_CLOCK_SKEW: Final = timedelta(minutes=5)  # Slack's clock against ours, when searching
_REMEMBERED: Final = 10_000  # jobs whose keys and reactions are kept in memory

Clients = Callable[[str], Awaitable[AsyncWebClient]]


class SlackChat:
    def __init__(
        self,
        clients: Clients,
        *,
        shared_store: bool,
        forget: Callable[[str], None] = lambda team: None,
    ) -> None:
        self._clients = clients
        self._forget = forget  # a workspace's token was refused: look it up afresh
        self._shared_store = shared_store  # several processes may work on the same jobs
        self._fresh: OrderedDict[str, set[str]] = OrderedDict()  # job id -> keys tried
        self._reacted: OrderedDict[tuple[str, str], str] = OrderedDict()

    def created(self, job_id: str) -> None:
        """This process just created the job: nothing of it can be in Slack yet."""
        self._fresh[job_id] = set()
        while len(self._fresh) > _REMEMBERED:
            self._fresh.popitem(last=False)

    # -- post ----------------------------------------------------------------------------

    async def post(self, where: ThreadRef, post: Post, *, key: str) -> str:
        client = await self._clients(where.workspace)
        thread = where.thread or where.message
        message = await self._render(where, post, root=thread is None)
        try:
            found = (
                await self._find(client, where, thread, key)
                if self._may_exist(where, key)
                else None
            )
            self._tried(where, key)
            if found is None:
                ts = await self._post_message(client, where.channel, thread, message, key)
                have: set[str] = set()
            else:
                ts, have = found
                log.info("post %s was made before; not posting it again", key)
            missing = [file for file in post.files if file.name not in have]
            if missing:
                await self._upload(client, where.channel, thread or ts, missing)
        except CALL_ERRORS as exc:
            raise self._error(where, exc, "post in the thread") from exc
        return ts

    def _may_exist(self, where: ThreadRef, key: str) -> bool:
        tried = self._fresh.get(where.job_id)
        return self._shared_store or tried is None or key in tried

    def _tried(self, where: ThreadRef, key: str) -> None:
        if where.job_id in self._fresh:
            self._fresh[where.job_id].add(key)

    async def _post_message(
        self,
        client: AsyncWebClient,
        channel: str,
        thread: str | None,
        message: fmt.SlackMessage,
        key: str,
    ) -> str:
        metadata = {"event_type": POST_EVENT, "event_payload": {"key": key}}
        args: dict[str, Any] = {"channel": channel, "text": message.text, "metadata": metadata}
        if thread is not None:
            args["thread_ts"] = thread
        try:
            response = await client.chat_postMessage(blocks=message.blocks, **args)
        except SlackApiError as exc:
            if error_code(exc) not in ("invalid_blocks", "invalid_blocks_format"):
                raise
            # The text says it all too: better plain than nothing.
            log.warning("Slack refused our blocks; posting text only")
            response = await client.chat_postMessage(**args)
        return str(response["ts"])

    async def _upload(
        self, client: AsyncWebClient, channel: str, thread: str, files: Sequence[RenderedFile]
    ) -> None:
        uploads = [{"content": f.data, "filename": f.name, "title": f.name} for f in files]
        await client.files_upload_v2(file_uploads=uploads, channel=channel, thread_ts=thread)

    async def _find(
        self, client: AsyncWebClient, where: ThreadRef, thread: str | None, key: str
    ) -> tuple[str, set[str]] | None:
        """The keyed message if it was posted, and the names of files uploaded after it."""
        oldest = _oldest(where)
        if thread is None:
            history = await self._messages(
                client.conversations_history, channel=where.channel, oldest=oldest
            )
            root = next((m for m in history if _key(m) == key), None)
            if root is None:
                return None
            thread = str(root["ts"])
        replies = await self._messages(
            client.conversations_replies, channel=where.channel, ts=thread, oldest=oldest
        )
        for i, message in enumerate(replies):
            if _key(message) == key:
                later = replies[i + 1 :] if message["ts"] != thread else replies[1:]
                return str(message["ts"]), _files_after(later)
        return None

    @staticmethod
    async def _messages(method: Callable[..., Any], **args: Any) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        cursor = None
        while True:
            page = await method(include_all_metadata=True, limit=200, cursor=cursor, **args)
            out.extend(page.get("messages") or ())
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return out

    async def _render(self, where: ThreadRef, post: Post, *, root: bool) -> fmt.SlackMessage:
        if post.document is not None:
            return fmt.result(post)
        return fmt.status(post, context=_root_context(where) if root else None)

    # -- edit, react ---------------------------------------------------------------------

    async def edit(self, where: ThreadRef, message_id: str, post: Post, *, key: str) -> None:
        """Replace a message; its files (a redo's transcript.txt) follow in the thread,
        in a reply of their own posted once under `key`, as chat.update cannot attach."""
        client = await self._clients(where.workspace)
        root = where.message is None and where.thread == message_id
        message = await self._render(where, post, root=root)
        doing = (
            "update the transcript" if post.document is not None else "update the status message"
        )
        try:
            await client.chat_update(
                channel=where.channel, ts=message_id, text=message.text, blocks=message.blocks
            )
        except CALL_ERRORS as exc:
            raise self._error(where, exc, doing) from exc
        if post.files:
            note = Post("The updated transcript, in full:", post.files)
            await self.post(where, note, key=f"{key}:files")

    async def react(self, where: ThreadRef, reaction: Reaction) -> None:
        """Show `reaction` on the source message (for a slash command, on the thread's
        first message), replacing the one set before. A reaction is decoration: Slack
        refusing one for good is logged, never a reason to fail the job."""
        target = where.message or where.thread
        if target is None:
            return
        client = await self._clients(where.workspace)
        name = REACTIONS[reaction]
        spot = (where.channel, target)
        before = self._reacted.get(spot)
        if before is None:
            # Unknown after a restart: before a final state, only ⏳ can have been set.
            stale = [] if reaction is Reaction.WORKING else [REACTIONS[Reaction.WORKING]]
        else:
            stale = [before] if before != name else []
        try:
            channel, ts = spot
            await _tolerant(
                client.reactions_add, {"already_reacted"}, channel=channel, timestamp=ts, name=name
            )
            for old in stale:
                await _tolerant(
                    client.reactions_remove,
                    {"no_reaction"},
                    channel=channel,
                    timestamp=ts,
                    name=old,
                )
        except CALL_ERRORS as exc:
            error = self._error(where, exc, "set a reaction")
            if error.retryable:
                raise error from exc
            log.info("reaction not set: %s", error.message)
            return
        if reaction is Reaction.WORKING:
            self._reacted[spot] = name
            while len(self._reacted) > _REMEMBERED:
                self._reacted.popitem(last=False)
        else:  # the job is over: nothing more to remember for it
            self._reacted.pop(spot, None)
            self._fresh.pop(where.job_id, None)

    # -- erase (forget) -------------------------------------------------------------------

    async def erase(self, where: ThreadRef, message_ids: Sequence[str]) -> None:
        """Delete the job's posts (`message_ids`, and any other keyed to the job in its
        thread), the files the bot uploaded after them, and its reaction on the source
        message. Newest first, so that a thread the bot started loses its root last."""
        client = await self._clients(where.workspace)
        thread = where.thread or where.message
        doomed = dict.fromkeys(message_ids)
        files: set[str] = set()
        try:
            if thread is not None:
                replies = await self._messages(
                    client.conversations_replies, channel=where.channel, ts=thread
                )
                mine = [m for m in replies if (_key(m) or "").startswith(f"{where.job_id}:")]
                for message in mine:
                    doomed[str(message["ts"])] = None
                for i, message in enumerate(replies):
                    if str(message["ts"]) in doomed:
                        files |= _files_after(replies[i + 1 :], "id")
            for file_id in sorted(files):
                await _tolerant(
                    client.files_delete, {"file_not_found", "file_deleted"}, file=file_id
                )
            for ts in sorted(doomed, key=float, reverse=True):
                await _tolerant(
                    client.chat_delete, {"message_not_found"}, channel=where.channel, ts=ts
                )
            target = where.message
            if target is not None:
                for name in REACTIONS.values():
                    await _tolerant(
                        client.reactions_remove,
                        {"no_reaction", "message_not_found"},
                        channel=where.channel,
                        timestamp=target,
                        name=name,
                    )
        except CALL_ERRORS as exc:
            raise self._error(where, exc, "remove its posts") from exc
        self._reacted.pop((where.channel, where.message or ""), None)
        self._fresh.pop(where.job_id, None)

    def _error(self, where: ThreadRef, exc: Exception, doing: str) -> PlatformError:
        if error_code(exc) in AUTH_ERRORS:
            self._forget(where.workspace)
        return platform_error(exc, doing)


def _oldest(where: ThreadRef) -> str | None:
    """Where a search for the job's posts starts: its creation, less Slack's clock skew."""
    if where.created_at is None:
        return None
    return utc_ts(where.created_at - _CLOCK_SKEW)


def _root_context(where: ThreadRef) -> str | None:
    """For a thread the bot starts (a slash command): who asked, and for what."""
    source = where.source
    if source is None or not where.requester:
        return None
    shown = (
        "<" + fmt.escape(source.url).replace("|", "%7C") + ">"
        if isinstance(source, UrlSource)
        else fmt.escape(where.title)
    )
    return requested_by(where.requester, shown)


def _files_after(messages: Sequence[Mapping[str, Any]], field: str = "name") -> set[str]:
    """The `field` (name, id) of each file the bot uploaded after a post, up to its next
    keyed post (which belongs to another step or job: files after that are not this post's)."""
    found: set[str] = set()
    for message in messages:
        if _key(message) is not None:
            break
        if message.get("bot_id"):
            found.update(
                f[field] for f in message.get("files", ()) if isinstance(f.get(field), str)
            )
    return found


async def _tolerant(method: Callable[..., Any], gone: set[str], **args: Any) -> None:
    """A call whose `gone` errors mean it is done already (deleted, reacted, removed)."""
    try:
        await method(**args)
    except SlackApiError as exc:
        if error_code(exc) not in gone:
            raise


def _key(message: Mapping[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != POST_EVENT:
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return key if isinstance(key, str) else None


def utc_ts(moment: datetime) -> str:
    return f"{moment.astimezone(UTC).timestamp():.6f}"
