"""The bot's web server (aiohttp): AssemblyAI's webhook, health, metrics, and the routes
adapters mount (Slack's HTTP mode and OAuth).

    POST /webhooks/assemblyai   AssemblyAI says a transcript is done (secret header)
    GET  /healthz               liveness: the process answers
    GET  /readyz                readiness: the job store answers too
    GET  /metrics               Prometheus text
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.engine import WEBHOOK_HEADER, Engine
from bot.errors import StoreError
from bot.health import Connected, check_name
from bot.jobs import JobState

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/assemblyai"
ENGINE_KEY = web.AppKey("engine", Engine)


def create_app(
    engine: Engine, extra_routes: Sequence[web.AbstractRouteDef] = ()
) -> web.Application:
    # Slack's HTTP-mode payloads (a message action on a long message) can be large.
    app = web.Application(client_max_size=1024 * 1024)
    app[ENGINE_KEY] = engine
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_routes(extra_routes)
    return app


async def webhook(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    if not engine.webhook_authorised(request.headers.get(WEBHOOK_HEADER)):
        # Same answer for a missing and a wrong secret; nothing about the job is read.
        return web.json_response({"error": "unauthorized"}, status=401)
    try:
        body = await request.json()
        transcript_id = body["transcript_id"]
        if not isinstance(transcript_id, str) or not transcript_id:
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return web.json_response({"error": "expected {transcript_id, status}"}, status=400)
    try:
        woke = await engine.webhook(transcript_id)
    except StoreError:
        log.warning("webhook for %s while the store is unavailable", transcript_id)
        # AssemblyAI retries a failed webhook; the poller covers it too.
        return web.json_response({"error": "try again"}, status=503)
    return web.json_response({"ok": True, "job_waiting": woke})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready, or 503 naming each failing check (bot/health.py); never a detail beyond that:
    the route is unauthenticated, the details go to the log."""
    engine = request.app[ENGINE_KEY]
    platforms = [p for p in engine.platforms.values() if isinstance(p, Connected)]
    problems = await engine.health.problems(engine.store, platforms)
    checks = ["database", "assemblyai", *(check_name(p) for p in platforms)]
    for check in checks:
        engine.metrics.ready.labels(check).set(0 if check in problems else 1)
    if problems:
        log.warning("not ready: %s", ", ".join(f"{k}: {v}" for k, v in problems.items()))
        return web.json_response({"status": "unavailable", "checks": dict(problems)}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    try:
        counts = await engine.store.counts_by_state()
        for state, count in counts.items():
            engine.metrics.jobs.labels(state.value).set(count)
        engine.metrics.queue_depth.set(counts[JobState.RECEIVED])
    except StoreError:
        log.warning("metrics: job counts unavailable", exc_info=True)
    body = generate_latest(engine.metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
