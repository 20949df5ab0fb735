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

import enum
from collections.abc import Sequence
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


# -- Speech Understanding, vocabulary, structured output ---------------------------------
# Sources: AssemblyAI's "Keyterms prompting", "Custom Spelling", "Speaker Identification"
# and "Translation" pages (assemblyai-api-spec, fern/pages, 2026-03), openapi.yml and
# llm-gateway.yml.

#: Keyterms a request may carry, per model: "up to 1,000 words or phrases" on the
#: Universal-3 / STT-3 line, "The maximum number of keyterms with Universal-2 is 200".
KEYTERMS_LIMITS: Final[dict[str, int]] = {
    "assemblyai-stt-3-7": 1000,
    "universal-3-5-pro": 1000,
    "universal-3-pro": 1000,
    "universal-2": 200,
}
#: "maximum 6 words per phrase"
KEYTERM_MAX_WORDS: Final = 6
#: `prompt`: "a prompt with up to 1,500 words of context"; never with `keyterms_prompt`.
PROMPT_MAX_WORDS: Final = 1500
#: Speaker identification: "Each value must be 35 characters or less"; and at most 35
#: names per request (the limit the bot and the emulator hold to).
SPEAKER_NAME_MAX_CHARS: Final = 35
SPEAKER_NAMES_MAX: Final = 35

#: Target languages of Speech Understanding's translation (the Translation page's table).
TRANSLATION_LANGUAGES: Final = frozenset(
    """en en_au en_uk en_us es fr de it pt nl hi ja zh fi ko pl ru tr uk vi af sq am ar hy
    as az eu be bn bs bg ca hr cs da et gl ka el gu ht ha haw he hu is id jw kn kk lo la lv
    lt lb mk mg ms ml mt mi mr mn ne no pa ps fa ro sr sn sd si sk sl so su sw sv tl tg ta
    te ur uz cy yi yo""".split()
)


#: LLM Gateway models that take `response_format` (llm-gateway.yml: "Not supported by
#: gpt-oss models"); the others are asked for JSON in words and checked all the same.
def supports_structured_output(model: str) -> bool:
    return not model.startswith("gpt-oss-")


def keyterms_limit(models: Sequence[str]) -> int:
    """The most keyterms a request naming `models` may carry: the smallest limit among
    them, since AssemblyAI may route the audio to any of them."""
    return min((KEYTERMS_LIMITS.get(m, 200) for m in models), default=200)


#: Every PII redaction policy (`PiiPolicy` of AssemblyAI's OpenAPI spec,
#: ../shared/assemblyai/openapi.yml). The bot checks REDACT_PII_POLICIES against it and
#: the emulator refuses a policy not in it, as AssemblyAI does.
PII_POLICIES: Final = frozenset(
    """account_number banking_information blood_type credit_card_cvv credit_card_expiration
    credit_card_number date date_interval date_of_birth drivers_license drug duration
    email_address event filename gender_sexuality healthcare_number injury ip_address
    language location marital_status medical_condition medical_process money_amount
    nationality number_sequence occupation organization passport_number password person_age
    person_name phone_number physical_attribute political_affiliation religion statistics
    time url us_social_security_number username vehicle_id zodiac_sign""".split()
)
#: What REDACT_PII redacts unless told otherwise: phone numbers, email addresses, credit
#: card and bank numbers, government ids, dates of birth and addresses. `location` is the
#: spec's only policy for addresses, and it also takes cities, countries and postcodes.
DEFAULT_PII_POLICIES: Final = (
    "phone_number",
    "email_address",
    "credit_card_number",
    "credit_card_cvv",
    "credit_card_expiration",
    "banking_information",
    "account_number",
    "us_social_security_number",
    "passport_number",
    "drivers_license",
    "date_of_birth",
    "location",
)
#: `redact_pii_sub`: `entity_name` shows `[PHONE_NUMBER]`, `hash` shows `####`.
PII_SUBSTITUTIONS: Final = ("entity_name", "hash")

#: Estimated price in USD per hour of audio, per speech model, for `/transcribe usage`
#: (ASSEMBLYAI_PRICE_PER_HOUR overrides it). Sources, read 2026-12: AssemblyAI's pricing
#: page (https://www.assemblyai.com/pricing) as quoted on 2026-10-07 by api-evangelist's
#: plans file: Universal-2 $0.15/h and Universal-3.5 Pro $0.21/h (pay as you go,
#: pre-recorded); STT-3.7 at $0.21/h on Vercel's AI Gateway page for AssemblyAI's
#: assemblyai/stt-3.7. Universal-3 Pro took Universal-3.5 Pro's price. Add-ons AssemblyAI
#: bills apart (speaker labels, PII redaction) are not included: fold them into the price.
DEFAULT_PRICE_PER_HOUR: Final = {
    "assemblyai-stt-3-7": 0.21,
    "universal-3-5-pro": 0.21,
    "universal-3-pro": 0.21,
    "universal-2": 0.15,
}


class ChannelPolicy(enum.StrEnum):
    """Who gets transcribed in a channel: every recording shared there (`auto`), only
    what someone asks for (a command, the shortcut or context menu, a mention), or none."""

    AUTO = "auto"
    ON_REQUEST = "on-request"
    OFF = "off"

    @classmethod
    def parse(cls, raw: str) -> ChannelPolicy:
        """`auto`, `on-request` (also `on_request`, `request`) or `off`; true and false
        are the old auto-transcribe switch (true: auto, false: on-request)."""
        word = raw.strip().lower().replace("_", "-")
        aliases = {"request": "on-request", "onrequest": "on-request", "asked": "on-request"}
        word = aliases.get(word, word)
        if word in ("true", "yes", "on", "1"):
            return cls.AUTO
        if word in ("false", "no", "0"):
            return cls.ON_REQUEST
        try:
            return cls(word)
        except ValueError:
            raise ValueError(f"must be auto, on-request or off (got {raw!r})") from None
