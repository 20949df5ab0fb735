"""Control endpoints for tests: fault injection and the log of API requests served.

`POST /_emulator/faults` takes `{"queue": [...], "rates": {...}, "seed": N,
"retry_after": S, "slow_seconds": S}` (every key optional) and answers the fault state;
`GET` answers the state, `DELETE` clears queue and rates. `GET /_emulator/requests`
lists `{"method", "path", "status"}` of every API request served (status null for a
dropped connection); `DELETE` empties the list. These routes need the API key and are
never subject to faults nor logged.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import ApiError
from .faults import Fault, rates_config
from .runtime import EMULATOR

PREFIX = "/_emulator/"


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


async def post_faults(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await _json_body(request)
    queue = body.get("queue", [])
    if not isinstance(queue, list):
        raise ApiError(400, "queue must be a list of faults")
    try:
        faults = [Fault.from_json(item) for item in queue]
        if body.keys() & {"rates", "seed", "retry_after", "slow_seconds"}:
            emulator.faults.configure_rates(rates_config(emulator.faults.config, body))
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from exc
    emulator.faults.enqueue(faults)
    return web.json_response(emulator.faults.state())


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].faults.state())


async def delete_faults(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    emulator.faults.clear()
    return web.json_response(emulator.faults.state())


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].requests.entries)


async def delete_requests(request: web.Request) -> web.Response:
    request.app[EMULATOR].requests.clear()
    return web.json_response([])


def routes() -> list[web.RouteDef]:
    return [
        web.post(PREFIX + "faults", post_faults),
        web.get(PREFIX + "faults", get_faults),
        web.delete(PREFIX + "faults", delete_faults),
        web.get(PREFIX + "requests", get_requests),
        web.delete(PREFIX + "requests", delete_requests),
    ]
