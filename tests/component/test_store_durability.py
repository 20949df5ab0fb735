"""SQLite: an intake's commit waits for the disk (synchronous FULL: what the platform's
acknowledgement promises survives a power cut); the queue's other writes do not
(NORMAL: they survive a crash, and a job resumes from an earlier step after a power cut)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.jobs import JobState, JobStore
from tests.helpers.jobs import Clock, record


async def test_only_intakes_and_settings_wait_for_the_disk(tmp_path: Path) -> None:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", clock=Clock())
    seen: list[str] = []
    modes: dict[int, str] = {}  # each DBAPI connection's mode, as the PRAGMAs set it

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        if statement.startswith("PRAGMA synchronous = "):
            modes[key] = statement.removeprefix("PRAGMA synchronous = ")
        elif statement.startswith("BEGIN"):
            # the mode the transaction commits under (SQLite's default is FULL)
            seen.append(f"{statement} ({modes.get(key, 'FULL')})")
        elif statement.startswith(("INSERT", "UPDATE")):
            seen.append(statement.split(" RETURNING")[0][:40])

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", before)
    try:
        job, created = await store.admission.intake(record(1))
        assert created
        intake = seen[:]
        seen.clear()
        leased = await store.queue.lease(job.id, "w", lease_seconds=30)
        assert leased is not None
        await store.queue.transition(job.id, "w", JobState.RECEIVED, JobState.FETCHING)
        queue = seen[:]
        seen.clear()
        await store.settings.set_auto_transcribe(
            job.platform, job.workspace, job.channel, False, updated_by="U1"
        )
        settings = seen[:]
    finally:
        await store.close()
    assert intake[:2] == ["BEGIN IMMEDIATE (FULL)", "INSERT INTO jobs (id, dedupe_key, platfo"]
    assert [s for s in queue if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE (NORMAL)"] * 2
    assert settings[0] == "BEGIN IMMEDIATE (FULL)"


async def test_the_mode_is_set_only_when_it_changes(tmp_path: Path) -> None:
    """A connection keeps its synchronous mode: a run of the queue's writes sends one
    PRAGMA, not one per transaction."""
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", clock=Clock())
    pragmas: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.startswith("PRAGMA synchronous"):
            pragmas.append(statement)

    try:
        job, _ = await store.admission.intake(record(1))
        event.listen(store.db.engine.sync_engine, "before_cursor_execute", before)
        assert await store.queue.lease(job.id, "w", lease_seconds=30) is not None
        for _ in range(5):
            await store.queue.renew(job.id, "w", lease_seconds=30)
    finally:
        await store.close()
    assert pragmas == ["PRAGMA synchronous = NORMAL"]
