"""Answers and search results fit the platforms' limits whatever the model or the
recordings hold: Slack's 3,000 characters a section and 50 blocks (every block valid),
Discord's 2,000 characters a message; outside text escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.discord.answers import answer_content, search_content
from adapters.slack.answers import answer_message, search_message
from bot.chat import Answered, Platform, Quote, SearchHit, SearchResults, ThreadRef
from tests.fakes.slack_blocks import validate_blocks

LONG = "word " * 2_000
QUOTES = tuple(Quote(f"Speaker {i}", i * 61_000, LONG, hours=True) for i in range(80))


def test_a_long_answer_with_many_quotes_fits_slack() -> None:
    message = answer_message(Answered(LONG + " <!channel> *bold*", QUOTES, partial=True))
    assert len(message.blocks) <= 50 and not validate_blocks(message.blocks)
    assert all(len(b["text"]["text"]) <= 3000 for b in message.blocks if "text" in b)
    assert len(message.text) <= 300
    assert "<!channel>" not in str(message.blocks)


def test_a_long_answer_with_many_quotes_fits_discord() -> None:
    content = answer_content(Answered(LONG + " **bold** @everyone", QUOTES, partial=True))
    assert len(content) <= 2000 - len("\n-# ref 0123456789")
    assert "**bold**" not in content
    assert content.startswith("word word")
    short = answer_content(Answered("Friday.", (Quote("Ada", 3_723_000, "by *Friday*"),)))
    assert short == "Friday.\n> **Ada** `1:02:03` “by \\*Friday\\*”"


def hits(count: int) -> tuple[SearchHit, ...]:
    where = ThreadRef(Platform.DISCORD, "1", "2", None, "3", extra={"discord": {"reply": "thread"}})
    when = datetime(2026, 11, 30, tzinfo=UTC)
    return tuple(
        SearchHit("x" * 300 + " <@everyone>", where, "4", (1_000, 2_000), 9, when)
        for _ in range(count)
    )


def test_many_search_hits_fit_both() -> None:
    results = SearchResults(("board",), hits(60), 60, ("Only the newest 50 recordings.",), days=30)
    slack = search_message(results, dict.fromkeys(range(10), "https://t.slack.com/archives/C/p1"))
    assert len(slack.blocks) <= 50 and not validate_blocks(slack.blocks)
    assert "and 50 older recordings" in str(slack.blocks)
    discord = search_content(results)
    assert len(discord) <= 2000
    assert "https://discord.com/channels/1/3/4" in discord  # the result, in its thread
    assert "(+7 more)" in discord


def test_one_match_and_one_more_recording_read_in_the_singular() -> None:
    where = ThreadRef(Platform.DISCORD, "1", "2", None, "3", extra={"discord": {"reply": "thread"}})
    when = datetime(2026, 11, 30, tzinfo=UTC)
    once = SearchHit("standup", where, "4", (13_000,), 1, when)
    results = SearchResults(("board",), (once,) * 11, 11, days=30)
    slack = str(search_message(results, {}).blocks)
    discord = search_content(results)
    for shown in (slack, discord):
        assert "1 time at `00:13`" in shown and "1 times" not in shown
        assert "and 1 older recording" in shown and "older recordings" not in shown
    twice = SearchHit("standup", where, "4", (13_000, 14_000), 2, when)
    results = SearchResults(("board",), (twice,), 1, days=30)
    assert "2 times at `00:13`, `00:14`" in search_content(results)
