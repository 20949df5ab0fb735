"""A question's answer and a search's results as Discord messages, within Discord's 2,000
characters a message, with what people said escaped (no accidental markdown)."""

from __future__ import annotations

from typing import Final

from adapters.discord.delivery import Hints, Reply
from adapters.discord.format import clip, escape, fit_lines
from bot import messages
from bot.chat import Answered, Quote, SearchHit, SearchResults
from bot.render import DISCORD_MESSAGE_LIMIT, format_timestamp

#: Recordings a search lists.
SHOWN_HITS: Final = 10


def quote_line(quote: Quote) -> str:
    """`> **Ada** `04:05` “what was said”`."""
    at = format_timestamp(quote.at, hours=quote.hours)
    who = f"**{escape(quote.speaker)}** " if quote.speaker else ""
    return f"> {who}`{at}` “{escape(quote.text)}”"


def answer_content(answered: Answered) -> str:
    """The answer, then its quotes, as many whole as fit (a quote alone too long is cut)."""
    head = clip(escape(answered.text), 1_200)
    lines = [clip(quote_line(q), 700) for q in answered.quotes]
    note = messages.PARTIAL_ANSWER if answered.partial else ""
    if not lines:
        return clip(f"{head}\n-# {note}" if note else head, DISCORD_MESSAGE_LIMIT)
    text, _whole = fit_lines(head, lines, "\n", "-# (more quotes than fit in one message)")
    if note:
        text = f"{text}\n-# {note}"
    return clip(text.replace("\n\n", "\n", 1), DISCORD_MESSAGE_LIMIT)


def result_channel(hit: SearchHit) -> str:
    """Where a job's result was posted: its thread (started from the source message, or
    from a slash command's status), else the channel itself."""
    where = hit.where
    if Hints.of(where.extra).reply is Reply.THREAD:
        return where.message or where.thread or where.channel
    return where.channel


def jump_url(guild: str, channel: str, message: str) -> str:
    return f"https://discord.com/channels/{guild}/{channel}/{message}"


def search_content(results: SearchResults) -> str:
    if results.refused is not None:
        return results.refused
    if not results.hits:
        said = messages.search_nothing(results.words, results.searched, results.days)
        return clip("\n".join((escape(said), *results.notes)), DISCORD_MESSAGE_LIMIT)
    head = escape(
        messages.search_found(results.words, len(results.hits), results.searched, results.days)
    )
    lines = []
    for hit in results.hits[:SHOWN_HITS]:
        hours = any(at >= 3_600_000 for at in hit.at)
        times = ", ".join(f"`{format_timestamp(at, hours=hours)}`" for at in hit.at)
        more = f" (+{hit.count - len(hit.at)} more)" if hit.count > len(hit.at) else ""
        title = escape(clip(hit.title, 80))
        if hit.result_message:
            link = jump_url(hit.where.workspace, result_channel(hit), hit.result_message)
            title = f"[{title}](<{link}>)"
        day = hit.delivered_at.strftime("%Y-%m-%d")
        lines.append(f"- {title} · {day} · {messages.search_times(hit.count)} at {times}{more}")
    if len(results.hits) > SHOWN_HITS:
        lines.append(f"-# {messages.search_older(len(results.hits) - SHOWN_HITS)}")
    if results.notes:
        lines.append("-# " + escape(" ".join(results.notes)))
    text, _whole = fit_lines(head, lines, "\n", "-# (more than fit in one message)")
    return text
