"""Alembic environment of the job store.

At start-up `bot.jobs.database.migrate` hands over its own connection, already inside a
locked transaction. Run from the `alembic` command (to write a migration), this connects
to `-x url=...` (default: ./threadscribe.db) and takes the same lock.
"""

import asyncio

from alembic import context
from sqlalchemy import Connection

from bot.jobs.database import DEFAULT_DATABASE_URL, make_engine, parse_database_url, schema_lock
from bot.jobs.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line(raw_url: str) -> None:
    url = parse_database_url(raw_url)
    engine = make_engine(url, connect_timeout=10, busy_timeout=10)
    try:
        async with schema_lock(engine) as conn:
            await conn.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
elif (connection := context.config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    asyncio.run(
        run_from_command_line(
            context.get_x_argument(as_dictionary=True).get("url", DEFAULT_DATABASE_URL)
        )
    )
