"""A recording without speech, rendered: every renderer says "no speech detected" once,
with no empty sections or embeds (the bot end to end: tests/component/test_silence_delivery.py)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord import format as discord_format
from adapters.slack import blocks as slack_format
from bot import render
from bot.chat import Post
from bot.render import NO_SPEECH
from bot.summary import Point, Summary, SummaryFailed
from bot.transcript import Transcript
from tests.fakes.discord_harness import shown
from tests.helpers.silence import HEADER, SECONDS


def empty_transcript(**extra: Any) -> Transcript:
    """What the emulator (and AssemblyAI) answers for silence with a language given."""
    body = {
        "id": "t-silence",
        "status": "completed",
        "text": "",
        "words": [],
        "utterances": [],
        "audio_duration": int(SECONDS),
        "language_code": "en_us",
        "speech_model_used": "assemblyai-stt-3-7",
        "confidence": None,
    }
    return Transcript.from_json(body | extra)


# --- the renderers, without a platform --------------------------------------------------


@pytest.mark.parametrize("utterances", [[], None], ids=["speaker-labels", "no-labels"])
@pytest.mark.parametrize(
    "summary",
    [None, Summary((Point(None, "Nothing.", None),)), SummaryFailed("down")],
    ids=["no-summary", "summary", "summary-failed"],
)
def test_every_renderer_says_no_speech_once(
    utterances: list[Any] | None, summary: Summary | SummaryFailed | None
) -> None:
    document = render.render(empty_transcript(utterances=utterances), summary=summary)
    plain = f"{HEADER}\n\n{NO_SPEECH}"
    assert document.text == plain

    for limit in (render.SLACK_MESSAGE_LIMIT, render.DISCORD_MESSAGE_LIMIT):
        assert render.fit(document, limit) == render.Rendered(plain)

    slack = slack_format.result(Post(plain, (), document))
    assert [b["type"] for b in slack.blocks] == ["header", "context", "section"]
    assert slack.blocks[0]["text"]["text"] == "Transcript"
    assert slack.blocks[1]["elements"][0]["text"] == "0:04 · English · assemblyai-stt-3-7"
    assert slack.blocks[2]["text"]["text"] == NO_SPEECH
    assert slack.text == plain  # the notification text

    for embeds in (True, False):
        message = discord_format.outgoing(Post(plain, (), document), key="j:result", embeds=embeds)
        content = shown({"content": message.content})  # without the post's reference line
        assert content.endswith(NO_SPEECH)
        assert message.content.count("no speech") == 1 and message.files == ()
        if embeds:
            (embed,) = message.embeds
            assert (embed.title, embed.description, embed.fields) == (HEADER, None, [])
            assert content == NO_SPEECH
        else:
            assert message.embeds == () and content == plain
