"""A local AssemblyAI-compatible server for offline development and tests.

It speaks the parts of AssemblyAI's v2 API and LLM Gateway that the bot and common
clients use, with the shapes, status codes and error bodies of `openapi.yml` and
`llm-gateway.yml`; transcripts are deterministic (see `scripts`), and audio without a
script gets words only where it holds speech (see `speech`). Serve it with
`threadscribe emulator` (see `cli`), or in-process::

    async with serve(EmulatorConfig(api_key="key")) as running:
        print(running.base_url)
"""

from .app import RunningEmulator, create_app, serve, start
from .config import EmulatorConfig, FaultConfig

__all__ = [
    "EmulatorConfig",
    "FaultConfig",
    "RunningEmulator",
    "create_app",
    "serve",
    "start",
]
