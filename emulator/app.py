"""The aiohttp application: routes, the request pipeline, and ways to serve it.

Every request passes one middleware, in this order: injected faults (API routes only),
authentication (the raw API key in `Authorization`, as AssemblyAI's SDKs send it),
the route, and the conversion of errors to the API's JSON bodies. API requests are
logged for the control endpoints with the status they got.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from . import api, control, llm, understanding_api
from .config import EmulatorConfig
from .errors import UNAUTHORIZED, ApiError, GatewayError
from .runtime import EMULATOR, Emulator

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON_BYTES = 64 * 1024 * 1024  # JSON bodies; uploads stream and have their own limit
_STATUS_MESSAGES = {404: "Not found", 405: "Method Not Allowed"}


def _authenticate(request: web.Request) -> None:
    given = request.headers.get("Authorization", "")
    expected = request.app[EMULATOR].config.api_key
    if not hmac.compare_digest(given.encode(), expected.encode()):
        if request.path.startswith("/v1/"):
            raise GatewayError(401, UNAUTHORIZED, str(uuid.uuid4()))
        raise ApiError(401, UNAUTHORIZED)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The route's response, or the JSON error it stands for."""
    try:
        # Unknown routes answer 404 first; presigned files need no key (their URL is one).
        presigned = request.path.startswith(api.REDACTED_AUDIO_PREFIX)
        if request.match_info.http_exception is None and not presigned:
            _authenticate(request)
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        message = _STATUS_MESSAGES.get(exc.status, exc.reason)
        return web.json_response({"error": message}, status=exc.status)
    except Exception:
        logger.exception("unhandled error", extra={"path": request.path})
        return web.json_response({"error": "Internal Server Error"}, status=500)


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    if request.path.startswith(control.PREFIX):
        return await _answer(request, handler)
    fault = emulator.faults.next_for(request.path, request.method)
    if fault is not None:
        logger.info("injecting fault", extra={"path": request.path, "fault": fault.to_json()})
        if fault.drop:
            emulator.requests.add(request.method, request.path, None, "drop")
            request.protocol.force_close()
            return web.Response()  # never written: the connection is already closed
        if fault.status is not None:
            refusal = fault.response(emulator.faults.config.retry_after)
            emulator.requests.add(request.method, request.path, refusal.status, "status")
            return refusal
        if fault.after_work:
            handled = await _answer(request, handler)  # the work is done either way
            kind = "lost" if fault.lost else "late"
            emulator.requests.add(request.method, request.path, handled.status, kind)
            if fault.lost:
                request.protocol.force_close()
                return web.Response()  # never written: the connection is already closed
            await asyncio.sleep(fault.late or 0.0)
            return handled
        await asyncio.sleep(fault.delay)
    response = await _answer(request, handler)
    emulator.requests.add(request.method, request.path, response.status)
    return response


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    emulator = app[EMULATOR]
    await emulator.start()
    yield
    await emulator.stop()


def create_app(config: EmulatorConfig) -> web.Application:
    app = web.Application(middlewares=[pipeline], client_max_size=MAX_JSON_BYTES)
    app[EMULATOR] = Emulator(config)
    app.cleanup_ctx.append(_lifecycle)
    app.add_routes(api.routes() + llm.routes() + understanding_api.routes() + control.routes())
    return app


@dataclass(slots=True)
class RunningEmulator:
    """A served emulator: where it listens, and how to stop it."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def emulator(self) -> Emulator:
        return self.app[EMULATOR]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
    """Serve a new emulator on host:port (port 0: any free port); stop it with `stop()`."""
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return RunningEmulator(app=app, runner=runner, host=host, port=bound)


@asynccontextmanager
async def serve(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    running = await start(config, host, port)
    try:
        yield running
    finally:
        await running.stop()
