"""The hot queries of the job store read what they find, not the table: each one's work
is measured on a store with a small backlog and on one with ten times the delivered and
waiting jobs (the same few jobs being worked on), and must not grow with it.

Work is what the database did: on SQLite the virtual machine's steps (a progress handler
on a connection of our own, counting every 50), on PostgreSQL the rows its scans of
`jobs` produced or filtered out (EXPLAIN ANALYZE, rolled back, with sequential scans
priced out as they are for a table of real size). A query that scans a
state's backlog, a channel's history or the whole table grows tenfold and fails; one that
walks an index to what it needs does not (migration 0004's indexes, the planner told on
SQLite, which keeps no statistics)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from bot.jobs import JobState, JobStore, Limits, Platform, UrlSource
from tests.helpers.jobs import Clock, record
from tests.helpers.pg import PostgresServer

Captured = list[tuple[str, Any]]
UNFINISHED = [state for state in JobState if state is not JobState.DELIVERED]
UNGATED = [state for state in UNFINISHED if state is not JobState.RECEIVED]
SLACK = [Platform.SLACK]


async def _fill(store: JobStore, scale: int) -> None:
    """`scale` x (200 delivered + 100 waiting) jobs of `scale` x 20 people in `scale` x 10
    channels, and 20 at AssemblyAI, whatever the scale."""
    people, channels = 20 * scale, 10 * scale
    records = [
        record(n, requester=f"U{n % people:04d}", channel=f"C{n % channels:04d}")
        for n in range(300 * scale + 20)
    ]
    await asyncio.gather(*(store.admission.intake(r) for r in records))
    async with store.db.session() as session:
        await session.execute(
            text(
                "UPDATE jobs SET state = 'delivered' WHERE id IN "
                f"(SELECT id FROM jobs ORDER BY created_at LIMIT {200 * scale})"
            )
        )
        await session.execute(
            text(
                "UPDATE jobs SET state = 'submitted', transcript_id = id WHERE id IN "
                "(SELECT id FROM jobs WHERE state = 'received' ORDER BY created_at LIMIT 20)"
            )
        )
    if store.dialect == "postgresql":
        async with store.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE jobs"))
            await conn.commit()  # statistics gathered in a transaction rolled back are lost


async def _hot_path(store: JobStore) -> None:
    """What the worker does on every turn, an intake, and a webhook's lookups."""
    queue = store.queue
    await queue.next_due(UNFINISHED, platforms=SLACK)
    await queue.next_due(UNGATED, platforms=SLACK)
    await queue.slots_taken()
    await queue.claim("w", lease_seconds=30, states=UNGATED, limit=10, platforms=SLACK)
    new = await queue.claim_new("w", lease_seconds=30, cap=100, limit=5, platforms=SLACK)
    assert len(new) == 5
    limits = Limits(per_user=1000, per_channel=1000)
    fresh = record(900_000, requester="U0003", channel="C0004")
    assert (await store.admission.admit(fresh, limits)).created
    link = record(900_001, requester="U0003", source=UrlSource("https://a.test/x.mp3"))
    assert (await store.admission.admit(link, limits)).created
    job = (await queue.claim("w", lease_seconds=30, states=[JobState.SUBMITTED]))[0]
    assert job.transcript_id is not None
    assert await store.get_by_transcript_id(job.transcript_id) is not None
    await queue.make_due(job.id)


def _capture(store: JobStore) -> Captured:
    seen: Captured = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if " jobs" in statement and "ANALYZE" not in statement:
            seen.append((statement, params))

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", before)
    return seen


def _sqlite_work(path: Path, statement: str, params: Any) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with sqlite3.connect(path) as db:
        db.set_progress_handler(count, 50)
        db.execute("BEGIN")
        db.execute(statement, params).fetchall()
        db.rollback()
    return steps


async def _postgres_work(store: JobStore, statement: str, params: Any) -> int:
    async with store.db.engine.connect() as conn:
        # At these sizes a sequential scan is what PostgreSQL rightly picks; priced out,
        # the plan shows whether an index serves the query as the table grows.
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
        plan = rows.scalar_one()
        await conn.rollback()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    work = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal work
        if node.get("Relation Name") == "jobs":
            per_loop = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            work += int(per_loop * node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return work


Opener = Callable[[], Awaitable[tuple[JobStore, Path | None]]]


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[JobStore] = []
    names: list[str] = []
    server: PostgresServer | None = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")

    async def open_() -> tuple[JobStore, Path | None]:
        if server is None:
            path = tmp_path / f"jobs-{len(opened)}.db"
            store = await JobStore.open(f"sqlite+aiosqlite:///{path}", clock=Clock())
        else:
            path, name = None, server.create_database()
            names.append(name)
            store = await JobStore.open(server.url(name), clock=Clock())
        opened.append(store)
        return store, path

    yield open_
    for store in opened:
        await store.close()
    for name in names:
        assert server is not None
        server.drop_database(name)


async def _work(opener: Opener, scale: int) -> list[tuple[str, int]]:
    store, path = await opener()
    await _fill(store, scale)
    seen = _capture(store)
    await _hot_path(store)
    measured = []
    for statement, params in seen:
        if path is not None:
            work = _sqlite_work(path, statement, params)
        else:
            work = await _postgres_work(store, statement, params)
        measured.append((statement, work))
    return measured


async def test_the_hot_queries_do_not_grow_with_the_backlog(opener: Opener) -> None:
    small = await _work(opener, 1)
    large = await _work(opener, 10)
    assert [s for s, _ in small] == [s for s, _ in large]  # the same statements
    grown = {
        statement.split("\n")[0][:120]: (a, b)
        for (statement, a), (_, b) in zip(small, large, strict=True)
        if b > 2 * a + 40
    }
    assert not grown, grown
