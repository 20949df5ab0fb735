"""The job runner: at most `concurrency` transcripts processing, the rest queued.

A job fetches its media when it starts, measures it, finds where audio without a script
holds speech (`speech`), and fails with the API's errors (download error, no audio, audio
too short, language detection on audio without speech) or completes after
`processing_time + processing_ratio * audio seconds`, times a lognormal factor when
`processing_jitter` is set (drawn per job in submission order, seeded, so a run can be
repeated; a job waiting for a slot waits first, as on the service). Jobs waiting for a free slot are
marked `throttled`, as the API marks jobs held back by the account's concurrency limit.
When a job ends, its webhook (if any) is sent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from functools import partial
from pathlib import Path

from bot.models import SPEECH_MODEL_LANGUAGES

from .config import EmulatorConfig
from .fetch import DownloadError, Fetcher
from .media import NotAudioError, probe
from .redaction import redact, redacted_audio
from .scripts import Options, ScriptError, Transcription, load_script, transcribe
from .speech import find_speech
from .store import TranscriptRecord
from .understanding import identify, translations
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)

MIN_AUDIO_SECONDS = 0.16  # documented minimum
TOO_SHORT = "Audio duration is too short."  # documented wording
# What the live API answers when language detection meets audio with no speech: not in
# AssemblyAI's docs or openapi.yml, but quoted word for word by many of its users' code
# (one "live silent-WAV probe" among them), always with this full stop. Without language
# detection such audio completes with text "" and no words.
NO_SPOKEN_AUDIO = "language_detection cannot be performed on files with no spoken audio."


def model_used(models: tuple[str, ...], language_code: str) -> str:
    """The first listed model that handles the language (bot/models.py says which do).

    Fallback stays inside `speech_models`. AssemblyAI's `assemblyai-stt-3-7` migration
    guide (docs/pre-recorded-audio/assemblyai-stt-3-7-migration-guide, "Behavioral
    changes", "Model fallback") says AssemblyAI *previously* fell back by default, e.g.
    from ["universal-3-pro"] to universal-2 for a detected language the model lacks, and
    tells users to keep universal-2 in the list for the languages stt-3-7 lacks: so a
    model the request does not name is never used. The stored copy of that section stops
    before saying what happens when no listed model has the language; the emulator then
    reports the first listed model rather than guess at an error.
    """
    base = language_code.split("_")[0]
    for model in models:
        languages = SPEECH_MODEL_LANGUAGES.get(model)
        if languages is None or base in languages:
            return model
    return models[0]


class _TooShortError(Exception):
    def __init__(self, duration: int) -> None:
        super().__init__(TOO_SHORT)
        self.duration = duration


class _NoSpeechError(Exception):
    def __init__(self, duration: int) -> None:
        super().__init__(NO_SPOKEN_AUDIO)
        self.duration = duration


class Processor:
    def __init__(
        self,
        config: EmulatorConfig,
        fetcher: Fetcher,
        webhooks: WebhookSender,
        storage: Path | None = None,
    ) -> None:
        self._config = config
        self._fetcher = fetcher
        self._webhooks = webhooks
        self._storage = storage
        self._queue: deque[TranscriptRecord] = deque()
        self._active: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._spread = random.Random(config.processing_seed)
        self._factors: dict[str, float] = {}

    def submit(self, record: TranscriptRecord) -> None:
        self._factors[record.id] = self.spread_factor()
        self._queue.append(record)
        self._pump()

    def spread_factor(self) -> float:
        """The next job's processing-time multiplier: exp(sigma * Z), 1 without jitter."""
        sigma = self._config.processing_jitter
        if sigma <= 0:
            return 1.0
        return math.exp(sigma * self._spread.gauss(0.0, 1.0))

    def processing_seconds(self, record_id: str, audio_seconds: float) -> float:
        """How long a job takes once it has started (its fetch and measuring included)."""
        nominal = self._config.processing_time + self._config.processing_ratio * audio_seconds
        return nominal * self._factors.get(record_id, 1.0)

    def _pump(self) -> None:
        while self._queue and len(self._active) < self._config.concurrency and not self._closing:
            record = self._queue.popleft()
            record.start()
            task = asyncio.create_task(self._run(record), name=f"transcript-{record.id}")
            self._active[record.id] = task
            task.add_done_callback(partial(self._finished, record))
        for waiting in self._queue:
            waiting.throttled = True

    def _finished(self, record: TranscriptRecord, task: asyncio.Task[None]) -> None:
        self._active.pop(record.id, None)
        self._factors.pop(record.id, None)
        if self._closing or task.cancelled():
            return
        if record.done and record.request.webhook_url is not None:
            self._webhooks.send(record)
        self._pump()

    async def _run(self, record: TranscriptRecord) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        media = None
        try:
            media = await self._fetcher.fetch(record.request.audio_url)
            info = await probe(media.path, self._config.ffprobe)
            duration_ms = round(info.duration * 1000)
            seconds = int(info.duration + 0.5)
            start, end = record.request.window
            end = duration_ms if end is None else min(end, duration_ms)
            if info.duration < MIN_AUDIO_SECONDS or end - start < MIN_AUDIO_SECONDS * 1000:
                raise _TooShortError(seconds)
            script = await asyncio.to_thread(load_script, self._config.scripts_dir, media.sha256)
            # A script says what is spoken; only audio without one is listened to.
            speech = None if script else await find_speech(media.path, self._config.ffmpeg)
            options = self._options(record)
            result = await asyncio.to_thread(
                transcribe, media.sha256, duration_ms, script, options, speech
            )
            if options.language_detection and not result.words:
                raise _NoSpeechError(seconds)
            if record.request.get("redact_pii"):
                entities = dict(script.entities) if script else {}
                result = await self._redact(record, result, entities, media.path)
            delay = self.processing_seconds(record.id, info.duration) - (loop.time() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            model = model_used(record.request.speech_models, result.language_code)
            task = record.request.understanding
            record.script = script
            if task is not None and task.kind == "speaker_identification":
                record.identified = identify(task, script, result)
            elif task is not None and task.kind == "translation":
                whole, each = translations(task, script, result)
                record.translated_texts = whole
                if task.options.get("match_original_utterance"):
                    record.utterance_translations = each
            record.complete(result, seconds, info.channels, model)
            logger.info("transcript completed", extra={"transcript_id": record.id})
        except DownloadError as exc:
            # The reason, not the URL: a URL may carry a token.
            logger.info("download failed", extra={"transcript_id": record.id, "reason": exc.reason})
            record.fail(exc.message)
        except NotAudioError as exc:
            logger.info("not audio", extra={"transcript_id": record.id, "file_type": str(exc)})
            record.fail(exc.message)
        except _TooShortError as exc:
            record.fail(TOO_SHORT, duration=exc.duration)
        except _NoSpeechError as exc:
            record.fail(NO_SPOKEN_AUDIO, duration=exc.duration)
        except ScriptError as exc:
            logger.error("unusable script", extra={"transcript_id": record.id, "reason": str(exc)})
            record.fail(f"Emulator script error: {exc}")
        except Exception:
            logger.exception("transcript failed", extra={"transcript_id": record.id})
            record.fail("Internal server error")
        finally:
            if media is not None and media.temporary:
                media.path.unlink(missing_ok=True)

    async def _redact(
        self,
        record: TranscriptRecord,
        result: Transcription,
        entities: dict[str, str],
        source: Path,
    ) -> Transcription:
        """The transcript with its PII redacted, and with `redact_pii_audio` the audio's
        redacted copy, made before the transcript completes."""
        request = record.request
        substitution = request.get("redact_pii_sub") or "hash"  # the spec's default
        redacted, spans = redact(result, request.get("redact_pii_policies"), substitution, entities)
        if not request.get("redact_pii_audio"):
            return redacted
        options = request.get("redact_pii_audio_options") or {}
        if not redacted.words and not options.get("return_redacted_no_speech_audio"):
            record.redacted_audio_error = (
                "This transcript has no speech, so no redacted audio was made "
                "(redact_pii_audio_options.return_redacted_no_speech_audio makes one)"
            )
            return redacted
        quality = request.get("redact_pii_audio_quality") or "mp3"
        if self._storage is None:
            record.redacted_audio_error = "The redacted audio could not be created"
            return redacted
        out = self._storage / f"redacted-{record.id}.{quality}"
        silence = options.get("override_audio_redaction_method") == "silence"
        made = await redacted_audio(
            self._config.ffmpeg, source, out, spans, quality=quality, silence=silence
        )
        if made:
            record.redacted_audio = out
        else:
            record.redacted_audio_error = "The redacted audio could not be created"
        return redacted

    @staticmethod
    def _options(record: TranscriptRecord) -> Options:
        request = record.request
        low, high = request.expected_speakers()
        return Options(
            speaker_labels=request.speaker_labels,
            min_speakers=low,
            max_speakers=high,
            window=request.window,
            language_code=request.get("language_code"),
            language_detection=request.language_detection,
            punctuate=bool(request.get("punctuate", True)),
            format_text=bool(request.get("format_text", True)),
            keyterms=request.keyterms,
            spellings=request.spellings,
        )

    async def close(self) -> None:
        """Stop starting jobs, cancel those running, and wait for them to end."""
        self._closing = True
        self._queue.clear()
        self._factors.clear()
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
