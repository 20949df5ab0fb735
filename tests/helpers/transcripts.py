"""Transcripts built in code, and what the engine posts for them on Slack, for the tests
of Slack's formatting (unit) and of the adapter posting it (component)."""

from __future__ import annotations

from typing import Any

from bot import render
from bot.chat import Post
from bot.render import SLACK_SECTION_LIMIT
from bot.summary import Summary
from bot.transcript import Transcript


def transcript(turns: list[tuple[str, str]], *, seconds_each: float = 4.0) -> Transcript:
    utterances: list[dict[str, Any]] = []
    for i, (speaker, text) in enumerate(turns):
        start, end = int(i * seconds_each * 1000), int((i + 1) * seconds_each * 1000)
        utterances.append(
            {"speaker": speaker, "text": text, "start": start, "end": end, "confidence": 0.9}
        )
    return Transcript.from_json(
        {
            "id": "t1",
            "status": "completed",
            "language_code": "en_us",
            "audio_duration": len(turns) * seconds_each,
            "text": " ".join(t for _, t in turns),
            "utterances": utterances,
            "words": [],
        }
    )


def posted(t: Transcript, summary: Summary | None = None) -> Post:
    """What the engine posts for a transcript (render + the ladder at Slack's limit)."""
    document = render.render(t, summary=summary)
    fitted = render.fit(document, SLACK_SECTION_LIMIT)
    return Post(fitted.inline, fitted.files, document)
