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

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.startswith(("PRAGMA synchronous", "BEGIN", "INSERT", "UPDATE")):
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
    assert intake[:3] == [
        "PRAGMA synchronous = FULL",
        "BEGIN IMMEDIATE",
        "INSERT INTO jobs (id, dedupe_key, platfo",
    ]
    assert [s for s in queue if s.startswith("PRAGMA")] == ["PRAGMA synchronous = NORMAL"] * 2
    assert settings[0] == "PRAGMA synchronous = FULL"
