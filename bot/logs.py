"""Log lines: one record, one line, every field on it, whoever logged it.

Modules log as they always have, `logging.getLogger(__name__)` with fields in `extra={...}`,
and so do the libraries (slack_bolt, slack_sdk, discord.py, aiohttp, SQLAlchemy): all of
it reaches the one handler that `configure()` puts on the root logger. Its formatter
prints every `extra` field and the fields bound with `bound()` (a job's id and platform,
while the job's task runs), as key=value text or as one JSON object per line (LOG_FORMAT):

    2026-12-01T10:00:00.123Z INFO bot.jobs.queue job=7f3a platform=slack job 7f3a -> submitted
    {"timestamp": "2026-12-01T10:00:00.123Z", "level": "INFO", "logger": "bot.jobs.queue",
     "message": "job 7f3a -> submitted", "job": "7f3a", "platform": "slack"}

No input can forge a line: in text, every control or otherwise unprintable character
(newline, carriage return, escape, U+2028...) of the message, a field or a traceback is
written as a backslash escape, and a value with anything but plain characters in it is
quoted; JSON is written ASCII-only, so it escapes them too. A traceback goes on its line as
the `exception` field. The configured secrets' values are masked wherever they would
appear, as a last line of defence behind `bot.config.Secret`.

Why structlog (its stdlib integration: `ProcessorFormatter`, `ExtraAdder`,
`merge_contextvars`) rather than python-json-logger: we need both formats and a job's
context carried across asyncio tasks, and structlog has all three in one library, kept up
for over a decade, with typed releases and a stdlib bridge that leaves the call sites as
they are. python-json-logger formats JSON only: the text format, the escaping and the
context would all be ours to write and keep. The call sites need not know which was
chosen; only this module imports structlog.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


#: Fields printed right after the logger's name, in this order, when a line has them.
CONTEXT: Final = ("job", "platform")
MASK: Final = "********"
#: A secret shorter than this is not masked: it would blot out ordinary words.
MIN_SECRET: Final = 8
#: DEBUG lines of these loggers print every SQL statement with its parameters, so stored
#: secrets (the webhook secret, Slack installations' tokens) too: never below INFO.
QUIETER: Final = ("aiosqlite",)
#: Alembic's INFO lines (seven "setup plugin ..." at every start, "Context impl
#: SQLiteImpl.", one per revision) say what the store's own one line says better: only
#: their warnings are kept.
WARNINGS_ONLY: Final = ("alembic",)
_HANDLER: Final = "threadscribe"
_BARE: Final = re.compile(r"[\w.,:/@+%-]+", re.ASCII)
_ESCAPES: Final = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Left on the record by another handler's formatter; not fields of the call.
_LEFTOVERS: Final = ("message", "asctime")


def configure(
    level: int | str,
    fmt: LogFormat = LogFormat.TEXT,
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Send every logger's records at `level` and above to `stream` (stderr) as `fmt`.
    Calling it again replaces the handler it installed; other handlers are left alone."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter(fmt, secrets=secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIETER:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    for name in WARNINGS_ONLY:
        logging.getLogger(name).setLevel(logging.WARNING)


def formatter(fmt: LogFormat, *, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter of `configure()`'s handler, for a handler of one's own."""
    renderer: Processor = _render_json if fmt is LogFormat.JSON else _render_text
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.ExtraAdder(),
            _add_record_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
            _Mask(secrets),
        ],
    )


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add `fields` to every line logged in this task until the block ends, and to every
    line of the tasks started meanwhile, for as long as they run (they copy the context)."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


# -- processors ------------------------------------------------------------------------


def _add_record_fields(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    record: logging.LogRecord = event["_record"]
    for key in _LEFTOVERS:
        event.pop(key, None)
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    event["timestamp"] = f"{seconds}.{int(record.msecs):03d}Z"
    event["level"] = record.levelname
    event["logger"] = record.name
    return event


def _ordered(event: EventDict) -> dict[str, Any]:
    """timestamp, level, logger, message, the context, the call's fields, the traceback."""
    head = {
        "timestamp": event.pop("timestamp"),
        "level": event.pop("level"),
        "logger": event.pop("logger"),
        "message": event.pop("event"),
    }
    context = {key: event.pop(key) for key in CONTEXT if key in event}
    exception = {key: event.pop(key) for key in ("exception", "stack_info") if key in event}
    return {**head, **context, **event, **exception}


def _render_json(_logger: WrappedLogger, _name: str, event: EventDict) -> str:
    # ensure_ascii: every control character and line separator is written as \uXXXX.
    return json.dumps(_ordered(event), ensure_ascii=True, default=repr)


def _render_text(_logger: WrappedLogger, _name: str, event: EventDict) -> str:
    fields = _ordered(event)
    parts = [_escape(str(fields.pop(key))) for key in ("timestamp", "level", "logger")]
    message = _escape(str(fields.pop("message")))
    context = {key: fields.pop(key) for key in CONTEXT if key in fields}
    parts += [f"{_key(k)}={_value(v)}" for k, v in context.items()]
    if message:
        parts.append(message)
    parts += [f"{_key(k)}={_value(v)}" for k, v in fields.items()]
    return " ".join(parts)


class _Mask:
    """Replace each secret's value, as written raw or escaped, with MASK."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET:
                escaped = _escape(secret)
                forms |= {secret, escaped, escaped.replace('"', '\\"'), json.dumps(secret)[1:-1]}
        self._forms = sorted(forms, key=len, reverse=True)

    # The last processor: it gets the renderer's line (structlog types it as an event).
    def __call__(self, _logger: WrappedLogger, _name: str, line: Any) -> str:
        assert isinstance(line, str)
        text: str = line
        for form in self._forms:
            text = text.replace(form, MASK)
        return text


# -- escaping --------------------------------------------------------------------------


def _escape(text: str) -> str:
    r"""`text` with backslashes and every character `str.isprintable()` refuses (control
    characters, line and paragraph separators, format characters) written as escapes:
    \n \r \t \\, else \xNN, \uNNNN or \UNNNNNNNN, as repr() writes them."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _value(value: object) -> str:
    """A field's value as logfmt writes it: bare when plain, else quoted and escaped."""
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    text = value if isinstance(value, str) else repr(value)
    if _BARE.fullmatch(text):
        return text
    return '"' + _escape(text).replace('"', '\\"') + '"'


def _key(key: object) -> str:
    text = str(key)
    return text if _BARE.fullmatch(text) else _value(text)
