"""Rendering: statistics, header, transcript lines, the summary section, chunks and the
ladder.

Transcripts are built from AssemblyAI-shaped JSON through `Transcript.from_json`, as the
engine will receive them. Property checks loop over seeded random inputs.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot import render
from bot.render import (
    DISCORD_MESSAGE_LIMIT,
    NO_SPEECH,
    SLACK_SECTION_LIMIT,
    chunks,
    fit,
    format_duration,
    format_timestamp,
    language_name,
    speaker_stats,
    stats_lines,
    summary_section,
)
from bot.summary import Point, Summary, SummaryFailed
from bot.transcript import Span, Transcript, TranscriptStatus


def bullets(text: str) -> Summary:
    """A summary of `text`'s lines, each a point (`Speaker A: point` is attributed)."""
    points = []
    for line in text.splitlines():
        line = line.strip().removeprefix("- ")
        who, sep, said = line.partition(": ")
        points.append(Point(who, said, None) if sep else Point(None, line, None))
    return Summary(tuple(points))


# A completed two-speaker transcript as AssemblyAI returns it (fields the bot ignores
# trimmed). Speaker A talks 3.0 s + 2.5 s, speaker B 4.0 s.
_WORDS: list[dict[str, Any]] = [
    {"text": "Shall", "start": 240, "end": 800, "confidence": 0.98, "speaker": "A"},
    {"text": "we", "start": 800, "end": 1500, "confidence": 0.99, "speaker": "A"},
    {"text": "start?", "start": 1500, "end": 3240, "confidence": 0.97, "speaker": "A"},
    {"text": "Yes,", "start": 4000, "end": 4600, "confidence": 0.95, "speaker": "B"},
    {"text": "the", "start": 4600, "end": 5000, "confidence": 0.99, "speaker": "B"},
    {"text": "numbers", "start": 5000, "end": 6200, "confidence": 0.96, "speaker": "B"},
    {"text": "are", "start": 6200, "end": 6900, "confidence": 0.99, "speaker": "B"},
    {"text": "in.", "start": 6900, "end": 8000, "confidence": 0.94, "speaker": "B"},
    {"text": "Great,", "start": 9000, "end": 9900, "confidence": 0.92, "speaker": "A"},
    {"text": "go", "start": 9900, "end": 10600, "confidence": 0.99, "speaker": "A"},
    {"text": "ahead.", "start": 10600, "end": 11500, "confidence": 0.97, "speaker": "A"},
]
TWO_SPEAKERS: dict[str, Any] = {
    "id": "5551722-f677-48a6-a6f5-0a1b2c3d4e5f",
    "status": "completed",
    "language_code": "en_us",
    "audio_url": "https://example.com/standup.mp3",
    "audio_duration": 12,
    "confidence": 0.93,
    "speaker_labels": True,
    "text": "Shall we start? Yes, the numbers are in. Great, go ahead.",
    "words": _WORDS,
    "utterances": [
        {
            "speaker": "A",
            "text": "Shall we start?",
            "start": 240,
            "end": 3240,
            "confidence": 0.98,
            "words": _WORDS[0:3],
        },
        {
            "speaker": "B",
            "text": "Yes, the numbers are in.",
            "start": 4000,
            "end": 8000,
            "confidence": 0.96,
            "words": _WORDS[3:8],
        },
        {
            "speaker": "A",
            "text": "Great, go ahead.",
            "start": 9000,
            "end": 11500,
            "confidence": 0.96,
            "words": _WORDS[8:11],
        },
    ],
}


def aai(
    turns: list[tuple[str, str, int, int]],
    *,
    labels: bool = True,
    duration: float | None = None,
    language: str | None = "en_us",
) -> Transcript:
    """A completed transcript in AssemblyAI's shape: (speaker, text, start ms, end ms)
    per utterance, words spread evenly over each utterance."""
    all_words: list[dict[str, Any]] = []
    utterances = []
    for speaker, text, start, end in turns:
        tokens = text.split()
        step = (end - start) / max(1, len(tokens))
        words = [
            {
                "text": token,
                "start": int(start + i * step),
                "end": int(start + (i + 1) * step),
                "confidence": 0.9,
                "speaker": speaker if labels else None,
            }
            for i, token in enumerate(tokens)
        ]
        all_words += words
        utterances.append(
            {
                "speaker": speaker,
                "text": text,
                "start": start,
                "end": end,
                "confidence": 0.9,
                "words": words,
            }
        )
    return Transcript.from_json(
        {
            "id": "t-1",
            "status": "completed",
            "text": " ".join(t[1] for t in turns),
            "words": all_words,
            "utterances": utterances if labels else None,
            "audio_duration": duration,
            "language_code": language,
            "speaker_labels": labels,
            "audio_url": "https://example.com/a.mp3",
        }
    )


EMPTY = Transcript.from_json(
    {
        "id": "t-0",
        "status": "completed",
        "text": "",
        "words": [],
        "utterances": [],
        "audio_duration": 3,
        "language_code": "en_us",
        "audio_url": "https://example.com/s.mp3",
    }
)

VOCABULARY = ("the", "quarterly", "numbers", "look", "good", "and", "costs", "are", "flat", "so")


def long_transcript(n_words: int, per_utterance: int = 50) -> Transcript:
    rng = random.Random(7)
    turns, t = [], 0
    for i in range(n_words // per_utterance):
        text = " ".join(rng.choice(VOCABULARY) for _ in range(per_utterance - 1)) + f" end{i}."
        turns.append(("AB"[i % 2], text, t, t + 20_000))
        t += 21_000
    return aai(turns, duration=t / 1000)


@pytest.fixture(scope="module")
def huge() -> Transcript:
    return long_transcript(50_000)


# -- small formatters ---------------------------------------------------------------


def test_format_timestamp() -> None:
    assert format_timestamp(0) == "00:00"
    assert format_timestamp(65_999) == "01:05"  # floor: never points past the words
    assert format_timestamp(3_599_999) == "59:59"
    assert format_timestamp(3_723_000) == "1:02:03"
    assert format_timestamp(5_000, hours=True) == "0:00:05"
    assert format_timestamp(-5) == "00:00"


def test_format_duration() -> None:
    assert format_duration(245) == "4:05"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(59.5) == "1:00"
    assert format_duration(0.4) == "0:00"
    assert format_duration(36_000) == "10:00:00"


def test_language_name() -> None:
    assert language_name("en_us") == "English"
    assert language_name("en") == "English"
    assert language_name("EN-GB") == "English"
    assert language_name("fr") == "French"
    assert language_name("zh") == "Chinese"
    assert language_name("hi") == "Hindi"
    assert language_name("haw") == "haw"  # no name known: the code itself
    assert language_name(None) is None


# -- statistics ---------------------------------------------------------------------


def test_two_speaker_stats() -> None:
    stats = speaker_stats(Transcript.from_json(TWO_SPEAKERS))
    assert [s.speaker for s in stats] == ["A", "B"]
    a, b = stats
    assert (a.talk_ms, a.words, a.turns) == (5500, 6, 2)
    assert (b.talk_ms, b.words, b.turns) == (4000, 5, 1)
    assert a.share == pytest.approx(5500 / 9500)
    assert b.share == pytest.approx(4000 / 9500)
    assert stats_lines(stats) == (
        "Speaker A — 0:06 (58%), 6 words, 2 turns",
        "Speaker B — 0:04 (42%), 5 words, 1 turn",
    )


def test_speakers_in_order_of_first_appearance() -> None:
    t = aai([("C", "hi", 0, 1000), ("A", "hello there", 1000, 3000), ("C", "ok", 3000, 3500)])
    assert [s.speaker for s in speaker_stats(t)] == ["C", "A"]
    assert [s.turns for s in speaker_stats(t)] == [2, 1]


def test_named_speakers_keep_their_names() -> None:
    stats = speaker_stats(aai([("Alice", "hi", 0, 1000), ("B", "yo", 1000, 2000)]))
    assert [s.label for s in stats] == ["Alice", "Speaker B"]


def test_percentages_always_add_up_to_100() -> None:
    thirds = aai([("A", "x", 0, 1000), ("B", "y", 1000, 2000), ("C", "z", 2000, 3000)])
    assert [line.split("(")[1].split("%")[0] for line in stats_lines(speaker_stats(thirds))] == [
        "34",
        "33",
        "33",
    ]
    rng = random.Random(1)
    for _ in range(200):
        turns, t = [], 0
        for _ in range(rng.randint(1, 30)):
            length = rng.randint(0, 50_000)
            turns.append((rng.choice("ABCDEFG"), "word " * rng.randint(1, 5), t, t + length))
            t += length
        stats = speaker_stats(aai(turns))
        if sum(s.talk_ms for s in stats) == 0:
            continue
        assert sum(s.share for s in stats) == pytest.approx(1.0)
        assert sum(s.talk_ms for s in stats) == sum(end - start for _, _, start, end in turns)
        percents = [int(line.split("(")[1].split("%")[0]) for line in stats_lines(stats)]
        assert sum(percents) == 100
        for stat, percent in zip(stats, percents, strict=True):
            assert abs(percent - stat.share * 100) < 1


def test_stats_without_speaker_labels() -> None:
    t = aai([("A", "one two three", 1000, 4000), ("B", "four five", 5000, 9000)], labels=False)
    (only,) = speaker_stats(t)
    assert (only.speaker, only.talk_ms, only.words, only.share) == (None, 8000, 5, 1.0)
    assert stats_lines((only,)) == ("All speech — 0:08, 5 words",)


def test_stats_of_empty_transcript() -> None:
    assert speaker_stats(EMPTY) == ()


# -- the document -------------------------------------------------------------------


def test_render_two_speakers() -> None:
    doc = render.render(Transcript.from_json(TWO_SPEAKERS))
    assert doc.header == "Transcript · 0:12 · English · 2 speakers"
    assert doc.transcript_lines == (
        "Speaker A [00:00]: Shall we start?",
        "Speaker B [00:04]: Yes, the numbers are in.",
        "Speaker A [00:09]: Great, go ahead.",
    )
    assert doc.word_count == 11
    assert doc.summary == "Speakers\n" + "\n".join(doc.stats_lines)
    assert doc.text == "\n\n".join((doc.header, doc.summary, "\n".join(doc.transcript_lines)))


def test_render_past_an_hour_uses_hours_on_every_line() -> None:
    t = aai([("A", "early", 5_000, 6_000), ("B", "late", 3_723_000, 3_724_000)], duration=3724.4)
    doc = render.render(t, summary=bullets("x"))
    assert doc.duration == "1:02:04"
    assert doc.transcript_lines == ("Speaker A [0:00:05]: early", "Speaker B [1:02:03]: late")


def test_render_without_speaker_labels_groups_sentences_into_paragraphs() -> None:
    sentences = [f"Sentence number {i} talks about the quarterly numbers." for i in range(60)]
    t = aai([("A", " ".join(sentences), 0, 600_000)], labels=False, language="fr")
    doc = render.render(t)
    assert doc.header == "Transcript · 10:00 · French · no speaker labels"
    assert doc.line_separator == "\n\n"
    assert len(doc.transcript_lines) > 3
    assert " ".join(doc.transcript_lines) == " ".join(sentences)  # nothing lost or reordered
    longest = max(len(s) for s in sentences)
    for paragraph in doc.transcript_lines:
        assert paragraph.endswith(".")  # whole sentences only
        assert len(paragraph) < 600 + longest
    assert all(len(p) >= 600 for p in doc.transcript_lines[:-1])


def test_render_uses_assemblyai_paragraphs_when_given() -> None:
    t = aai([("A", "one two three four", 0, 4000)], labels=False)
    spans = [Span("One two.", 0, 2000, 0.9), Span("Three\nfour.", 2000, 4000, 0.9)]
    assert render.render(t, paragraphs=spans).transcript_lines == ("One two.", "Three four.")


def test_render_empty_transcript() -> None:
    doc = render.render(EMPTY)
    assert doc.header == "Transcript · 0:03 · English"
    assert doc.stats == () and doc.stats_lines == () and doc.summary == ""
    assert doc.transcript_lines == ()
    assert doc.text == f"Transcript · 0:03 · English\n\n{NO_SPEECH}"
    assert doc.text.count("no speech") == 1  # said once
    assert fit(doc, DISCORD_MESSAGE_LIMIT) == render.Rendered(doc.text)
    assert render.plain_text(EMPTY) == doc.text + "\n"


@pytest.mark.parametrize("summary", [bullets("- Nothing was discussed."), SummaryFailed("timeout")])
def test_an_empty_transcript_has_no_summary(summary: Summary | SummaryFailed) -> None:
    # Nothing to summarise, and no talk-time statistics to fall back on.
    assert render.render(EMPTY, summary=summary) == render.render(EMPTY)


def test_assemblyais_no_spoken_audio_error_stands_for_an_empty_transcript() -> None:
    failed = Transcript.from_json(
        {
            "id": "t-1",
            "status": "error",
            "error": "language_detection cannot be performed on files with no spoken audio.",
            "audio_duration": 3,
        }
    )
    empty = render.without_speech(failed)
    assert empty is not None and empty.status is TranscriptStatus.COMPLETED
    assert (empty.id, empty.error, empty.text, empty.words) == ("t-1", None, "", ())
    assert render.render(empty).text == f"Transcript · 0:03\n\n{NO_SPEECH}"
    other = Transcript.from_json({"id": "t-2", "status": "error", "error": "Download error"})
    assert render.without_speech(other) is None
    assert render.without_speech(EMPTY) is None  # already completed: nothing to stand in for


def test_text_without_word_timings_is_shown() -> None:
    bare = Transcript.from_json(
        {"id": "t", "status": "completed", "text": "Hello there.", "audio_duration": 2}
    )
    doc = render.render(bare, summary=bullets("- A greeting."))
    assert doc.header == "Transcript · 0:02"
    assert doc.transcript_lines == ("Hello there.",)
    assert doc.summary == "Summary\n• A greeting."
    assert NO_SPEECH not in doc.text


def test_render_keeps_unicode_and_emoji() -> None:
    text = "Ça va? 👍🏽 日本語で話しましょう。 👩‍👩‍👧 e\u0301te\u0301"
    doc = render.render(aai([("A", text, 0, 5000)], language="ja"))
    assert doc.transcript_lines == (f"Speaker A [00:00]: {text}",)
    assert doc.language == "Japanese"


def test_render_rejects_unfinished_transcripts() -> None:
    queued = Transcript.from_json({"id": "q", "status": "queued"})
    with pytest.raises(ValueError, match="queued"):
        render.render(queued)


def test_render_is_deterministic(huge: Transcript) -> None:
    assert render.render(huge, summary=bullets("s")) == render.render(huge, summary=bullets("s"))
    assert fit(render.render(huge), 2000) == fit(render.render(huge), 2000)


# -- summary --------------------------------------------------------------------------


def test_summary_section_forms() -> None:
    lines = ("Speaker A — 0:06 (58%), 6 words, 2 turns",)
    assert summary_section(lines, bullets("A: start\nB: in")) == (
        "Summary\n• A: start\n• B: in\n\nSpeakers\n" + lines[0]
    )
    assert summary_section(lines, SummaryFailed("gateway\ntimed out")) == (
        "Summary\n(Summary unavailable: gateway timed out)\n\nSpeakers\n" + lines[0]
    )
    assert summary_section(lines) == "Speakers\n" + lines[0]
    doc = render.render(Transcript.from_json(TWO_SPEAKERS), summary=SummaryFailed("HTTP 503"))
    assert doc.summary.startswith("Summary\n(Summary unavailable: HTTP 503)")
    assert doc.ai is None and doc.ai_failed == "HTTP 503"


def test_plain_text_is_the_whole_document() -> None:
    t = Transcript.from_json(TWO_SPEAKERS)
    assert render.plain_text(t) == render.render(t).text + "\n"
    with_summary = render.plain_text(t, summary=bullets("- Speaker A: asks."))
    assert "Summary\n• Speaker A: asks.\n\nSpeakers\nSpeaker A — " in with_summary


# -- chunks ---------------------------------------------------------------------------

TOKENS = [
    "a",
    "the",
    "numbers",
    "quarterly",
    "Ünïcödé",
    "e\u0301te\u0301",
    "👍🏽",
    "👩‍👩‍👧",
    "日本語の文。次の文\uff01",
    "x" * 45,
    "supercalifragilisticexpialidocious",
]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\n\n", ". ", "? ", "\t", "\n \n", "\u3000", ""]


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 200)):
        if rng.random() < 0.2:
            token = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 15)))
        else:
            token = rng.choice(TOKENS)
        parts.append(token + rng.choice(SEPARATORS))
    return "".join(parts)


def split_words(text: str, pieces: tuple[str, ...], limit: int) -> list[str]:
    """The words a chunk boundary falls inside, when those words fit within `limit`."""
    bad, pos = [], 0
    for piece in pieces[:-1]:
        pos += len(piece)
        if text[pos - 1].isspace() or text[pos].isspace():
            continue
        start, end = pos, pos
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        if end - start <= limit:
            bad.append(text[start:end])
    return bad


def test_chunks_properties_on_random_text() -> None:
    for seed in range(400):
        rng = random.Random(seed)
        text = random_text(rng)
        limit = rng.choice([1, 2, 5, rng.randint(1, 60), rng.randint(40, 400)])
        pieces = chunks(text, limit)
        assert "".join(pieces) == text, seed  # nothing lost, nothing added
        assert all(0 < len(p) <= limit for p in pieces), seed
        assert split_words(text, pieces, limit) == [], seed
        if limit >= 100:  # no needlessly short pieces: at least half full
            assert all(len(p) >= limit // 2 for p in pieces[:-1]), seed


def test_chunks_prefer_paragraphs_then_lines_then_sentences() -> None:
    paragraphs = "\n\n".join(f"Paragraph {i} has a few words in it." for i in range(20))
    for piece in chunks(paragraphs, 100)[:-1]:
        assert piece.endswith("it.\n\n")
    lines = "\n".join(f"Line {i}. It has two sentences." for i in range(20))
    for piece in chunks(lines, 100)[:-1]:
        assert piece.endswith("sentences.\n")
    sentences = " ".join(f"Sentence {i} is here." for i in range(20))
    for piece in chunks(sentences, 50)[:-1]:
        assert piece.endswith("here. ")


def test_chunks_only_hard_split_words_longer_than_the_limit() -> None:
    assert chunks("x" * 25, 10) == ("x" * 10, "x" * 10, "x" * 5)
    assert chunks("ab " + "x" * 12 + " cd", 10) == ("ab ", "x" * 10, "xx cd")
    assert chunks("short", 10) == ("short",)
    assert chunks("", 10) == ()
    with pytest.raises(ValueError):
        chunks("abc", 0)


def test_chunks_keep_graphemes_whole() -> None:
    family = "👩\u200d👩\u200d👧"  # five code points, one picture
    assert chunks(family * 20, 7) == (family,) * 20
    accented = "e\u0301" * 30
    assert all(not p.startswith("\u0301") for p in chunks(accented, 5))
    assert chunks("日本語の文。" * 10, 20)[0] == "日本語の文。" * 3


# -- the ladder -----------------------------------------------------------------------


def test_fit_inline_when_everything_fits() -> None:
    doc = render.render(Transcript.from_json(TWO_SPEAKERS), summary=bullets("- A asks; B answers."))
    result = fit(doc, SLACK_SECTION_LIMIT)
    assert result.inline == doc.text
    assert result.files == ()


def test_fit_attaches_requested_subtitles_either_way(huge: Transcript) -> None:
    small = render.render(Transcript.from_json(TWO_SPEAKERS))
    srt, vtt = "1\n00:00:00,240 --> 00:00:03,240\nShall we start?\n", "WEBVTT\n"
    result = fit(small, 3000, srt=srt, vtt=vtt)
    assert [(f.name, f.mime) for f in result.files] == [
        ("transcript.srt", "application/x-subrip"),
        ("transcript.vtt", "text/vtt"),
    ]
    assert result.files[0].data == srt.encode()
    names = [f.name for f in fit(render.render(huge), 3000, vtt=vtt).files]
    assert names == ["transcript.txt", "transcript.vtt"]


@pytest.mark.parametrize("limit", [DISCORD_MESSAGE_LIMIT, SLACK_SECTION_LIMIT, 40_000])
def test_fit_long_transcript_gives_preview_and_file(huge: Transcript, limit: int) -> None:
    doc = render.render(huge, summary=bullets("- Speaker A: numbers look good."))
    result = fit(doc, limit)
    assert len(result.inline) <= limit
    assert result.inline.startswith(f"{doc.header}\n\n{doc.summary}\n\n")
    assert result.inline.endswith("… full transcript attached (50,000 words)")
    body = result.inline[len(f"{doc.header}\n\n{doc.summary}\n\n") :].split("\n")[:-2]
    assert body == list(doc.transcript_lines[: len(body)])  # whole lines, from the start
    assert len(result.inline) > limit - max(len(line) for line in doc.transcript_lines) - 50
    (attached,) = result.files
    assert (attached.name, attached.mime) == ("transcript.txt", "text/plain")
    assert attached.content == doc.text + "\n"
    last_lines = attached.content.rstrip("\n").split("\n")[-len(huge.utterances) :]
    for utterance, line in zip(huge.utterances, last_lines, strict=True):
        assert line.startswith(f"Speaker {utterance.speaker} [")
        assert line.endswith(f"]: {utterance.text}")  # every utterance, in order
    assert len(attached.data) > 250_000


def test_fit_with_a_summary_longer_than_the_limit() -> None:
    doc = render.render(Transcript.from_json(TWO_SPEAKERS), summary=bullets("point " * 1000))
    result = fit(doc, DISCORD_MESSAGE_LIMIT)
    assert len(result.inline) <= DISCORD_MESSAGE_LIMIT
    assert result.inline.startswith(doc.header + "\n\nSummary\n• point point")
    assert "…\n\n… full transcript attached (11 words)" in result.inline
    assert result.files[0].content == doc.text + "\n"


def test_fit_with_one_utterance_longer_than_the_limit() -> None:
    doc = render.render(aai([("A", "word " * 2000, 0, 60_000)]))
    result = fit(doc, DISCORD_MESSAGE_LIMIT)
    assert len(result.inline) <= DISCORD_MESSAGE_LIMIT
    assert "Speaker A [00:00]: word word" in result.inline  # its start, rather than nothing
    assert result.files[0].content == doc.text + "\n"


def test_fit_always_fits_and_never_loses_the_transcript() -> None:
    for seed in range(150):
        rng = random.Random(seed)
        turns, t = [], 0
        for _ in range(rng.randint(0, 40)):
            text = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 60)))
            turns.append((rng.choice("ABC"), text, t, t + 3000))
            t += 3000
        transcript = aai(turns, labels=rng.random() < 0.7, duration=t / 1000 or None)
        summary = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 300)))
        doc = render.render(transcript, summary=bullets(summary) if rng.random() < 0.5 else None)
        limit = rng.choice([1, 30, 80, 300, 2000, 3000, rng.randint(1, 5000)])
        result = fit(doc, limit)
        assert len(result.inline) <= limit, seed
        if result.files:
            assert result.files[0].name == "transcript.txt", seed
            assert result.files[0].content == doc.text + "\n", seed
        else:
            assert result.inline == doc.text, seed
        for line in doc.transcript_lines:
            assert line in result.inline or line in result.files[0].content, seed
