"""Who is speaking: the people a platform knows in a thread, as speaker identification
wants them, and the label each speaker of a transcript is shown with.

AssemblyAI's speaker identification (`speaker_type: name`) takes at most 35 names of at
most 35 characters each (`bot.models`); `candidates` makes that list from the platform's
people, most likely speakers first: over-long names are shortened at a word boundary,
and a name two people share is told apart by their handle (or left out). The transcript
then carries the names it matched in place of "A", "B"; the rest keep their letter.
`Speakers` shows each speaker by name (a rename given in the thread wins), and knows
which labels are members of the platform (Slack shows those as mentions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.models import SPEAKER_NAME_MAX_CHARS, SPEAKER_NAMES_MAX
from bot.transcript import Transcript


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a platform knows who may be speaking: their member id, the name shown for
    them (a display name), and a handle to tell two people of one name apart."""

    id: str
    name: str
    handle: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Person:
        return cls(str(data["id"]), str(data["name"]))


def shorten(name: str, limit: int = SPEAKER_NAME_MAX_CHARS) -> str:
    """`name` in one line and at most `limit` characters: whole words while they fit
    ("Alexandra Konstantinopoulou-Smithson" -> "Alexandra"), else cut."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    kept = ""
    for word in name.split(" "):
        longer = f"{kept} {word}" if kept else word
        if len(longer) > limit:
            break
        kept = longer
    return kept or name[:limit]


def candidates(people: Iterable[Person]) -> tuple[Person, ...]:
    """At most 35 people, each once, in the order given (the likeliest speakers first),
    with names speaker identification takes: at most 35 characters, not blank, and no
    two alike (compared without case). People who share a name are told apart by their
    handle where it fits; where it does not, the first of them keeps the name."""
    unique: dict[str, Person] = {}
    for person in people:
        name = shorten(person.name)
        if name and person.id not in unique:
            unique[person.id] = Person(person.id, name, person.handle)
    by_name: dict[str, list[Person]] = {}
    for person in unique.values():
        by_name.setdefault(person.name.casefold(), []).append(person)
    chosen: list[Person] = []
    taken: set[str] = set()
    for person in unique.values():
        if len(by_name[person.name.casefold()]) > 1:
            person = _with_handle(person) or person
        key = person.name.casefold()
        if key in taken:
            continue
        taken.add(key)
        chosen.append(person)
        if len(chosen) == SPEAKER_NAMES_MAX:
            break
    return tuple(chosen)


def _with_handle(person: Person) -> Person | None:
    if not person.handle or person.handle.casefold() in person.name.casefold():
        return None
    named = f"{person.name} ({person.handle})"
    if len(named) > SPEAKER_NAME_MAX_CHARS:
        return None
    return Person(person.id, named, person.handle)


def is_label(speaker: str) -> bool:
    """AssemblyAI's own speaker labels: "A", "B", ... "AA" (never a name we sent)."""
    return 1 <= len(speaker) <= 2 and speaker.isascii() and speaker.isupper()


@dataclass(frozen=True, slots=True)
class Speakers:
    """How each speaker of a transcript is shown.

    `identified`: the names speaker identification put in place of labels (the mapping's
    values); `renames`: speaker (as AssemblyAI has it) -> the name someone gave in the
    thread; `people`: who the names may belong to (their member ids)."""

    identified: frozenset[str] = frozenset()
    renames: Mapping[str, str] = field(default_factory=dict)
    people: Sequence[Person] = ()

    @classmethod
    def of(
        cls,
        transcript: Transcript,
        people: Sequence[Person] = (),
        renames: Mapping[str, str] | None = None,
    ) -> Speakers:
        return cls(frozenset(transcript.speaker_mapping.values()), dict(renames or {}), people)

    def label(self, speaker: str | None) -> str:
        if speaker is None:
            return "All speech"
        renamed = self.renames.get(speaker)
        if renamed:
            return renamed
        if speaker in self.identified or not is_label(speaker):
            return speaker
        return f"Speaker {speaker}"

    def member(self, label: str) -> str | None:
        """The member id of the person shown as `label`, if it is someone's name."""
        wanted = label.casefold()
        for person in self.people:
            if person.name.casefold() == wanted:
                return person.id
        return None

    def members(self, labels: Iterable[str]) -> dict[str, str]:
        found = {}
        for label in labels:
            member = self.member(label)
            if member is not None:
                found[label] = member
        return found


def order(transcript: Transcript) -> list[str]:
    """The transcript's speakers (as AssemblyAI has them), in order of first words."""
    return list(dict.fromkeys(u.speaker for u in transcript.utterances))
