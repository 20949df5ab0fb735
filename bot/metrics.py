"""Prometheus metrics (prometheus-client), one registry per process, served at /metrics.

Jobs by state are read from the store at scrape time, so every replica reports the same
truth; counters and histograms are this process's own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs = Gauge("threadscribe_jobs", "Jobs in the store by state", ["state"], registry=r)
        self.queue_depth = Gauge(
            "threadscribe_queue_depth", "Jobs received and waiting for a slot", registry=r
        )
        self.intakes = Counter(
            "threadscribe_intakes",
            "Triggers handed to the engine",
            ["platform", "outcome"],
            registry=r,
        )
        self.deliveries = Counter(
            "threadscribe_deliveries",
            "Jobs delivered to their thread",
            ["platform", "outcome"],
            registry=r,
        )
        self.assemblyai_latency = Histogram(
            "threadscribe_assemblyai_seconds",
            "Latency of AssemblyAI calls, retries included",
            ["call"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.polls = Counter("threadscribe_polls", "Transcript status polls made", registry=r)
        self.ready = Gauge(
            "threadscribe_ready",
            "1 where a readiness check passes, 0 where it fails (as /readyz last found)",
            ["check"],
            registry=r,
        )
        self.webhooks = Counter(
            "threadscribe_webhooks", "AssemblyAI webhooks that woke a waiting job", registry=r
        )
        self.audio_seconds = Counter(
            "threadscribe_audio_seconds",
            "Seconds of audio AssemblyAI billed (the window applied), as transcripts finish",
            ["model", "platform", "workspace"],
            registry=r,
        )
