"""Shared pytest configuration for every layer (unit/, component/, system/, conformance/).

Fixtures for all of them live in the modules named in `pytest_plugins`: the emulator and
the audio library (tests/helpers/emulator_server.py), PostgreSQL (tests/helpers/pg.py),
`fake_slack` and `fake_discord` (tests/fakes/slack.py, discord.py). Each layer's own
conftest.py adds what only its tests use.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.helpers.emulator_server",
    "tests.helpers.pg",
    "tests.fakes.slack",
    "tests.fakes.discord",
]

# scripts/test installs every tool the suite needs and sets this, so that in CI a test can
# never pass by skipping itself for want of espeak-ng, ffmpeg or PostgreSQL.
NO_SKIPS = os.environ.get("THREADSCRIBE_NO_SKIPS") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but THREADSCRIBE_NO_SKIPS=1 forbids skips: {report.longrepr}"
    return report


@pytest.fixture
def media_server() -> Generator[Callable[[Path], str], None, None]:
    """Serve files over HTTP from a background thread; returns `publish(path) -> url`."""
    files: dict[str, Path] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = files.get(self.path.split("?", 1)[0])  # a query tells links apart
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # serve_forever looks for shutdown() every poll_interval: 0.5 s by default, which each
    # test using this fixture would sit out at its end.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()

    def publish(path: Path) -> str:
        files[f"/media/{path.name}"] = path
        return f"http://127.0.0.1:{server.server_address[1]}/media/{path.name}"

    yield publish
    server.shutdown()
    server.server_close()
    thread.join()


# -- loopback only -----------------------------------------------------------------------
# Every connection a test (or the code it drives) opens must stay on this machine: an
# audit hook sees each socket.connect, and a test that reached further fails.

_OUTSIDE: list[str] = []


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event != "socket.connect":
        return
    address = args[1]
    host = address[0] if isinstance(address, tuple) and address else None
    if isinstance(host, str) and not _loopback(host):
        _OUTSIDE.append(f"{address[0]}:{address[1] if len(address) > 1 else '?'}")


import sys as _sys  # noqa: E402

_sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _loopback_only() -> Generator[None, None, None]:
    _OUTSIDE.clear()
    yield
    if _OUTSIDE:
        reached = ", ".join(sorted(set(_OUTSIDE)))
        _OUTSIDE.clear()
        pytest.fail(f"the test connected beyond loopback: {reached}")
