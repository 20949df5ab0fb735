"""Taking triggers in, the same way on every platform: what counts as media, which links
are followed, when auto-transcribe applies, what a person asking with options means, and
what people are told when something cannot be taken.

`Intake` is the `Core` adapters are given (bot/chat.py). For each trigger it:

1. asks the controls (bot/controls.py) whether it may be taken in at all: the allowlists,
   the channel's policy (auto, on-request, off; DMs have their own), the sharer's
   opt-out, and which PII redaction the jobs will ask for;
2. sorts the attachments into media (by MIME type or extension) and other files;
3. finds the links in the text (linear in its length), drops the platform's own hosts
   and links whose extension says plainly they are not media, keeps those whose
   extension says they are, and asks the server about the rest (`LinkProbe`: a HEAD
   request, all under one short deadline, before the platform is acknowledged);
4. makes one job per recording; a file or link that cannot be a job (no id, a link
   with credentials) is refused on its own, and every other item of the message goes on;
5. reports refusals once: a retried or replayed event does not repeat them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

import aiohttp

from bot import messages
from bot.chat import (
    Answer,
    Attachment,
    ChannelRef,
    JobRef,
    Progress,
    RenameForm,
    Taken,
    Trigger,
)
from bot.controls import Controls, ControlSettings, job_title
from bot.errors import OptionsError
from bot.jobs import (
    ChannelPolicy,
    FileSource,
    IntakeRecord,
    JobOptions,
    JobState,
    JobStore,
    Platform,
    Redaction,
    UrlSource,
)
from bot.urls import UrlPolicy, UrlRefused

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

#: What AssemblyAI accepts, by file extension (audio and video containers).
MEDIA_EXTENSIONS: Final = frozenset(
    "3ga 8svx aac ac3 aif aiff alac amr ape au dss flac flv m4a m4b m4p m4r m4v mov mp2 mp3 "
    "mp4 mpeg mpg mpga oga ogg opus qcp tta voc wav weba webm wma wv mkv mts m2ts ts wmv "
    "3gp 3gpp".split()
)
#: Links whose extension says plainly that they are not audio or video: never probed.
NOT_MEDIA_EXTENSIONS: Final = frozenset(
    "html htm php asp aspx jsp pdf png jpg jpeg gif svg webp ico txt md csv json xml yml "
    "yaml zip gz tgz rar 7z doc docx xls xlsx ppt pptx key pages numbers js css py".split()
)
_MEDIA_TYPES: Final = ("audio/", "video/")
_URL: Final = re.compile(r"https?://[^\s<>|\"']+", re.IGNORECASE)
_TRAILING: Final = ".,;:!?)>]"
#: Links followed per message: a list of links is rarely a list of recordings.
MAX_LINKS: Final = 5
_REFUSALS_KEPT: Final = 1_000


def is_media(mimetype: str | None, filename: str | None = None) -> bool:
    """Whether a file is audio or video, by its MIME type or, failing that, its name."""
    if mimetype and mimetype.lower().startswith(_MEDIA_TYPES):
        return True
    return _extension(filename or "") in MEDIA_EXTENSIONS


def _extension(path: str) -> str:
    return PurePosixPath(path.lower()).suffix.lstrip(".")


def is_media_url(url: str) -> bool:
    """Whether a link points at an audio/video file, judged by its path's extension."""
    return _extension(unquote(urlsplit(url).path)) in MEDIA_EXTENSIONS


def find_links(text: str) -> list[str]:
    """http(s) links in a message, in order, each once (linear in the text's length).
    Slack's `<https://…|label>` and Discord's `<https://…>` wrappers are left behind."""
    seen: dict[str, None] = {}
    for match in _URL.finditer(text):
        seen.setdefault(match.group(0).rstrip(_TRAILING), None)
    return list(seen)


def link_title(url: str) -> str:
    """What to call a linked recording: its file name, else its host."""
    parts = urlsplit(url)
    return PurePosixPath(unquote(parts.path)).name or parts.hostname or "link"


def classify_links(
    urls: Iterable[str], own_hosts: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """(media by extension, unclear: worth asking the server). The platform's own links
    and links to documents, pages and images are neither."""
    media, unclear = [], []
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in own_hosts):
            continue
        if is_media_url(url):
            media.append(url)
        elif _extension(unquote(urlsplit(url).path)) not in NOT_MEDIA_EXTENSIONS:
            unclear.append(url)
    return media, unclear


class LinkProbe:
    """Asks a link's server what it serves (HEAD; a one-byte GET where HEAD is refused),
    through the URL policy: public hosts only, every redirect checked.

    Runs before the platform is acknowledged, so every probe shares one deadline.
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        timeout: float,
        urls: UrlPolicy,
    ) -> None:
        self._session = session
        self.timeout = timeout
        self._urls = urls

    async def media(self, urls: Sequence[str]) -> list[str]:
        """The links among `urls` that serve audio or video; the rest, and any that did not
        answer in time, are left out."""
        if not urls:
            return []
        tasks = [asyncio.create_task(self._content_type(url)) for url in urls]
        done, pending = await asyncio.wait(tasks, timeout=self.timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        found = []
        for url, task in zip(urls, tasks, strict=True):
            if task in done and task.exception() is None and is_media(task.result()):
                found.append(url)
            elif task in pending:
                log.info("link probe timed out", extra={"url_host": urlsplit(url).hostname})
        return found

    async def _content_type(self, url: str) -> str | None:
        session = self._session()
        try:
            async with self._urls.request(session, "HEAD", url) as resp:
                if resp.status < 400:
                    return resp.content_type
                if resp.status not in (403, 405, 501):
                    return None
            # Some servers (signed storage URLs among them) refuse HEAD but answer GET.
            headers = {"Range": "bytes=0-0"}
            async with self._urls.request(session, "GET", url, headers=headers) as resp:
                return resp.content_type if resp.status < 400 else None
        except UrlRefused as exc:
            log.info("link probe refused: %s", exc)
            return None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.info("link probe failed: %s", type(exc).__name__)
            return None


_LANGUAGE: Final = re.compile(r"^[a-z]{2,3}(_[a-z]{2})?$")


@dataclass(frozen=True, slots=True)
class Request:
    """What someone asked for: a link (optional where the trigger has its own media) and
    the options, as every platform's commands and mentions spell them."""

    url: str | None = None
    options: JobOptions = field(default_factory=JobOptions)


def parse_request(text: str, *, words: bool = False) -> Request:
    """`<url> [speakers=N] [lang=xx] [translate=xx] [srt] [vtt]`, in any order. With
    `words`, other words are talk (a mention: "@threadscribe speakers=2 please"), not
    mistakes."""
    from bot.revisions import translation_target  # it takes `language_code` from here

    url = None
    speakers = None
    language = None
    translate = None
    formats: list[str] = []
    for token in text.split():
        key, sep, value = token.partition("=")
        key = key.lower()
        if sep and key in ("speakers", "speaker"):
            if not value.isdigit() or not 1 <= int(value) <= 10:
                raise OptionsError(f"speakers must be a number from 1 to 10, not {value!r}")
            speakers = int(value)
        elif sep and key in ("lang", "language"):
            language = language_code(value)
        elif sep and key in ("translate", "translation"):
            translate = translation_target(value)
        elif not sep and key in ("srt", "vtt"):
            if key not in formats:
                formats.append(key)
        elif not sep and (links := find_links(token)):
            if words:
                continue  # a mention's links are found with the message's own
            if url is not None:
                raise OptionsError("give one link at a time")
            url = links[0]
        elif not words:
            raise OptionsError(f"I don't understand {token!r}. Usage: {messages.USAGE}")
    options = JobOptions(
        speakers_expected=speakers,
        language_code=language,
        formats=tuple(formats),
        translate_to=translate,
    )
    return Request(url=url, options=options)


def language_code(value: str) -> str:
    """`pt-BR` -> `pt_br`; OptionsError for what is not a language code."""
    code = value.strip().lower().replace("-", "_")
    if not _LANGUAGE.match(code):
        raise OptionsError(f"lang must be a language code such as en or fr, not {value!r}")
    return code


@dataclass(frozen=True, slots=True)
class _Item:
    """One recording of a trigger: its record, or why it cannot have one."""

    title: str
    record: IntakeRecord | None = None
    refusal: str | None = None
    key: str = ""


class Intake:
    """The `Core` of bot/chat.py, on the engine and the store."""

    def __init__(
        self,
        engine: Engine,
        store: JobStore,
        *,
        controls: ControlSettings | None = None,
        urls: UrlPolicy | None = None,
        probe_timeout: float = 1.5,
    ) -> None:
        self._engine = engine
        self._store = store
        self._controls = Controls(store, controls, engine=engine)
        self._urls = urls or UrlPolicy()
        self._session: aiohttp.ClientSession | None = None
        self._probe = LinkProbe(self._http, timeout=probe_timeout, urls=self._urls)
        self._refused: OrderedDict[str, None] = OrderedDict()
        from bot.revisions import Revisions  # it needs this module's parser

        self.revisions = Revisions(engine, store)

    @property
    def accepting(self) -> bool:
        return self._engine.accepting

    @property
    def controls(self) -> Controls:
        return self._controls

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._urls.session()
        return self._session

    # -- Core ----------------------------------------------------------------------------

    async def take(self, trigger: Trigger) -> Taken:
        screened = await self._controls.screen(trigger)
        if not screened.take:
            return Taken(refusals=(screened.refusal,) if screened.refusal else ())
        files = [a for a in trigger.attachments if is_media(a.mimetype, a.name)]
        others = tuple(
            a.name or str(a.ref.get("id") or "a file")
            for a in trigger.attachments
            if not is_media(a.mimetype, a.name)
        )
        links, refused_links = await self._media_links(trigger)
        if files or links:
            channel = trigger.settings_channel or trigger.channel
            prefs = await self._store.preferences.get(trigger.platform, trigger.workspace, channel)
            options = replace(
                trigger.options,
                settings_channel=trigger.settings_channel,
                translate_to=trigger.options.translate_to or prefs.translate_to,
            )
            trigger = replace(trigger, options=options)
        items = [
            *(self._file_item(trigger, a, screened.redaction) for a in files),
            *map(self._link_item(trigger, screened.redaction), links),
            *refused_links,
        ]
        records = [item.record for item in items if item.record is not None]
        outcomes = await asyncio.gather(*(self._engine.intake(r) for r in records))
        by_key = {r.dedupe_key: o for r, o in zip(records, outcomes, strict=True)}
        created: list[str] = []
        existing: list[str] = []
        created_ids: list[str] = []
        existing_ids: list[str] = []
        refusals: list[str] = []
        answers: list[str] = []
        for item in items:
            outcome = by_key.get(item.record.dedupe_key) if item.record is not None else None
            reason = item.refusal if outcome is None else outcome.refused
            if reason is not None and outcome is not None and len(items) > 1:
                reason = f"{item.title}: {reason}"  # which of them the admission refused
            if reason is not None:
                if self._first_time(item.key):
                    refusals.append(reason)
                continue
            assert outcome is not None and outcome.job is not None
            if outcome.created:
                created.append(item.title)
                created_ids.append(outcome.job.id)
                continue
            existing.append(item.title)
            existing_ids.append(outcome.job.id)
            if trigger.explicit:
                # Asked again, with other options: a redo of what was done.
                answer = await self.revisions.redo_with(
                    outcome.job, trigger.options, by=trigger.requester
                )
                if answer is not None:
                    answers.append(answer if len(items) == 1 else f"{item.title}: {answer}")
        return Taken(
            created=tuple(created),
            existing=tuple(existing),
            refusals=tuple(refusals),
            other_files=others,
            created_ids=tuple(created_ids),
            existing_ids=tuple(existing_ids),
            answers=tuple(answers),
        )

    async def auto_transcribe(self, platform: Platform, workspace: str, channel: str) -> bool:
        """Whether the channel's policy is `auto` (the old switch)."""
        view = await self._controls.channel(platform, workspace, channel)
        return view.policy is ChannelPolicy.AUTO

    async def set_auto_transcribe(
        self, platform: Platform, workspace: str, channel: str, enabled: bool, *, by: str
    ) -> None:
        """The old switch: on is the `auto` policy, off `on-request`."""
        policy = ChannelPolicy.AUTO if enabled else ChannelPolicy.ON_REQUEST
        await self._controls.set_policy(platform, workspace, channel, policy, by=by)

    async def progress(self, platform: Platform, workspace: str, requester: str) -> list[Progress]:
        found = []
        for job in await self._store.jobs_of(platform, workspace, requester):
            # The queue is global (one concurrency limit towards AssemblyAI), so a position
            # counts every waiting job, not only this workspace's.
            ahead = await self._store.ahead_of(job) if job.state is JobState.RECEIVED else None
            found.append(Progress(job_title(job), job.state, ahead))
        return found

    async def configure(self, where: ChannelRef, command: str, *, by: str, admin: bool) -> str:
        return await self.revisions.configure(where, command, by=by, admin=admin)

    async def rename_form(self, ref: JobRef) -> RenameForm | Answer:
        return await self.revisions.rename_form(ref)

    async def rename(self, ref: JobRef, names: Mapping[str, str], *, by: str) -> Answer:
        return await self.revisions.rename(ref, names, by=by)

    async def redo(self, ref: JobRef, choice: str, *, by: str) -> Answer:
        return await self.revisions.redo(ref, choice, by=by)

    # -- the pieces ----------------------------------------------------------------------

    async def _media_links(self, trigger: Trigger) -> tuple[list[str], list[_Item]]:
        """The trigger's links to media, and the refusals of links the policy refuses
        (checked before anything is fetched: a private host is never probed). A refused
        link is reported where it would have been transcribed: one whose extension says it
        is media, or any link someone explicitly asked for."""
        every = find_links(trigger.text)
        urls, rest = every[:MAX_LINKS], every[MAX_LINKS:]
        media, unclear = classify_links(urls, trigger.own_hosts)
        wanted = [url for url in urls if url in media or url in unclear]
        reasons = dict(zip(wanted, await asyncio.gather(*map(self._check, wanted)), strict=True))
        allowed = [url for url in wanted if reasons[url] is None]
        probed = set(await self._probe.media([url for url in unclear if url in allowed]))
        found = [url for url in allowed if url in media or url in probed]
        refused = [
            _Item(
                link_title(url),
                refusal=messages.link_refused(url, reason),
                key=f"{_origin(trigger)}:{url}",
            )
            for url, reason in reasons.items()
            if reason is not None and (trigger.explicit or url in media)
        ]
        # Links past the limit are not looked at; say so when they may have been wanted.
        if rest and (trigger.explicit or any(map(is_media_url, rest))):
            refused.append(
                _Item(
                    "more links",
                    refusal=messages.links_left(len(rest), MAX_LINKS),
                    key=f"{_origin(trigger)}:links-left",
                )
            )
        return found, refused

    async def _check(self, url: str) -> str | None:
        """Why the policy refuses `url`, or None."""
        try:
            await self._urls.check(url)
        except UrlRefused as exc:
            return str(exc)
        return None

    def _file_item(
        self, trigger: Trigger, attachment: Attachment, redaction: Redaction | None
    ) -> _Item:
        title = attachment.title or attachment.name or "a file"
        key = f"{_origin(trigger)}:file:{attachment.ref.get('id')}"
        try:
            source = FileSource(attachment.ref)
            record = self._record(trigger, source, title, attachment.duration, redaction)
        except (ValueError, TypeError) as exc:
            log.warning("file %s cannot be taken in: %s", title, exc)
            return _Item(title, refusal=messages.file_unusable(title), key=key)
        return _Item(title, record, key=record.dedupe_key)

    def _link_item(self, trigger: Trigger, redaction: Redaction | None) -> Callable[[str], _Item]:
        def item(url: str) -> _Item:
            title = link_title(url)
            try:
                record = self._record(trigger, UrlSource(url), title, None, redaction)
            except ValueError as exc:
                return _Item(
                    title,
                    refusal=messages.link_refused(url, str(exc)),
                    key=f"{_origin(trigger)}:{url}",
                )
            return _Item(title, record, key=record.dedupe_key)

        return item

    def _first_time(self, key: str) -> bool:
        """Whether a refusal under `key` is new (a retried event must not repeat it)."""
        if key in self._refused:
            return False
        self._refused[key] = None
        while len(self._refused) > _REFUSALS_KEPT:
            self._refused.popitem(last=False)
        return True

    @staticmethod
    def _record(
        trigger: Trigger,
        source: FileSource | UrlSource,
        title: str,
        duration: float | None,
        redaction: Redaction | None = None,
    ) -> IntakeRecord:
        options = replace(trigger.options, title=trigger.options.title or title)
        if redaction is not None:
            options = replace(options, redaction=redaction)
        return IntakeRecord(
            platform=trigger.platform,
            workspace=trigger.workspace,
            channel=trigger.channel,
            requester=trigger.requester,
            source=source,
            thread=trigger.thread,
            message=trigger.message,
            event_id=trigger.event_id,
            options=options,
            audio_duration=duration,
            author=trigger.author,
        )


def _origin(trigger: Trigger) -> str:
    where = trigger.message or f"event:{trigger.event_id}"
    return f"{trigger.platform}:{trigger.workspace}:{trigger.channel}:{where}"


__all__ = [
    "MAX_LINKS",
    "MEDIA_EXTENSIONS",
    "Intake",
    "LinkProbe",
    "OptionsError",
    "Request",
    "classify_links",
    "find_links",
    "is_media",
    "is_media_url",
    "language_code",
    "link_title",
    "parse_request",
]
