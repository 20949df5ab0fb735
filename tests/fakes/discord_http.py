"""Discord's HTTP conventions, as the fake's REST half speaks them.

JSON replies with exactly `Content-Type: application/json` (discord.py parses a body as
JSON only then); error bodies `{"message", "code"[, "errors"]}` with Discord's codes;
rate-limit headers, and 429s shaped as Discord sends them, with `Via` (discord.py treats a
429 without `Via` as a Cloudflare ban rather than a rate limit); and what is recorded of
each call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import mimetypes
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import BodyPartReader, web

from tests.fakes.discord_model import JSON, MAX_CONTENT_LENGTH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = web.RequestKey("discord_fake_body", object)  # parsed JSON (or payload_json)
FILES = web.RequestKey("discord_fake_files", list)  # file parts of a multipart body


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


class ApiError(Exception):
    """A Discord error reply: HTTP status plus the JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def unauthorized() -> ApiError:
    return ApiError(401, 0, "401: Unauthorized")


def not_found() -> ApiError:
    return ApiError(404, 0, "404: Not Found")


def unknown(what: Literal["Channel", "Guild", "Message", "Webhook", "interaction"]) -> ApiError:
    code = {"Channel": 10003, "Guild": 10004, "Message": 10008, "Webhook": 10015}
    return ApiError(404, code.get(what, 10062), f"Unknown {what}")


def invalid_webhook_token() -> ApiError:
    return ApiError(401, 50027, "Invalid Webhook Token")


def invalid_form(errors: dict[str, tuple[str, str]]) -> ApiError:
    """`errors` maps a dotted field path ("embeds.0.title") to (code, message)."""
    tree: JSON = {}
    for path, (code, message) in errors.items():
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return ApiError(400, 50035, "Invalid Form Body", tree)


def _max_length(limit: int) -> tuple[str, str]:
    return ("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def validate_message(body: JSON, *, n_files: int, creating: bool) -> None:
    """Discord's checks on a message body that matter to a transcript bot."""
    errors: dict[str, tuple[str, str]] = {}
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        errors["content"] = ("STRING_TYPE_CONVERT", "Could not interpret the value as string.")
    elif content is not None and len(content) > MAX_CONTENT_LENGTH:
        errors["content"] = _max_length(MAX_CONTENT_LENGTH)
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = _max_length(10)
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                errors[f"embeds.{i}.{key}"] = _max_length(limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = _max_length(25)
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = fld.get(key) or ""
                total += len(text)
                if len(text) > limit:
                    errors[f"embeds.{i}.fields.{j}.{key}"] = _max_length(limit)
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            text = (embed.get(key) or {}).get(sub) or ""
            total += len(text)
            if len(text) > limit:
                errors[f"embeds.{i}.{key}.{sub}"] = _max_length(limit)
    if total > 6000 and "embeds" not in errors:
        errors["embeds"] = ("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    errors.update(component_errors(body.get("components")))
    if errors:
        raise invalid_form(errors)
    if creating and not (
        content
        or embeds
        or n_files
        or body.get("sticker_ids")
        or body.get("components")
        or body.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")


def component_errors(rows: object) -> dict[str, tuple[str, str]]:
    """Discord's checks on a message's components: at most 5 action rows, each of at most
    5 buttons (or one select); a button's label at most 80 characters; a custom_id of
    1-100 characters, unique in the message."""
    errors: dict[str, tuple[str, str]] = {}
    if rows is None:
        return errors
    if not isinstance(rows, list) or len(rows) > 5:
        return {"components": _max_length(5)}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"components.{i}"
        if not isinstance(row, dict) or row.get("type") != 1:
            errors[f"{where}.type"] = (
                "COMPONENT_TYPE_INVALID",
                "The specified component type is invalid in this context",
            )
            continue
        items = row.get("components") or []
        if not 1 <= len(items) <= 5:
            errors[f"{where}.components"] = (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            )
            continue
        for j, item in enumerate(items):
            at = f"{where}.components.{j}"
            if not isinstance(item, dict) or item.get("type") not in (2, 3):
                errors[f"{at}.type"] = (
                    "COMPONENT_TYPE_INVALID",
                    "The specified component type is invalid in this context",
                )
                continue
            label = item.get("label")
            if label is not None and len(str(label)) > 80:
                errors[f"{at}.label"] = _max_length(80)
            custom_id = item.get("custom_id")
            if item.get("style") != 5:  # all but link buttons carry one
                if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
                    errors[f"{at}.custom_id"] = (
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
                elif custom_id in seen:
                    errors[f"{at}.custom_id"] = (
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                else:
                    seen.add(custom_id)
    return errors


def modal_errors(data: object) -> dict[str, tuple[str, str]]:
    """A modal (callback type 9): a custom_id of 1-100 characters, a title of 1-45, and 1-5
    rows of one text input each (label 1-45, style 1 or 2, lengths within 0-4000, a value
    no longer than max_length, a placeholder of at most 100)."""
    if not isinstance(data, dict):
        return {"data": ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")}
    errors: dict[str, tuple[str, str]] = {}
    custom_id, title = data.get("custom_id"), data.get("title")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        errors["data.custom_id"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        errors["data.title"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    rows = data.get("components")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 5:
        errors["data.components"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        return errors
    for i, row in enumerate(rows):
        at = f"data.components.{i}"
        inputs = row.get("components") if isinstance(row, dict) else None
        if not isinstance(inputs, list) or len(inputs) != 1 or inputs[0].get("type") != 4:
            errors[at] = (
                "COMPONENT_TYPE_INVALID",
                "The specified component type is invalid in this context",
            )
            continue
        text = inputs[0]
        label = text.get("label")
        if not isinstance(label, str) or not 1 <= len(label) <= 45:
            errors[f"{at}.components.0.label"] = (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 45 in length.",
            )
        if text.get("style") not in (1, 2):
            errors[f"{at}.components.0.style"] = (
                "BASE_TYPE_CHOICES",
                "Value must be one of (1, 2).",
            )
        high = text.get("max_length", 4000)
        if not isinstance(high, int) or not 1 <= high <= 4000:
            errors[f"{at}.components.0.max_length"] = (
                "NUMBER_TYPE_MAX",
                "int value should be less than or equal to 4000.",
            )
            high = 4000
        value = text.get("value")
        if value is not None and len(str(value)) > high:
            errors[f"{at}.components.0.value"] = _max_length(high)
        placeholder = text.get("placeholder")
        if placeholder is not None and len(str(placeholder)) > 100:
            errors[f"{at}.components.0.placeholder"] = _max_length(100)
        if not isinstance(text.get("custom_id"), str) or not 1 <= len(text["custom_id"]) <= 100:
            errors[f"{at}.components.0.custom_id"] = (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
    return errors


# -- what is recorded -----------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request (`files[n]`), with the ids it ended up under."""

    field: str
    filename: str
    content_type: str | None
    data: bytes
    route: str = ""
    channel_id: int | None = None
    message_id: int | None = None
    attachment_id: int | None = None

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass
class RestCall:
    method: str
    path: str  # below /api/v10
    route: str  # discord.py's Route.key form: "POST /channels/{channel_id}/messages"
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float
    status: int = 0
    response: Any = None  # the JSON reply, if any
    response_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CdnFetch:
    path: str
    status: int
    authorization: str | None  # a CDN fetch should never carry the bot token
    method: str


# -- rate limits --------------------------------------------------------------------------


@dataclass
class ForcedRateLimit:
    route: str
    times: int
    retry_after: float
    scope: Literal["user", "global", "shared"]


class RateLimiter:
    """Per-route fixed windows (what the X-RateLimit-* headers describe) plus 429s a test
    asks for. Windows run on the event loop's clock, as discord.py's waits do."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.rules: list[ForcedRateLimit] = []
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def forced(self, route_key: str) -> ForcedRateLimit | None:
        for rule in self.rules:
            if rule.route == route_key and rule.times > 0:
                rule.times -= 1
                return rule
        return None

    def too_many_requests(self, rule: ForcedRateLimit, route_key: str) -> web.Response:
        body = {
            "message": "The resource is being rate limited."
            if rule.scope == "shared"
            else "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.scope == "global",
        }
        response = json_response(body, 429)
        response.headers["Retry-After"] = str(math.ceil(rule.retry_after))
        response.headers["X-RateLimit-Scope"] = rule.scope
        response.headers["Via"] = "1.1 google"
        if rule.scope == "global":
            response.headers["X-RateLimit-Global"] = "true"
        else:
            response.headers.update(
                {
                    "X-RateLimit-Limit": str(self.limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket_hash(route_key),
                }
            )
        return response

    def count(self, route_key: str, major: str) -> dict[str, str]:
        """A fixed window per route and top-level resource, as Discord's headers describe.
        A client that ignores `X-RateLimit-Remaining: 0` gets a real 429."""
        now = asyncio.get_running_loop().time()
        start, count = self._windows.get((route_key, major), (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._windows[(route_key, major)] = (start, count)
        reset_after = max(0.0, self.window - (now - start))
        if count > self.limit:
            rule = ForcedRateLimit(route_key, 0, round(reset_after, 3), "user")
            raise RateLimited(self.too_many_requests(rule, route_key))
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - count),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(route_key),
        }


class RateLimited(Exception):
    """Raised when a window is exceeded; carries the 429 to send."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("429")
        self.response = response


async def read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    if not request.body_exists:
        return None, []
    if request.content_type == "multipart/form-data":
        payload: Any = None
        files: list[UploadedFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            if part.filename is not None:
                data = await part.read()
                files.append(
                    UploadedFile(
                        part.name or "",
                        part.filename,
                        part.headers.get("Content-Type"),
                        bytes(data),
                    )
                )
            elif part.name == "payload_json":
                payload = loads(await part.text())
        return payload, files
    raw = await request.read()
    if request.content_type == "application/json":
        return loads(raw.decode()), []
    return raw.decode(errors="replace") or None, []


def loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def snowflake(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_form(
            {"id": ("NUMBER_TYPE_COERCE", f"Value {value!r} is not snowflake.")}
        ) from None


def file_index(field_name: str, position: int) -> int:
    inside = field_name.removeprefix("files[").removesuffix("]")
    return int(inside) if inside.isdigit() else position


def major_parameters(params: dict[str, str]) -> str:
    for keys in (
        ("channel_id",),
        ("guild_id",),
        ("application_id", "interaction_token"),
        ("interaction_id", "interaction_token"),
    ):
        if all(k in params for k in keys):
            return ":".join(params[k] for k in keys)
    return ""


def bucket_hash(route_key: str) -> str:
    return hashlib.sha1(route_key.encode()).hexdigest()[:32]


def guess_type(filename: str) -> str | None:
    guessed, _ = mimetypes.guess_type(filename)
    if guessed is None:
        return None
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
