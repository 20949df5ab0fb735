"""bot/ask.py's pure parts: the model's answer checked against the transcript (a quote it
does not hold is never shown, speaker and timestamp come from the transcript), the
request (history bounded, the transcript's lines as the summary sends them), a long
recording's parts chosen by the question, the per-person limit and the transcript cache
on an injected clock, search terms within AssemblyAI's limits; and the emulator's
deterministic answers."""

from __future__ import annotations

import json

from bot import ask, messages
from bot.ask import (
    CACHE_SECONDS,
    HISTORY_ANSWER_CHARS,
    RateLimit,
    TranscriptCache,
    find_quote,
    parse,
    question_messages,
    relevant,
    search_terms,
)
from bot.conversation import Line
from bot.transcript import Transcript, TranscriptStatus, Word
from emulator.llm import NOT_SAID, _instance, _question

LINES = (
    Line("Ada", 0, "Good morning. Shall we start with the kubernetes migration?"),
    Line("Grace", 4_000, "Yes. The cluster in thessaloniki is ready and costs are flat."),
    Line("Ada", 7_000, "Great news. We decided to open the new office in March."),
    Line("Grace", 11_000, "I will send the figures to the board by Friday."),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(text: str, *quotes: tuple[str | None, str, str]) -> str:
    return json.dumps(
        {"answer": text, "quotes": [{"speaker": s, "at": a, "text": t} for s, a, t in quotes]}
    )


def test_a_quote_is_shown_as_the_transcript_has_it() -> None:
    # The model got the speaker and the time wrong: the transcript's are shown.
    said, quotes, unfound = parse(
        answer("Ada decided it.", ("Grace", "00:01", "we decided to open the new office")), LINES
    )
    assert said == "Ada decided it." and unfound == 0
    [quote] = quotes
    assert (quote.speaker, quote.at, quote.text) == (
        "Ada",
        7_000,
        "we decided to open the new office",
    )


def test_a_quote_the_transcript_does_not_hold_is_never_shown() -> None:
    said, quotes, unfound = parse(
        answer("Ada said the budget doubled.", ("Ada", "00:07", "the budget doubled")), LINES
    )
    assert quotes == () and unfound == 1 and said == "Ada said the budget doubled."
    # Too short to mean anything, or not text at all.
    assert parse(answer("x", ("Ada", "00:00", "a")), LINES)[1] == ()
    assert parse(json.dumps({"answer": "x", "quotes": [{"text": 3}]}), LINES)[1] == ()


def test_of_several_lines_holding_a_quote_the_nearest_to_its_time() -> None:
    lines = (Line("Ada", 0, "Thank you."), Line("Grace", 60_000, "Thank you."))
    assert find_quote("thank you", 59_000, lines) == lines[1]
    assert find_quote("thank you", None, lines) == lines[0]


def test_an_answer_in_words_or_fenced_json_is_still_read() -> None:
    assert parse("The recording does not say.", LINES) == ("The recording does not say.", (), 0)
    fenced = "```json\n" + answer("Friday.", (None, "00:11", "by Friday")) + "\n```"
    said, quotes, _ = parse(fenced, LINES)
    assert said == "Friday." and quotes[0].speaker == "Grace"


def test_the_request_holds_the_transcript_then_the_history_then_the_question() -> None:
    history = [ask._Turn("What will Grace send?", "The figures. " + "x" * 5000)]
    sent = question_messages(LINES, "By when?", history, model="claude-sonnet-4-5-20250929")
    assert [m["role"] for m in sent] == ["system", "user", "user", "assistant", "user"]
    assert sent[1]["content"].startswith("Transcript:\n[00:00] Ada: Good morning.")
    assert "[00:11] Grace: I will send the figures" in sent[1]["content"]
    assert sent[-1]["content"] == "By when?"
    # A model without structured output gets the schema in words.
    plain = question_messages(LINES, "By when?", [], model="gpt-oss-120b")
    assert '"quotes"' in plain[0]["content"]


def test_the_history_kept_is_bounded() -> None:
    text = ask._history_text("y" * 10_000, ())
    assert len(text) == HISTORY_ANSWER_CHARS


def test_a_long_recording_is_answered_from_the_parts_that_share_its_words() -> None:
    filler = "We talked about the weather and nothing else for a long while. " * 12
    lines = [Line("Ada", i * 1000, filler) for i in range(2_000)]
    lines[1500] = Line("Grace", 1_500_000, "The warehouse lease ends in June.")
    chosen, partial = relevant(lines, "When does the warehouse lease end?")
    assert partial and lines[1500] in chosen
    assert sum(len(line.text) for line in chosen) < sum(len(line.text) for line in lines) / 5
    short, partial = relevant(LINES, "anything")
    assert short == LINES and not partial


def test_the_limit_is_per_person_and_per_hour() -> None:
    clock = Clock()
    limit = RateLimit(2, clock=clock)
    assert limit.wait(("slack", "T1", "U1")) is None
    assert limit.wait(("slack", "T1", "U1")) is None
    clock.now += 600
    assert limit.wait(("slack", "T1", "U1")) == 3000.0
    assert limit.wait(("slack", "T1", "U2")) is None  # someone else
    clock.now += 3000
    assert limit.wait(("slack", "T1", "U1")) is None
    assert messages.question_limit(2, 50).startswith("You have asked 2 questions in the last hour")


def test_the_cache_forgets_after_a_while_and_holds_few() -> None:
    clock = Clock()
    cache = TranscriptCache(entries=2, clock=clock)
    for name in ("a", "b", "c"):
        cache.put(Transcript(name, TranscriptStatus.COMPLETED))
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") is not None
    clock.now += CACHE_SECONDS + 1
    assert cache.get("c") is None
    # Bounded by words too: a long one pushes the oldest out; one too long is not kept.
    word = Word(text="x", start=0, end=1, confidence=1.0)
    by_words = TranscriptCache(words=10, clock=clock)
    by_words.put(Transcript("a", TranscriptStatus.COMPLETED, words=(word,) * 6))
    by_words.put(Transcript("b", TranscriptStatus.COMPLETED, words=(word,) * 6))
    assert by_words.get("a") is None and by_words.get("b") is not None
    by_words.put(Transcript("c", TranscriptStatus.COMPLETED, words=(word,) * 11))
    assert by_words.get("c") is None and by_words.words == 6


def test_a_deleted_transcript_is_known_as_one() -> None:
    scrubbed = Transcript.from_json(
        {
            "id": "t",
            "status": "completed",
            "audio_url": "http://deleted_by_user",
            "text": "Deleted by user.",
            "words": None,
        }
    )
    assert scrubbed.deleted
    assert not Transcript("t", TranscriptStatus.COMPLETED, text="Deleted by user.x").deleted


def test_search_terms_within_assemblyais_limits() -> None:
    assert search_terms("board, new office ,board") == ("board", "new office")
    assert search_terms(" , ") == messages.SEARCH_USAGE
    assert search_terms("a, b, c, d, e, f") == "Search for at most 5 words or phrases at a time."
    assert str(search_terms("one two three four five six")).startswith(
        "A phrase may have at most 5 words"
    )


def test_the_emulator_quotes_the_line_sharing_the_most_words() -> None:
    transcript = "Transcript:\n" + "\n".join(line.as_text() for line in LINES)
    asked = [
        ("system", "x"),
        ("user", transcript),
        ("user", "What did Ada decide about the office?"),
    ]
    said, [line] = _question(asked) or ("", [None])
    assert said == "Ada said at 00:07: Great news. We decided to open the new office in March."
    shaped = _instance(ask.SCHEMA, said, [line])
    assert (
        shaped["quotes"] == [{"speaker": "Ada", "at": "00:07", "text": line.full}]
        and shaped["answer"] == said
    )
    # A follow-up with no words of its own goes by the last exchange; a question the
    # transcript does not answer is said to be one.
    follow = [*asked, ("assistant", said), ("user", "Why?")]
    assert (_question(follow) or ("", []))[0] == said
    assert _question([*asked[:2], ("user", "And the budget?")]) == (NOT_SAID, [])
    # Not a question: a summary request (one user message) is answered as before.
    assert _question([("system", "x"), ("user", "Summarise this.\n\n" + transcript)]) is None
