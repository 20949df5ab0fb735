"""Injected failures: a queue of one-off faults, and rates drawn from a seeded generator.

A queued fault applies to the next API request whose path starts with its `path`
(default "/"); queued faults are used up in order. Otherwise, the rates decide, with one
uniform draw per request. Error bodies follow the spec's `responses` section: 429 carries
`Retry-After` and `{"error": "Too Many Requests"}`, 500 `{"error": "Internal Server Error"}`;
503 and 504 have no body (the spec defines none). A drop closes the connection unanswered,
before the request is handled. Two faults hit after the work is done, as a real network
does to a client that cannot tell: `lost` handles the request (a transcript is created)
and then closes the connection unanswered; `late` handles it, then waits `late` seconds
before answering (long enough to kill the client in between).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .config import FaultConfig

_BODIES = {429: "Too Many Requests", 500: "Internal Server Error"}
_EMPTY = frozenset({502, 503, 504})
_FAULT_KEYS = frozenset(
    {"status", "retry_after", "drop", "delay", "lost", "late", "path", "method"}
)


@dataclass(frozen=True, slots=True)
class Fault:
    status: int | None = None
    retry_after: int | None = None
    drop: bool = False
    delay: float = 0.0
    path: str = "/"
    #: handled, then the answer is lost (the connection closes unanswered)
    lost: bool = False
    #: handled, then answered this many seconds later
    late: float | None = None
    #: only requests with this method (None: any)
    method: str | None = None

    @property
    def after_work(self) -> bool:
        """Whether the request is handled before the fault applies."""
        return self.lost or self.late is not None

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Parse one queue entry; raise ValueError with what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("each fault must be an object")
        unknown = set(data) - _FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        status, drop, delay = data.get("status"), data.get("drop", False), data.get("delay")
        lost, late = data.get("lost", False), data.get("late")
        kinds = (
            status is not None,
            drop is True,
            delay is not None,
            lost is True,
            late is not None,
        )
        if sum(kinds) != 1:
            raise ValueError(
                'a fault needs exactly one of "status", "drop": true, "delay", "lost": true, "late"'
            )
        if late is not None and (not isinstance(late, int | float) or late < 0):
            raise ValueError("late must be a non-negative number of seconds")
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599
        ):
            raise ValueError("status must be an HTTP error status (400-599)")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            raise ValueError("delay must be a non-negative number of seconds")
        retry_after = data.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer")
        path = data.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError('path must be a string starting with "/"')
        method = data.get("method")
        if method is not None and method not in ("GET", "POST", "DELETE", "PUT"):
            raise ValueError("method must be GET, POST, PUT or DELETE")
        return cls(
            status,
            retry_after,
            drop is True,
            float(delay or 0.0),
            path,
            lost is True,
            None if late is None else float(late),
            method,
        )

    def to_json(self) -> dict[str, Any]:
        if self.drop:
            kind: dict[str, Any] = {"drop": True}
        elif self.lost:
            kind = {"lost": True}
        elif self.late is not None:
            kind = {"late": self.late}
        elif self.status is not None:
            kind = {"status": self.status, "retry_after": self.retry_after}
        else:
            kind = {"delay": self.delay}
        return kind | {"path": self.path} | ({"method": self.method} if self.method else {})

    def response(self, default_retry_after: int) -> web.Response:
        """The error answer of a status fault."""
        assert self.status is not None
        headers = {}
        if self.status == 429:
            headers["Retry-After"] = str(
                self.retry_after if self.retry_after is not None else default_retry_after
            )
        if self.status in _EMPTY:
            return web.Response(status=self.status, headers=headers)
        message = _BODIES.get(self.status) or HTTPStatus(self.status).phrase
        return web.json_response({"error": message}, status=self.status, headers=headers)


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self._queue: list[Fault] = []
        self.configure_rates(config)

    def configure_rates(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def enqueue(self, faults: list[Fault]) -> None:
        self._queue.extend(faults)

    def clear(self) -> None:
        self._queue.clear()
        self.configure_rates(FaultConfig())

    def next_for(self, path: str, method: str = "GET") -> Fault | None:
        """The fault to apply to a request for `path`, if any; queued faults first."""
        for index, fault in enumerate(self._queue):
            if path.startswith(fault.path) and fault.method in (None, method):
                return self._queue.pop(index)
        rates = self.config.rates()
        if not any(rates.values()):
            return None
        draw = self._rng.random()
        for kind, rate in rates.items():
            if draw < rate:
                if kind == "drop":
                    return Fault(drop=True)
                if kind == "lost":
                    return Fault(lost=True)
                if kind == "slow":
                    return Fault(delay=self.config.slow_seconds)
                return Fault(status=int(kind), retry_after=self.config.retry_after)
            draw -= rate
        return None

    def state(self) -> dict[str, Any]:
        return {
            "queue": [f.to_json() for f in self._queue],
            "rates": self.config.rates(),
            "retry_after": self.config.retry_after,
            "slow_seconds": self.config.slow_seconds,
            "seed": self.config.seed,
        }


def rates_config(current: FaultConfig, body: Mapping[str, Any]) -> FaultConfig:
    """A FaultConfig from the control endpoint's `rates`/`seed`/... keys over `current`."""
    rates = body.get("rates") or {}
    if not isinstance(rates, dict) or set(rates) - set(current.rates()):
        raise ValueError(
            'rates must be an object with keys "429", "500", "503", "drop", "slow", "lost"'
        )
    merged = current.rates() | rates
    for value in merged.values():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError("rates must be numbers between 0 and 1")
    seed = body.get("seed", current.seed)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError("seed must be an integer")
    return FaultConfig(
        rate_429=float(merged["429"]),
        rate_500=float(merged["500"]),
        rate_503=float(merged["503"]),
        rate_drop=float(merged["drop"]),
        rate_slow=float(merged["slow"]),
        rate_lost=float(merged["lost"]),
        retry_after=int(body.get("retry_after", current.retry_after)),
        slow_seconds=float(body.get("slow_seconds", current.slow_seconds)),
        seed=seed,
    )
