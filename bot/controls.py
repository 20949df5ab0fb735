"""Privacy and cost controls, the same on every platform: who gets transcribed, what is
redacted, what it costs, and forgetting a transcript.

`Controls` is what adapters reach as `core.controls`. The intake asks it first about every
trigger (`screen`), in this order:

1. the allowlists (ALLOWED_WORKSPACES / ALLOWED_GUILDS, ALLOWED_CHANNELS): elsewhere the
   bot does nothing, and says so once per channel (always to someone who asked);
2. the channel's policy (`auto`, `on-request`, `off`; the deployment's default for a
   channel nobody configured, and its own setting for direct messages);
3. the sharer's opt-out: a person who opted out is never transcribed automatically, and
   nobody else can ask for their recordings; their own requests still go through;
4. the PII redaction the job will ask AssemblyAI for (the channel's, else the
   deployment's).

The monthly budget is checked later, with the limits, in the admission's transaction.
Who is an admin is the platform's business (Slack's admins and owners, Discord's Manage
Server): an adapter says so when it asks for something only admins may do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from bot import messages
from bot.chat import Trigger
from bot.jobs import (
    ChannelPolicy,
    ChannelSettings,
    Job,
    JobState,
    JobStore,
    Platform,
    Redaction,
    UrlSource,
    UsageReport,
    month_start,
    next_month,
)
from bot.models import DEFAULT_PII_POLICIES

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

#: Recent transcripts shown to a person (Slack's Home tab, Discord's overview).
RECENT: Final = 10


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """The deployment's choices (from bot/config.py, through the composition root)."""

    channel_defaults: Mapping[Platform, ChannelPolicy] = field(default_factory=dict)
    dm_defaults: Mapping[Platform, ChannelPolicy] = field(default_factory=dict)
    #: workspaces (Slack) or servers (Discord) the bot works in; empty: every one
    allowed_workspaces: Mapping[Platform, frozenset[str]] = field(default_factory=dict)
    #: channels it works in (both platforms' ids); empty: every channel
    allowed_channels: frozenset[str] = frozenset()
    redact_pii: bool = False
    redact_pii_policies: tuple[str, ...] = DEFAULT_PII_POLICIES
    redact_pii_sub: str = "entity_name"
    redact_pii_audio: bool = False
    budget_hours: float | None = None
    prices: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Screening:
    """Whether a trigger may be taken in; if not, what to tell (None: nothing)."""

    take: bool
    refusal: str | None = None
    redaction: Redaction | None = None


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A channel's settings as they apply, and whether each is the deployment's default."""

    channel: str
    policy: ChannelPolicy
    policy_is_default: bool
    redact_pii: bool
    redact_pii_audio: bool
    redaction_is_default: bool


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """This month's usage of a workspace, its budget and the estimated cost."""

    report: UsageReport
    budget_hours: float | None
    resets: datetime
    #: estimated USD, for the seconds whose model has a price
    cost: float
    #: the prices used, by model
    prices: tuple[tuple[str, float], ...]
    #: billed seconds whose model had no price (not in the cost)
    unpriced: float

    @property
    def share(self) -> float | None:
        """Billed share of the budget (0.8 is 80 %), None without a budget."""
        if not self.budget_hours:
            return None
        return self.report.billed / (self.budget_hours * 3600.0)


@dataclass(frozen=True, slots=True)
class RecentJob:
    title: str
    channel: str
    created_at: datetime
    state: JobState


@dataclass(frozen=True, slots=True)
class Overview:
    """What a person sees of the bot (Slack's Home tab, Discord's `/transcribe-settings
    show`): their own switch and transcripts, and for admins the channels and usage."""

    admin: bool
    opted_out: bool
    recent: tuple[RecentJob, ...]
    channels: tuple[ChannelView, ...] = ()
    usage: UsageSummary | None = None


@dataclass(frozen=True, slots=True)
class Forgetting:
    """What `forget` did: the recordings forgotten (those still being transcribed among
    them), or why nothing was (not allowed, nothing found)."""

    titles: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    refused: str | None = None

    @property
    def text(self) -> str:
        if self.refused is not None:
            return self.refused
        if not self.titles:
            return messages.NOTHING_TO_FORGET
        return messages.forgetting(self.titles, self.running)


class Controls:
    def __init__(
        self, store: JobStore, settings: ControlSettings | None = None, *, engine: Engine
    ) -> None:
        self._store = store
        self.settings = settings or ControlSettings()
        self._engine = engine

    # -- who gets transcribed ------------------------------------------------------------

    async def screen(self, trigger: Trigger) -> Screening:
        """Whether the bot may take `trigger` in, and with which redaction."""
        platform, workspace = trigger.platform, trigger.workspace
        channel = trigger.settings_channel or trigger.channel
        asked = trigger.explicit
        if not self.allowed(platform, workspace, None if trigger.direct else channel):
            outside = not self._workspace_listed(platform, workspace)
            refusal = messages.not_enabled(platform.value, workspace=outside)
            if asked or await self._store.notices.first(f"not-enabled:{platform}:{channel}"):
                return Screening(False, refusal)
            return Screening(False)
        settings = await self._store.settings.get(platform, workspace, channel)
        if trigger.direct:
            policy = self.settings.dm_defaults.get(platform, ChannelPolicy.AUTO)
        else:
            policy = self.channel_policy(platform, settings)
        if policy is ChannelPolicy.OFF:
            refusal = messages.transcription_off(direct=trigger.direct)
            if asked:
                return Screening(False, refusal)
            if trigger.direct and await self._store.notices.first(f"dm-off:{platform}:{channel}"):
                return Screening(False, refusal)
            return Screening(False)
        if policy is ChannelPolicy.ON_REQUEST and not asked:
            return Screening(False)
        opt_outs = self._store.opt_outs
        if not asked and await opt_outs.opted_out(platform, trigger.requester):
            # In a channel their choice is respected in silence; in a DM they are told.
            return Screening(False, messages.OPTED_OUT_DM if trigger.direct else None)
        author = trigger.author
        someone_else = asked and author and author != trigger.requester
        if someone_else and await opt_outs.opted_out(platform, author or ""):
            return Screening(False, messages.SHARER_OPTED_OUT)
        return Screening(True, redaction=self.redaction(settings))

    def allowed(self, platform: Platform, workspace: str, channel: str | None) -> bool:
        """Whether the bot works in the workspace and, unless it is a direct message
        (`channel` None), in the channel. Discord's DMs belong to no server: they follow
        DISCORD_DM_TRANSCRIBE only."""
        direct_discord = channel is None and platform is Platform.DISCORD
        if not direct_discord and not self._workspace_listed(platform, workspace):
            return False
        return channel is None or self._listed(channel)

    def _workspace_listed(self, platform: Platform, workspace: str) -> bool:
        listed = self.settings.allowed_workspaces.get(platform)
        return not listed or workspace in listed

    def _listed(self, channel: str) -> bool:
        return not self.settings.allowed_channels or channel in self.settings.allowed_channels

    def channel_policy(self, platform: Platform, settings: ChannelSettings | None) -> ChannelPolicy:
        if settings is not None and settings.policy is not None:
            return settings.policy
        return self.settings.channel_defaults.get(platform, ChannelPolicy.AUTO)

    def redaction(self, settings: ChannelSettings | None) -> Redaction | None:
        """The redaction a job in a channel with `settings` asks for, None for none."""
        text = self.settings.redact_pii
        audio = self.settings.redact_pii_audio
        if settings is not None and settings.redact_pii is not None:
            text = settings.redact_pii
        if settings is not None and settings.redact_pii_audio is not None:
            audio = settings.redact_pii_audio
        if not text:
            return None  # AssemblyAI makes redacted audio only with redact_pii
        return Redaction(
            policies=self.settings.redact_pii_policies,
            substitution=self.settings.redact_pii_sub,
            audio=audio,
        )

    # -- channel settings ----------------------------------------------------------------

    async def channel(self, platform: Platform, workspace: str, channel: str) -> ChannelView:
        settings = await self._store.settings.get(platform, workspace, channel)
        return self._view(platform, channel, settings)

    def _view(
        self, platform: Platform, channel: str, settings: ChannelSettings | None
    ) -> ChannelView:
        redaction = self.redaction(settings)
        own_redaction = settings is not None and (
            settings.redact_pii is not None or settings.redact_pii_audio is not None
        )
        return ChannelView(
            channel=channel,
            policy=self.channel_policy(platform, settings),
            policy_is_default=settings is None or settings.policy is None,
            redact_pii=redaction is not None,
            redact_pii_audio=redaction is not None and redaction.audio,
            redaction_is_default=not own_redaction,
        )

    async def set_policy(
        self,
        platform: Platform,
        workspace: str,
        channel: str,
        policy: ChannelPolicy | None,
        *,
        by: str,
    ) -> ChannelView:
        """Set who gets transcribed in the channel (None: back to the default). Only for
        admins: the adapter checks."""
        saved = await self._store.settings.set_policy(
            platform, workspace, channel, policy, updated_by=by
        )
        log.info(
            "channel policy %s in %s by %s", policy or "default", channel, by,
            extra={"platform": platform.value, "channel": channel},
        )  # fmt: skip
        return self._view(platform, channel, saved)

    async def set_redaction(
        self,
        platform: Platform,
        workspace: str,
        channel: str,
        *,
        text: bool | None,
        audio: bool | None,
        by: str,
    ) -> ChannelView:
        """PII redaction in the channel (None: the deployment's default). Admins only."""
        saved = await self._store.settings.set_redaction(
            platform, workspace, channel, updated_by=by, text=text, audio=audio
        )
        log.info(
            "redaction in %s by %s: text %s, audio %s", channel, by, text, audio,
            extra={"platform": platform.value, "channel": channel},
        )  # fmt: skip
        return self._view(platform, channel, saved)

    # -- a person's choice ---------------------------------------------------------------

    async def opted_out(self, platform: Platform, person: str) -> bool:
        return await self._store.opt_outs.opted_out(platform, person)

    async def set_opt_out(self, platform: Platform, person: str, opted_out: bool) -> str:
        """Opt `person` out of automatic transcription (or back in); what to tell them."""
        changed = await self._store.opt_outs.set(platform, person, opted_out)
        log.info(
            "%s opted %s%s", person, "out" if opted_out else "in", "" if changed else " (again)",
            extra={"platform": platform.value},
        )  # fmt: skip
        return messages.opted(opted_out, changed=changed)

    # -- usage ---------------------------------------------------------------------------

    async def usage(self, platform: Platform, workspace: str) -> UsageSummary:
        """This month's usage of the workspace (admins only: the adapter checks)."""
        now = self._store.now()
        report = await self._store.usage.report(platform, workspace, month_start(now))
        prices = dict(self.settings.prices)
        cost = 0.0
        unpriced = 0.0
        used: dict[str, float] = {}
        for model, seconds in report.by_model:
            price = prices.get(model or "")
            if price is None:
                unpriced += seconds
                continue
            assert model is not None
            used[model] = price
            cost += seconds / 3600.0 * price
        return UsageSummary(
            report=report,
            budget_hours=self.settings.budget_hours,
            resets=next_month(now),
            cost=cost,
            prices=tuple(used.items()),
            unpriced=unpriced,
        )

    # -- what a person sees ----------------------------------------------------------------

    async def overview(
        self,
        platform: Platform,
        workspace: str,
        person: str,
        *,
        admin: bool,
        channels: Sequence[str] = (),
    ) -> Overview:
        """`person`'s switch and recent transcripts; for an admin also the settings of
        `channels` (those the bot is in, as the adapter knows them) and the usage."""
        recent = tuple(
            RecentJob(job_title(job), job.channel, job.created_at, job.state)
            for job in await self._store.recent_of(platform, workspace, person, RECENT)
        )
        opted_out = await self.opted_out(platform, person)
        if not admin:
            return Overview(admin=False, opted_out=opted_out, recent=recent)
        configured = {
            s.channel: s for s in await self._store.settings.of_workspace(platform, workspace)
        }
        views = tuple(self._view(platform, c, configured.get(c)) for c in channels)
        usage = await self.usage(platform, workspace)
        return Overview(True, opted_out, recent, views, usage)

    # -- forgetting ------------------------------------------------------------------------

    async def forget(
        self,
        platform: Platform,
        workspace: str,
        *,
        channels: Sequence[str],
        ids: Sequence[str],
        by: str,
        admin: bool,
    ) -> Forgetting:
        """Forget the transcripts of a message (`ids`: its id, and the thread it is
        in, in one of `channels`): the bot's posts go, the transcript is deleted at
        AssemblyAI (once AssemblyAI has finished it), and the job's record with its ids.
        Allowed to whoever shared the recording or asked for it, and to admins."""
        jobs = await self._store.of_messages(platform, workspace, list(channels), list(ids))
        if not jobs:
            return Forgetting()
        mine = [job for job in jobs if admin or by in (job.requester, job.sharer)]
        if not mine:
            return Forgetting(refused=messages.NOT_YOURS_TO_FORGET)
        titles: list[str] = []
        running: list[str] = []
        for job in mine:
            forgotten = await self._engine.forget(job, by=by)
            if forgotten is None:
                continue
            titles.append(job_title(job))
            if job.state.in_flight:
                running.append(job_title(job))
        return Forgetting(tuple(titles), tuple(running))


def job_title(job: Job) -> str:
    """What a job is called to people: the link they gave, or the recording's title."""
    if isinstance(job.source, UrlSource):
        return job.source.url
    return job.options.title or str(job.source.ref.get("name") or "a file")


__all__ = [
    "ChannelView",
    "ControlSettings",
    "Controls",
    "Forgetting",
    "Overview",
    "RecentJob",
    "Screening",
    "UsageSummary",
    "job_title",
]
