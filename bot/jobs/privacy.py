"""Who opted out of automatic transcription, and what has been said once already.

Both are durable: an opt-out holds across restarts and replicas, and a notice said once
("not enabled here", a budget alert) is not said again by another replica or after a
restart.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, select

from bot.jobs.database import Database
from bot.jobs.models import NoticeRow, OptOutRow
from bot.jobs.records import Platform

#: Seconds the platform's opt-outs are reused before the database is asked again (every
#: automatic trigger asks about its sharer); a change made in this process shows at once,
#: one made by another replica within this time.
OPT_OUT_TTL: Final = 10.0


class OptOuts:
    """`/transcribe optout` and `optin`, per person and platform (Slack and Discord user
    ids are unique across workspaces and servers, so one opt-out covers them all).

    The people who opted out are few beside the triggers that ask about them: the whole
    set of a platform is read in one query and kept for OPT_OUT_TTL, and the triggers of a
    burst that arrive while it is being read wait for that one read. A burst of shares by
    200 different people so costs one query, not 200 before the acknowledgements."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sets: dict[Platform, tuple[float, frozenset[str]]] = {}
        self._loading: dict[Platform, asyncio.Future[frozenset[str]]] = {}
        # Bumped by every change: a read begun before it may not be kept after it.
        self._changes: dict[Platform, int] = {}

    async def opted_out(self, platform: Platform, person: str) -> bool:
        return person in await self._of(platform)

    async def _of(self, platform: Platform) -> frozenset[str]:
        cached = self._sets.get(platform)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loading = self._loading.get(platform)
        if loading is None or loading.done():
            loading = asyncio.ensure_future(self._load(platform, self._changes.get(platform, 0)))
            self._loading[platform] = loading
        return await asyncio.shield(loading)

    async def _load(self, platform: Platform, changes: int) -> frozenset[str]:
        query = select(OptOutRow.person).where(OptOutRow.platform == platform)
        async with self._db.session(write=False) as session:
            people = frozenset(await session.scalars(query))
        if self._changes.get(platform, 0) == changes:
            self._sets[platform] = (time.monotonic() + OPT_OUT_TTL, people)
        return people

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
        # Read again, after the commit, when next asked (a read under way is not kept).
        self._changes[platform] = self._changes.get(platform, 0) + 1
        self._sets.pop(platform, None)
        self._loading.pop(platform, None)
        return bool(changed)


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
