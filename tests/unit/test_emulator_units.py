"""The emulator's plain parts without a server: scripts, exports, paging, settings."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulatorConfig, FaultConfig
from emulator.errors import ApiError
from emulator.exports import paragraphs, sentences, srt, vtt, word_search
from emulator.faults import Fault, FaultInjector
from emulator.params import parse_transcript_request
from emulator.processing import model_used
from emulator.scripts import Options, Script, ScriptError, Word, load_script, transcribe
from emulator.store import JobStatus, TranscriptStore

SHA = "0" * 64
SCRIPT = Script("en_us", (("A", "Hello there. How are you?"), ("B", "Fine, thanks!")))


def test_script_words_fill_the_duration_in_order() -> None:
    result = transcribe(SHA, 10_000, SCRIPT, Options(speaker_labels=True))
    words = result.words
    assert [w.text for w in words] == ["Hello", "there.", "How", "are", "you?", "Fine,", "thanks!"]
    assert words[0].start > 0 and words[-1].end <= 10_000
    assert all(w.start < w.end for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert [(s, " ".join(w.text for w in ws)) for s, ws in result.utterances()] == list(
        SCRIPT.turns
    )
    assert all(0.75 <= w.confidence <= 1 for w in words)
    assert transcribe(SHA, 10_000, SCRIPT, Options(speaker_labels=True)) == result


def test_a_long_script_on_short_audio_still_fits() -> None:
    long = Script("en_us", (("A", " ".join(["word"] * 500)),))
    words = transcribe(SHA, 200, long, Options()).words
    assert len(words) == 500 and all(0 <= w.start < w.end <= 200 for w in words)


def test_text_options_shape_the_words() -> None:
    plain = transcribe(SHA, 5000, SCRIPT, Options(punctuate=False, format_text=False))
    assert plain.text == "hello there how are you fine thanks"
    detected = transcribe(SHA, 5000, Script("es", SCRIPT.turns), Options(language_detection=True))
    assert detected.language_code == "es" and detected.language_confidence is not None
    assert transcribe(SHA, 5000, None, Options(language_code="fr")).language_code == "fr"


def test_placeholder_respects_the_speaker_range() -> None:
    one = transcribe(SHA, 30_000, None, Options(speaker_labels=True, max_speakers=1))
    four = transcribe(SHA, 30_000, None, Options(speaker_labels=True, min_speakers=4))
    assert {w.speaker for w in one.words} == {"A"}
    assert {w.speaker for w in four.words} == {"A", "B", "C", "D"}


def test_load_script(tmp_path: Path) -> None:
    assert load_script(None, SHA) is None
    assert load_script(tmp_path, SHA) is None
    (tmp_path / f"{SHA}.json").write_text(
        json.dumps({"utterances": [{"speaker": "A", "text": "Hi."}]})
    )
    # No names, no translations: one empty set of translations per turn.
    assert load_script(tmp_path, SHA) == Script("en_us", (("A", "Hi."),), translations=({},))
    for bad in ("{", "[]", '{"utterances": []}', '{"utterances": [{"speaker": "A"}]}'):
        (tmp_path / f"{SHA}.json").write_text(bad)
        with pytest.raises(ScriptError):
            load_script(tmp_path, SHA)


def words_of(*texts: tuple[str | None, str]) -> list[Word]:
    out, clock = [], 0
    for speaker, text in texts:
        for token in text.split():
            out.append(Word(token, clock, clock + 300, 0.9, speaker))
            clock += 400
    return out


def test_sentences_and_paragraphs_split_on_punctuation_and_speakers() -> None:
    words = words_of(("A", "One. Two three? Four"), ("B", "Five! Six."))
    assert [s["text"] for s in sentences(words)] == ["One.", "Two three?", "Four", "Five!", "Six."]
    assert [p["text"] for p in paragraphs(words)] == ["One. Two three? Four", "Five! Six."]
    many = words_of(("A", " ".join(f"S{i}." for i in range(12))))
    assert [len(p["words"]) for p in paragraphs(many)] == [5, 5, 2]


def test_captions_format_times_and_respect_the_limit() -> None:
    assert srt([], None) == ""
    assert vtt([], None) == "WEBVTT\n"
    late = [Word("late", 3_723_004, 3_724_500, 0.9, None)]
    assert srt(late, None) == "1\n01:02:03,004 --> 01:02:04,500\nlate\n"
    assert vtt(late, None) == "WEBVTT\n\n01:02:03.004 --> 01:02:04.500\nlate\n"
    words = words_of((None, "aaaa bbbb cccc dddd"))
    assert vtt(words, 9).count("-->") == 2
    assert vtt(words, 1).count("-->") == 4  # a word longer than the limit stands alone


def test_word_search_matches_words_and_phrases_ignoring_case() -> None:
    words = words_of(("A", "The budget, the BUDGET review."))
    found = word_search(words, ["budget", "budget review", "nothing"])
    assert found == [
        {"text": "budget", "count": 2, "timestamps": [[400, 700], [1200, 1500]], "indexes": [1, 3]},
        {"text": "budget review", "count": 1, "timestamps": [[1200, 1900]], "indexes": [3]},
    ]


def test_model_used_falls_back_for_other_languages() -> None:
    both = ("assemblyai-stt-3-7", "universal-2")
    assert model_used(both, "en_us") == "assemblyai-stt-3-7"
    assert model_used(both, "sw") == "universal-2"
    assert model_used(("universal-3-pro", "universal-2"), "ja") == "universal-2"
    assert model_used(("universal-3-5-pro", "universal-2"), "ja") == "universal-3-5-pro"
    assert model_used(("universal-3-5-pro", "universal-2"), "ko") == "universal-2"
    # Never a model the request did not name.
    assert model_used(("universal-3-pro",), "ja") == "universal-3-pro"


def test_parsed_requests_read_through_typed_views() -> None:
    request = parse_transcript_request(
        {
            "audio_url": "https://example.com/a.mp3",
            "speech_models": ["universal-2"],
            "speaker_labels": True,
            "speaker_options": {"min_speakers_expected": 2, "max_speakers_expected": 4},
            "webhook_url": "https://example.com/hook",
            "webhook_auth_header_name": "X-Secret",
            "webhook_auth_header_value": "v",
            "audio_start_from": 100,
            "language_code": None,
        }
    )
    assert request.speech_models == ("universal-2",)
    assert request.expected_speakers() == (2, 4)
    assert request.webhook_header == ("X-Secret", "v")
    assert request.window == (100, None)
    assert "language_code" not in request.values  # a null is as good as absent


def test_store_pages_and_transitions() -> None:
    store = TranscriptStore()
    request = parse_transcript_request(
        {"audio_url": "https://x/y", "speech_models": ["universal-2"]}
    )
    records = [store.add(request) for _ in range(5)]
    page = store.page(2)
    assert [r.id for r in page.records] == [records[4].id, records[3].id]
    assert (page.has_older, page.has_newer) == (True, False)
    after = store.page(2, after_id=records[0].id)
    assert [r.id for r in after.records] == [records[2].id, records[1].id]
    assert store.page(2, status=JobStatus.ERROR).records == []
    with pytest.raises(ApiError):
        store.page(2, before_id=records[0].id, after_id=records[3].id)
    records[0].start()
    with pytest.raises(RuntimeError, match="cannot start processing"):
        records[0].start()
    with pytest.raises(RuntimeError, match="cannot delete"):
        records[0].scrub()


@pytest.mark.parametrize(
    "settings",
    [
        {"api_key": ""},
        {"api_key": "k", "concurrency": 0},
        {"api_key": "k", "processing_time": -1},
        {"api_key": "k", "webhook_attempts": 0},
        {"api_key": "k", "public_base_url": "ftp://x"},
        {"api_key": "k", "scripts_dir": Path("/nonexistent/scripts")},
    ],
)
def test_config_refuses_bad_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**settings)


def test_fault_config_and_injector() -> None:
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(rate_429=0.6, rate_500=0.6)
    injector = FaultInjector(FaultConfig(rate_429=1.0, retry_after=4))
    assert injector.next_for("/v2/transcript") == Fault(status=429, retry_after=4)
    injector.enqueue([Fault(drop=True, path="/v2/upload")])
    assert injector.next_for("/v2/transcript").status == 429  # type: ignore[union-attr]
    assert injector.next_for("/v2/upload") == Fault(drop=True, path="/v2/upload")
    injector.clear()
    assert injector.next_for("/v2/upload") is None
