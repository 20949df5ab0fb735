"""What `/readyz` tells: whether this process can do its work now, and if not, why.

Not ready, with the cause named in the answer and in a metric, when:

- the job database does not answer;
- a platform connection the bot keeps (Slack's Socket Mode, the Discord gateway) has been
  down for longer than READINESS_GRACE_SECONDS (a reconnect takes a moment; an outage,
  longer), counted from the first check that saw it down (probes come every few seconds);
- AssemblyAI rejected the API key (at start-up or since): every job would wait for ever.

`/healthz` stays the cheap liveness check: the process answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.errors import StoreError

log = logging.getLogger(__name__)


@runtime_checkable
class Connected(Protocol):
    """What an adapter says of its connection: up, down, or None (it keeps none)."""

    @property
    def name(self) -> object: ...

    async def connected(self) -> bool | None: ...


def check_name(platform: Connected) -> str:
    """The name of the platform's readiness check (its enum value, or its name)."""
    return str(getattr(platform.name, "value", platform.name))


class Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass
class Health:
    grace: float = 60.0
    monotonic: Callable[[], float] = time.monotonic
    #: AssemblyAI answered 401 to the key (cleared by a later accepted call)
    key_rejected: bool = False
    _down_since: dict[str, float] = field(default_factory=dict)

    def key_accepted(self) -> None:
        self.key_rejected = False

    def reject_key(self) -> None:
        self.key_rejected = True

    def connection(self, name: str, connected: bool | None) -> str | None:
        """Why the connection `name` makes the process not ready, or None."""
        if connected is None or connected:
            self._down_since.pop(name, None)
            return None
        since = self._down_since.setdefault(name, self.monotonic())
        down = self.monotonic() - since
        if down <= self.grace:
            return None
        return f"disconnected for {down:.0f} s"

    async def problems(self, store: Pingable, platforms: Iterable[Connected]) -> Mapping[str, str]:
        """Each failing check and why; empty when ready."""
        found: dict[str, str] = {}
        try:
            await store.ping()
        except StoreError as exc:
            log.warning("readiness: the job database: %s", exc)
            found["database"] = "unreachable"
        for platform in platforms:
            name = check_name(platform)
            problem = self.connection(name, await platform.connected())
            if problem is not None:
                found[name] = problem
        if self.key_rejected:
            found["assemblyai"] = "the API key was rejected (ASSEMBLYAI_API_KEY)"
        return found
