"""A set of background tasks that someone holds a reference to, so that none is lost to
the garbage collector and shutdown can wait for them (asyncio keeps only weak ones)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run `coro` in the background; an exception it ends with is logged, not lost."""
        task = asyncio.create_task(self._logged(coro, what), name=f"{self._name}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Count the task running this block as one of the set until the block ends (an
        event handler a platform library started, that shutdown should wait for)."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    def __len__(self) -> int:
        return len(self._tasks)

    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    async def _logged(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s: %s failed", self._name, what, exc_info=True)
            return None

    async def drain(self, grace: float, *, cancel: bool = True) -> None:
        """Wait `grace` seconds at most for the tasks running now, then (with `cancel`)
        cancel the rest."""
        if not self._tasks:
            return
        _done, late = await asyncio.wait(set(self._tasks), timeout=grace)
        if not cancel:
            return
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
