"""The one exception a route raises to answer with an error, and the bodies it becomes.

AssemblyAI's v2 API answers errors with `{"error": "<message>"}` (the `Error` schema);
the LLM Gateway with an error object (its `ErrorResponse` schema). Messages quoted from
AssemblyAI's docs are marked as such where they are defined.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

# 401 body of every AssemblyAI endpoint (openapi.yml, responses.Unauthorized).
UNAUTHORIZED = "Authentication error, API token missing/invalid"
# Unknown or malformed transcript id: 400, as the v2 API answers it.
TRANSCRIPT_NOT_FOUND = "Transcript lookup error, transcript id not found"


class ApiError(Exception):
    """An HTTP error answer: status and the message clients read from `error`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        return web.json_response({"error": self.message}, status=self.status, headers=self.headers)


class GatewayError(ApiError):
    """An LLM Gateway error answer.

    The body carries the spec's `ErrorResponse` object (`error.code`, `error.message`)
    and, beside it, the flat `message`/`code`/`request_id` that AssemblyAI's Python SDK
    reads from the live gateway, so clients written against either see the message.
    """

    def __init__(self, status: int, message: str, request_id: str) -> None:
        super().__init__(status, message)
        self.request_id = request_id

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "error": {"code": self.status, "message": self.message},
            "code": self.status,
            "message": self.message,
            "request_id": self.request_id,
        }
        return web.json_response(body, status=self.status)
