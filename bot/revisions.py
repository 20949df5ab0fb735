"""What people change after the fact, the same way on every platform: a channel's
preferences (speaker names, the summary, a translation, the vocabulary), and a delivered
result's speakers (Rename) or options (Redo).

A redo is a new job, linked to the one it redoes (`redo_of`) and taken in like any other
(limits, dedupe): its dedupe key holds the options, so clicking the same choice twice
makes one job. It shares the old job's status message, and its result replaces the old
result in place (`JobOptions.replaces`). A redo that changes only how the transcript is
shown (renamed speakers, a translation, subtitles) takes over the old job's transcript
(`reuse_transcript`) rather than paying for a new one, unless transcripts are deleted
after delivery. A redo that fails says so in the thread and leaves the old result alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from bot import messages, vocabulary
from bot.chat import (
    Answer,
    ChannelRef,
    Controls,
    JobRef,
    MenuGroup,
    MenuItem,
    RenameField,
    RenameForm,
)
from bot.errors import OptionsError
from bot.jobs import DeliveryStep, IntakeRecord, Job, JobOptions, JobState, JobStore
from bot.models import (
    ACCEPTED_SPEECH_MODELS,
    SPEAKER_NAME_MAX_CHARS,
    TRANSLATION_LANGUAGES,
    speech_model_problem,
)
from bot.render import language_name, speaker_label

if TYPE_CHECKING:
    from bot.engine import Engine, EngineConfig

log = logging.getLogger(__name__)

#: The languages the Redo menu offers besides the one detected (AssemblyAI's most used).
MENU_LANGUAGES: Final = ("en", "es", "fr", "de", "it", "pt", "nl", "ja", "zh", "hi", "ar", "ru")
MENU_SPEAKERS: Final = (1, 2, 3, 4, 5, 6)
MENU_TRANSLATIONS: Final = ("en", "es", "fr", "de", "it", "pt", "nl", "ja", "zh", "ko", "ar")


def redo_menu(job: Job, language: str | None, models: tuple[str, ...]) -> tuple[MenuGroup, ...]:
    """The Redo choices for a result: languages (the one detected first), speaker counts,
    translations, the deployment's speech models, and again as it is (a changed
    vocabulary)."""
    used = (language or "").split("_")[0]
    languages = [used] if used else []
    languages += [code for code in MENU_LANGUAGES if code != used]
    how = " (as now)" if job.options.language_code else " (detected)"
    lang_items = tuple(
        MenuItem(f"{language_name(code)}{how if code == used else ''}", f"lang:{code}")
        for code in languages
    )
    speakers = tuple(
        MenuItem(f"{n} speaker{'s' if n != 1 else ''}", f"speakers:{n}") for n in MENU_SPEAKERS
    )
    translations = [
        MenuItem(f"{language_name(code)}", f"translate:{code}")
        for code in MENU_TRANSLATIONS
        if code != used
    ]
    if job.options.translate_to:
        translations.insert(0, MenuItem("No translation", "translate:off"))
    groups = [
        MenuGroup("Language", lang_items, "lang", used),
        MenuGroup("Speakers", speakers, "speakers", str(job.options.speakers_expected or "")),
        MenuGroup("Translate to", tuple(translations), "translate", job.options.translate_to or ""),
    ]
    chosen = job.options.speech_models or models
    if len(models) > 1:
        groups.append(
            MenuGroup(
                "Speech model",
                tuple(MenuItem(m, f"model:{m}") for m in models if (m,) != tuple(chosen)),
                "model",
            )
        )
    groups.append(MenuGroup("Again", (MenuItem("Again, with this channel's vocabulary", "again"),)))
    return tuple(groups)


class Revisions:
    """The core's side of settings commands, Rename and Redo (bot.chat.Core)."""

    def __init__(self, engine: Engine, store: JobStore) -> None:
        self._engine = engine
        self._store = store

    @property
    def _config(self) -> EngineConfig:
        return self._engine.config

    # -- the result's controls -----------------------------------------------------------

    def controls(self, job: Job, language: str | None, speakers: int) -> Controls:
        rename = speakers > 0 and not self._config.delete_after_delivery
        return Controls(job.id, rename, redo_menu(job, language, self._config.speech_models))

    # -- preferences ---------------------------------------------------------------------

    async def configure(self, where: ChannelRef, command: str, *, by: str, admin: bool) -> str:
        words = command.strip().split(None, 1)
        verb = words[0].lower() if words else "settings"
        rest = words[1].strip() if len(words) > 1 else ""
        try:
            if verb in ("settings", "show"):
                return await self._describe(where)
            if verb in ("vocab", "vocabulary"):
                return await self._vocabulary(where, rest, by=by)
            if verb not in ("names", "summary", "translate", "translation"):
                return messages.SETTINGS_USAGE
            if not admin:
                return messages.SETTINGS_ADMINS_ONLY
            return await self._setting(where, verb, rest.lower(), by=by)
        except OptionsError as exc:
            return str(exc)

    async def _describe(self, where: ChannelRef) -> str:
        prefs = await self._store.preferences.get(where.platform, where.workspace, where.channel)
        summary = self._config.ai_summary if prefs.summary is None else prefs.summary
        return messages.settings_summary(
            names=prefs.names is not False,
            summary=summary,
            translate=language_name(prefs.translate_to) if prefs.translate_to else None,
            terms=len(prefs.keyterms),
            spellings=len(prefs.spellings),
        )

    async def _setting(self, where: ChannelRef, verb: str, value: str, *, by: str) -> str:
        store = self._store.preferences
        at = (where.platform, where.workspace, where.channel)
        if verb in ("names", "summary"):
            if value not in ("on", "off"):
                return messages.SETTINGS_USAGE
            enabled = value == "on"
            if verb == "names":
                await store.update(*at, by=by, names=enabled)
            else:
                await store.update(*at, by=by, summary=enabled)
            log.info("%s %s in %s by %s", verb, value, where.channel, by)
            return (
                messages.names_changed(enabled)
                if verb == "names"
                else messages.summary_changed(enabled)
            )
        if value in ("off", "none", ""):
            await store.update(*at, by=by, translate_to=None)
            return messages.translation_changed(None)
        code = translation_target(value)
        await store.update(*at, by=by, translate_to=code)
        return messages.translation_changed(language_name(code))

    async def _vocabulary(self, where: ChannelRef, text: str, *, by: str) -> str:
        words = text.split(None, 1)
        action = words[0].lower() if words else "list"
        rest = words[1] if len(words) > 1 else ""
        store = self._store.preferences
        at = (where.platform, where.workspace, where.channel)
        prefs = await store.get(*at)
        if action in ("list", "show"):
            return messages.vocabulary_list(prefs.keyterms, [_rule(s) for s in prefs.spellings])
        if action == "add":
            terms = vocabulary.parse_terms(rest)
            merged = vocabulary.merged(prefs.keyterms, terms)
            problem = vocabulary.too_many(len(merged), self._config.speech_models)
            if problem is not None:
                return messages.vocabulary_over(problem)
            await store.update(*at, by=by, keyterms=merged)
            return messages.vocabulary_added(terms, len(merged))
        if action in ("remove", "delete"):
            terms = vocabulary.parse_terms(rest)
            kept, missing = vocabulary.without(prefs.keyterms, terms)
            removed = [t for t in terms if t not in missing]
            if removed:
                await store.update(*at, by=by, keyterms=kept)
            return messages.vocabulary_removed(removed, missing, len(kept))
        if action == "spell":
            rule = vocabulary.parse_spelling(rest)
            rules = [s for s in prefs.spellings if s[1] != rule.to]
            if len(rules) >= vocabulary.MAX_SPELLINGS:
                return messages.TOO_MANY_SPELLINGS
            rules.append((rule.froms, rule.to))
            await store.update(*at, by=by, spellings=rules)
            return messages.spelling_added(str(rule))
        if action == "unspell":
            word = rest.strip().strip("\"'“”")
            rules = [s for s in prefs.spellings if s[1].casefold() != word.casefold()]
            found = len(rules) != len(prefs.spellings)
            if found:
                await store.update(*at, by=by, spellings=rules)
            return messages.spelling_removed(word, found)
        return messages.SETTINGS_USAGE

    # -- rename --------------------------------------------------------------------------

    async def rename_form(self, ref: JobRef) -> RenameForm | Answer:
        job = await self._renamable(ref)
        if isinstance(job, Answer):
            return job
        assert job.speakers is not None
        fields = []
        for index, (speaker, label) in enumerate(job.speakers):
            shown = speaker_label(speaker)
            fields.append(RenameField(str(index), shown, "" if label == shown else label))
        return RenameForm(job.id, tuple(fields))

    async def rename(self, ref: JobRef, names: Mapping[str, str], *, by: str) -> Answer:
        job = await self._renamable(ref)
        if isinstance(job, Answer):
            return job
        assert job.speakers is not None
        errors = {
            key: messages.name_too_long(SPEAKER_NAME_MAX_CHARS)
            for key, name in names.items()
            if len(" ".join(name.split())) > SPEAKER_NAME_MAX_CHARS
        }
        if errors:
            return Answer(messages.name_too_long(SPEAKER_NAME_MAX_CHARS), ok=False, errors=errors)
        renames = dict(job.options.renames)
        for index, (speaker, _label) in enumerate(job.speakers):
            given = " ".join(names.get(str(index), "").split())
            default = speaker_label(speaker)
            if not given:
                continue
            if given == default:
                renames.pop(speaker, None)
            else:
                renames[speaker] = given
        if renames == dict(job.options.renames):
            return Answer(messages.NAMES_UNCHANGED)
        options = replace(job.options, renames=renames, redo_note=messages.speakers_renamed())
        return await self._submit(job, options, by=by, reuse=True, started=messages.RENAMING)

    async def _renamable(self, ref: JobRef) -> Job | Answer:
        """The job `ref` names, if its speakers can be renamed; else what to tell."""
        job = await self._job(ref)
        if isinstance(job, Answer):
            return job
        if job.state is not JobState.DELIVERED:
            return Answer(messages.STILL_WORKING, ok=False)
        if job.speakers is None:
            return Answer(messages.RENAME_FAILED_JOB, ok=False)
        if not job.speakers:
            return Answer(messages.NOTHING_TO_RENAME, ok=False)
        if self._config.delete_after_delivery:
            return Answer(messages.TRANSCRIPT_DELETED, ok=False)
        return job

    # -- redo ----------------------------------------------------------------------------

    async def redo(self, ref: JobRef, choice: str, *, by: str) -> Answer:
        job = await self._job(ref)
        if isinstance(job, Answer):
            return job
        if job.state is not JobState.DELIVERED:
            return Answer(messages.STILL_WORKING, ok=False)
        try:
            options, what, reuse = self._choose(job, choice)
        except OptionsError as exc:
            return Answer(str(exc), ok=False)
        if options == job.options and choice != "again":
            return Answer(messages.REDO_SAME)
        options = replace(options, redo_note=what)
        return await self._submit(job, options, by=by, reuse=reuse, started=messages.redoing(what))

    async def redo_with(self, job: Job, asked: JobOptions, *, by: str) -> str | None:
        """A request with options (`lang=fr speakers=3 translate=es srt`) on a message whose
        recording was transcribed already: a redo with those, or None when they change
        nothing (the request then finds the job, as before)."""
        if job.state is not JobState.DELIVERED:
            return None
        options, changes = job.options, []
        if asked.language_code and asked.language_code != options.language_code:
            options = replace(options, language_code=asked.language_code)
            changes.append(language_name(asked.language_code) or asked.language_code)
        if asked.speakers_expected and asked.speakers_expected != options.speakers_expected:
            options = replace(options, speakers_expected=asked.speakers_expected)
            changes.append(f"{asked.speakers_expected} speakers")
        if asked.translate_to and asked.translate_to != options.translate_to:
            options = replace(options, translate_to=asked.translate_to)
            changes.append(f"a translation into {language_name(asked.translate_to)}")
        if asked.formats and set(asked.formats) != set(options.formats):
            options = replace(
                options, formats=tuple(sorted(set(options.formats) | set(asked.formats)))
            )
            changes.append(" and ".join(f.upper() for f in asked.formats))
        if not changes:
            return None
        what = ", ".join(changes)
        reuse = _shown_only(job.options, options)
        answer = await self._submit(
            job,
            replace(options, redo_note=what),
            by=by,
            reuse=reuse,
            started=messages.redoing(what),
        )
        return answer.text

    def _choose(self, job: Job, choice: str) -> tuple[JobOptions, str, bool]:
        kind, _, value = choice.partition(":")
        options = job.options
        if kind == "lang":
            code = language_code(value)
            return replace(options, language_code=code), language_name(code) or code, False
        if kind == "speakers":
            if not value.isdigit() or not 1 <= int(value) <= 10:
                raise OptionsError(f"speakers must be a number from 1 to 10, not {value!r}")
            return replace(options, speakers_expected=int(value)), f"{value} speakers", False
        if kind == "translate":
            if value in ("off", "none", ""):
                return replace(options, translate_to=None), "no translation", True
            code = translation_target(value)
            what = f"a translation into {language_name(code)}"
            return replace(options, translate_to=code), what, True
        if kind == "model":
            problem = speech_model_problem(value)
            if problem is not None or value not in ACCEPTED_SPEECH_MODELS:
                raise OptionsError(problem or messages.unknown_choice(choice))
            return replace(options, speech_models=(value,)), value, False
        if kind == "again":
            # The same options, transcribed again: the channel's vocabulary as it is now.
            return options, "this channel's vocabulary as it is now", False
        raise OptionsError(messages.unknown_choice(choice))

    async def _submit(
        self, job: Job, options: JobOptions, *, by: str, reuse: bool, started: str
    ) -> Answer:
        reuse = reuse and not self._config.delete_after_delivery and job.transcript_id is not None
        if (
            not reuse
            and by != job.sharer
            and await self._store.opt_outs.opted_out(job.platform, job.sharer)
        ):
            # Transcribing again is asking for it anew: the sharer's opt-out (issue 12)
            # holds, as it does for their other recordings.
            return Answer(messages.SHARER_OPTED_OUT, ok=False)
        replaces = self._replaces(job)
        posted = {}
        status = job.step_posted(DeliveryStep.STATUS)
        if status is not None:
            posted[DeliveryStep.STATUS.value] = status
        record = IntakeRecord(
            platform=job.platform,
            workspace=job.workspace,
            channel=job.channel,
            requester=by,
            source=job.source,
            thread=job.thread,
            message=job.message,
            event_id=None if job.message is not None else f"redo:{job.id}",
            options=replace(options, replaces=replaces, reuse_transcript=reuse),
            audio_duration=job.audio_duration,
            redo_of=job.id,
            posted=posted,
        )
        outcome = await self._engine.intake(record)
        if outcome.refused is not None:
            return Answer(outcome.refused, ok=False)
        if not outcome.created:
            return Answer(messages.ALREADY_REDONE)
        log.info(
            "job %s redoes job %s (%s)", outcome.job.id if outcome.job else "?", job.id, started
        )
        return Answer(started)

    @staticmethod
    def _replaces(job: Job) -> str | None:
        """The message a redo of `job` replaces: its result, or, for a job that failed, the
        result it was itself to replace (the last good one), else its failure notice."""
        result = job.step_posted(DeliveryStep.RESULT)
        if job.speakers is not None:
            return result
        return job.options.replaces or result

    async def _job(self, ref: JobRef) -> Job | Answer:
        job = await self._store.get(ref.job_id)
        if job is None:
            return Answer(messages.JOB_GONE, ok=False)
        places = {job.channel, job.thread, job.message, job.step_posted(DeliveryStep.STATUS)}
        if (
            job.platform is not ref.platform
            or job.workspace != ref.workspace
            or ref.channel not in places
        ):
            return Answer(messages.NOT_THIS_CHANNEL, ok=False)
        newer = [r for r in await self._store.redos_of(job.id) if r.state is not JobState.DELIVERED]
        if newer:
            return Answer(messages.REDO_UNDER_WAY, ok=False)
        return job


def language_code(value: str) -> str:
    from bot.intake import language_code as parse  # bot.intake takes this module in

    return parse(value)


def translation_target(value: str) -> str:
    """A language Speech Understanding translates into; OptionsError otherwise."""
    try:
        code = language_code(value)
    except OptionsError:
        raise OptionsError(
            f"translate needs a language code such as es or fr, not {value.strip()!r}"
        ) from None
    if code not in TRANSLATION_LANGUAGES:
        raise OptionsError(messages.translation_unsupported(code, language_name(code) or code))
    return code


def _shown_only(before: JobOptions, after: JobOptions) -> bool:
    """Whether `after` differs from `before` only in how a transcript is shown."""
    neutral = ("renames", "translate_to", "formats", "redo_note", "replaces", "reuse_transcript")
    return replace(before, **{k: getattr(after, k) for k in neutral}) == after


def _rule(spelling: tuple[tuple[str, ...], str]) -> str:
    return str(vocabulary.Spelling(*spelling))
