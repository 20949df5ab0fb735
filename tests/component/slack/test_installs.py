"""Counting the workspaces that installed the app (multi-workspace installs), as doctor
and `run` do: read without changing the database, 0 before anything exists."""

from __future__ import annotations

from pathlib import Path

from slack_sdk.oauth.installation_store import Installation

from adapters.slack.workspaces import OAuthTables
from bot.config import Settings
from bot.jobs.database import make_engine, parse_database_url
from bot.run import installed_workspaces


def oauth_settings(database: Path) -> Settings:
    return Settings.from_env(
        {
            "SLACK_CLIENT_ID": "123.456",
            "SLACK_CLIENT_SECRET": "s3cret",
            "SLACK_APP_TOKEN": "xapp-1-A-1-x",
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        }
    )


async def test_no_database_no_tables_then_two_workspaces(tmp_path: Path) -> None:
    database = tmp_path / "threadscribe.db"
    settings = oauth_settings(database)
    assert await installed_workspaces(settings) == 0
    assert not database.exists()  # doctor creates nothing

    url = parse_database_url(settings.database_url.value)
    tables = OAuthTables("123.456", make_engine(url, connect_timeout=5.0, busy_timeout=5.0))
    try:
        database.touch()
        assert await installed_workspaces(settings) == 0  # the file, not yet the tables
        await tables.create()
        for team in ("T1", "T2", "T2"):  # T2 installed twice (a reinstall): one workspace
            await tables.installations.async_save(
                Installation(
                    app_id="A1",
                    team_id=team,
                    user_id="U1",
                    bot_token=f"xoxb-{team}",
                    bot_id="B1",
                    bot_user_id="UB",
                )
            )
        assert await installed_workspaces(settings) == 2
        other = OAuthTables("999.999", tables.engine)  # another app's installs do not count
        assert await other.workspaces() == 0
    finally:
        await tables.close()
