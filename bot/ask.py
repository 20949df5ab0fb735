"""Ask the recording: questions answered in a transcript's thread, and search across a
channel's recordings, the same way on every platform.

    answered = await questions.ask(Question(..., text="what did Ada decide?"))
    results = await questions.search(ChannelRef(...), "warehouse, budget", by="U1")

Nothing new is stored. The job record holds the AssemblyAI transcript id: the transcript
is fetched when asked (kept a few minutes in a small in-memory cache), turned into timed,
speaker-labelled lines by `bot.conversation` (the one place that does so, as the summary
does), and sent to the LLM Gateway with the question, the thread's previous questions and
answers (the last few, kept in memory: a restart forgets them), and a JSON schema for
the answer and its quotes. Every quote is checked against the transcript: it is shown
with the speaker and the timestamp the transcript has, and a quote the transcript does
not hold is never shown. A deleted transcript (AssemblyAI's privacy settings, or
DELETE_AFTER_DELIVERY) and a failing gateway are said in the thread; a person asking too
often is told how long to wait.

Search uses AssemblyAI's `GET /v2/transcript/{id}/word-search` on the delivered
transcripts of the channel the command runs in (no other), of the last SEARCH_DAYS days,
newest first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from bot import conversation, messages
from bot.assemblyai import ChatAnswer
from bot.chat import (
    Answered,
    ChannelRef,
    Question,
    Quote,
    SearchHit,
    SearchResults,
    ThreadRef,
)
from bot.conversation import PART_CHARS, Line, complete_uncut
from bot.errors import AssemblyAIError, BadRequestError, NotFoundError, RequestTimeout
from bot.jobs import DeliveryStep, Job, JobStore
from bot.models import supports_structured_output
from bot.speakers import Person, Speakers
from bot.transcript import Transcript

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

#: Tokens an answer may take (a few sentences and their quotes); a cut answer is asked
#: for once more with CUT_RETRY_TOKENS.
MAX_TOKENS: Final = 800
CUT_RETRY_TOKENS: Final = 2_000
#: Tries per gateway call: the person is waiting in the thread.
ATTEMPTS: Final = 2
#: Parts (conversation.PART_CHARS each) sent with one question at most (about 50,000
#: tokens): a longer recording is answered from its parts that share the most words with
#: the question, and the answer says so.
MAX_PARTS: Final = 4
#: Previous questions and answers of the thread sent with a follow-up, and how much of
#: each answer.
HISTORY_TURNS: Final = 3
HISTORY_ANSWER_CHARS: Final = 1_500
HISTORY_THREADS: Final = 2_000
#: The question itself, at most (a pasted page is not a question).
MAX_QUESTION_CHARS: Final = 1_000
#: Transcripts kept in memory, their words at most (about 50 MB of them: a ten-hour
#: recording is some 100,000 words), and for how long (seconds).
CACHE_ENTRIES: Final = 16
CACHE_WORDS: Final = 300_000
CACHE_SECONDS: Final = 300.0
#: Recordings a question's thread is looked for among (the channel's newest).
THREAD_LOOKUP: Final = 500
#: Search: words or phrases at once, words a phrase (AssemblyAI's limit), recordings
#: searched, at once, timestamps shown per recording.
SEARCH_TERMS: Final = 5
PHRASE_WORDS: Final = 5
SEARCH_RECORDINGS: Final = 50
SEARCH_CONCURRENCY: Final = 4
SHOWN_TIMESTAMPS: Final = 5

_NULLABLE_STRING: Final = {"type": ["string", "null"]}
SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "quotes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "speaker": _NULLABLE_STRING,
                    "at": {"type": "string"},
                    "text": {"type": "string"},
                },
                "required": ["speaker", "at", "text"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["answer", "quotes"],
    "additionalProperties": False,
}
SCHEMA_NAME: Final = "grounded_answer"

_SYSTEM: Final = (
    "You answer questions about one recorded conversation, using only its transcript, "
    "which follows as lines `[mm:ss] Speaker: what they said`. Never use outside knowledge "
    "and never guess. Answer in one to three sentences, in the language of the question, "
    'as JSON: "answer", and "quotes": the transcript lines the answer relies on, each '
    'with "speaker" and "at" exactly as the line shows them and "text" copied word for '
    "word from it. If the transcript does not say, answer exactly "
    f'"{messages.NOT_SAID}" with no quotes.'
)
_WORD: Final = re.compile(r"[\w']+")
_SPACES: Final = re.compile(r"\s+")
#: Words that say nothing of what a question is about (for choosing a long recording's
#: parts).
_FILLER: Final = frozenset(
    "a an the and or but of to in on at for with about from by is are was were be been "
    "do does did what who whom whose when where why how which that this these those it "
    "its he she they we you i me my our your their them his her us said say says tell "
    "there here any some not no yes".split()
)


@dataclass(frozen=True, slots=True)
class _Turn:
    question: str
    answer: str


class TranscriptCache:
    """Transcripts fetched for questions, kept `seconds` at most, `entries` and `words`
    at most (the least recently used goes first; one longer than `words` is not kept): a
    burst of questions in one thread costs one GET, and memory stays bounded."""

    def __init__(
        self,
        entries: int = CACHE_ENTRIES,
        seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        words: int = CACHE_WORDS,
    ) -> None:
        self._entries = entries
        self._seconds = seconds
        self._clock = clock
        self._words = words
        self._kept: OrderedDict[str, tuple[float, Transcript]] = OrderedDict()

    def get(self, transcript_id: str) -> Transcript | None:
        kept = self._kept.get(transcript_id)
        if kept is None:
            return None
        if self._clock() - kept[0] > self._seconds:
            del self._kept[transcript_id]
            return None
        self._kept.move_to_end(transcript_id)
        return kept[1]

    def put(self, transcript: Transcript) -> None:
        if len(transcript.words) > self._words:
            return
        self._kept[transcript.id] = (self._clock(), transcript)
        self._kept.move_to_end(transcript.id)
        while len(self._kept) > self._entries or self.words > self._words:
            self._kept.popitem(last=False)

    @property
    def words(self) -> int:
        return sum(len(t.words) for _at, t in self._kept.values())

    def __len__(self) -> int:
        return len(self._kept)


class RateLimit:
    """At most `limit` questions per person in any `window` seconds."""

    def __init__(
        self, limit: int, window: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._window = window
        self._clock = clock
        self._asked: dict[tuple[str, ...], deque[float]] = {}

    def wait(self, who: tuple[str, ...]) -> float | None:
        """None, and the question counted, if `who` may ask now; else the seconds until
        they may."""
        now = self._clock()
        times = self._asked.setdefault(who, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= self.limit:
            return self._window - (now - times[0])
        times.append(now)
        if len(self._asked) > 10_000:  # people who stopped asking
            for key in [k for k, v in self._asked.items() if not v or now - v[-1] >= self._window]:
                del self._asked[key]
        return None


class Questions:
    """The core's side of questions and search (bot.chat.Core's `ask` and `search`)."""

    def __init__(
        self,
        engine: Engine,
        store: JobStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._store = store
        config = engine.config
        self.cache = TranscriptCache(clock=clock)
        self.limit = RateLimit(config.questions_per_hour, clock=clock)
        self._history: OrderedDict[tuple[str, ...], list[_Turn]] = OrderedDict()

    # -- questions -----------------------------------------------------------------------

    async def about_a_transcript(self, question: Question) -> bool:
        return await self._job_of(question) is not None

    async def ask(self, question: Question) -> Answered | None:
        job = await self._job_of(question)
        if job is None:
            return None
        outcome = await self._answer(question, job)
        platform = question.platform.value
        kind = "answered" if outcome.ok else ("limited" if outcome.private else "failed")
        self._engine.metrics.questions.labels(platform, kind).inc()
        return outcome

    async def _job_of(self, question: Question) -> Job | None:
        """The job whose result the question replies to, else the one whose thread it is
        in: the newest with a result out (a redo's replaces the one it redoes)."""
        channels = {question.channel, question.settings_channel or question.channel}
        retention = self._engine.config.retention
        since = self._store.now() - retention if retention is not None else None
        jobs = await self._store.delivered_in(
            question.platform,
            question.workspace,
            sorted(channels),
            since=since,
            limit=THREAD_LOOKUP,
        )
        jobs = [job for job in jobs if job.speakers is not None]  # a failure has no transcript
        if question.replied_to is not None:
            for job in jobs:  # newest first
                if question.replied_to in job.posted.values():
                    return job
        # A mention in the thread, or a reply there to another of the bot's messages (an
        # answer, asked more about).
        for job in jobs:
            roots = {job.thread, job.message, job.step_posted(DeliveryStep.STATUS)}
            if question.thread is not None and question.thread in roots:
                return job
        return None

    async def _answer(self, question: Question, job: Job) -> Answered:
        text = " ".join(question.text.split())
        if not text:
            return Answered(messages.EMPTY_QUESTION, ok=False, private=True, job_id=job.id)
        who = (question.platform.value, question.workspace, question.requester)
        wait = self.limit.wait(who)
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            said = messages.question_limit(self.limit.limit, minutes)
            return Answered(said, ok=False, private=True, job_id=job.id)
        text = _named(text, job)[:MAX_QUESTION_CHARS]
        transcript = await self._transcript(job)
        if isinstance(transcript, Answered):
            return transcript
        people = tuple(Person(i, n) for i, n in job.people)
        shown = Speakers.of(transcript, people, job.options.renames)
        lines = conversation.lines(transcript, shown)
        if not lines:
            return Answered(messages.NO_WORDS_TO_ANSWER, ok=False, job_id=job.id)
        chosen, partial = relevant(lines, text)
        key = (question.platform.value, question.workspace, job.id, question.thread or "")
        history = self._history.get(key, [])
        model = self._engine.config.llm_model
        try:
            answer = await self._complete(
                question_messages(chosen, text, history, model=model), model
            )
        except RequestTimeout:
            return self._failed(job, "the LLM Gateway did not answer in time")
        except AssemblyAIError as exc:
            log.warning("question unanswered: %s", exc.message, extra={"job": job.id})
            return self._failed(job, _gateway_said(exc))
        if answer is None:
            return self._failed(job, "the model's answer did not fit in its token limit")
        await self._count(answer, job, question, model)
        said, quotes, unfound = parse(answer.content, lines)
        if not said and not quotes:
            said = messages.NOT_SAID
        if unfound and not quotes:
            said = f"{said}\n{messages.QUOTES_NOT_FOUND}"
        self._remember(key, _Turn(text, _history_text(said, quotes)))
        return Answered(said, quotes, job_id=job.id, partial=partial)

    def _failed(self, job: Job, reason: str) -> Answered:
        return Answered(messages.answer_failed(reason), ok=False, job_id=job.id)

    async def _transcript(self, job: Job) -> Transcript | Answered:
        assert job.transcript_id is not None
        if job.transcript_deleted_at is not None:  # DELETE_AFTER_DELIVERY said so: no GET
            return Answered(messages.ANSWER_TRANSCRIPT_DELETED, ok=False, job_id=job.id)
        found = self.cache.get(job.transcript_id)
        if found is None:
            try:
                found = await self._engine.client.get(job.transcript_id)
            except (NotFoundError, BadRequestError):
                # AssemblyAI answers an id it no longer knows with 400 (or 404).
                return Answered(messages.ANSWER_TRANSCRIPT_DELETED, ok=False, job_id=job.id)
            except RequestTimeout:
                reason = "AssemblyAI did not answer in time"
                return Answered(messages.transcript_unavailable(reason), ok=False, job_id=job.id)
            except AssemblyAIError as exc:
                return Answered(
                    messages.transcript_unavailable(exc.message), ok=False, job_id=job.id
                )
            if not found.deleted:
                self.cache.put(found)
        if found.deleted:
            return Answered(messages.ANSWER_TRANSCRIPT_DELETED, ok=False, job_id=job.id)
        return found

    async def _complete(self, prompt: list[dict[str, str]], model: str) -> ChatAnswer | None:
        return await complete_uncut(
            self._engine.client,
            prompt,
            model=model,
            tokens=(MAX_TOKENS, CUT_RETRY_TOKENS),
            schema=SCHEMA,
            schema_name=SCHEMA_NAME,
            attempts=ATTEMPTS,
        )

    async def _count(self, answer: ChatAnswer, job: Job, question: Question, model: str) -> None:
        """The tokens of one answer: the usage ledger (`/transcribe usage`), a metric and
        a log line."""
        tokens = self._engine.metrics.llm_tokens
        tokens.labels("question", "input").inc(answer.input_tokens)
        tokens.labels("question", "output").inc(answer.output_tokens)
        await self._store.usage.tokens(
            platform=question.platform,
            workspace=question.workspace,
            channel=question.channel,
            person=question.requester,
            purpose="question",
            model=model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
        )
        log.info(
            "question answered",
            extra={
                "job": job.id,
                "input_tokens": answer.input_tokens,
                "output_tokens": answer.output_tokens,
            },
        )

    def _remember(self, key: tuple[str, ...], turn: _Turn) -> None:
        turns = self._history.setdefault(key, [])
        turns.append(turn)
        del turns[:-HISTORY_TURNS]
        self._history.move_to_end(key)
        while len(self._history) > HISTORY_THREADS:
            self._history.popitem(last=False)

    # -- search --------------------------------------------------------------------------

    async def search(self, where: ChannelRef, words: str, *, by: str) -> SearchResults:
        days = self._engine.config.search_days
        terms = search_terms(words)
        if isinstance(terms, str):
            return SearchResults((), refused=terms, days=days)
        self._engine.metrics.searches.labels(where.platform.value).inc()
        since = self._store.now() - timedelta(days=days)
        jobs = [
            job
            for job in await self._store.delivered_in(
                where.platform,
                where.workspace,
                [where.channel],
                since=since,
                limit=SEARCH_RECORDINGS + 1,
            )
            if job.speakers is not None
        ]
        notes = []
        if len(jobs) > SEARCH_RECORDINGS:
            jobs = jobs[:SEARCH_RECORDINGS]
            notes.append(messages.search_capped(SEARCH_RECORDINGS))
        gate = asyncio.Semaphore(SEARCH_CONCURRENCY)

        async def one(job: Job) -> SearchHit | Exception | None:
            assert job.transcript_id is not None
            if job.transcript_deleted_at is not None:  # nothing left to search at AssemblyAI
                return NotFoundError("deleted after delivery")
            async with gate:
                try:
                    found = await self._engine.client.word_search(job.transcript_id, terms)
                except (NotFoundError, BadRequestError, RequestTimeout) as exc:
                    return exc  # deleted, or not answering: said, not fatal
                except AssemblyAIError as exc:
                    log.warning("word search failed: %s", exc.message, extra={"job": job.id})
                    return exc
            if found.total_count <= 0:
                return None
            starts = sorted(start for m in found.matches for start, _end in m.timestamps)
            thread = ThreadRef.of(job, thread=_thread_root(job))
            return SearchHit(
                title=thread.title,
                where=thread,
                result_message=job.step_posted(DeliveryStep.RESULT),
                at=tuple(starts[:SHOWN_TIMESTAMPS]),
                count=found.total_count,
                delivered_at=job.created_at,
            )

        outcomes = await asyncio.gather(*(one(job) for job in jobs))
        hits = tuple(o for o in outcomes if isinstance(o, SearchHit))
        skipped = sum(1 for o in outcomes if isinstance(o, Exception))
        log.info(
            "search",
            extra={"searched": len(jobs), "hits": len(hits), "skipped": skipped, "by": by},
        )
        if jobs and skipped == len(jobs):
            refused = messages.search_none_searchable(skipped, days)
            return SearchResults(terms, refused=refused, days=days)
        if skipped:
            notes.append(messages.search_skipped(skipped))
        return SearchResults(terms, hits, len(jobs) - skipped, tuple(notes), days=days)


def _gateway_said(exc: AssemblyAIError) -> str:
    """What the gateway answered, in one line: its status and its own message (an edge's
    page without one is named by its status alone)."""
    status = getattr(exc, "status", None)
    if status is None:  # no connection, or an answer that was not one
        return exc.message
    if exc.message.startswith("HTTP "):
        return f"the LLM Gateway answered {exc.message}"
    return f"the LLM Gateway answered {status}: {exc.message}"


_PERSON: Final = re.compile(r"<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>")


def _named(text: str, job: Job) -> str:
    """People mentioned in a question by the names the recording knows them by."""
    names = dict(job.people)
    return _PERSON.sub(lambda m: names.get(m.group(1), "someone"), text)


def _thread_root(job: Job) -> str | None:
    """The thread a job's result is in, when the bot started it (a slash command)."""
    return None if (job.thread or job.message) else job.step_posted(DeliveryStep.STATUS)


def search_terms(words: str) -> tuple[str, ...] | str:
    """`warehouse, new office` -> the words and phrases to search for; a string saying
    what is wrong otherwise."""
    terms = tuple(dict.fromkeys(" ".join(t.split()) for t in words.split(",") if t.strip()))
    if not terms:
        return messages.SEARCH_USAGE
    if len(terms) > SEARCH_TERMS:
        return messages.search_too_many(SEARCH_TERMS)
    for term in terms:
        if len(term.split()) > PHRASE_WORDS:
            return messages.search_phrase_too_long(term, PHRASE_WORDS)
    return terms


# -- the request and its answer -------------------------------------------------------------


def relevant(lines: Sequence[Line], question: str) -> tuple[Sequence[Line], bool]:
    """The transcript to send with the question: all of it if it fits MAX_PARTS parts;
    else the parts sharing the most words with the question (in order), and True."""
    pieces = conversation.parts(lines, PART_CHARS)
    if len(pieces) <= MAX_PARTS:
        return lines, False
    asked = _content_words(question)
    scored = sorted(
        range(len(pieces)),
        key=lambda i: (-sum(len(asked & _content_words(line.text)) for line in pieces[i]), i),
    )
    keep = sorted(scored[:MAX_PARTS])
    return [line for i in keep for line in pieces[i]], True


def question_messages(
    lines: Sequence[Line], question: str, history: Sequence[_Turn], *, model: str
) -> list[dict[str, str]]:
    """The request: the instructions, the transcript, the thread's previous questions and
    answers, then the question."""
    shape = ""
    if not supports_structured_output(model):
        shape = "\n\nThe JSON object must follow this JSON Schema:\n" + json.dumps(SCHEMA)
    out = [
        {"role": "system", "content": _SYSTEM + shape},
        {"role": "user", "content": "Transcript:\n" + conversation.as_text(lines)},
    ]
    for turn in history:
        out.append({"role": "user", "content": turn.question})
        out.append({"role": "assistant", "content": turn.answer})
    out.append({"role": "user", "content": question})
    return out


def parse(content: str, lines: Sequence[Line]) -> tuple[str, tuple[Quote, ...], int]:
    """The model's answer, its quotes as the transcript has them (speaker, timestamp),
    and how many quotes the transcript does not hold (never shown)."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return " ".join(content.split()), (), 0  # a model answering in words
    answer = data.get("answer")
    said = " ".join(answer.split()) if isinstance(answer, str) else ""
    raw = data.get("quotes")
    quotes: list[Quote] = []
    unfound = 0
    hours = any(line.start >= 3_600_000 for line in lines)
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        found = find_quote(item["text"], conversation.parse_timestamp(item.get("at")), lines)
        if found is None:
            unfound += 1
            continue
        quote = Quote(found.speaker, found.start, " ".join(item["text"].split()), hours)
        if quote not in quotes:
            quotes.append(quote)
    return said, tuple(quotes), unfound


def find_quote(text: str, at: int | None, lines: Sequence[Line]) -> Line | None:
    """The transcript line holding `text` (word for word, case and punctuation aside),
    the one nearest `at` when several do."""
    wanted = _normal(text)
    if len(wanted) < 3:
        return None
    holding = [line for line in lines if wanted in _normal(line.text)]
    if not holding:
        return None
    if at is None:
        return holding[0]
    return min(holding, key=lambda line: abs(line.start - at))


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _FILLER}


def _history_text(said: str, quotes: Sequence[Quote]) -> str:
    """An answer as the next request sees it: the text and its quotes, bounded."""
    lines = [said]
    for q in quotes:
        at = conversation.Line(q.speaker, q.at, q.text).as_text(hours=q.hours)
        lines.append(at)
    return _SPACES.sub(" ", " ".join(lines))[:HISTORY_ANSWER_CHARS]
