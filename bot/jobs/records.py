"""What the job store hands out and takes in: plain enums and frozen dataclasses.

Nothing here touches the database; the ORM rows live in `bot.jobs.models`.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeAlias, TypedDict
from urllib.parse import urlsplit

from bot.errors import IllegalTransition
from bot.models import ChannelPolicy as ChannelPolicy

#: What a platform file reference may hold: ids, names, sizes, URLs. Never bytes.
JSONScalar: TypeAlias = str | int | float | bool | None


class Platform(enum.StrEnum):
    SLACK = "slack"
    DISCORD = "discord"


class JobState(enum.StrEnum):
    """received -> fetching -> submitted -> completed | failed -> delivered.

    A URL source may skip `fetching` (AssemblyAI fetches it). Any unfinished state may
    fail. A failed job is still delivered: its error is posted to the thread. Any state,
    delivered included, may become `forgotten` (`/transcribe forget`): the engine then
    deletes the bot's posts and the transcript at AssemblyAI, and the job's row.
    """

    RECEIVED = "received"
    FETCHING = "fetching"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    DELIVERED = "delivered"
    FORGOTTEN = "forgotten"

    @property
    def in_flight(self) -> bool:
        """Work towards a transcript is still under way (what the limits count)."""
        return self in _IN_FLIGHT

    @property
    def awaiting_delivery(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED)

    @property
    def terminal(self) -> bool:
        return self is JobState.DELIVERED

    def can_become(self, other: JobState) -> bool:
        """Whether `self -> other` is legal. Staying in an unfinished state is legal too:
        that is how fields change under the same compare-and-set."""
        return other in _NEXT[self] or (other is self and not self.terminal)

    def check(self, other: JobState) -> None:
        if not self.can_become(other):
            raise IllegalTransition(self.value, other.value)


_IN_FLIGHT = frozenset({JobState.RECEIVED, JobState.FETCHING, JobState.SUBMITTED})

_NEXT: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.FETCHING, JobState.SUBMITTED, JobState.FAILED}),
    # fetching -> received: the transfer stalled or broke off; the job gives its slot
    # towards AssemblyAI back and waits its turn again.
    JobState.FETCHING: frozenset({JobState.SUBMITTED, JobState.FAILED, JobState.RECEIVED}),
    # submitted -> fetching: AssemblyAI could not fetch a platform file's public link, so
    # the file is streamed into an upload instead.
    JobState.SUBMITTED: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.FETCHING}),
    # completed -> failed: the result could not be rendered; the error is delivered.
    JobState.COMPLETED: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.FAILED: frozenset({JobState.DELIVERED}),
    JobState.DELIVERED: frozenset(),
    # Its row is deleted once the purge is done; it never becomes anything else.
    JobState.FORGOTTEN: frozenset(),
}
# Forgetting is possible from anywhere: a running job stops at its next write.
for _state in JobState:
    if _state is not JobState.FORGOTTEN:
        _NEXT[_state] = _NEXT[_state] | {JobState.FORGOTTEN}

#: Key names a file reference must not carry: those would be credentials.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "authorization", "cookie", "apikey")


@dataclass(frozen=True, slots=True)
class UrlSource:
    """A public http(s) URL, handed to AssemblyAI as `audio_url`."""

    kind: ClassVar[str] = "url"
    url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an audio URL must be an absolute http(s) URL")
        if parts.password is not None:
            raise ValueError("an audio URL must not carry credentials")

    @property
    def identity(self) -> str:
        return "url:" + hashlib.sha256(self.url.encode()).hexdigest()[:24]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url}


@dataclass(frozen=True, slots=True)
class FileSource:
    """A reference to a file held by the chat platform (ids, name, size, mimetype, the
    URL the adapter downloads it from with its own token). It is fetched when the job
    runs, so neither the bytes nor a token ever reach the database: values are JSON
    scalars, and keys that name a credential are refused. `ref["id"]` is required."""

    kind: ClassVar[str] = "file"
    ref: Mapping[str, JSONScalar]

    def __post_init__(self) -> None:
        ref = dict(self.ref)
        for key, value in ref.items():
            if not isinstance(key, str):
                raise TypeError("file reference keys must be strings")
            bare = key.lower().replace("_", "").replace("-", "")
            if any(word in bare for word in _SECRET_WORDS):
                raise ValueError(f"a file reference must not hold credentials ({key!r})")
            if not isinstance(value, str | int | float | bool | None):
                raise TypeError(
                    f"file reference values must be JSON scalars, not {type(value).__name__} "
                    f"({key!r}): store where the file is, never its bytes"
                )
        if not isinstance(ref.get("id"), str) or not ref["id"]:
            raise ValueError("a file reference needs the platform's file id as ref['id']")
        object.__setattr__(self, "ref", ref)

    @property
    def identity(self) -> str:
        return f"file:{self.ref['id']}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": dict(self.ref)}


Source: TypeAlias = UrlSource | FileSource


def source_from_json(data: Mapping[str, Any]) -> Source:
    kind = data.get("kind")
    if kind == UrlSource.kind:
        return UrlSource(url=data["url"])
    if kind == FileSource.kind:
        return FileSource(ref=data["ref"])
    raise ValueError(f"unknown source kind {kind!r}")


class DeliveryStep(enum.StrEnum):
    """What the engine posts for a job; each posted message id is recorded under its step
    (`Job.posted`), so a delivery that resumes never posts a step twice."""

    STATUS = "status"
    RESULT = "result"


@dataclass(frozen=True, slots=True)
class Redaction:
    """PII redaction as a job asks AssemblyAI for it (`redact_pii` and its options),
    decided at intake from the deployment's and the channel's settings."""

    policies: tuple[str, ...]
    substitution: str = "entity_name"  # or "hash"
    audio: bool = False  # also a copy of the audio with the PII beeped out

    def to_json(self) -> dict[str, Any]:
        return {
            "policies": list(self.policies),
            "substitution": self.substitution,
            "audio": self.audio,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Redaction:
        return cls(
            policies=tuple(data.get("policies") or ()),
            substitution=str(data.get("substitution") or "entity_name"),
            audio=bool(data.get("audio", False)),
        )


#: Output formats a job may ask for besides the transcript itself.
FORMATS: frozenset[str] = frozenset({"srt", "vtt"})


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How a job is to be transcribed and delivered, as chosen at intake.

    The engine reads the typed fields; `platform` is the adapter's own, opaque to the core
    (what it decided at intake and needs again at delivery: Discord's reply mode, say).
    Everything is JSON when stored, and never holds a secret.
    """

    speech_models: tuple[str, ...] | None = None  # None: the deployment's
    language_code: str | None = None  # None: detect
    speaker_labels: bool = True
    speakers_expected: int | None = None
    audio_start_from: int | None = None  # milliseconds
    audio_end_at: int | None = None
    formats: tuple[str, ...] = ()
    #: what to call the recording in replies (its file name, "voice message from Ada")
    title: str | None = None
    platform: Mapping[str, Any] = field(default_factory=dict)
    #: translate the result into this language (Speech Understanding); None: do not
    translate_to: str | None = None
    #: the channel whose settings apply, when not the job's (a Discord thread: its parent)
    settings_channel: str | None = None
    #: a redo: speaker (as AssemblyAI has it) -> the name someone gave in the thread
    renames: Mapping[str, str] = field(default_factory=dict)
    #: a redo: the message its result replaces (the result it redoes)
    replaces: str | None = None
    #: a redo that needs no new transcription (renamed speakers, a translation): it takes
    #: over the transcript of the job it redoes
    reuse_transcript: bool = False
    #: a redo: what changed, said over its result ("French instead of English")
    redo_note: str | None = None
    #: PII redaction, when the channel or the deployment asks for it
    redaction: Redaction | None = None

    def __post_init__(self) -> None:
        unknown = set(self.formats) - FORMATS
        if unknown:
            raise ValueError(f"unknown output formats: {sorted(unknown)}")
        try:
            json.dumps(dict(self.platform))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"platform options must be JSON-serialisable: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "speech_models": list(self.speech_models) if self.speech_models else None,
            "language_code": self.language_code,
            "speaker_labels": self.speaker_labels,
            "speakers_expected": self.speakers_expected,
            "audio_start_from": self.audio_start_from,
            "audio_end_at": self.audio_end_at,
            "formats": list(self.formats),
            "title": self.title,
            "platform": dict(self.platform),
            "translate_to": self.translate_to,
            "settings_channel": self.settings_channel,
            "renames": dict(self.renames),
            "replaces": self.replaces,
            "reuse_transcript": self.reuse_transcript or None,
            "redo_note": self.redo_note,
            "redaction": self.redaction.to_json() if self.redaction else None,
        }
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobOptions:
        platform = data.get("platform")
        title = data.get("title")
        legacy = data.get("discord")
        if platform is None and isinstance(legacy, Mapping):
            platform = {"discord": legacy}  # written before options were typed
            title = title or legacy.get("title")
        models = data.get("speech_models")
        redaction = data.get("redaction")
        return cls(
            speech_models=tuple(models) if models else None,
            language_code=data.get("language_code"),
            speaker_labels=bool(data.get("speaker_labels", True)),
            speakers_expected=data.get("speakers_expected"),
            audio_start_from=data.get("audio_start_from"),
            audio_end_at=data.get("audio_end_at"),
            formats=tuple(data.get("formats") or ()),
            title=title,
            platform=dict(platform or {}),
            translate_to=data.get("translate_to"),
            settings_channel=data.get("settings_channel"),
            renames=dict(data.get("renames") or {}),
            replaces=data.get("replaces"),
            reuse_transcript=bool(data.get("reuse_transcript", False)),
            redo_note=data.get("redo_note"),
            redaction=Redaction.from_json(redaction) if isinstance(redaction, Mapping) else None,
        )

    def redo_key(self) -> str:
        """What tells one redo of a job from another: the options that shape its result."""
        shaping = {
            k: v
            for k, v in self.to_json().items()
            if k not in ("platform", "title", "replaces", "redo_note", "settings_channel")
        }
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """What an adapter hands the core when it sees a trigger.

    `message` is the platform message the trigger is about (a file share, a link, the
    target of a message action); `event_id` identifies a trigger that has no message
    (a slash command's trigger or interaction id). The dedupe key is built from the
    message if there is one, else from the event, plus the file or URL, so a retried or
    replayed event finds the job it already made.
    """

    platform: Platform
    workspace: str
    channel: str
    requester: str
    source: Source
    thread: str | None = None
    message: str | None = None
    event_id: str | None = None
    options: JobOptions = field(default_factory=JobOptions)
    audio_duration: float | None = None
    #: the job this one redoes (a new job, in the same thread, whose result replaces it)
    redo_of: str | None = None
    #: messages already posted for this job (a redo shares its status message)
    posted: Mapping[str, str] = field(default_factory=dict)
    #: who shared the recording, when not `requester` (the Transcribe shortcut on another
    #: person's message): they, the requester or an admin may `forget` it
    author: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "platform", Platform(self.platform))
        if self.message is None and self.event_id is None:
            raise ValueError("an intake needs the message id or the id of the triggering event")

    @property
    def dedupe_key(self) -> str:
        origin = self.message if self.message is not None else f"event:{self.event_id}"
        parts = [self.platform.value, self.workspace, self.channel, origin, self.source.identity]
        if self.redo_of is not None:
            # A redo of the same job with the same options is the same redo.
            parts += ["redo", self.redo_of, self.options.redo_key()]
        key = ":".join(parts)
        if len(key) > 255:  # the column's width; ids this long are not expected
            key = f"{self.platform.value}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return key


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job as stored. Change it through `JobStore`, never in place."""

    id: str
    platform: Platform
    workspace: str
    channel: str
    thread: str | None
    message: str | None
    requester: str
    source: Source
    options: JobOptions
    state: JobState
    transcript_id: str | None
    #: failed attempts of the current step (submission, delivery), for the backoff
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    audio_duration: float | None
    #: ids of messages already posted, by delivery step, so delivery resumes, not repeats
    posted: Mapping[str, str]
    lease_owner: str | None
    lease_expires_at: datetime | None
    dedupe_key: str
    #: AssemblyAI could not fetch the platform's public link to the file, so it is streamed
    direct_failed: bool = False
    #: polls of the transcript since it was submitted (apart from `attempts`)
    polls: int = 0
    #: when AssemblyAI accepted the transcript (for the poll schedule, across restarts)
    submitted_at: datetime | None = None
    #: the audio URL handed to AssemblyAI (marked with the job's id), and when that
    #: submission began: while set and unanswered, a lost answer is looked for first
    audio_url: str | None = None
    submit_started_at: datetime | None = None
    #: the job this one redoes
    redo_of: str | None = None
    #: the people offered to speaker identification: (member id, name as sent)
    people: tuple[tuple[str, str], ...] = ()
    #: the speakers its result shows: (speaker as AssemblyAI has it, label shown); None
    #: until a result is delivered (a failure never has them)
    speakers: tuple[tuple[str, str], ...] | None = None
    #: who shared the recording when not the requester (see IntakeRecord.author)
    author: str | None = None
    #: seconds of audio AssemblyAI billed (its audio_duration, the window applied) and the
    #: model it used, once the transcript is done
    billed_seconds: float | None = None
    speech_model: str | None = None
    #: the most this job may transcribe under the monthly budget (seconds); None: no budget
    budget_seconds: float | None = None
    #: when its transcript was deleted at AssemblyAI (DELETE_AFTER_DELIVERY, forget)
    transcript_deleted_at: datetime | None = None

    @property
    def sharer(self) -> str:
        """Who shared the recording: its author, else whoever asked."""
        return self.author or self.requester

    def step_posted(self, step: DeliveryStep) -> str | None:
        """The id of the message posted for `step`, None if it was not posted yet."""
        return self.posted.get(step.value)


class JobFields(TypedDict, total=False):
    """Fields a transition may set together with the state."""

    transcript_id: str | None
    last_error: str | None
    attempts: int
    polls: int
    submitted_at: datetime | None
    audio_url: str | None
    submit_started_at: datetime | None
    next_attempt_at: datetime
    audio_duration: float | None
    direct_failed: bool
    #: stored as JSON lists: [[member id, name], ...] and [[speaker, label], ...]
    people: list[list[str]] | None
    speakers: list[list[str]] | None
    billed_seconds: float | None
    speech_model: str | None
    transcript_deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChannelPreferences:
    """What a channel chose beyond auto-transcribe (None: the deployment's default)."""

    names: bool | None = None  # speaker identification by the platform's names
    summary: bool | None = None  # the AI summary (None: AI_SUMMARY)
    translate_to: str | None = None  # translate every result into this language
    keyterms: tuple[str, ...] = ()
    spellings: tuple[tuple[tuple[str, ...], str], ...] = ()  # (from phrases, to)
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """What was set for one channel; None where nothing was (the deployment's default
    applies)."""

    platform: Platform
    workspace: str
    channel: str
    policy: ChannelPolicy | None
    updated_by: str
    updated_at: datetime
    redact_pii: bool | None = None
    redact_pii_audio: bool | None = None

    @property
    def auto_transcribe(self) -> bool | None:
        """The old switch: whether the policy is `auto` (None: no policy set)."""
        return None if self.policy is None else self.policy is ChannelPolicy.AUTO


@dataclass(frozen=True, slots=True)
class Limits:
    """How many unfinished jobs one person, and one channel, may have at once."""

    per_user: int
    per_channel: int


@dataclass(frozen=True, slots=True)
class Budget:
    """Hours of audio each workspace may transcribe per calendar month (UTC; None: no
    limit), and the most one job can bill when its length is not known
    (MAX_DURATION_MINUTES): what such a job reserves in the usage ledger."""

    hours: float | None
    longest: float
    #: a recording of unknown length is taken in with less of the budget than it may need,
    #: and transcribed up to what is left, but not with less than this (seconds)
    min_slice: float = 60.0

    @property
    def limited(self) -> bool:
        return self.hours is not None

    @property
    def seconds(self) -> float:
        return float("inf") if self.hours is None else self.hours * 3600.0


class Refusal(enum.StrEnum):
    USER_LIMIT = "user_limit"
    CHANNEL_LIMIT = "channel_limit"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of an intake: the job (new or the one the dedupe key already had), or
    why it was refused. For a budget refusal, `left` is what the month had left and
    `needed` what the recording needs (None: its length is not known)."""

    job: Job | None
    created: bool
    refusal: Refusal | None = None
    left: float | None = None
    needed: float | None = None
