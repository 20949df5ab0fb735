"""The controls as people read them: a channel's settings, the month's usage, a person's
recent transcripts. Plain text, the same on every platform; the adapter passes how to
mention a channel and a person (`<#C0123>`, `<@U0123>` on Slack and Discord alike) and
how to escape the rest for its markup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from bot import messages
from bot.controls import ChannelView, RecentJob, UsageSummary
from bot.jobs import JobState
from bot.render import PII_WORDS

Mention = Callable[[str], str]
Escape = Callable[[str], str]
#: Channels and people listed in a usage reply, each.
TOP: Final = 10

_STATES: Final = {
    JobState.DELIVERED: "done",
    JobState.FAILED: "failed",
    JobState.COMPLETED: "posting",
    JobState.SUBMITTED: "transcribing",
    JobState.FETCHING: "uploading",
    JobState.RECEIVED: "queued",
    JobState.FORGOTTEN: "being forgotten",
}


def _same(text: str) -> str:
    return text


def policy_line(view: ChannelView) -> str:
    default = " (the default)" if view.policy_is_default else ""
    return f"Policy: {view.policy.value}{default}: {messages.POLICY_WORDS[view.policy.value]}"


def redaction_line(view: ChannelView, policies: Sequence[str]) -> str:
    default = " (the default)" if view.redaction_is_default else ""
    if not view.redact_pii:
        return f"PII redaction: off{default}"
    kinds = ", ".join(PII_WORDS.get(p, p) for p in policies)
    audio = "; redacted audio posted too" if view.redact_pii_audio else ""
    return f"PII redaction: on{default} ({kinds}){audio}"


def channel_settings(
    view: ChannelView, where: str, policies: Sequence[str], escape: Escape = _same
) -> str:
    """`where` is the channel as it is to be shown (a mention, already markup)."""
    lines = (policy_line(view), redaction_line(view, policies))
    return "\n".join((f"Settings of {where}:", *map(escape, lines)))


def usage(
    summary: UsageSummary,
    *,
    channel: Mention,
    person: Mention,
    escape: Escape = _same,
    top: int = TOP,
) -> str:
    report = summary.report
    since = f"{report.since.day} {report.since:%B}"
    lines = [
        escape(
            f"Usage this month (since {since}, UTC): {messages.hours(report.billed)} "
            f"transcribed, {report.jobs} recording{'s' if report.jobs != 1 else ''}"
        )
    ]
    if summary.budget_hours is not None:
        share = summary.share or 0.0
        reset = f"{summary.resets.day} {summary.resets:%B}"
        lines.append(
            escape(
                f"Budget: {messages.hours(report.billed)} of {summary.budget_hours:g} h "
                f"({share * 100:.0f} %); it starts again on {reset}"
            )
        )
    prices = ", ".join(f"{model} at ${price:g}/h" for model, price in summary.prices)
    cost = f"Estimated cost: {messages.usd(summary.cost)}"
    lines.append(escape(f"{cost} ({prices})" if prices else cost))
    if summary.unpriced:
        lines.append(
            escape(f"Not priced: {messages.hours(summary.unpriced)} (ASSEMBLYAI_PRICE_PER_HOUR)")
        )
    if report.answers:
        lines.append(
            escape(
                f"Questions answered: {report.answers} (LLM Gateway: "
                f"{report.input_tokens:,} tokens in, {report.output_tokens:,} out; not in "
                "the estimate)"
            )
        )
    if report.in_progress:
        lines.append(
            escape(
                f"In progress: {report.in_progress} (holding up to "
                f"{messages.hours(report.reserved)} of the budget until they finish)"
            )
        )
    for title, rows, mention in (
        ("By channel:", report.by_channel, channel),
        ("By person:", report.by_person, person),
    ):
        if not rows:
            continue
        lines.append(escape(title))
        lines += [f"• {mention(key)}: {escape(messages.hours(sec))}" for key, sec in rows[:top]]
        if len(rows) > top:
            lines.append(escape(f"• … and {len(rows) - top} more"))
    return "\n".join(lines)


def recent_line(job: RecentJob, channel: Mention, escape: Escape = _same) -> str:
    when = f"{job.created_at.day} {job.created_at:%b %H:%M} UTC"
    return f"• {escape(job.title)} in {channel(job.channel)}, {escape(when)}: {_STATES[job.state]}"


def opt_out_line(opted_out: bool) -> str:
    if opted_out:
        return (
            "You opted out: recordings you share are not transcribed automatically, and "
            "nobody else can ask for them."
        )
    return "Recordings you share are transcribed where the channel transcribes automatically."
