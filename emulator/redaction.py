"""PII redaction as AssemblyAI describes it (openapi.yml `redact_pii`, `redact_pii_policies`,
`redact_pii_sub`, `redact_pii_audio`; docs "PII Redaction"): the words of the detected
entities are replaced in `text`, `words` and `utterances`, with `entity_name` by the
policy's name in capitals (`[PHONE_NUMBER]`) or with `hash` by one `#` per letter or digit
(`###-###-####`), punctuation kept; only the policies asked for are redacted. With
`redact_pii_audio` a copy of the audio is made with the entities beeped out (or silenced,
`override_audio_redaction_method: silence`), as mp3 or wav (`redact_pii_audio_quality`).

AssemblyAI finds entities with a model; the emulator finds them deterministically:

- by pattern, for what has a fixed shape: email addresses, phone numbers, card numbers
  (Luhn-checked), card security codes and expiry dates after "CVV"/"expires", US social
  security numbers, IP addresses, web addresses, IBANs and routing numbers (banking
  information), dates ("March 7, 1961", "1961-03-07"), dates of birth (a date after
  "born on", "date of birth", "birthday"), money amounts ("$94.50");
- by the script, for everything else (names, places, organisations...): a script may
  list its entities, `"entities": {"Ada Lovelace": "person_name", "Baker Street":
  "location"}`, and each occurrence of those words is that entity.

Each word that overlaps an entity is redacted (AssemblyAI redacts words, not characters).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from .scripts import Transcription, Word

logger = logging.getLogger(__name__)

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = (
    rf"(?:(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s*\d{{4}})?"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})"
)
_I = re.IGNORECASE
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"
_EXPIRY = "expires|expiry|expiration date|expiration"


def _after(words: str, value: str) -> re.Pattern[str]:
    """`value` (the group redacted) after one of `words`, which stay."""
    return re.compile(rf"\b(?:{words})(?: is)?\s+({value})", _I)


#: (policy, pattern) in the order they claim text: a span taken stays taken.
PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("email_address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("url", re.compile(r"\bhttps?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*", _I)),
    ("date_of_birth", _after("born on|date of birth|birthday", _DATE)),
    ("banking_information", re.compile(_IBAN)),
    ("banking_information", _after("routing number|sort code", r"[\d -]{6,11}\d")),
    ("credit_card_cvv", _after("CVV|CVC|security code", r"\d{3,4}")),
    ("credit_card_expiration", _after(_EXPIRY, r"\d{1,2}/\d{2,4}")),
    ("credit_card_number", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    ("us_social_security_number", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("ip_address", re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")),
    ("money_amount", re.compile(r"[$€£]\d[\d,]*(?:\.\d+)?")),
    ("date", re.compile(_DATE)),
    ("phone_number", re.compile(r"(?<![\w.])\+?\(?\d[\d ().-]{5,}\d\b")),
)
_TRAILING = ".,!?;:"


@dataclass(frozen=True, slots=True)
class Entity:
    policy: str
    start: int  # character offsets in the joined text
    end: int


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def find_entities(text: str, declared: Mapping[str, str] = {}) -> list[Entity]:
    """Every entity in `text`: the script's declared ones first, then the patterns'."""
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def claim(policy: str, start: int, end: int) -> None:
        if start >= end or any(start < b and a < end for a, b in taken):
            return
        taken.append((start, end))
        found.append(Entity(policy, start, end))

    for phrase, policy in sorted(declared.items(), key=lambda item: -len(item[0])):
        for match in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
            claim(policy, match.start(), match.end())
    for policy, pattern in PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if match.lastindex else 0
            start, end = match.span(group)
            if policy == "credit_card_number" and not _luhn(re.sub(r"\D", "", match.group())):
                continue
            if policy == "phone_number" and not 7 <= len(re.sub(r"\D", "", match.group())) <= 15:
                continue
            claim(policy, start, end)
    return sorted(found, key=lambda e: e.start)


def _substitute(word: str, policy: str, substitution: str, part: tuple[int, int]) -> str:
    start, end = part
    core = word[start:end]
    hidden = re.sub(r"[^\W_]", "#", core) if substitution == "hash" else f"[{policy.upper()}]"
    return word[:start] + hidden + word[end:]


def redact(
    result: Transcription,
    policies: Iterable[str],
    substitution: str,
    declared: Mapping[str, str] = {},
) -> tuple[Transcription, list[tuple[int, int]]]:
    """`result` with the entities of `policies` redacted, and the (start, end) in ms of
    every redacted word (for the redacted audio)."""
    wanted = set(policies)
    words = list(result.words)
    offsets: list[tuple[int, int]] = []
    position = 0
    for word in words:
        offsets.append((position, position + len(word.text)))
        position += len(word.text) + 1
    text = " ".join(w.text for w in words)
    entities = [e for e in find_entities(text, declared) if e.policy in wanted]
    spans: list[tuple[int, int]] = []
    redacted: list[Word] = []
    for word, (begin, finish) in zip(words, offsets, strict=True):
        hit = next((e for e in entities if e.start < finish and begin < e.end), None)
        if hit is None:
            redacted.append(word)
            continue
        # The part of the word the entity covers, less punctuation that ends the word.
        start = max(hit.start, begin) - begin
        end = min(hit.end, finish) - begin
        while end > start and word.text[end - 1] in _TRAILING and hit.end >= finish:
            end -= 1
        if hit.start <= begin:
            start = 0
        # Word by word, as AssemblyAI redacts: "John Smith" is two redacted words.
        new_text = _substitute(word.text, hit.policy, substitution, (start, end))
        redacted.append(replace(word, text=new_text))
        spans.append((word.start, word.end))
    return replace(result, words=tuple(redacted)), spans


def _between(spans: Sequence[tuple[int, int]]) -> str:
    return "+".join(f"between(t,{a / 1000:.3f},{b / 1000:.3f})" for a, b in spans) or "0"


async def redacted_audio(
    ffmpeg: str | None,
    source: Path,
    out: Path,
    spans: Sequence[tuple[int, int]],
    *,
    quality: str,
    silence: bool,
) -> bool:
    """Write `source` with `spans` beeped out (a 1 kHz tone) or silenced to `out`, as
    mp3 or wav; False when it cannot be made (no ffmpeg, or ffmpeg failed)."""
    if ffmpeg is None:
        return False
    spoken = _between(spans)
    mono = "aresample=16000,aformat=channel_layouts=mono"
    if silence:
        graph = f"[0:a]{mono},volume=enable='{spoken}':volume=0[out]"
    else:
        graph = (
            f"[0:a]{mono},volume=enable='{spoken}':volume=0[muted];"
            f"sine=frequency=1000:sample_rate=16000,volume=0.3,"
            f"volume=enable='not({spoken})':volume=0[beep];"
            "[muted][beep]amix=inputs=2:duration=first:normalize=0[out]"
        )
    codec = ["-c:a", "libmp3lame", "-b:a", "64k"] if quality == "mp3" else ["-c:a", "pcm_s16le"]
    process = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-i", str(source),
        "-filter_complex", graph, "-map", "[out]", *codec, "-f", quality, str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await process.communicate()
    if process.returncode != 0:
        logger.warning("redacted audio failed", extra={"ffmpeg": errors.decode(errors="replace")})
        return False
    return True
