"""The result's actions on Discord: "Rename speakers", and the Redo buttons ("Other
language", "Speaker count", "Translate", "Again"), handed to the core.

The buttons are discord.py's dynamic items: their custom ids carry the job's id
(`threadscribe:rename:<job>`, `threadscribe:redo:<kind>:<job>[:<now>]`, where `now` is
the language or count the result uses, shown in the modal), so they work on every
result ever posted, after any restart, and no view is kept in memory per message. A
rename or a redo choice is asked for in a modal (Discord's limit: five fields, so the
first five speakers); a modal waits 15 minutes at most. Every answer is ephemeral, to the
person who clicked; the result itself changes in the thread when the redo is done.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import discord
from discord import ui

from adapters.discord import texts
from adapters.discord.replies import say
from bot.chat import Answer, Controls, Core, JobRef, Platform, RenameForm
from bot.render import language_name

log = logging.getLogger(__name__)

_JOB: Final = r"[0-9a-fA-F-]{36}"
RENAME_ID: Final = "threadscribe:rename:{job}"
REDO_ID: Final = "threadscribe:redo:{kind}:{job}"
#: A Redo button's id may end with what is used now (`:en`, `:3`), shown in its modal.
_NOW: Final = r"[A-Za-z0-9_]{1,16}"
#: What each Redo button asks for, by the menu group's kind.
REDO_BUTTONS: Final = {
    "lang": ("Other language", "Language code (en, fr, de, pt_br…)"),
    "speakers": ("Speaker count", "How many people speak (1-10)"),
    "translate": ("Translate", "Translate into (es, fr, de… or off)"),
}
MODAL_FIELDS: Final = 5  # Discord's limit of components in a modal
MODAL_TIMEOUT: Final = 15 * 60.0


def view(controls: Controls) -> discord.ui.View | None:
    """The buttons of a result (a stopped view: sent, never kept in memory; clicks reach
    the dynamic items below)."""
    buttons: list[ui.Button[ui.View]] = []
    if controls.rename:
        buttons.append(
            ui.Button(
                label="Rename speakers",
                style=discord.ButtonStyle.primary,
                custom_id=RENAME_ID.format(job=controls.job_id),
            )
        )
    groups = {g.kind: g for g in controls.redo if g.items}
    for kind, (label, _ask) in REDO_BUTTONS.items():
        if kind in groups:
            custom_id = REDO_ID.format(kind=kind, job=controls.job_id)
            if re.fullmatch(_NOW, groups[kind].current):
                custom_id += f":{groups[kind].current}"
            buttons.append(ui.Button(label=label, custom_id=custom_id))
    if any(g.label == "Again" for g in controls.redo):
        buttons.append(
            ui.Button(label="Again", custom_id=REDO_ID.format(kind="again", job=controls.job_id))
        )
    if not buttons:
        return None
    made = ui.View(timeout=None)
    for button in buttons[:5]:
        made.add_item(button)
    made.stop()
    return made


def _ref(interaction: discord.Interaction, job_id: str) -> JobRef:
    workspace = str(interaction.guild_id) if interaction.guild_id else "@me"
    return JobRef(Platform.DISCORD, workspace, str(interaction.channel_id or ""), job_id)


def _ready(interaction: discord.Interaction) -> Core | None:
    """The core the client hands triggers to (its `intake`), while that takes work (not
    once shutdown has begun: the same check as the commands')."""
    intake = getattr(interaction.client, "intake", None)
    core = getattr(intake, "core", None)
    if not isinstance(core, Core) or not getattr(intake, "accepting", False):
        return None
    return core


class RenameButton(
    ui.DynamicItem[ui.Button[ui.View]], template=rf"threadscribe:rename:(?P<job>{_JOB})"
):
    def __init__(self, job: str) -> None:
        super().__init__(ui.Button(label="Rename speakers", custom_id=RENAME_ID.format(job=job)))
        self.job = job

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> RenameButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        core = _ready(interaction)
        if core is None:
            await say(interaction, texts.SHUTTING_DOWN)
            return
        ref = _ref(interaction, self.job)
        form = await core.rename_form(ref)
        if isinstance(form, Answer):
            await say(interaction, form.text)
            return
        await interaction.response.send_modal(RenameModal(core, ref, form))


class RedoButton(
    ui.DynamicItem[ui.Button[ui.View]],
    template=(
        rf"threadscribe:redo:(?P<kind>lang|speakers|translate|again):(?P<job>{_JOB})"
        rf"(?::(?P<now>{_NOW}))?"
    ),
):
    def __init__(self, kind: str, job: str, now: str = "") -> None:
        custom_id = REDO_ID.format(kind=kind, job=job) + (f":{now}" if now else "")
        super().__init__(ui.Button(label=kind, custom_id=custom_id))
        self.kind, self.job, self.now = kind, job, now

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> RedoButton:
        return cls(match["kind"], match["job"], match["now"] or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        core = _ready(interaction)
        if core is None:
            await say(interaction, texts.SHUTTING_DOWN)
            return
        ref = _ref(interaction, self.job)
        if self.kind == "again":
            await interaction.response.defer(ephemeral=True, thinking=True)
            answer = await core.redo(ref, "again", by=str(interaction.user.id))
            await say(interaction, answer.text)
            return
        await interaction.response.send_modal(RedoModal(core, ref, self.kind, self.now))


class RenameModal(ui.Modal):
    def __init__(self, core: Core, ref: JobRef, form: RenameForm) -> None:
        super().__init__(
            title="Rename speakers",
            timeout=MODAL_TIMEOUT,
            custom_id=f"threadscribe:rename-form:{ref.job_id}",
        )
        self._core, self._ref = core, ref
        self._fields: dict[str, ui.TextInput[ui.Modal]] = {}
        for field in form.fields[:MODAL_FIELDS]:
            text: ui.TextInput[ui.Modal] = ui.TextInput(
                label=field.speaker[:45],
                placeholder=field.speaker[:100],
                default=field.current or None,
                required=False,
                max_length=35,
                custom_id=f"speaker_{field.key}",
            )
            self._fields[field.key] = text
            self.add_item(text)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        names = {key: text.value or "" for key, text in self._fields.items()}
        answer = await self._core.rename(self._ref, names, by=str(interaction.user.id))
        if answer.errors:
            wrong = ", ".join(
                str(self._fields[k].label) for k in answer.errors if k in self._fields
            )
            await say(interaction, f"{answer.text} ({wrong})" if wrong else answer.text)
            return
        await say(interaction, answer.text)


def now_shown(kind: str, now: str) -> str | None:
    """The modal's placeholder: what the result uses now, so the choice is a change."""
    if not now:
        return None
    if kind == "speakers":
        return f"Now: {now} (asked). Another number, 1-10"
    name = language_name(now) or now
    if kind == "translate":
        return f"Now translated into {name} ({now}). Another code, or off"[:100]
    return f"Now: {name} ({now}). Another code: es, fr, de, pt_br…"[:100]


class RedoModal(ui.Modal):
    def __init__(self, core: Core, ref: JobRef, kind: str, now: str = "") -> None:
        label, ask = REDO_BUTTONS[kind]
        super().__init__(
            title=f"Redo: {label.lower()}"[:45],
            timeout=MODAL_TIMEOUT,
            custom_id=f"threadscribe:redo-form:{kind}:{ref.job_id}",
        )
        self._core, self._ref, self._kind = core, ref, kind
        self._value: ui.TextInput[ui.Modal] = ui.TextInput(
            label=ask[:45], max_length=16, custom_id="value", placeholder=now_shown(kind, now)
        )
        self.add_item(self._value)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        choice = f"{self._kind}:{(self._value.value or '').strip()}"
        answer = await self._core.redo(self._ref, choice, by=str(interaction.user.id))
        await say(interaction, answer.text)
