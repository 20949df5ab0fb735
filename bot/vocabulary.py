"""A channel's vocabulary: keyterms AssemblyAI should hear right (`keyterms_prompt`) and
spellings it must always use (`custom_spelling`), checked against AssemblyAI's limits
before anything is stored or sent.

Keyterms: at most 6 words each (`bot.models.KEYTERM_MAX_WORDS`) and, per request, as many
as the smallest limit of the speech models the request names (1,000 on the STT-3 line,
200 on universal-2), since AssemblyAI may route the audio to any of them. A vocabulary
over the limit for the models a job uses is not sent, and the result says so; it never
fails a transcript. Spellings: `from` words or phrases (case-insensitive), `to` one word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.errors import OptionsError
from bot.models import KEYTERM_MAX_WORDS, keyterms_limit

#: Characters a keyterm may have (AssemblyAI sets none; universal-2 ignores terms over 50).
MAX_TERM_CHARS: Final = 100
#: Spelling rules a channel may have, and phrases per rule (AssemblyAI states no limit).
MAX_SPELLINGS: Final = 100
MAX_FROMS: Final = 10
_SEPARATORS: Final = re.compile(r"[,;\n]+")
_SPELL: Final = re.compile(r"^(?P<froms>.+?)\s+(?:as|=|->|→)\s+(?P<to>\S+)\s*$", re.S)


@dataclass(frozen=True, slots=True)
class Spelling:
    """Always write any of `froms` as `to`."""

    froms: tuple[str, ...]
    to: str

    def to_json(self) -> dict[str, Any]:
        return {"from": list(self.froms), "to": self.to}

    @classmethod
    def from_json(cls, data: Any) -> Spelling:
        return cls(tuple(str(f) for f in data["from"]), str(data["to"]))

    def __str__(self) -> str:
        return f"{', '.join(self.froms)} → {self.to}"


def parse_terms(text: str) -> list[str]:
    """`Kubernetes, Thessaloniki` -> the terms, each once (case-insensitive), checked;
    OptionsError says what is wrong with the first that is not a keyterm."""
    terms: list[str] = []
    seen: set[str] = set()
    for raw in _SEPARATORS.split(text):
        term = " ".join(raw.split()).strip("\"'“”")
        if not term:
            continue
        words = len(term.split())
        if words > KEYTERM_MAX_WORDS:
            raise OptionsError(
                f"“{term[:60]}” has {words} words: AssemblyAI takes keyterms of at most "
                f"{KEYTERM_MAX_WORDS} words"
            )
        if len(term) > MAX_TERM_CHARS:
            raise OptionsError(f"“{term[:60]}…” is longer than {MAX_TERM_CHARS} characters")
        if term.casefold() not in seen:
            seen.add(term.casefold())
            terms.append(term)
    if not terms:
        raise OptionsError(
            "name the words, separated by commas: vocab add Kubernetes, Thessaloniki"
        )
    return terms


def parse_spelling(text: str) -> Spelling:
    """`dicarlo, di carlo as DiCarlo` -> Spelling(("dicarlo", "di carlo"), "DiCarlo")."""
    match = _SPELL.match(text.strip())
    if match is None:
        raise OptionsError(
            "say what to write, and as what: vocab spell di carlo, dicarlo as DiCarlo "
            "(the last word is the one word to write)"
        )
    froms = tuple(
        dict.fromkeys(
            " ".join(raw.split()).strip("\"'“”")
            for raw in _SEPARATORS.split(match["froms"])
            if raw.strip()
        )
    )
    to = match["to"].strip("\"'“”")
    if not froms or not to:
        raise OptionsError("say what to write, and as what: vocab spell dicarlo as DiCarlo")
    if len(froms) > MAX_FROMS:
        raise OptionsError(f"one spelling takes at most {MAX_FROMS} words or phrases to replace")
    for phrase in froms:
        if len(phrase) > MAX_TERM_CHARS:
            raise OptionsError(f"“{phrase[:60]}…” is longer than {MAX_TERM_CHARS} characters")
    return Spelling(froms, to)


def merged(current: Sequence[str], added: Iterable[str]) -> list[str]:
    """`current` with `added` at the end, each term once (case-insensitive)."""
    out = list(current)
    seen = {t.casefold() for t in out}
    for term in added:
        if term.casefold() not in seen:
            seen.add(term.casefold())
            out.append(term)
    return out


def without(current: Sequence[str], removed: Iterable[str]) -> tuple[list[str], list[str]]:
    """(`current` less `removed`, the removed terms that were not there)."""
    gone = {t.casefold() for t in removed}
    kept = [t for t in current if t.casefold() not in gone]
    present = {t.casefold() for t in current}
    missing = [t for t in removed if t.casefold() not in present]
    return kept, missing


def too_many(count: int, models: Sequence[str]) -> str | None:
    """Why `count` keyterms cannot go with `models`, or None when they can."""
    limit = keyterms_limit(models)
    if count <= limit:
        return None
    smallest = min(models, key=lambda m: keyterms_limit([m]))
    return (
        f"{count:,} keyterms: AssemblyAI takes at most {limit:,} with {smallest} (one of the "
        "speech models in use)"
    )


def for_request(terms: Sequence[str], models: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """The keyterms to send with `models`, and a note for the result when the channel's
    vocabulary cannot be sent whole (then none of it is: a partial list would be a choice
    nobody made)."""
    problem = too_many(len(terms), models)
    if problem is None:
        return tuple(terms), None
    return (), f"Vocabulary not used: {problem}. Remove some with vocab remove."
