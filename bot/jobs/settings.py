"""What the store keeps besides jobs: per-channel settings and per-deployment secrets."""

from __future__ import annotations

import secrets
import time
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import select

from bot.jobs.database import RETURNING, Database
from bot.jobs.models import ChannelSettingsRow, DeploymentSecretRow, channel_settings_of
from bot.jobs.records import ChannelPolicy, ChannelSettings, Platform

#: Seconds a channel's settings are reused before they are read again.
SETTINGS_TTL: Final = 10.0
_CACHED_CHANNELS: Final = 10_000

_Channel = tuple[Platform, str, str]
_T = TypeVar("_T")


class ChannelCache(Generic[_T]):
    """Answers per channel, kept for `SETTINGS_TTL` seconds (at most `_CACHED_CHANNELS`
    channels: past that, all are forgotten)."""

    def __init__(self) -> None:
        self._entries: dict[_Channel, tuple[float, _T]] = {}

    def fresh(self, key: _Channel) -> tuple[float, _T] | None:
        """The (expiry, answer) kept for the channel, None if none is kept or it is stale."""
        entry = self._entries.get(key)
        return entry if entry is not None and entry[0] > time.monotonic() else None

    def remember(self, key: _Channel, found: _T) -> None:
        if len(self._entries) > _CACHED_CHANNELS:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + SETTINGS_TTL, found)


class ChannelSettingsStore:
    """Per-channel settings. Every message in a channel asks for them, so answers are kept
    for `SETTINGS_TTL` seconds: a change made through this store shows at once, one made
    by another replica within that time."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: ChannelCache[ChannelSettings | None] = ChannelCache()

    async def get(self, platform: Platform, workspace: str, channel: str) -> ChannelSettings | None:
        """The channel's settings, None if nobody set them."""
        key = (platform, workspace, channel)
        cached = self._cache.fresh(key)
        if cached is not None:
            return cached[1]
        query = select(ChannelSettingsRow).where(
            ChannelSettingsRow.platform == platform,
            ChannelSettingsRow.workspace == workspace,
            ChannelSettingsRow.channel == channel,
        )
        async with self._db.session(write=False) as session:
            row = (await session.scalars(query)).one_or_none()
            found = None if row is None else channel_settings_of(row)
        self._cache.remember(key, found)
        return found

    async def set_policy(
        self,
        platform: Platform,
        workspace: str,
        channel: str,
        policy: ChannelPolicy | None,
        *,
        updated_by: str,
    ) -> ChannelSettings:
        """Who gets transcribed in the channel (None: the deployment's default again)."""
        return await self._upsert(platform, workspace, channel, updated_by, policy=policy)

    async def set_auto_transcribe(
        self, platform: Platform, workspace: str, channel: str, enabled: bool, *, updated_by: str
    ) -> ChannelSettings:
        """The old switch: on is `auto`, off is `on-request`."""
        policy = ChannelPolicy.AUTO if enabled else ChannelPolicy.ON_REQUEST
        return await self.set_policy(platform, workspace, channel, policy, updated_by=updated_by)

    async def set_redaction(
        self,
        platform: Platform,
        workspace: str,
        channel: str,
        *,
        updated_by: str,
        text: bool | None,
        audio: bool | None,
    ) -> ChannelSettings:
        """PII redaction in the channel: of the transcript's text, and a redacted copy of
        the audio (None: the deployment's default again)."""
        return await self._upsert(
            platform, workspace, channel, updated_by, redact_pii=text, redact_pii_audio=audio
        )

    async def _upsert(
        self, platform: Platform, workspace: str, channel: str, updated_by: str, **values: Any
    ) -> ChannelSettings:
        """Set `values` (columns of the channel's row), leaving its other settings as they
        are; a new row has NULL (the default) for everything else."""
        insert = self._db.insert(ChannelSettingsRow).values(
            platform=platform,
            workspace=workspace,
            channel=channel,
            updated_by=updated_by,
            updated_at=self._db.clock(),
            **values,
        )
        changed = ["updated_by", "updated_at", *values]
        upsert = insert.on_conflict_do_update(
            index_elements=["platform", "workspace", "channel"],
            set_={name: getattr(insert.excluded, name) for name in changed},
        ).returning(ChannelSettingsRow)
        async with self._db.session(durable=True) as session:
            row = (await session.scalars(upsert, execution_options=RETURNING)).one()
            saved = channel_settings_of(row)
        self._cache.remember((platform, workspace, channel), saved)
        return saved

    async def of_workspace(self, platform: Platform, workspace: str) -> list[ChannelSettings]:
        """Every channel of the workspace with something set (App Home, the overview)."""
        query = select(ChannelSettingsRow).where(
            ChannelSettingsRow.platform == platform, ChannelSettingsRow.workspace == workspace
        )
        async with self._db.session(write=False) as session:
            return [channel_settings_of(row) for row in await session.scalars(query)]


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
