"""Every sentence people read, written once, here, for every surface (the terminal, Slack,
Discord): what went wrong and what to do, the status line, the replies to requests.

Texts that name a platform's own things (Slack scopes, Discord permissions, their
commands' syntax) live in the adapter's `texts` module; everything else is here. All are
plain text: an adapter escapes them for its markup."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from bot.config import redact_url
from bot.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    PlatformError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SourceError,
    StoreError,
    TranscriptFailed,
    TransportError,
)


def explain(exc: BaseException) -> str:
    """One line (no traceback, no secret) describing `exc` for the person who asked."""
    match exc:
        case ConfigError():
            return "; ".join(exc.problems)
        case SourceError() | StoreError():
            return str(exc)
        case PlatformError():
            return exc.message
        case AuthenticationError():
            return (
                "AssemblyAI rejected the API key (401): check ASSEMBLYAI_API_KEY "
                "(AssemblyAI dashboard, API keys)"
            )
        case RateLimitError():
            return (
                "AssemblyAI is rate-limiting this account (429) and retries did not get through: "
                "try again in a few minutes"
            )
        case ServerError():
            return (
                f"AssemblyAI had a server error ({exc.status}) and retries did not get through: "
                f"{exc.message}"
            )
        case APIError():
            return f"AssemblyAI refused the request ({exc.status}): {exc.message}"
        case RequestTimeout() | TransportError():
            return f"could not reach AssemblyAI: {exc.message}"
        case TranscriptFailed():
            return assemblyai_failed(exc.message)
        case OSError():
            target = f" {exc.filename}" if exc.filename else ""
            return f"cannot access{target}: {exc.strerror or exc}"
    return f"unexpected error ({type(exc).__name__}); the details are in the log"


# -- the thread: status line and outcomes ---------------------------------------------

SHUTTING_DOWN = "threadscribe is restarting: please try again in a minute"
EMPTY_FILE = "that file is empty (0 bytes): there is nothing to transcribe"
RENDER_FAILED = "the transcript arrived but could not be formatted; the details are in the log"
TRANSCRIPT_DELETED = "the transcript was deleted at AssemblyAI before it could be posted"


def _megabytes(size: float) -> str:
    return f"{size / 1_000_000:,.0f} MB" if size >= 10_000_000 else f"{size / 1_000_000:.1f} MB"


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"


def download_stalled(platform: str, seconds: float) -> str:
    return (
        f"the download from {platform} stalled (nothing for too long, {seconds:.0f} s in "
        "all): trying again later"
    )


def upload_stalled(seconds: float) -> str:
    return f"the upload to AssemblyAI stalled ({seconds:.0f} s in all): trying again later"


def too_large(size: float, limit: float) -> str:
    return f"that file is {_megabytes(size)}; this workspace's limit is {_megabytes(limit)}"


def too_long(seconds: float, limit: float) -> str:
    return f"that recording lasts {_minutes(round(seconds))}; the limit is {_minutes(limit)}"


def user_limit(limit: int) -> str:
    return (
        f"you already have {limit} transcription{'s' if limit != 1 else ''} in progress: "
        "please wait for one to finish"
    )


def channel_limit(limit: int) -> str:
    return f"this channel already has {limit} transcriptions in progress: please wait a little"


def gave_up(message: str) -> str:
    return f"{message} (gave up after several tries)"


def assemblyai_failed(error: str | None) -> str:
    return f"AssemblyAI could not transcribe this audio: {unmarked(error or 'no reason given')}"


#: The job marker the engine adds to the audio URL it hands over (bot.engine.steps.marked);
#: AssemblyAI quotes that URL in its errors, and people need not read it.
_JOB_MARKER = re.compile(r"[#&]threadscribe-job=[0-9a-fA-F-]+")


def unmarked(text: str) -> str:
    return _JOB_MARKER.sub("", text)


def failed(reason: str) -> str:
    return f"Sorry, I could not transcribe this: {reason}"


def status_queued(ahead: int) -> str:
    if ahead == 0:
        return "⏳ Queued: starting in a moment"
    return f"⏳ Queued: {ahead} job{'s' if ahead != 1 else ''} ahead"


def status_working() -> str:
    return "⏳ Working on it"


def status_uploading() -> str:
    return "⬆️ Uploading the audio to AssemblyAI"


def status_transcribing(elapsed: float | None) -> str:
    if not elapsed:
        return "🎧 Transcribing"
    minutes, seconds = divmod(int(elapsed), 60)
    return f"🎧 Transcribing ({minutes}:{seconds:02d} so far)"


def status_done() -> str:
    return "✅ Transcribed"


def status_updating() -> str:
    return "✏️ Updating the transcript"


def status_redone() -> str:
    return "✅ Transcribed (redone)"


def status_redo_failed() -> str:
    return "❌ The redo did not work: the transcript stands as it was"


def status_failed() -> str:
    return "❌ Could not transcribe"


# -- replies to people who asked ---------------------------------------------------------

USAGE = "/transcribe <link to audio or video> [speakers=N] [lang=xx] [srt] [vtt]"
NO_MEDIA = "I found no audio or video in that message (files or links) to transcribe."
ALREADY = "That is already transcribed, or on its way: see the thread."
STARTED = "On it: I'll post the transcript in a thread in this channel."
NEED_LINK = f"Give me a link to an audio or video file. Usage: {USAGE}"
NO_JOBS = "You have no transcriptions in progress."
NOT_ALLOWED = (
    "Only workspace admins and owners (or the people in the bot's admin list) can turn "
    "auto-transcribe on or off."
)


def refused(reasons: Sequence[str]) -> str:
    """What a person is told when recordings they shared cannot be transcribed."""
    if len(reasons) == 1:
        return f"Sorry, I cannot transcribe this: {reasons[0]}."
    return "Sorry, I cannot transcribe some of these:\n" + "\n".join(f"- {r}" for r in reasons)


def not_media(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3]) + (" and more" if len(names) > 3 else "")
    return f"{shown}: not audio or video, so there is nothing to transcribe."


def file_unusable(title: str) -> str:
    return f"{title}: the platform did not say where the file is; share it again"


def link_refused(url: str, reason: str) -> str:
    return f"{redact_url(url)}: {reason}"


def links_left(count: int, limit: int) -> str:
    return (
        f"{count:,} more link{'s' if count != 1 else ''}: I look at {limit} links of a "
        "message at most; post the others in another message"
    )


def auto_changed(enabled: bool, channel: str) -> str:
    if enabled:
        return f"Auto-transcribe is on in {channel}: I'll transcribe audio and video shared here."
    return (
        f"Auto-transcribe is off in {channel}. People can still ask: the /transcribe "
        "command, a mention, or Transcribe on a message."
    )


#: What each unfinished state is called in `/transcribe status`.
STATE_WORDS = {
    "fetching": "uploading to AssemblyAI",
    "submitted": "transcribing",
    "completed": "posting the result",
    "failed": "posting what went wrong",
}


def queued(ahead: int) -> str:
    return "queued, next up" if ahead == 0 else f"queued, {ahead} ahead"


def status_lines(entries: Sequence[tuple[str, str]]) -> str:
    """`entries` are (what, state) pairs, oldest first."""
    lines = [f"{i}. {what}: {state}" for i, (what, state) in enumerate(entries, 1)]
    return "Your transcriptions in progress:\n" + "\n".join(lines)


# -- the terminal: `threadscribe transcribe` ------------------------------------------
# Checked before anything is uploaded or submitted, so a mistake costs nothing.


def _clock(seconds: float) -> str:
    """`2:05`, `1:02:05`; tenths when the time is not whole (`0:00.1`)."""
    tenths = round(seconds * 10)
    whole, tenth = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    return f"{text}.{tenth}" if tenth else text


def not_audio(name: str, kind: str | None) -> str:
    what = f" (it holds {kind})" if kind else ""
    return f"{name} does not appear to contain audio{what}: give an audio or video file"


def audio_too_short(name: str, seconds: float) -> str:
    return (
        f"{name} is too short ({seconds * 1000:.0f} ms): AssemblyAI needs at least 160 ms of audio"
    )


def audio_too_long(name: str, seconds: float, limit: float, by: str) -> str:
    return f"{name} lasts {_clock(seconds)}; {by} allows {_minutes(limit)} at most"


def window_too_long(seconds: float, limit: float, by: str) -> str:
    return (
        f"the part to transcribe lasts {_clock(seconds)}; {by} allows {_minutes(limit)} at "
        "most: choose a shorter part with --start/--end"
    )


def file_too_large(name: str, size: float, limit: float, by: str) -> str:
    return f"{name} is {_megabytes(size)}; {by} allows {_megabytes(limit)} at most"


def not_measured(name: str, *, have_ffprobe: bool) -> str:
    hint = "" if have_ffprobe else " (ffprobe, from ffmpeg, reads more formats)"
    return f"note: cannot tell how long {name} is{hint}: AssemblyAI will check it"


def capped_duration(minutes: float, start: float) -> str:
    end = _clock(start + minutes * 60)
    return (
        "note: the length of this audio is not known before AssemblyAI fetches it: "
        f"transcribing up to {end} at most (MAX_DURATION_MINUTES={minutes:g})"
    )


def end_not_after_start() -> str:
    return "--end must be after --start"


def window_too_short() -> str:
    return "--start and --end are less than 160 ms apart: AssemblyAI needs at least 160 ms"


def past_the_end(flag: str, at: float, name: str, length: float) -> str:
    return f"{flag} {_clock(at)} is past the end of {name}, which lasts {_clock(length)}"


def speakers_without_labels() -> str:
    return "--speakers counts speakers for the labels: it cannot go with --no-speaker-labels"


def unknown_language(code: str, close: list[str]) -> str:
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (
        f"--language {code} is not a language code AssemblyAI knows: {hint}Use a code such "
        "as en, en_us, fr or de, or leave it out to detect the language"
    )


def link_with_credentials(safe_url: str) -> str:
    return (
        f"{safe_url} carries a user name or password: it would be handed to AssemblyAI. "
        "Give a link that works without them, or download the file and give its path"
    )


def not_with_id(flag: str) -> str:
    return f"{flag} applies to new audio, not to a transcript picked up with --id"


def folder_missing(path: str) -> str:
    return f"cannot save {path}: its folder does not exist"


def not_a_folder(path: str, folder: str) -> str:
    return f"cannot save {path}: {folder} is not a folder"


def is_a_folder(flag: str, path: str) -> str:
    return f"{flag} {path} is a folder: give a file name"


def cannot_write(path: str, reason: str) -> str:
    return f"cannot write {path}: {reason}"


def cannot_save_here(folder: str, reason: str) -> str:
    return (
        f"cannot save the transcript in {folder}: {reason}. Choose where with --txt PATH, "
        "or skip it with --no-save"
    )


def same_output(first: str, second: str, path: str) -> str:
    return f"{first} and {second} both name {path}: give each its own file"


def overwrites_source(flag: str, path: str) -> str:
    return f"{flag} {path} is the audio itself: give another file name"


def deprecated_model(note: str) -> str:
    return f"threadscribe: warning: {note}"


def no_such_transcript(transcript_id: str, reason: str) -> str:
    return (
        f"AssemblyAI has no transcript {transcript_id} for this API key ({reason}): check the "
        "id, and ASSEMBLYAI_BASE_URL for a transcript made in the EU (api.eu.assemblyai.com)"
    )


def saved(path: str) -> str:
    return f"Saved {path}"


def interrupted(transcript_id: str) -> str:
    return (
        f"Stopped waiting. AssemblyAI keeps working on transcript {transcript_id}; pick it up "
        f"with: threadscribe transcribe --id {transcript_id}"
    )


# -- who gets transcribed, what it costs (bot/controls.py) ------------------------------

#: How each channel policy reads to people.
POLICY_WORDS = {
    "auto": "every recording shared here is transcribed",
    "on-request": "only recordings someone asks for are transcribed",
    "off": "nothing is transcribed here",
}
_WORKSPACE = {"slack": "workspace", "discord": "server"}


def not_enabled(platform: str, *, workspace: bool) -> str:
    """The bot is not enabled in this workspace (or server), or, with `workspace` False,
    in this channel."""
    where = f"this {_WORKSPACE.get(platform, 'workspace')}" if workspace else "this channel"
    return (
        f"threadscribe is not enabled in {where}: nothing here is transcribed. An admin "
        "can enable it in the bot's settings (ALLOWED_WORKSPACES, ALLOWED_GUILDS, "
        "ALLOWED_CHANNELS)"
    )


def transcription_off(*, direct: bool) -> str:
    if direct:
        return "I don't transcribe direct messages here: ask in a channel where I am"
    return "transcription is off in this channel: an admin can turn it on with /transcribe-settings"


OPTED_OUT_DM = (
    "you opted out of automatic transcription, so I left this one alone: use Transcribe "
    "on the message to have it transcribed, or opt back in"
)
SHARER_OPTED_OUT = (
    "the person who shared it opted out of transcription: only they can ask for their "
    "recordings to be transcribed"
)


def opted(opted_out: bool, *, changed: bool) -> str:
    if opted_out:
        already = "" if changed else " (you had already)"
        return (
            f"You opted out{already}: recordings you share are no longer transcribed "
            "automatically, and nobody else can ask for them. Your own requests still work."
        )
    already = "" if changed else " (you were not opted out)"
    return (
        f"You opted back in{already}: recordings you share are transcribed where the "
        "channel transcribes automatically."
    )


NOTHING_TO_FORGET = "I have no transcript of that message."
NOT_YOURS_TO_FORGET = (
    "Only the person who shared the recording, whoever asked for its transcript, or an "
    "admin can remove it."
)


def forgetting(titles: Sequence[str], running: Sequence[str]) -> str:
    shown = ", ".join(titles[:3]) + (f" and {len(titles) - 3} more" if len(titles) > 3 else "")
    text = (
        f"Forgetting {shown}: my posts about it are being removed, its transcript is "
        "deleted at AssemblyAI, and so is my record of it."
    )
    if running:
        text += (
            " It was still being transcribed: it is stopped here, and deleted at "
            "AssemblyAI as soon as AssemblyAI has finished it."
        )
    return text


def hours(seconds: float) -> str:
    """`2.5 h`, `45 min`, `30 s`: a usage figure."""
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def usd(amount: float) -> str:
    """`$12.34`; a small amount to the hundredth of a cent (`$0.0024`), not `$0.00`."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


def _month_day(moment: datetime) -> str:
    return f"{moment.day} {moment.strftime('%B')}"


def budget_size(budget_hours: float) -> str:
    """`50 h`, `7.5 h`; a budget under an hour in minutes or seconds."""
    return f"{budget_hours:g} h" if budget_hours >= 1 else hours(budget_hours * 3600)


def budget_refused(
    budget_hours: float, left: float | None, needed: float | None, resets: datetime
) -> str:
    """Why a job is refused for the monthly budget, naming it."""
    budget = f"this workspace's monthly transcription budget of {budget_size(budget_hours)}"
    reset = f"it starts again on {_month_day(resets)}"
    if needed is not None and left is not None and left > 0:
        return (
            f"that recording needs {hours(needed)}, and only {hours(left)} of {budget} "
            f"is left: {reset}, or an admin can raise MONTHLY_BUDGET_HOURS"
        )
    return f"{budget} is used up: {reset}, or an admin can raise MONTHLY_BUDGET_HOURS"


def budget_alert(percent: int, budget_hours: float, billed: float, resets: datetime) -> str:
    """What admins are told, once, at 80 % and at 100 % of the month's budget."""
    state = "is used up" if percent >= 100 else f"is {percent} % used"
    return (
        f"threadscribe: this month's transcription budget of {budget_size(budget_hours)} {state} "
        f"({hours(billed)} transcribed). New recordings are refused once it is used up; "
        f"it starts again on {_month_day(resets)} (UTC). Raise MONTHLY_BUDGET_HOURS to "
        "allow more."
    )


DELETED_RECEIPT = "🗑 Deleted at AssemblyAI after delivery"


def redacted_audio_unavailable(reason: str) -> str:
    return f"Redacted audio unavailable: {reason}"


def redacted_audio_link(url: str) -> str:
    return f"Redacted audio (too large to attach; the link works for 24 hours): {url}"


def cut_by_budget(seconds: float) -> str:
    return (
        f"✂️ Transcribed up to {_clock(seconds)}: that is what this workspace's monthly "
        "budget had left"
    )


# -- named speakers, the summary, vocabulary, redo (issue 11) -------------------------

SETTINGS_ADMINS_ONLY = (
    "Only the people who may change this channel's settings can do that (admins); the "
    "vocabulary is anyone's: vocab add, vocab remove."
)
SETTINGS_USAGE = (
    "Settings: names on|off, summary on|off, translate <language>|off, "
    "vocab add <words, …> | remove <words, …> | spell <words> as <Word> | unspell <Word> "
    "| list, settings"
)


def on_off(value: bool) -> str:
    return "on" if value else "off"


def names_changed(enabled: bool) -> str:
    if enabled:
        return (
            "Speaker names are on here: where AssemblyAI can tell who is who, transcripts "
            "show the people of this conversation by name."
        )
    return "Speaker names are off here: transcripts show Speaker A, Speaker B."


def summary_changed(enabled: bool) -> str:
    if enabled:
        return "The AI summary is on here: results start with points, decisions and action items."
    return "The AI summary is off here: results show the transcript and talk time only."


def translation_changed(language: str | None) -> str:
    if language is None:
        return "Results here are no longer translated."
    return f"Results here are translated into {language} (the original is attached)."


def translation_unsupported(code: str, language: str) -> str:
    return (
        f"AssemblyAI does not translate into {language} ({code}): choose another language, "
        "for example es, fr, de, pt or ja"
    )


def vocabulary_added(added: Sequence[str], total: int) -> str:
    words = ", ".join(added)
    return f"Added to this channel's vocabulary: {words}. It has {total:,} keyterms now."


def vocabulary_removed(removed: Sequence[str], missing: Sequence[str], total: int) -> str:
    parts = []
    if removed:
        parts.append(f"Removed: {', '.join(removed)}.")
    if missing:
        parts.append(f"Not in the vocabulary: {', '.join(missing)}.")
    parts.append(f"It has {total:,} keyterms now.")
    return " ".join(parts)


def vocabulary_over(problem: str) -> str:
    return f"Not added: the vocabulary would have {problem}. Remove some first (vocab remove)."


def spelling_added(rule: str) -> str:
    return f"Transcripts here now always write {rule}."


def spelling_removed(word: str, found: bool) -> str:
    if found:
        return f"Transcripts here no longer replace anything with {word}."
    return f"There is no spelling rule for {word} here."


TOO_MANY_SPELLINGS = (
    "This channel has 100 spelling rules already: remove one first (vocab unspell)."
)


def vocabulary_list(terms: Sequence[str], spellings: Sequence[str]) -> str:
    if not terms and not spellings:
        return (
            "This channel has no vocabulary yet. Add the names and jargon people use: "
            "vocab add Kubernetes, Thessaloniki"
        )
    lines = []
    if terms:
        shown = ", ".join(terms[:200]) + (
            f" and {len(terms) - 200:,} more" if len(terms) > 200 else ""
        )
        lines.append(f"Keyterms ({len(terms):,}): {shown}")
    if spellings:
        lines.append("Always written: " + "; ".join(spellings))
    return "\n".join(lines)


def settings_summary(
    *, names: bool, summary: bool, translate: str | None, terms: int, spellings: int
) -> str:
    return (
        f"Speaker names: {on_off(names)} · AI summary: {on_off(summary)} · "
        f"translation: {translate or 'off'} · vocabulary: {_count(terms, 'keyterm')}, "
        f"{_count(spellings, 'spelling')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# -- the result's actions --------------------------------------------------------------

NOT_THIS_CHANNEL = "That transcript is not from this channel."
JOB_GONE = "That transcript is too old: its record is gone. Share the recording again."
STILL_WORKING = "That transcript is still being made: try again when it is done."
REDO_UNDER_WAY = "A redo of that transcript is under way already: it replaces the result when done."
NOTHING_TO_RENAME = "There are no speakers to rename in that transcript."
RENAME_FAILED_JOB = "That transcription failed, so there are no speakers to rename: try Redo."
TRANSCRIPT_DELETED = (
    "Transcripts are deleted at AssemblyAI once posted here (DELETE_AFTER_DELIVERY), so "
    "this one cannot be renamed; Redo transcribes the recording again."
)
NAMES_UNCHANGED = "Nothing changed: the speakers keep their names."
REDO_SAME = "That is how it was transcribed already."
RENAMING = "Renaming the speakers: the transcript above updates in a moment."
ALREADY_REDONE = "That redo was made already: see the thread."


def name_too_long(limit: int) -> str:
    return f"A name can have at most {limit} characters."


def unknown_choice(choice: str) -> str:
    return f"I don't know how to redo with {choice!r}."


def redoing(what: str) -> str:
    return f"Redoing it with {what}: the result in the thread is replaced when it is done."


def redone(note: str) -> str:
    return f"Redone: {note[:1].upper()}{note[1:]}."


def speakers_renamed() -> str:
    return "speakers renamed"


def redo_failed(reason: str) -> str:
    return f"Sorry, the redo did not work: {reason}. The result above is unchanged."


def translation_failed(reason: str) -> str:
    return f"Translation unavailable ({reason}): showing the transcript as spoken."


# -- questions in a transcript's thread, search (bot/ask.py) --------------------------------

NOT_SAID = "The recording does not say."
EMPTY_QUESTION = (
    "Ask me a question about the recording, e.g. “what did we decide about the budget?”"
)
ANSWER_TRANSCRIPT_DELETED = (
    "I can't answer questions about this recording any more: its transcript was deleted "
    "at AssemblyAI (for privacy), and threadscribe keeps no copy."
)
NO_WORDS_TO_ANSWER = "There is no speech in this recording to answer from."
QUOTES_NOT_FOUND = (
    "(The model quoted words the transcript does not hold, so no quote is shown: check "
    "the transcript above.)"
)
PARTIAL_ANSWER = (
    "(The recording is long: this answer rests on the parts of it that share words with "
    "your question.)"
)


def question_limit(limit: int, minutes: int) -> str:
    return (
        f"You have asked {limit} question{'s' if limit != 1 else ''} in the last hour, as "
        f"many as this workspace allows: ask again in {minutes} minute"
        f"{'s' if minutes != 1 else ''}."
    )


def answer_failed(reason: str) -> str:
    return f"I could not answer that: {reason}. Ask again in a minute."


def transcript_unavailable(reason: str) -> str:
    return f"I could not read the transcript from AssemblyAI: {reason}. Ask again in a minute."


SEARCH_USAGE = "Usage: /transcribe search <words> (words or phrases, separated by commas)"


def search_too_many(limit: int) -> str:
    return f"Search for at most {limit} words or phrases at a time."


def search_phrase_too_long(phrase: str, limit: int) -> str:
    return f"A phrase may have at most {limit} words (AssemblyAI's word search): “{phrase}”."


def search_nothing(words: Sequence[str], searched: int, days: int) -> str:
    what = ", ".join(f"“{w}”" for w in words)
    if searched == 0:
        return f"No recording of this channel was transcribed in the last {days} days."
    return (
        f"{what} is not said in this channel's {searched} recording"
        f"{'s' if searched != 1 else ''} of the last {days} days."
    )


def search_found(words: Sequence[str], hits: int, searched: int, days: int) -> str:
    what = ", ".join(f"“{w}”" for w in words)
    return (
        f"{what}: found in {hits} of this channel's {searched} recording"
        f"{'s' if searched != 1 else ''} of the last {days} days, newest first."
    )


def search_skipped(count: int) -> str:
    return (
        f"{count} recording{'s' if count != 1 else ''} could not be searched (deleted at "
        "AssemblyAI, or AssemblyAI did not answer)."
    )


def search_none_searchable(count: int, days: int) -> str:
    return (
        f"None of this channel's {count} recording{'s' if count != 1 else ''} of the last "
        f"{days} days can be searched: their transcripts were deleted at AssemblyAI (for "
        "privacy), or AssemblyAI did not answer."
    )


def search_times(count: int) -> str:
    """How often a recording says the words: "1 time", "3 times"."""
    return _count(count, "time")


def search_older(count: int) -> str:
    """The recordings a search found beyond those it lists."""
    return f"and {_count(count, 'older recording')}"


def search_capped(limit: int) -> str:
    return f"Only the newest {limit} recordings were searched."
