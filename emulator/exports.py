"""Views derived from a transcript's words: sentences, paragraphs, captions, word search.

Sentences end at terminal punctuation or a change of speaker; paragraphs gather sentences
of one speaker, at most five at a time. Captions fill up to `chars_per_caption`
characters (70 by default, as in the spec's SRT example) and never span two speakers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from .scripts import Word, mean_confidence

DEFAULT_CHARS_PER_CAPTION = 70
SENTENCES_PER_PARAGRAPH = 5
MAX_SENTENCE_WORDS = 40  # text without punctuation still gets sentences
MAX_PHRASE_WORDS = 5  # the API searches for words and phrases of up to five words
_TERMINAL = (".", "?", "!")
_NORMALISE = re.compile(r"[^\w']+")


def _span(words: Sequence[Word]) -> dict[str, Any]:
    return {
        "text": " ".join(w.text for w in words),
        "start": words[0].start,
        "end": words[-1].end,
        "confidence": mean_confidence(list(words)),
        "words": [w.to_json() for w in words],
    }


def _sentence_runs(words: Sequence[Word]) -> Iterator[list[Word]]:
    run: list[Word] = []
    for word in words:
        if run and (word.speaker != run[-1].speaker or len(run) >= MAX_SENTENCE_WORDS):
            yield run
            run = []
        run.append(word)
        if word.text.endswith(_TERMINAL):
            yield run
            run = []
    if run:
        yield run


def sentences(words: Sequence[Word]) -> list[dict[str, Any]]:
    return [_span(run) | {"speaker": run[0].speaker} for run in _sentence_runs(words)]


def paragraphs(words: Sequence[Word]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    group: list[list[Word]] = []
    for run in _sentence_runs(words):
        if group and (
            run[0].speaker != group[-1][0].speaker or len(group) >= SENTENCES_PER_PARAGRAPH
        ):
            result.append(_span([w for r in group for w in r]))
            group = []
        group.append(run)
    if group:
        result.append(_span([w for r in group for w in r]))
    return result


def _captions(words: Sequence[Word], limit: int) -> Iterator[list[Word]]:
    caption: list[Word] = []
    length = 0
    for word in words:
        grown = length + len(word.text) + (1 if caption else 0)
        if caption and (grown > limit or word.speaker != caption[-1].speaker):
            yield caption
            caption, grown = [], len(word.text)
        caption.append(word)
        length = grown
    if caption:
        yield caption


def _clock(ms: int, separator: str, hours: bool) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    clock = f"{m:02d}:{s:02d}{separator}{ms:03d}"
    return f"{h:02d}:{clock}" if hours else clock


def srt(words: Sequence[Word], chars_per_caption: int | None) -> str:
    blocks = []
    for number, caption in enumerate(
        _captions(words, chars_per_caption or DEFAULT_CHARS_PER_CAPTION), 1
    ):
        start = _clock(caption[0].start, ",", hours=True)
        end = _clock(caption[-1].end, ",", hours=True)
        text = " ".join(w.text for w in caption)
        blocks.append(f"{number}\n{start} --> {end}\n{text}\n")
    return "\n".join(blocks)


def vtt(words: Sequence[Word], chars_per_caption: int | None) -> str:
    hours = bool(words) and words[-1].end >= 3_600_000
    blocks = ["WEBVTT\n"]
    for caption in _captions(words, chars_per_caption or DEFAULT_CHARS_PER_CAPTION):
        start = _clock(caption[0].start, ".", hours)
        end = _clock(caption[-1].end, ".", hours)
        blocks.append(f"{start} --> {end}\n{' '.join(w.text for w in caption)}\n")
    return "\n".join(blocks)


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text.lower())


def word_search(words: Sequence[Word], terms: Sequence[str]) -> list[dict[str, Any]]:
    """Matches of each term (a word or a phrase of up to five words), in query order.

    Each match gives the [start, end] of the phrase and the index of its first word in
    the transcript's `words`; terms without a match are left out.
    """
    keys = [normalise(w.text) for w in words]
    matches = []
    for term in terms:
        phrase = [normalise(part) for part in term.split()]
        phrase = [p for p in phrase if p]
        if not phrase:
            continue
        size = len(phrase)
        hits = [i for i in range(len(keys) - size + 1) if keys[i : i + size] == phrase]
        if hits:
            matches.append(
                {
                    "text": term,
                    "count": len(hits),
                    "timestamps": [[words[i].start, words[i + size - 1].end] for i in hits],
                    "indexes": hits,
                }
            )
    return matches
