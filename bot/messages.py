"""What users are told when something goes wrong: written once, here, for every surface
(the terminal and the chat thread). Each message says what happened and what to do."""

from __future__ import annotations

from bot import assemblyai as aai
from bot.config import ConfigError
from bot.sources import SourceError


def explain(exc: BaseException) -> str:
    """One line (no traceback, no secret) describing `exc` for the person who asked."""
    match exc:
        case ConfigError():
            return "; ".join(exc.problems)
        case SourceError():
            return str(exc)
        case aai.AuthenticationError():
            return (
                "AssemblyAI rejected the API key (401): check ASSEMBLYAI_API_KEY "
                "(AssemblyAI dashboard, API keys)"
            )
        case aai.RateLimitError():
            return (
                "AssemblyAI is rate-limiting this account (429) and retries did not get through: "
                "try again in a few minutes"
            )
        case aai.ServerError():
            return (
                f"AssemblyAI had a server error ({exc.status}) and retries did not get through: "
                f"{exc.message}"
            )
        case aai.APIError():
            return f"AssemblyAI refused the request ({exc.status}): {exc.message}"
        case aai.RequestTimeout() | aai.TransportError():
            return f"could not reach AssemblyAI: {exc.message}"
        case aai.TranscriptFailed():
            return f"AssemblyAI could not transcribe this audio: {exc.message}"
        case OSError():
            target = f" {exc.filename}" if exc.filename else ""
            return f"cannot access{target}: {exc.strerror or exc}"
    return f"unexpected error ({type(exc).__name__}); the details are in the log"
