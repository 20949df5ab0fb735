"""The `threadscribe` command: run | transcribe | doctor | emulator.

This is the composition root: it reads the settings mapping once (the environment over
`.env` in the working folder, see `bot.config.read_environment`), takes the variables that
libraries would read by themselves out of `os.environ`, and wires the parts together.
Nothing below it reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from rich.console import Console

from bot import logs
from bot.assemblyai import TranscriptOptions
from bot.config import (
    Environment,
    Settings,
    env_file_warnings,
    parse_speech_models,
    read_environment,
    take_library_variables,
)
from bot.errors import ConfigError, PlatformError, SourceError
from bot.messages import explain
from bot.sources import parse_source

# `python -m bot.cli` runs this module as __main__; its logger is bot.cli all the same.
log = logging.getLogger(__spec__.name if __spec__ else __name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

TRANSCRIBE_DESCRIPTION = """\
Transcribe a local audio/video file or a public URL with AssemblyAI. The transcript and
a speaker summary go to stdout, and to <audio name>.txt in the current folder (never
overwriting a file: name-1.txt, name-2.txt...). Everything that can be checked is
checked before anything is uploaded. Give SOURCE, or --id to pick up a transcript."""
TRANSCRIBE_SETTINGS = """\
settings:
  Read from the environment and from a .env file in the working directory (the
  environment wins where both set a variable):
    ASSEMBLYAI_API_KEY        your AssemblyAI API key (required)
    ASSEMBLYAI_BASE_URL       https://api.assemblyai.com (default), or the EU's
                              https://api.eu.assemblyai.com
    ASSEMBLYAI_SPEECH_MODELS  the default for --speech-models
                              (assemblyai-stt-3-7,universal-2)
    MAX_FILE_MB, MAX_DURATION_MINUTES
                              refuse bigger or longer audio (only when set; a link of
                              unknown length is transcribed up to the limit)
"""
RUN_DESCRIPTION = """\
Run the bot: connect to Slack (Socket Mode or HTTP mode) and/or Discord, take the
recordings people share, send them to AssemblyAI and answer in the thread. Also serves
AssemblyAI's webhooks (with PUBLIC_URL), /healthz, /readyz and /metrics on HOST:PORT.
Start-up stops with one line naming the variable to fix when a setting, a token or the
port cannot work; `threadscribe doctor` checks the same without starting."""
DOCTOR_DESCRIPTION = """\
Check the configuration against everything it can reach: the settings, AssemblyAI's key
and models, the LLM Gateway, the database, the port, PUBLIC_URL, and Slack's and
Discord's tokens, scopes, intents and installs. One run reports every problem with its
fix; it changes nothing (it never creates the database). Exit status 1 if anything
failed, else 0."""
SETTINGS_SOURCES = """\
settings:
  Read from the environment and from a .env file in the working directory (the
  environment wins where both set a variable; an empty value means unset). Start from
  .env.example, which lists every variable with its default; the README explains each.
"""
#: Options that shape a new transcript, so mean nothing with --id.
NEW_AUDIO_ONLY = (
    ("--speakers", "speakers"),
    ("--no-speaker-labels", "no_speaker_labels"),
    ("--language", "language"),
    ("--start", "start"),
    ("--end", "end"),
    ("--speech-models", "speech_models"),
)


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["emulator"]:
        return run_emulator(given[1:])  # its arguments, --help included, are its own
    parser = build_parser()
    args = parser.parse_args(given)
    # The working folder's .env fills in what the environment does not set; both are read
    # into one mapping, and os.environ keeps nothing a library would pick up by itself.
    args.environment = read_environment(os.environ, Path.cwd())
    take_library_variables(os.environ)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadscribe",
        description="Transcribe audio and video from Slack and Discord threads with AssemblyAI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the bot (Slack and/or Discord) and its web server",
        description=RUN_DESCRIPTION,
        epilog=SETTINGS_SOURCES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(func=cmd_run)

    tr = sub.add_parser(
        "transcribe",
        help="transcribe a local file or a URL and print the speaker-labelled transcript",
        description=TRANSCRIBE_DESCRIPTION,
        epilog=TRANSCRIBE_SETTINGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = tr.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "source", metavar="SOURCE", nargs="?", help="a local file path or an http(s) URL"
    )
    what.add_argument(
        "--id",
        type=_transcript_id,
        metavar="ID",
        help="pick up a transcript submitted earlier (waits if it is unfinished)",
    )
    tr.add_argument(
        "--speakers",
        type=_positive_int,
        metavar="N",
        help="how many speakers to expect (default: detect)",
    )
    tr.add_argument(
        "--no-speaker-labels", action="store_true", help="do not label speakers (plain paragraphs)"
    )
    tr.add_argument(
        "--language",
        metavar="CODE",
        help="language code such as en, en_us, fr, de (default: detect automatically)",
    )
    tr.add_argument(
        "--start",
        type=_timestamp,
        metavar="TIME",
        help="start transcribing at TIME (seconds, mm:ss or hh:mm:ss)",
    )
    tr.add_argument("--end", type=_timestamp, metavar="TIME", help="stop transcribing at TIME")
    tr.add_argument(
        "--speech-models",
        type=_models,
        metavar="A,B",
        help="speech models in priority order (default: ASSEMBLYAI_SPEECH_MODELS)",
    )
    tr.add_argument(
        "--ai-summary",
        action="store_true",
        help="add a short AI summary from AssemblyAI's LLM Gateway",
    )
    tr.add_argument(
        "--poll-interval",
        type=_interval,
        default=3.0,
        metavar="S",
        help="seconds between status checks while waiting (default: 3, as AssemblyAI's SDK)",
    )
    saving = tr.add_mutually_exclusive_group()
    saving.add_argument(
        "--txt",
        type=Path,
        metavar="PATH",
        help="save the transcript to PATH (default: <audio name>.txt here)",
    )
    saving.add_argument("--no-save", action="store_true", help="do not save a .txt file")
    for fmt in ("srt", "vtt", "json"):
        tr.add_argument(f"--{fmt}", type=Path, metavar="PATH", help=f"also save a .{fmt} file")
    tr.set_defaults(func=cmd_transcribe)

    doctor = sub.add_parser(
        "doctor",
        help="check the configuration against everything it can reach",
        description=DOCTOR_DESCRIPTION,
        epilog=SETTINGS_SOURCES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.set_defaults(func=cmd_doctor)

    # The emulator is its own package with its own parser: it is imported only when this
    # command runs, and every argument after `emulator` is its own.
    sub.add_parser(
        "emulator",
        help="run a local AssemblyAI-compatible server for development and tests",
        add_help=False,
    )
    return parser


def _fail(message: str) -> None:
    print(f"threadscribe: error: {message}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"threadscribe: warning: {message}", file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, or ConfigError with every problem (`.env` lines included); warnings
    (a misspelt name in `.env`) are printed and do not stop anything. Not the speech
    models': `transcribe` warns of the models it will use itself (a flag may replace the
    setting's), and `run` logs the warning with its other start-up lines."""
    env: Environment = args.environment
    settings, problems = Settings.read(env.values)
    for warning in env_file_warnings(env):
        _warn(warning)
    problems = [*env.problems, *problems]
    if problems:
        raise ConfigError(problems)
    return settings


def cmd_transcribe(args: argparse.Namespace) -> int:
    from bot import messages
    from bot.errors import Refused
    from bot.transcribe import Limits, Outputs, Pickup, TranscribeRequest, transcribe
    from bot.urls import UrlPolicy

    logs.configure(logging.ERROR)
    try:
        settings = _settings(args)
        settings.require_assemblyai_key()
        target = Pickup(args.id) if args.id else parse_source(args.source)
    except (ConfigError, SourceError) as exc:
        _fail(explain(exc))
        return EXIT_USAGE
    values = {flag: getattr(args, dest) for flag, dest in NEW_AUDIO_ONLY}
    given = [flag for flag, value in values.items() if value is not None and value is not False]
    if args.id and given:
        _fail(messages.not_with_id(given[0]))
        return EXIT_USAGE
    options = TranscriptOptions(
        speech_models=args.speech_models or settings.speech_models,
        language_code=args.language,
        speaker_labels=not args.no_speaker_labels,
        speakers_expected=args.speakers,
        audio_start_from=args.start,
        audio_end_at=args.end,
    )
    request = TranscribeRequest(
        target=target,
        options=options,
        outputs=Outputs(
            txt=args.txt, srt=args.srt, vtt=args.vtt, json=args.json, save=not args.no_save
        ),
        ai_summary=args.ai_summary,
        llm_model=settings.llm_model,
        limits=Limits.from_settings(settings),
        ffprobe=shutil.which("ffprobe"),
        poll_interval=args.poll_interval,
        urls=UrlPolicy(allow_private=settings.allow_private_urls),
    )
    try:
        asyncio.run(transcribe(settings, request, stdout=sys.stdout, stderr=Console(stderr=True)))
    except KeyboardInterrupt:
        raise
    except Refused as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except Exception as exc:
        log.debug("transcribe failed", exc_info=True)
        _fail(explain(exc))
        return EXIT_FAILED
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from bot.run import builtin_factories, load_factory, serve

    try:
        settings = _settings(args)
        settings.require_assemblyai_key()
        # Extra adapters by import path ("package.module:function", comma-separated): an
        # extension point, and how the tests plug in a recording platform.
        listed = args.environment.values.get("THREADSCRIBE_ADAPTERS", "")
        extra = [s for s in listed.split(",") if s.strip()]
        if not extra:
            settings.require_platform()
        factories = [*builtin_factories(settings), *(load_factory(s.strip()) for s in extra)]
    except ConfigError as exc:
        for problem in exc.problems:
            _fail(problem)
        return EXIT_USAGE
    except (ImportError, AttributeError, ValueError) as exc:
        _fail(f"THREADSCRIBE_ADAPTERS: cannot load {exc}")
        return EXIT_USAGE
    _configure_logging(settings)
    try:
        asyncio.run(serve(settings, factories))
    except ConfigError as exc:
        for problem in exc.problems:
            _fail(problem)
        return EXIT_USAGE
    except PlatformError as exc:
        # A platform that refuses its token is a setting to fix (2); one out of reach is
        # a failure to start (1). Either way, one line naming it.
        _fail(exc.message)
        return EXIT_FAILED if exc.retryable else EXIT_USAGE
    except Exception as exc:
        log.debug("run failed", exc_info=True)
        _fail(explain(exc))
        return EXIT_FAILED
    return EXIT_OK


def run_emulator(argv: list[str]) -> int:
    from emulator.cli import main as emulator_main

    return emulator_main(argv, prog="threadscribe emulator")


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.doctor import run_doctor, settings_findings
    from bot.run import platform_checks

    logs.configure(logging.CRITICAL)
    env: Environment = args.environment
    settings, problems = Settings.read(env.values)
    first = settings_findings(env, settings, problems)
    checks = platform_checks(settings)
    return asyncio.run(run_doctor(settings, sys.stdout, first=first, platforms=checks))


def _configure_logging(settings: Settings) -> None:
    """`run`'s logs: LOG_LEVEL and LOG_FORMAT, on stderr, with the secrets masked."""
    logs.configure(
        settings.log_level,
        settings.log_format,
        stream=sys.stderr,
        secrets=settings.secret_values(),
    )


# -- argument types --------------------------------------------------------------------


def _positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {raw!r}")
    return int(raw)


_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d+)?)$")


def _timestamp(raw: str) -> int:
    """Seconds, mm:ss or hh:mm:ss (fractions of a second allowed) -> milliseconds. In
    mm:ss and hh:mm:ss, minutes and seconds are below 60 (`1:75` is a typo, not 2:15)."""
    match = _TIME.match(raw.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected seconds, mm:ss or hh:mm:ss, got {raw!r}")
    hours, minutes, seconds = match.groups()
    if minutes is not None and float(seconds) >= 60:
        raise argparse.ArgumentTypeError(f"seconds must be below 60 in {raw!r}")
    if hours is not None and int(minutes) >= 60:
        raise argparse.ArgumentTypeError(f"minutes must be below 60 in {raw!r}")
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
    return round(total * 1000)


def _interval(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 600, got {raw!r}")
    return value


_TRANSCRIPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def _transcript_id(raw: str) -> str:
    if not _TRANSCRIPT_ID.match(raw.strip()):
        raise argparse.ArgumentTypeError(f"not a transcript id: {raw!r}")
    return raw.strip()


def _version() -> str:
    try:
        return metadata.version("threadscribe")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _models(raw: str) -> tuple[str, ...]:
    try:
        return parse_speech_models(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
