"""AssemblyAI's model line-up: the one place to edit when AssemblyAI changes it.

Sources (read 2026-12-01): AssemblyAI's "Select the speech model" and "Speech model versions
and deprecations" pages, and the `assemblyai-stt-3-7` migration guide:

- `assemblyai-stt-3-7` is the flagship (32 languages); `universal-2` covers 99 languages
  and is the fallback for the rest.
- `universal-3-5-pro` and `universal-3-pro` are deprecated: they still work, and requests
  that name no model move from them to `assemblyai-stt-3-7` on 2026-12-08. AssemblyAI's
  error message no longer lists `universal-3-pro` among the accepted models.
- `best`, `nano` and `slam-1` are rejected with a 400 that lists the accepted models.

The bot, `threadscribe doctor` and the emulator all read this module, so that what the bot
checks before spending anything is what the emulator enforces in the tests.
"""

from __future__ import annotations

from typing import Final

#: Every value `speech_models` accepts today, newest first.
ACCEPTED_SPEECH_MODELS: Final = (
    "assemblyai-stt-3-7",
    "universal-3-5-pro",
    "universal-3-pro",
    "universal-2",
)
#: The models AssemblyAI's 400 names as accepted (deprecated ones it no longer lists
#: are still accepted).
LISTED_SPEECH_MODELS: Final = ("assemblyai-stt-3-7", "universal-3-5-pro", "universal-2")
#: Deprecated model -> what to use instead.
DEPRECATED_SPEECH_MODELS: Final = {
    "universal-3-5-pro": "assemblyai-stt-3-7",
    "universal-3-pro": "assemblyai-stt-3-7",
}
#: Names AssemblyAI used to take and now refuses.
REJECTED_SPEECH_MODELS: Final = frozenset({"best", "nano", "slam-1"})
DEFAULT_SPEECH_MODELS: Final = ("assemblyai-stt-3-7", "universal-2")

#: Languages each model transcribes (base codes); a model missing here takes any.
#: A request whose language a model lacks goes to the next model in `speech_models`.
SPEECH_MODEL_LANGUAGES: Final[dict[str, frozenset[str]]] = {
    "assemblyai-stt-3-7": frozenset(
        "en es fr de it pt nl pl ru uk tr cs sk hu ro bg hr sl sr el fi sv da no "
        "ja ko zh hi vi id ms ar".split()
    ),
    # 18 languages ("Universal-3.5 Pro" pages, pre-recorded and streaming); the codes are
    # the streaming page's table, the pre-recorded page names Hindi and Mandarin among them.
    "universal-3-5-pro": frozenset("en es de fr pt it tr nl sv no da fi hi vi ar he ja zh".split()),
    "universal-3-pro": frozenset("en es fr de it pt".split()),
}

#: LLM Gateway model ids (AssemblyAI's LLM Gateway docs).
LLM_MODELS: Final = frozenset(
    {
        "claude-opus-4-6",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-haiku-4-5-20251001",
        "claude-3-haiku-20240307",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-oss-120b",
        "gpt-oss-20b",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
    }
)
DEFAULT_LLM_MODEL: Final = "claude-sonnet-4-5-20250929"


def speech_model_problem(model: str) -> str | None:
    """Why AssemblyAI would refuse `model`, or None if it accepts it."""
    if model in ACCEPTED_SPEECH_MODELS:
        return None
    # Suggest what is current: the listed models less the deprecated ones.
    accepted = ", ".join(m for m in LISTED_SPEECH_MODELS if m not in DEPRECATED_SPEECH_MODELS)
    if model in REJECTED_SPEECH_MODELS:
        return f"{model} is no longer offered by AssemblyAI (use one of {accepted})"
    return f"{model} is not an AssemblyAI speech model (use one of {accepted})"


def speech_model_warning(model: str) -> str | None:
    """A note for a deprecated model, or None."""
    instead = DEPRECATED_SPEECH_MODELS.get(model)
    if instead is None:
        return None
    return f"{model} is deprecated by AssemblyAI: use {instead} instead"


#: Every `language_code` AssemblyAI takes: `TranscriptLanguageCode` of its OpenAPI spec
#: (../shared/assemblyai/openapi.yml). The CLI checks `--language` against it before
#: anything is spent, and the emulator refuses what is not in it.
LANGUAGE_CODES: Final = frozenset(
    """en en_au en_uk en_us es fr de it pt nl af sq am ar hy as az ba eu be bn bs br bg my
    ca zh hr cs da et fo fi gl ka el gu ht ha haw he hi hu is id ja jw kn kk km ko lo la lv
    ln lt lb mk mg ms ml mt mi mr mn ne no nn oc pa ps fa pl ro ru sa sr sn sd si sk sl so su
    sw sv tl tg ta tt te th bo tr tk uk ur uz vi cy yi yo""".split()
)

#: What AssemblyAI accepts as audio (its upload limit, longest and shortest audio).
MAX_UPLOAD_BYTES: Final = 2_200_000_000
MAX_AUDIO_SECONDS: Final = 10 * 3600.0
MIN_AUDIO_SECONDS: Final = 0.16
