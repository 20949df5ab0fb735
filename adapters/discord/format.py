"""How a core `Post` looks on Discord: message content, an embed and files, within limits.

A result reads best as an embed (header as title, the AI summary, talk-time per speaker)
above the transcript itself in the message content, escaped so that `*`, `_` or `>` in
what people said is shown as said. Content holds 2,000 characters: the transcript lines
that fit, and when they do not all fit, `transcript.txt` carries everything. Status lines
and failures are our own plain text. Mentions never ping (`AllowedMentions.none()`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import discord

from adapters.discord import actions
from bot import render
from bot.chat import Post
from bot.render import Document, RenderedFile

#: Each post ends with its reference (`marker`): the rest of the 2,000 is ours to fill.
REF_LENGTH: Final = 10
MARKER_ROOM: Final = len("\n-# ref ") + REF_LENGTH
CONTENT_LIMIT: Final = render.DISCORD_MESSAGE_LIMIT - MARKER_ROOM
TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FOOTER_LIMIT: Final = 2048
FIELD_LIMIT: Final = 1024
THREAD_NAME_LIMIT: Final = 100
NONCE_LENGTH: Final = 25  # Discord's limit for a string nonce
ACCENT: Final = 0x4F7CAC


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Discord message: what `send` and `edit` take."""

    content: str
    embeds: tuple[discord.Embed, ...] = ()
    files: tuple[RenderedFile, ...] = ()
    #: the result's buttons (Rename, Redo)
    view: discord.ui.View | None = None

    def discord_files(self) -> list[discord.File]:
        """Fresh `discord.File`s (each is consumed by the request that sends it)."""
        return [discord.File(io.BytesIO(f.data), filename=f.name) for f in self.files]


def outgoing(post: Post, *, key: str, embeds: bool = True) -> Outgoing:
    """The message for `post`, posted under the engine's `key` (its `marker` ends the
    content). Without `embeds` (the bot lacks Embed Links there, and Discord would
    silently drop them) everything goes in the content."""
    document = post.document
    if document is None:
        # Our own texts (status lines, failures): short, but never over the limit.
        out = Outgoing(clip(post.text, CONTENT_LIMIT), files=tuple(post.files))
    elif embeds:
        out = _with_embed(document, post.files)
    else:
        out = _plain(document, post.files)
    if post.controls is not None:
        out = replace(out, view=actions.view(post.controls))
    return replace(out, content=marked(out.content, key))


def _with_embed(document: Document, files: Sequence[RenderedFile]) -> Outgoing:
    """The header, notes and AI summary in an embed (points in its description,
    decisions, action items and speakers as fields), the transcript in the content."""
    embed = discord.Embed(title=clip(document.header, TITLE_LIMIT), colour=ACCENT)
    complete = True
    description = "\n\n".join(p for p in (_notes(document), _points(document)) if p)
    if description:
        embed.description = clip(description, DESCRIPTION_LIMIT)
        complete = embed.description == description
    fields = [("Decisions", _decisions(document)), ("Action items", _actions(document))]
    if document.stats_lines:
        fields.append(("Speakers", "\n".join(escape(line) for line in document.stats_lines)))
    for name, value in fields:
        if value:
            embed.add_field(name=name, value=clip(value, FIELD_LIMIT), inline=False)
            complete = complete and len(value) <= FIELD_LIMIT
    footer = f"{document.word_count:,} words · transcribed with AssemblyAI"
    # The small print (what was redacted, the deletion receipt) goes in the embed's footer.
    embed.set_footer(text=clip("\n".join((footer, *document.footer)), FOOTER_LIMIT))
    lines = [escape(line) for line in document.transcript_lines] or [render.NO_SPEECH]
    content, fits = fit_lines("", lines, document.line_separator, _note(document))
    return Outgoing(content, (embed,), _ensure_full_text(document, files, complete and fits))


def _plain(document: Document, files: Sequence[RenderedFile]) -> Outgoing:
    parts = (document.header, document.notes_text, document.summary)
    head = "\n\n".join(escape(part) for part in parts if part)
    lines = [escape(line) for line in document.transcript_lines] or [render.NO_SPEECH]
    small = "\n".join(f"-# {escape(line)}" for line in document.footer)
    content, fits = fit_lines(head, lines, document.line_separator, _note(document), tail=small)
    return Outgoing(content, (), _ensure_full_text(document, files, fits))


def _at(ms: int | None, hours: bool) -> str:
    return f" `{render.format_timestamp(ms, hours=hours)}`" if ms is not None else ""


def _notes(document: Document) -> str:
    return "\n".join(f"-# {escape(note)}" for note in document.notes)


def _points(document: Document) -> str:
    """The AI summary's points (the model's words escaped, our own formatting), or the
    one line saying why there is none."""
    if document.ai_failed is not None:
        return escape(render.summary_failed(document.ai_failed))
    if document.ai is None:
        return ""
    lines = []
    for point in document.ai.points:
        when = _at(point.at, document.hours)
        if point.speaker:
            lines.append(f"- **{escape(point.speaker)}**{when}: {escape(point.text)}")
        else:
            lines.append(f"- {escape(point.text)}{when}")
    return "\n".join(lines)


def _decisions(document: Document) -> str:
    if document.ai is None:
        return ""
    return "\n".join(
        f"- {escape(d.text)}{_at(d.at, document.hours)}" for d in document.ai.decisions
    )


def _actions(document: Document) -> str:
    if document.ai is None:
        return ""
    lines = []
    for item in document.ai.action_items:
        owner = f"**{escape(item.owner)}**: " if item.owner else ""
        due = f" *(by {escape(item.due)})*" if item.due else ""
        lines.append(f"- {owner}{escape(item.task)}{due}{_at(item.at, document.hours)}")
    return "\n".join(lines)


def fit_lines(
    head: str, lines: Sequence[str], separator: str, note: str, *, tail: str = ""
) -> tuple[str, bool]:
    """`head`, then as many whole `lines` as fit in one message; if not all fit, `note`
    closes it; `tail` (small print) ends it either way. Returns the text and whether
    every line is in it."""
    if tail:
        text, fits = _fit(head, lines, separator, note, CONTENT_LIMIT - len(tail) - 1)
        return f"{text}\n{tail}", fits
    return _fit(head, lines, separator, note, CONTENT_LIMIT)


def _fit(
    head: str, lines: Sequence[str], separator: str, note: str, limit: int
) -> tuple[str, bool]:
    whole = separator.join(lines)
    full = f"{head}\n\n{whole}" if head else whole
    if len(full) <= limit:
        return full, True
    room = limit - len(note) - 2 - (len(head) + 2 if head else 0)
    if room < 40:
        # Even the head overflows (a very long summary): the file holds it whole.
        return clip(head, limit - len(note) - 2) + "\n\n" + note, False
    taken: list[str] = []
    used = 0
    for line in lines:
        cost = len(line) + (len(separator) if taken else 0)
        if used + cost > room:
            break
        taken.append(line)
        used += cost
    body = separator.join(taken) if taken else clip(lines[0], room)
    parts = [p for p in (head, body, note) if p]
    return "\n\n".join(parts), False


def _note(document: Document) -> str:
    return f"… full transcript attached ({document.word_count:,} words)"


def _ensure_full_text(
    document: Document, files: Sequence[RenderedFile], complete: bool
) -> tuple[RenderedFile, ...]:
    """The files to attach; `transcript.txt` is added when the message cannot show
    everything and the core did not attach it already (its ladder counts unescaped text)."""
    attached = tuple(files)
    if complete or any(f.name == "transcript.txt" for f in attached):
        return attached
    full = RenderedFile("transcript.txt", document.text + "\n", "text/plain")
    return (full, *attached)


def escape(text: str) -> str:
    """Show what people said as they said it: no accidental bold, quotes or spoilers."""
    return discord.utils.escape_markdown(text)


def clip(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, ending in `…`."""
    if len(text) <= limit:
        return text
    return render.chunks(text, limit - 1)[0].rstrip() + "…"


def marker(key: str) -> str:
    """The line that ends every post: Discord's small print (`-# `) with a reference derived
    from the engine's key. Discord gives a nonce back for a few minutes only, and never in
    a channel's history; this line is how a post is recognised there after any restart."""
    return f"-# ref {nonce(key)[:REF_LENGTH]}"


def marked(content: str, key: str) -> str:
    return f"{content}\n{marker(key)}" if content else marker(key)


def is_marked(content: str, key: str) -> bool:
    return content.rsplit("\n", 1)[-1] == marker(key)


def nonce(key: str) -> str:
    """Discord's idempotency key for a post (`enforce_nonce`): the engine's key, hashed to
    fit Discord's 25 characters. Same key, same nonce: a repeated post is not shown twice."""
    return hashlib.sha256(key.encode()).hexdigest()[:NONCE_LENGTH]


def thread_name(title: str) -> str:
    return clip(f"Transcript: {' '.join(title.split())}", THREAD_NAME_LIMIT)
