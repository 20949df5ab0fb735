"""Slack's failures, converted once, here, into the core's PlatformError.

slack_sdk raises `SlackApiError` for an answer that is not `ok`, and its `response` is
not always Slack's JSON: Slack's edge can answer `text/plain` (a 503 while it is
overloaded) or HTML (a proxy's 502), and then the response holds a string, or is the raw
aiohttp response. `error_code` reads all of them; nothing here ever raises while
explaining an error. Transport failures (aiohttp, timeouts) are worth another try.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.errors import PlatformError, PlatformRefused, PlatformUnavailable

#: What a Slack Web API call can raise.
CALL_ERRORS: Final = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)

#: Slack errors worth another try later; anything else will fail the same way again.
RETRYABLE: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
#: The token is not (or no longer) good: the installation may have been renewed meanwhile.
AUTH_ERRORS: Final = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_HINTS: Final = {
    "not_in_channel": "invite @threadscribe to the channel",
    "channel_not_found": "the channel is gone, or private without the app in it",
    "is_archived": "the channel is archived",
    "thread_not_found": "the message it answers was deleted",
}


def _data(exc: SlackApiError) -> dict[str, Any]:
    data = getattr(exc.response, "data", None)
    return data if isinstance(data, dict) else {}


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of Slack's answer, when there was one."""
    if not isinstance(exc, SlackApiError):
        return None
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def error_code(exc: BaseException) -> str:
    """Slack's error code (`not_in_channel`), or what stands for it: `http_503` for an
    answer that is not Slack's JSON, the exception's class for no answer at all."""
    if isinstance(exc, SlackApiError):
        code = _data(exc).get("error")
        if isinstance(code, str) and code:
            return code
        status = http_status(exc)
        return f"http_{status}" if status else "unreadable_answer"
    return type(exc).__name__


def retryable(exc: BaseException) -> bool:
    if not isinstance(exc, SlackApiError):
        return True  # no answer: the network, or Slack, may be back later
    code = error_code(exc)
    status = http_status(exc) or 200
    return code in RETRYABLE or code in AUTH_ERRORS or status >= 500 or status == 429


def platform_error(exc: BaseException, doing: str) -> PlatformError:
    """A Slack SDK or transport failure as the core understands it: what went wrong, in
    words the thread can be shown, and whether trying again can help."""
    kind = PlatformUnavailable if retryable(exc) else PlatformRefused
    if not isinstance(exc, SlackApiError):
        return kind(f"could not reach Slack to {doing} ({type(exc).__name__})")
    code = error_code(exc)
    hint = _HINTS.get(code)
    if code == "missing_scope":
        hint = f"the app lacks the {_data(exc).get('needed') or 'needed'} scope: reinstall it"
    elif code in AUTH_ERRORS:
        hint = "the bot token was refused: reinstall the app"
    elif code.startswith("http_"):
        hint = "Slack did not answer normally; trying again later"
    return kind(f"Slack refused to {doing} ({code})" + (f": {hint}" if hint else ""))
