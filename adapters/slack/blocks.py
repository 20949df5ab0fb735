"""Block Kit for what the engine posts, and the escaping that keeps transcripts inert.

Slack reads `&`, `<` and `>` as markup in message text and mrkdwn: `<!channel>` pings a
channel, `<@U123>` a person, `<https://…|label>` hides a link. Text spoken in a recording
must never do that, so every piece of text from outside goes through `escape` and every
mrkdwn object is `verbatim` (no auto-linking of names or bare `@here`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.chat import Post
from bot.render import NO_SPEECH, SLACK_SECTION_LIMIT, Document, chunks

Block = dict[str, Any]

MAX_BLOCKS: Final = 50
HEADER_LIMIT: Final = 150
#: Slack turns these into pings even without `<! >` in some clients and integrations.
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_UTTERANCE = re.compile(r"^(?P<who>.+?) \[(?P<at>\d+(?::\d\d)+)\]: (?P<text>.*)$", re.S)
_HEADINGS = frozenset({"Summary", "Speakers"})
_WORD_JOINER = "\u2060"


def escape(text: str) -> str:
    """Plain text made safe for Slack's message text and mrkdwn."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def sections(text: str, *, limit: int = SLACK_SECTION_LIMIT) -> list[Block]:
    """Plain `text` as escaped section blocks of at most `limit` characters each, cut at
    line or word boundaries (escaping lengthens text, so the cut leaves room for it)."""
    blocks: list[Block] = []
    size = limit
    while True:
        pieces = [escape(piece) for piece in chunks(text, size)] if text else []
        if all(len(piece) <= limit for piece in pieces):
            break
        size = max(1, size * 3 // 4)  # dense in & < >: cut smaller and try again
    for piece in pieces:
        if piece.strip():
            blocks.append({"type": "section", "text": mrkdwn(piece)})
    return blocks


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What chat.postMessage / chat.update take: notification text and blocks."""

    text: str
    blocks: list[Block]


def status(post: Post, *, context: str | None = None) -> SlackMessage:
    """A short message from the engine (status line, failure); `context` is a mrkdwn line
    shown under it (already safe), e.g. who asked for the transcript."""
    blocks = sections(post.text)
    if context:
        blocks.append({"type": "context", "elements": [mrkdwn(context)]})
    return SlackMessage(escape(post.text), blocks[:MAX_BLOCKS])


def result(post: Post) -> SlackMessage:
    """The transcript: header, facts, summary and speakers, then the utterances the
    engine's text holds (all of them, or the preview when the full text is attached)."""
    document = post.document
    if document is None:
        return status(post)
    title, *facts = document.header.split(" · ")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}}
    ]
    if facts:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(" · ".join(facts)))]})
    blocks.extend(_summary(document.summary))
    shown = preview_lines(document, post.text)
    if shown:
        blocks.append({"type": "divider"})
        blocks.extend(_utterances(shown, document.line_separator))
    elif not document.transcript_lines:
        blocks.extend(sections(NO_SPEECH))  # silence: say so in the message itself
    hidden = len(document.transcript_lines) - len(shown)
    note = _attachment_note(post, hidden)
    # The small print (what was redacted, the deletion receipt) always has its place.
    small = [{"type": "context", "elements": [mrkdwn(escape(document.footer_text))]}]
    small = small if document.footer else []
    room = MAX_BLOCKS - 1 - len(small)
    if len(blocks) > room:
        blocks = blocks[:room]
        note = note or "… the rest is in transcript.txt"
    if note:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(note))]})
    return SlackMessage(escape(post.text), blocks + small)


def preview_lines(document: Document, inline: str) -> tuple[str, ...]:
    """The transcript lines the engine's inline text shows: a prefix of the document's."""
    lines = document.transcript_lines
    taken = 0
    position = 0
    for line in lines:
        found = inline.find(line, position)
        if found < 0:
            break
        position = found + len(line)
        taken += 1
    return lines[:taken]


def _summary(summary: str) -> list[Block]:
    blocks: list[Block] = []
    for part in summary.split("\n\n"):
        heading, _, body = part.partition("\n")
        if heading in _HEADINGS and body:
            for i, block in enumerate(sections(body, limit=SLACK_SECTION_LIMIT - 40)):
                if i == 0:
                    block["text"]["text"] = f"*{heading}*\n" + block["text"]["text"]
                blocks.append(block)
        elif part.strip():
            blocks.extend(sections(part))
    return blocks


def _utterances(lines: Sequence[str], separator: str) -> Iterator[Block]:
    """Utterances as `*Speaker A* `00:05`  text`, packed into as few sections as fit."""
    current: list[str] = []
    used = 0
    for line in lines:
        for piece in _formatted(line):
            cost = len(piece) + (len(separator) if current else 0)
            if current and used + cost > SLACK_SECTION_LIMIT:
                yield {"type": "section", "text": mrkdwn(separator.join(current))}
                current, used = [], 0
                cost = len(piece)
            current.append(piece)
            used += cost
    if current:
        yield {"type": "section", "text": mrkdwn(separator.join(current))}


def _formatted(line: str) -> list[str]:
    match = _UTTERANCE.match(line)
    if match is None:
        return [block["text"]["text"] for block in sections(line)]
    lead = f"*{escape(match['who'])}* `{match['at']}`  "
    room = SLACK_SECTION_LIMIT - len(lead)
    parts = [block["text"]["text"] for block in sections(match["text"], limit=room)]
    return [lead + parts[0], *parts[1:]] if parts else [lead.rstrip()]


def _attachment_note(post: Post, hidden: int) -> str | None:
    names = [f.name for f in post.files]
    if "transcript.txt" in names and hidden:
        return f"… {hidden:,} more lines in transcript.txt below"
    if names:
        return "Attached: " + ", ".join(names)
    return None


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"
