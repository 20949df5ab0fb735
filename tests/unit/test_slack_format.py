"""Block Kit for the engine's posts: shape, limits, escaping, and agreement with the text.

Every message built here is checked with the Slack fake's validator, which applies
Slack's published Block Kit limits.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from adapters.slack import blocks as fmt
from bot import render
from bot.chat import Post
from bot.render import SLACK_SECTION_LIMIT
from bot.summary import Point, Summary
from tests.fakes.slack_blocks import validate_blocks
from tests.helpers.transcripts import posted, transcript


def all_text(blocks: list[dict[str, Any]]) -> str:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", ()) if "text" in e)
    return "\n".join(out)


def test_escape_neutralises_markup_and_broadcasts() -> None:
    said = "Tell <!channel> & <@U123> about <https://evil.example|this>, cc @here @Everyone"

    safe = fmt.escape(said)

    assert "<" not in safe and ">" not in safe
    assert "&amp;" in safe and "&lt;!channel&gt;" in safe
    assert not re.search(r"@(here|everyone|channel)\b", safe, re.IGNORECASE)
    assert (
        safe.replace("\u2060", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        == said
    )


def test_short_transcript_is_shown_whole_with_speakers() -> None:
    post = posted(
        transcript([("A", "Shall we start?"), ("B", "Yes, the numbers are in."), ("A", "Great.")])
    )

    message = fmt.result(post)

    assert validate_blocks(message.blocks) == []
    header, context, *rest = message.blocks
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Transcript"}}
    assert context["elements"][0]["text"] == "0:12 · English · 2 speakers"
    text = all_text(message.blocks)
    assert "*Speaker A* `00:00`  Shall we start?" in text
    assert "*Speaker B* `00:04`  Yes, the numbers are in." in text
    assert "*Speakers*\n*Speaker A* — 0:08 (67%)" in text
    assert all(b["text"]["verbatim"] for b in rest if b["type"] == "section")
    assert message.text == fmt.escape(post.text)


def test_transcript_text_cannot_ping_or_link() -> None:
    post = posted(transcript([("A", "Hey <!here> & <@U0ALICE001>, see <https://x.example|x>")]))

    message = fmt.result(post)

    for text in (all_text(message.blocks), message.text):
        assert "<!" not in text and "<@" not in text and "<http" not in text
    assert "&lt;!here&gt; &amp; &lt;@U0ALICE001&gt;" in all_text(message.blocks)


def test_long_transcript_shows_the_engines_preview_and_points_at_the_file() -> None:
    turns = [("AB"[i % 2], f"Sentence number {i} is about the budget. " * 4) for i in range(300)]
    post = posted(transcript(turns))
    assert [f.name for f in post.files] == ["transcript.txt"]

    message = fmt.result(post)

    assert validate_blocks(message.blocks) == []
    shown = fmt.preview_lines(post.document, post.text)  # type: ignore[arg-type]
    assert 0 < len(shown) < 300
    text = all_text(message.blocks)
    assert f"Sentence number {len(shown) - 1} is" in text
    assert f"Sentence number {len(shown)} is" not in text
    assert text.endswith(f"… {300 - len(shown):,} more lines in transcript.txt below")


def test_long_ai_summary_and_dense_markup_stay_within_section_limits() -> None:
    summary = Summary(
        tuple(Point("Speaker A", f"point {i} " + "<&> " * 700, i * 1000) for i in range(6))
    )
    post = posted(transcript([("A", "Hello."), ("B", "Hi.")]), summary=summary)

    message = fmt.result(post)

    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= fmt.MAX_BLOCKS
    assert all_text(message.blocks).startswith("Transcript")
    assert "*Summary*\n• *Speaker A* `00:00`: point 0 &lt;&amp;&gt;" in all_text(message.blocks)


@pytest.mark.parametrize("size", [1, 2_999, 3_000, 3_001, 9_000])
def test_sections_never_exceed_the_limit_and_lose_nothing(size: int) -> None:
    text = ("word & <tag> " * size)[:size]

    blocks = fmt.sections(text)

    assert all(len(b["text"]["text"]) <= SLACK_SECTION_LIMIT for b in blocks)
    joined = "".join(b["text"]["text"] for b in blocks)
    assert joined.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace(
        " ", ""
    ) == text.replace(" ", "")


def test_one_huge_utterance_is_split_across_sections() -> None:
    document = render.render(transcript([("A", "word " * 2_000)]))

    message = fmt.result(Post(document.text, document=document))

    assert validate_blocks(message.blocks) == []
    sections = [b for b in message.blocks if b["type"] == "section"]
    assert len(sections) >= 4
    assert sections[-4]["text"]["text"].startswith("*Speaker A* `00:00`  word word")


def test_status_line_with_the_requester_under_it() -> None:
    message = fmt.status(Post("⏳ Queued: 2 jobs ahead"), context="<@U1> asked for a transcript")

    assert validate_blocks(message.blocks) == []
    assert message.text == "⏳ Queued: 2 jobs ahead"
    assert message.blocks[-1]["elements"][0]["text"] == "<@U1> asked for a transcript"
