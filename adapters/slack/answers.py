"""A question's answer and a search's results as Slack messages (Block Kit within its
limits: 3,000 characters a section, 50 blocks, every piece of outside text escaped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from adapters.slack.blocks import MAX_BLOCKS, Block, SlackMessage, escape, mrkdwn, sections
from bot import messages
from bot.chat import Answered, Quote, SearchResults
from bot.render import SLACK_SECTION_LIMIT, chunks, format_timestamp

#: Characters of the notification text (what a push notification shows).
NOTIFICATION_LIMIT: Final = 300
#: Recordings a search lists (each needs a chat.getPermalink).
SHOWN_HITS: Final = 10


def quote_line(quote: Quote) -> str:
    """`> *Ada* `04:05` “what was said”` (mrkdwn, escaped)."""
    at = format_timestamp(quote.at, hours=quote.hours)
    who = f"*{escape(quote.speaker)}* " if quote.speaker else ""
    return f"> {who}`{at}` “{escape(quote.text)}”"


def answer_message(answered: Answered) -> SlackMessage:
    blocks: list[Block] = sections(answered.text)
    for quote in answered.quotes:
        line = quote_line(quote)
        if len(line) > SLACK_SECTION_LIMIT:  # one very long utterance
            line = line[: SLACK_SECTION_LIMIT - 1] + "…"
        blocks.append({"type": "section", "text": mrkdwn(line)})
    if answered.partial:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(messages.PARTIAL_ANSWER))]})
    if len(blocks) > MAX_BLOCKS:
        cut = {"type": "context", "elements": [mrkdwn("(cut to fit one Slack message)")]}
        blocks = [*blocks[: MAX_BLOCKS - 1], cut]
    first = chunks(answered.text, NOTIFICATION_LIMIT)
    return SlackMessage(escape(first[0] if first else answered.text), blocks)


def search_message(results: SearchResults, links: Mapping[int, str | None]) -> SlackMessage:
    """The results; `links[i]`: the permalink of hit i's result (None: not found)."""
    if results.refused is not None:
        return SlackMessage(escape(results.refused), sections(results.refused))
    if not results.hits:
        said = messages.search_nothing(results.words, results.searched, results.days)
        notes = "\n".join((said, *results.notes))
        return SlackMessage(escape(said), sections(notes))
    head = messages.search_found(results.words, len(results.hits), results.searched, results.days)
    blocks: list[Block] = sections(head)
    for index, hit in enumerate(results.hits[:SHOWN_HITS]):
        hours = any(at >= 3_600_000 for at in hit.at)
        times = ", ".join(f"`{format_timestamp(at, hours=hours)}`" for at in hit.at)
        more = f" (+{hit.count - len(hit.at)} more)" if hit.count > len(hit.at) else ""
        title = escape(hit.title)
        link = links.get(index)
        named = f"<{link}|{title}>" if link else title
        day = hit.delivered_at.strftime("%Y-%m-%d")
        line = f"• {named} · {day} · {messages.search_times(hit.count)} at {times}{more}"
        blocks.append({"type": "section", "text": mrkdwn(line[:SLACK_SECTION_LIMIT])})
    if len(results.hits) > SHOWN_HITS:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn(messages.search_older(len(results.hits) - SHOWN_HITS))],
            }
        )
    if results.notes:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(" ".join(results.notes)))]})
    return SlackMessage(escape(head), blocks)
