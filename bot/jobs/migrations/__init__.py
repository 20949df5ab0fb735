"""Alembic migrations of the job store, run by `bot.jobs.database.migrate` at start-up.

To add one: change `bot/jobs/models.py`, then from the repository root run

    alembic -c bot/jobs/migrations/alembic.ini revision --autogenerate \
        --rev-id 0002 -m "what changed" [-x url=postgresql+asyncpg://...]

(it compares the models with a database at head; default ./threadscribe.db), review the
script it writes to versions/, and keep it working on both SQLite and PostgreSQL:
`tests/test_jobs.py` checks that models and migrations agree on both.
"""
