"""Block Kit for what the engine posts, and the escaping that keeps transcripts inert.

Slack reads `&`, `<` and `>` as markup in message text and mrkdwn: `<!channel>` pings a
channel, `<@U123>` a person, `<https://…|label>` hides a link. Text spoken in a recording
must never do that, so every piece of text from outside goes through `escape` and every
mrkdwn object is `verbatim` (no auto-linking of names or bare `@here`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.chat import Controls, Post, RenameForm
from bot.render import (
    NO_SPEECH,
    SLACK_SECTION_LIMIT,
    Document,
    chunks,
    format_timestamp,
    summary_failed,
)

Block = dict[str, Any]

MAX_BLOCKS: Final = 50
HEADER_LIMIT: Final = 150
#: Block Kit's limits for what the result's actions use.
OPTION_TEXT_LIMIT: Final = 75
OPTION_VALUE_LIMIT: Final = 150
MODAL_INPUTS: Final = 50  # speakers a rename form shows (a modal holds 100 blocks)
#: The actions of a result (action ids) and the rename modal (its callback id).
RENAME_ACTION: Final = "threadscribe_rename"
REDO_ACTION: Final = "threadscribe_redo"
RENAME_VIEW: Final = "threadscribe_rename"
NAME_INPUT: Final = "name"
#: Slack turns these into pings even without `<! >` in some clients and integrations.
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_UTTERANCE = re.compile(r"^(?P<who>.+?) \[(?P<at>\d+(?::\d\d)+)\]: (?P<text>.*)$", re.S)
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
    shown under it (already safe), e.g. who asked for the transcript. A failure notice
    ends with its Redo menu, where the engine offers one."""
    blocks = sections(post.text)
    if context:
        blocks.append({"type": "context", "elements": [mrkdwn(context)]})
    actions = controls(post.controls) if post.controls is not None else []
    return SlackMessage(escape(post.text), blocks[: MAX_BLOCKS - len(actions)] + actions)


def result(post: Post) -> SlackMessage:
    """The transcript: header, facts and notes, the AI summary (members as mentions) and
    speakers, then the utterances the engine's text holds (all of them, or the preview
    when the full text is attached), then the result's actions."""
    document = post.document
    if document is None:
        return status(post)
    title, *facts = document.header.split(" · ")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}}
    ]
    if facts:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(" · ".join(facts)))]})
    if document.notes:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(document.notes_text))]})
    blocks.extend(_ai_summary(document))
    blocks.extend(_speakers(document))
    shown = preview_lines(document, post.text)
    if shown:
        blocks.append({"type": "divider"})
        blocks.extend(_utterances(shown, document.line_separator, document.members))
    elif not document.transcript_lines:
        blocks.extend(sections(NO_SPEECH))  # silence: say so in the message itself
    hidden = len(document.transcript_lines) - len(shown)
    note = _attachment_note(post, hidden)
    actions = controls(post.controls) if post.controls is not None else []
    # The small print (what was redacted, the deletion receipt) always has its place.
    small = [{"type": "context", "elements": [mrkdwn(escape(document.footer_text))]}]
    small = small if document.footer else []
    room = MAX_BLOCKS - 1 - len(small) - len(actions)
    if len(blocks) > room:
        blocks = blocks[:room]
        note = note or "… the rest is in transcript.txt"
    if note:
        blocks.append({"type": "context", "elements": [mrkdwn(escape(note))]})
    return SlackMessage(escape(post.text), blocks + actions + small)  # small print last


def who(label: str, members: Mapping[str, str] | None) -> str:
    """A speaker as mrkdwn: the member mention where the name is a member's, else the
    name in bold (escaped)."""
    member = members.get(label) if members else None
    if member is not None and _MEMBER_ID.fullmatch(member):
        return f"<@{member}>"
    return f"*{escape(label)}*"


_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def _at(ms: int | None, hours: bool) -> str:
    return f" `{format_timestamp(ms, hours=hours)}`" if ms is not None else ""


def _ai_summary(document: Document) -> list[Block]:
    """The AI summary as we render it (the model's formatting never reaches Slack)."""
    if document.ai_failed is not None:
        text = f"*Summary*\n{escape(summary_failed(document.ai_failed))}"
        return [{"type": "section", "text": mrkdwn(text)}]
    summary = document.ai
    if summary is None:
        return []
    hours, members = document.hours, document.members
    lines = []
    for point in summary.points:
        lead = f"{who(point.speaker, members)}{_at(point.at, hours)}: " if point.speaker else ""
        tail = _at(point.at, hours) if not point.speaker else ""
        lines.append(f"• {lead}{escape(point.text)}{tail}")
    blocks = _bulleted("Summary", lines)
    decisions = [f"• {escape(d.text)}{_at(d.at, hours)}" for d in summary.decisions]
    blocks += _bulleted("Decisions", decisions)
    actions = []
    for item in summary.action_items:
        owner = f"{who(item.owner, members)}: " if item.owner else ""
        due = f" _(by {escape(item.due)})_" if item.due else ""
        actions.append(f"• {owner}{escape(item.task)}{due}{_at(item.at, hours)}")
    blocks += _bulleted("Action items", actions)
    return blocks


def _bulleted(heading: str, lines: list[str]) -> list[Block]:
    """`lines` (mrkdwn, each safe) under a bold heading, in sections within the limit."""
    if not lines:
        return []
    blocks: list[Block] = []
    current = f"*{heading}*"
    for line in lines:
        line = (
            line
            if len(line) <= SLACK_SECTION_LIMIT - 40
            else line[: SLACK_SECTION_LIMIT - 41] + "…"
        )
        if len(current) + 1 + len(line) > SLACK_SECTION_LIMIT:
            blocks.append({"type": "section", "text": mrkdwn(current)})
            current = line
        else:
            current = f"{current}\n{line}"
    blocks.append({"type": "section", "text": mrkdwn(current)})
    return blocks


def _speakers(document: Document) -> list[Block]:
    if not document.stats_lines:
        return []
    lines = []
    for stat, line in zip(document.stats, document.stats_lines, strict=True):
        rest = line[len(stat.label) :] if line.startswith(stat.label) else f" {line}"
        lines.append(f"{who(stat.label, document.members)}{escape(rest)}")
    return _bulleted("Speakers", lines)


def controls(controls: Controls) -> list[Block]:
    """The result's actions: Rename speakers (a button opening a modal), and Redo (a
    menu of the core's choices, grouped)."""
    elements: list[Block] = []
    if controls.rename:
        elements.append(
            {
                "type": "button",
                "action_id": RENAME_ACTION,
                "text": {"type": "plain_text", "text": "Rename speakers"},
                "value": controls.job_id,
            }
        )
    groups = [g for g in controls.redo if g.items]
    if groups:
        elements.append(
            {
                "type": "static_select",
                "action_id": REDO_ACTION,
                "placeholder": {"type": "plain_text", "text": "Redo with…"},
                "option_groups": [
                    {
                        "label": {"type": "plain_text", "text": _clip(g.label, OPTION_TEXT_LIMIT)},
                        "options": [
                            {
                                "text": {
                                    "type": "plain_text",
                                    "text": _clip(item.label, OPTION_TEXT_LIMIT),
                                },
                                "value": redo_value(controls.job_id, item.value),
                            }
                            for item in g.items[:100]
                        ],
                    }
                    for g in groups[:100]
                ],
            }
        )
    if not elements:
        return []
    return [
        {"type": "actions", "block_id": f"threadscribe:{controls.job_id}", "elements": elements}
    ]


def redo_value(job_id: str, choice: str) -> str:
    return f"{job_id} {choice}"[:OPTION_VALUE_LIMIT]


def parse_redo_value(value: str) -> tuple[str, str]:
    job_id, _, choice = value.partition(" ")
    return job_id, choice


def rename_modal(form: RenameForm, *, channel: str) -> Block:
    """The rename form: one optional text field per speaker, filled with its name now."""
    inputs: list[Block] = []
    for field in form.fields[:MODAL_INPUTS]:
        element: Block = {
            "type": "plain_text_input",
            "action_id": NAME_INPUT,
            "max_length": 35,
            "placeholder": {"type": "plain_text", "text": _clip(field.speaker, 150)},
        }
        if field.current:
            element["initial_value"] = field.current
        inputs.append(
            {
                "type": "input",
                "block_id": f"speaker_{field.key}",
                "optional": True,
                "label": {"type": "plain_text", "text": _clip(field.speaker, 2000)},
                "element": element,
            }
        )
    intro = (
        "Who is who? Give each speaker the name to show (leave a field empty to keep it). "
        "The transcript and its summary update in place."
    )
    return {
        "type": "modal",
        "callback_id": RENAME_VIEW,
        "private_metadata": json.dumps({"job": form.job_id, "channel": channel}),
        "title": {"type": "plain_text", "text": "Rename speakers"},
        "submit": {"type": "plain_text", "text": "Rename"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "section", "text": mrkdwn(escape(intro))}, *inputs],
    }


def rename_values(view: dict[str, Any] | Any) -> dict[str, str]:
    """A submitted rename modal's names, by the core's field keys."""
    values = ((view or {}).get("state") or {}).get("values") or {}
    names: dict[str, str] = {}
    for block_id, actions in values.items():
        if not block_id.startswith("speaker_") or not isinstance(actions, dict):
            continue
        value = (actions.get(NAME_INPUT) or {}).get("value")
        names[block_id.removeprefix("speaker_")] = value if isinstance(value, str) else ""
    return names


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


def _utterances(
    lines: Sequence[str], separator: str, members: Mapping[str, str] | None = None
) -> Iterator[Block]:
    """Utterances as `*Speaker A* `00:05`  text` (a member as a mention), packed into as
    few sections as fit."""
    current: list[str] = []
    used = 0
    for line in lines:
        for piece in _formatted(line, members):
            cost = len(piece) + (len(separator) if current else 0)
            if current and used + cost > SLACK_SECTION_LIMIT:
                yield {"type": "section", "text": mrkdwn(separator.join(current))}
                current, used = [], 0
                cost = len(piece)
            current.append(piece)
            used += cost
    if current:
        yield {"type": "section", "text": mrkdwn(separator.join(current))}


def _formatted(line: str, members: Mapping[str, str] | None = None) -> list[str]:
    match = _UTTERANCE.match(line)
    if match is None:
        return [block["text"]["text"] for block in sections(line)]
    lead = f"{who(match['who'], members)} `{match['at']}`  "
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
