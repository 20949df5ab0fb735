"""A store's clock and an intake record for the job-store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.jobs import FileSource, IntakeRecord, JobOptions, Platform

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for `JobStore.open(clock=...)`."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def record(n: int = 0, **changes: Any) -> IntakeRecord:
    """The `n`th Slack file share in one thread; `changes` replace any field."""
    fields: dict[str, Any] = {
        "platform": Platform.SLACK,
        "workspace": "T01",
        "channel": "C01",
        "requester": "U01",
        "thread": "1700000000.000100",
        "message": f"1700000000.{n:06d}",
        "source": FileSource(
            {
                "id": f"F{n:04d}",
                "name": "standup.m4a",
                "mimetype": "audio/mp4",
                "size": 48_000,
                "url_private_download": "https://files.slack.test/files-pri/T01-F/standup.m4a",
            }
        ),
        "options": JobOptions(speakers_expected=2, language_code="en", formats=("srt",)),
    }
    return IntakeRecord(**(fields | changes))
