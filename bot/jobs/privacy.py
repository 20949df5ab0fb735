"""Who opted out of automatic transcription, and what has been said once already.

Both are durable: an opt-out holds across restarts and replicas, and a notice said once
("not enabled here", a budget alert) is not said again by another replica or after a
restart.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select

from bot.jobs.database import Database
from bot.jobs.models import NoticeRow, OptOutRow
from bot.jobs.records import Platform

#: Seconds an answer is reused before the database is asked again (every automatic
#: trigger asks about its sharer); a change made here shows at once.
OPT_OUT_TTL: Final = 10.0
_CACHED: Final = 10_000


class OptOuts:
    """`/transcribe optout` and `optin`, per person and platform (Slack and Discord user
    ids are unique across workspaces and servers, so one opt-out covers them all)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[tuple[Platform, str], tuple[float, bool]] = {}

    async def opted_out(self, platform: Platform, person: str) -> bool:
        key = (platform, person)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        query = select(OptOutRow.person).where(
            OptOutRow.platform == platform, OptOutRow.person == person
        )
        async with self._db.session(write=False) as session:
            found = (await session.scalars(query)).first() is not None
        self._remember(key, found)
        return found

    async def set(self, platform: Platform, person: str, opted_out: bool) -> bool:
        """Opt `person` out (or back in); returns whether that changed anything."""
        async with self._db.session() as session:
            if opted_out:
                insert = (
                    self._db.insert(OptOutRow)
                    .values(platform=platform, person=person, created_at=self._db.clock())
                    .on_conflict_do_nothing(index_elements=["platform", "person"])
                )
                changed = (await session.execute(insert)).rowcount == 1  # type: ignore[attr-defined]
            else:
                gone = delete(OptOutRow).where(
                    OptOutRow.platform == platform, OptOutRow.person == person
                )
                changed = (await session.execute(gone)).rowcount == 1  # type: ignore[attr-defined]
        self._remember((platform, person), opted_out)
        return bool(changed)

    def _remember(self, key: tuple[Platform, str], value: bool) -> None:
        if len(self._cache) > _CACHED:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + OPT_OUT_TTL, value)


class Notices:
    """Things to say once per deployment, by key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def first(self, key: str) -> bool:
        """Whether `key` is new: True exactly once, whichever replica asks first."""
        if len(key) > 255:
            raise ValueError("notice keys are at most 255 characters")
        insert = (
            self._db.insert(NoticeRow)
            .values(key=key, created_at=self._db.clock())
            .on_conflict_do_nothing(index_elements=["key"])
        )
        async with self._db.session() as session:
            inserted = (await session.execute(insert)).rowcount  # type: ignore[attr-defined]
        return bool(inserted == 1)

    async def prune(self, older_than: timedelta) -> int:
        cutoff = self._db.clock() - older_than
        async with self._db.session() as session:
            result = await session.execute(delete(NoticeRow).where(NoticeRow.created_at < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
