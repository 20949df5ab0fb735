"""Per-channel preferences: speaker names, the summary, a translation and the vocabulary
(`channel_preferences`). Kept apart from auto-transcribe (bot/jobs/settings.py): every
message in a channel asks for that, these are read when a job is submitted or delivered.
Answers are kept for `SETTINGS_TTL` seconds, like the channel settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import select

from bot.jobs.database import RETURNING, Database
from bot.jobs.models import ChannelPreferencesRow, channel_preferences_of
from bot.jobs.records import ChannelPreferences, Platform
from bot.jobs.settings import ChannelCache

#: What `update` may change.
FIELDS: Final = frozenset({"names", "summary", "translate_to", "keyterms", "spellings"})


class ChannelPreferencesStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: ChannelCache[ChannelPreferences] = ChannelCache()

    async def get(self, platform: Platform, workspace: str, channel: str) -> ChannelPreferences:
        """The channel's preferences (all defaults when it chose none)."""
        key = (platform, workspace, channel)
        cached = self._cache.fresh(key)
        if cached is not None:
            return cached[1]
        query = select(ChannelPreferencesRow).where(
            ChannelPreferencesRow.platform == platform,
            ChannelPreferencesRow.workspace == workspace,
            ChannelPreferencesRow.channel == channel,
        )
        async with self._db.session(write=False) as session:
            row = (await session.scalars(query)).one_or_none()
            found = ChannelPreferences() if row is None else channel_preferences_of(row)
        self._cache.remember(key, found)
        return found

    async def update(
        self, platform: Platform, workspace: str, channel: str, *, by: str, **changes: Any
    ) -> ChannelPreferences:
        """Change some preferences (the others are kept), in one statement."""
        unknown = set(changes) - FIELDS
        if unknown:
            raise TypeError(f"update() cannot set {sorted(unknown)}")
        values = {k: _stored(k, v) for k, v in changes.items()}
        insert = self._db.insert(ChannelPreferencesRow).values(
            platform=platform,
            workspace=workspace,
            channel=channel,
            names=values.get("names"),
            summary=values.get("summary"),
            translate_to=values.get("translate_to"),
            keyterms=values.get("keyterms", []),
            spellings=values.get("spellings", []),
            updated_by=by,
            updated_at=self._db.clock(),
        )
        changed = {name: getattr(insert.excluded, name) for name in values}
        upsert = insert.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_=changed
            | {"updated_by": insert.excluded.updated_by, "updated_at": insert.excluded.updated_at},
        ).returning(ChannelPreferencesRow)
        async with self._db.session() as session:
            row = (await session.scalars(upsert, execution_options=RETURNING)).one()
            saved = channel_preferences_of(row)
        self._cache.remember((platform, workspace, channel), saved)
        return saved


def _stored(name: str, value: Any) -> Any:
    if name == "keyterms":
        return list(value)
    if name == "spellings":
        spellings: Sequence[tuple[Sequence[str], str]] = value
        return [{"from": list(froms), "to": to} for froms, to in spellings]
    return value
