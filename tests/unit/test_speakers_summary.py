"""The pure parts: the names offered to speaker identification, how speakers are shown,
a transcript as LLM input and in parts, the summary's parsing and its requests, and the
vocabulary's checks. No I/O."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from bot import conversation, summary, vocabulary
from bot.errors import OptionsError
from bot.speakers import Person, Speakers, candidates, shorten
from bot.transcript import Transcript


def transcript(turns: list[tuple[str, str]], mapping: dict[str, str] | None = None) -> Transcript:
    utterances = [
        {"speaker": s, "text": t, "start": i * 4000, "end": i * 4000 + 3000, "confidence": 0.9}
        for i, (s, t) in enumerate(turns)
    ]
    data: dict[str, Any] = {"id": "t", "status": "completed", "utterances": utterances, "words": []}
    if mapping is not None:
        data["speech_understanding"] = {
            "request": {"speaker_identification": {"speaker_type": "name"}},
            "response": {"speaker_identification": {"mapping": mapping, "status": "success"}},
        }
    return Transcript.from_json(data)


# -- candidates ------------------------------------------------------------------------


def test_candidates_hold_to_35_names_of_35_characters() -> None:
    people = [Person(f"U{i}", f"Person number {i}") for i in range(50)]
    chosen = candidates(people)
    assert [p.id for p in chosen] == [f"U{i}" for i in range(35)]  # the likeliest first


def test_long_names_are_cut_at_a_word_and_shared_names_told_apart() -> None:
    assert shorten("Alexandra Konstantinopoulou-Smithson of Thessaloniki") == "Alexandra"
    assert (
        shorten("Supercalifragilisticexpialidociousness-Extra")
        == "Supercalifragilisticexpialidociousn"
    )
    assert shorten("  Ada \n Lovelace ") == "Ada Lovelace"
    chosen = candidates(
        [
            Person("U1", "Alex", "alex.k"),
            Person("U2", "alex", "alex.m"),
            Person("U3", "Sam"),
            Person("U4", "Sam"),
            Person("U1", "Alex again"),
            Person("U5", "   "),
        ]
    )
    assert [(p.id, p.name) for p in chosen] == [
        ("U1", "Alex (alex.k)"),
        ("U2", "alex (alex.m)"),
        ("U3", "Sam"),  # no handle to tell them apart: the first keeps the name
    ]
    assert all(len(p.name) <= 35 for p in chosen)


def test_speakers_are_shown_by_name_rename_or_letter() -> None:
    t = transcript(
        [("Ada", "Hi."), ("B", "Hello."), ("Jo", "Hey.")], mapping={"A": "Ada", "C": "Jo"}
    )
    people = [Person("U1", "Ada"), Person("U3", "Jo")]
    shown = Speakers.of(t, people, {"B": "Bob"})
    assert [shown.label(u.speaker) for u in t.utterances] == ["Ada", "Bob", "Jo"]
    assert shown.members(["Ada", "Bob", "Jo"]) == {"Ada": "U1", "Jo": "U3"}  # a two-letter name
    assert Speakers.of(transcript([("A", "x")])).label("A") == "Speaker A"


# -- the conversation as LLM input -------------------------------------------------------


def test_lines_carry_speakers_and_timestamps() -> None:
    t = transcript([("A", "Shall  we\nstart?"), ("Ada", "Yes.")], mapping={"B": "Ada"})
    lines = conversation.lines(t)
    assert conversation.as_text(lines) == "[00:00] Speaker A: Shall we start?\n[00:04] Ada: Yes."


def test_parts_lose_nothing_and_keep_the_order() -> None:
    rng = random.Random(11)
    for _ in range(30):
        lines = [
            conversation.Line(
                rng.choice(["Ada", "Speaker B", None]),
                i * 1000,
                " ".join(["word"] * rng.randint(1, 400)),
            )
            for i in range(rng.randint(1, 60))
        ]
        limit = rng.randint(200, 5000)
        parts = conversation.parts(lines, limit)
        assert all(len(conversation.as_text(p)) <= limit for p in parts)
        joined = [line for part in parts for line in part]
        for original in lines:  # every line's words, in order, split only at words
            pieces = [
                p for p in joined if p.start == original.start and p.speaker == original.speaker
            ]
            assert " ".join(p.text for p in pieces) == original.text


@pytest.mark.parametrize(
    ("value", "ms"),
    [("04:05", 245_000), ("[1:02:03]", 3_723_000), ("00:61", None), ("soon", None), (None, None)],
)
def test_timestamps_from_a_model_are_read_or_dropped(value: object, ms: int | None) -> None:
    assert conversation.parse_timestamp(value) == ms


# -- the summary -------------------------------------------------------------------------


def test_a_models_answer_is_checked_before_it_is_shown() -> None:
    answer = {
        "points": [{"speaker": "Ada", "text": f"point {i}", "at": "00:0{i}"} for i in range(9)],
        "decisions": [{"text": "Ship  it.", "at": "bogus"}, {"text": "", "at": None}],
        "action_items": [{"owner": "null", "task": "Write notes", "due": "Friday", "at": "00:03"}],
    }
    parsed = summary.parse(json.dumps(answer))
    assert len(parsed.points) == 6  # at most six
    assert parsed.decisions == (summary.Decision("Ship it.", None),)
    assert parsed.action_items == (summary.ActionItem(None, "Write notes", "Friday", 3000),)
    fenced = "```json\n" + json.dumps(answer) + "\n```"
    assert summary.parse(fenced) == parsed
    for bad in ("Sure! Here is a summary.", "[]", json.dumps({"points": "x"}), json.dumps({})):
        with pytest.raises(ValueError):
            summary.parse(bad)


def test_requests_ask_for_the_schema_or_describe_it() -> None:
    lines = [conversation.Line("Ada", 0, "Hello.")]
    structured = summary.part_messages(lines, model="claude-sonnet-4-5-20250929")
    words = summary.part_messages(lines, model="gpt-oss-20b", language="Spanish")
    assert "JSON Schema" not in structured[1]["content"]
    assert json.dumps(summary.SCHEMA) in words[1]["content"]
    assert "Write the texts in Spanish." in words[1]["content"]
    assert structured[1]["content"].endswith("Transcript:\n[00:00] Ada: Hello.")
    part = summary.part_messages(lines, model="gpt-5", index=2, total=3)
    assert "This is part 2 of 3 of one conversation." in part[1]["content"]
    notes = summary.notes_text(
        [
            summary.Summary(
                (summary.Point("Ada", "start", 0),),
                (summary.Decision("ship", 1000),),
                (summary.ActionItem("Bob", "notes", "Friday", 2000),),
            )
        ]
    )
    assert notes == (
        "Part 1:\n[00:00] Ada: start\n[00:01] Decision (decision): ship\n"
        "[00:02] Bob (action item): notes (due Friday)"
    )


# -- vocabulary --------------------------------------------------------------------------


def test_keyterms_are_parsed_once_each_and_checked() -> None:
    assert vocabulary.parse_terms(" Kubernetes,Thessaloniki ; kubernetes\n“k8s” ") == [
        "Kubernetes",
        "Thessaloniki",
        "k8s",
    ]
    with pytest.raises(OptionsError, match="has 7 words"):
        vocabulary.parse_terms("a b c d e f g")
    with pytest.raises(OptionsError, match="longer than 100"):
        vocabulary.parse_terms("x" * 101)
    with pytest.raises(OptionsError, match="separated by commas"):
        vocabulary.parse_terms(" , ")


def test_spellings_and_limits() -> None:
    rule = vocabulary.parse_spelling("di carlo, dicarlo as DiCarlo")
    assert rule == vocabulary.Spelling(("di carlo", "dicarlo"), "DiCarlo")
    assert str(rule) == "di carlo, dicarlo → DiCarlo"
    with pytest.raises(OptionsError):
        vocabulary.parse_spelling("dicarlo as Di Carlo")
    assert vocabulary.too_many(200, ["assemblyai-stt-3-7", "universal-2"]) is None
    assert vocabulary.too_many(1000, ["assemblyai-stt-3-7"]) is None
    assert vocabulary.too_many(1001, ["assemblyai-stt-3-7"]) == (
        "1,001 keyterms: AssemblyAI takes at most 1,000 with assemblyai-stt-3-7 (one of the "
        "speech models in use)"
    )
    sent, note = vocabulary.for_request(["a"] * 201, ["universal-2"])
    assert sent == () and note is not None and note.startswith("Vocabulary not used: 201")
