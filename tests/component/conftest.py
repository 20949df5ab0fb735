"""Fixtures of the component tests: the real code in-process, against the fakes and the
emulator over loopback.

    store       a SQLite JobStore in the test's tmp_path
    assemblyai  the real client, pointed at the `emulator`
    harness     the engine in burst mode on those, delivering to a RecordingPlatform
                (tests/helpers/engine.py); a module changes how it is made by
                overriding `engine_options` (running_engine's keyword arguments)
    meeting     the dialogue (MP3) with the meeting's script (tests/helpers/meeting.py):
                speakers A and B are Ada Lovelace and Grace Hopper

slack/ and discord/ add `bot`, the adapter started on the fake with the real engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.assemblyai import AssemblyAIClient
from bot.jobs import JobStore
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import EngineHarness, emulator_client, open_store, running_engine
from tests.helpers.meeting import write_meeting


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    opened = await open_store(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def assemblyai(emulator: EmulatorServer) -> AsyncIterator[AssemblyAIClient]:
    async with emulator_client(emulator) as client:
        yield client


@pytest.fixture
def engine_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def harness(
    tmp_path: Path, emulator: EmulatorServer, engine_options: dict[str, Any]
) -> AsyncIterator[EngineHarness]:
    async with running_engine(tmp_path, emulator, **engine_options) as running:
        yield running


@pytest.fixture
def meeting(audio_library: AudioLibrary, emulator: EmulatorServer) -> AudioSample:
    sample = audio_library.dialogue("mp3")  # spoken once a session; its script is ours
    write_meeting(emulator.scripts_dir, sample, {"A": "Ada Lovelace", "B": "Grace Hopper"})
    return sample
