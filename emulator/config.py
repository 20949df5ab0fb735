"""Settings of one emulator instance, validated once when they are built."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

# Limits documented by AssemblyAI: uploads up to 2.2 GB, URLs up to 5 GB.
MAX_UPLOAD_BYTES = 2_200_000_000
MAX_DOWNLOAD_BYTES = 5_000_000_000


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Rates (0..1, per API request) of injected failures; all off by default.

    One uniform draw per request picks at most one fault, so the rates must add up to at
    most 1. A "slow" fault delays the request by `slow_seconds`, then serves it normally.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    rate_lost: float = 0.0  # handled, then the answer is lost
    retry_after: int = 1
    slow_seconds: float = 2.0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = self.rates()
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name} must be between 0 and 1, got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates must add up to at most 1")
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must not be negative")

    def rates(self) -> dict[str, float]:
        """The rates keyed as the control endpoint names them."""
        return {
            "429": self.rate_429,
            "500": self.rate_500,
            "503": self.rate_503,
            "drop": self.rate_drop,
            "slow": self.rate_slow,
            "lost": self.rate_lost,
        }


def _find_ffprobe() -> str | None:
    return shutil.which("ffprobe")


def _find_ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything an emulator needs; nothing below `create_app` reads the environment."""

    api_key: str = field(repr=False)
    scripts_dir: Path | None = None
    processing_time: float = 1.0
    processing_ratio: float = 0.0
    # Spread of the turnaround, as a real service's varies: each job's processing time is
    # multiplied by exp(processing_jitter * Z), Z standard normal (a lognormal whose median
    # is the nominal time), drawn in submission order from a generator seeded with
    # `processing_seed`. 0: every job of a length takes the same time.
    processing_jitter: float = 0.0
    processing_seed: int | None = None
    concurrency: int = 5
    webhook_attempts: int = 10
    webhook_retry_interval: float = 10.0
    webhook_timeout: float = 10.0
    storage_dir: Path | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_download_bytes: int = MAX_DOWNLOAD_BYTES
    download_timeout: float = 300.0
    # Base of the URLs the API hands out (list pages, resource_url); None: the request's own.
    public_base_url: str | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Path of ffprobe, used first to measure media; None falls back to mutagen (and a
    # small WebM reader), which is what happens on machines without ffmpeg.
    ffprobe: str | None = field(default_factory=_find_ffprobe)
    # Path of ffmpeg, used to find where audio without a script holds speech (see
    # `speech`); None puts placeholder words over the whole duration, silence included.
    # It also makes the PII-redacted audio, which cannot be made without it.
    ffmpeg: str | None = field(default_factory=_find_ffmpeg)
    # How long a redacted audio file is kept after its transcript completes (the API:
    # "Redacted audio files are only available for 24 hours").
    redacted_audio_ttl: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.scripts_dir is not None and not self.scripts_dir.is_dir():
            raise ValueError(f"scripts directory {self.scripts_dir} does not exist")
        if self.processing_time < 0 or self.processing_ratio < 0:
            raise ValueError("processing_time and processing_ratio must not be negative")
        if not 0.0 <= self.processing_jitter <= 3.0:
            raise ValueError("processing_jitter must be between 0 and 3")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.webhook_attempts < 1:
            raise ValueError("webhook_attempts must be at least 1")
        if self.webhook_retry_interval < 0 or self.webhook_timeout <= 0:
            raise ValueError("webhook_retry_interval must be >= 0 and webhook_timeout > 0")
        if self.max_upload_bytes < 1 or self.max_download_bytes < 1:
            raise ValueError("size limits must be positive")
        if self.redacted_audio_ttl <= 0:
            raise ValueError("redacted_audio_ttl must be positive")
        if self.public_base_url is not None and not self.public_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("public_base_url must be an http(s) URL")
