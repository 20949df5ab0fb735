"""What the store keeps besides jobs: per-channel settings and per-deployment secrets."""

from __future__ import annotations

import secrets
import time
from typing import Final

from sqlalchemy import select

from bot.jobs.database import RETURNING, Database
from bot.jobs.models import ChannelSettingsRow, DeploymentSecretRow, channel_settings_of
from bot.jobs.records import ChannelSettings, Platform

#: Seconds a channel's settings are reused before they are read again.
SETTINGS_TTL: Final = 10.0
_CACHED_CHANNELS: Final = 10_000

_Channel = tuple[Platform, str, str]


class ChannelSettingsStore:
    """Per-channel settings. Every message in a channel asks for them, so answers are kept
    for `SETTINGS_TTL` seconds: a change made through this store shows at once, one made
    by another replica within that time."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[_Channel, tuple[float, ChannelSettings | None]] = {}

    async def get(self, platform: Platform, workspace: str, channel: str) -> ChannelSettings | None:
        """The channel's settings, None if nobody set them."""
        key = (platform, workspace, channel)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        query = select(ChannelSettingsRow).where(
            ChannelSettingsRow.platform == platform,
            ChannelSettingsRow.workspace == workspace,
            ChannelSettingsRow.channel == channel,
        )
        async with self._db.session(write=False) as session:
            row = (await session.scalars(query)).one_or_none()
            found = None if row is None else channel_settings_of(row)
        self._remember(key, found)
        return found

    async def set_auto_transcribe(
        self, platform: Platform, workspace: str, channel: str, enabled: bool, *, updated_by: str
    ) -> ChannelSettings:
        """Turn automatic transcription in a channel on or off."""
        insert = self._db.insert(ChannelSettingsRow).values(
            platform=platform,
            workspace=workspace,
            channel=channel,
            auto_transcribe=enabled,
            updated_by=updated_by,
            updated_at=self._db.clock(),
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_={
                "auto_transcribe": insert.excluded.auto_transcribe,
                "updated_by": insert.excluded.updated_by,
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(ChannelSettingsRow)
        async with self._db.session(durable=True) as session:
            row = (await session.scalars(upsert, execution_options=RETURNING)).one()
            saved = channel_settings_of(row)
        self._remember((platform, workspace, channel), saved)
        return saved

    def _remember(self, key: _Channel, found: ChannelSettings | None) -> None:
        if len(self._cache) > _CACHED_CHANNELS:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + SETTINGS_TTL, found)


class DeploymentSecrets:
    """Secrets made once per deployment and shared by every replica on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> str:
        """A random secret made the first time it is asked for and the same ever after
        (the AssemblyAI webhook's auth header)."""
        insert = (
            self._db.insert(DeploymentSecretRow)
            .values(name=name, value=secrets.token_urlsafe(32), created_at=self._db.clock())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(DeploymentSecretRow.value).where(DeploymentSecretRow.name == name)
        async with self._db.session() as session:
            await session.execute(insert)
            value: str = (await session.scalars(query)).one()
        return value
