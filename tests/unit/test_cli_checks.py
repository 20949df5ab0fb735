"""The terminal command's small parsers without a process: --start/--end times, and the
one list of languages (the command itself: tests/system/test_cli_checks.py)."""

from __future__ import annotations

import argparse

import pytest

from bot import models
from bot.cli import _timestamp
from emulator import params
from tests.helpers import openapi_schema


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90", 90_000),
        ("1:30", 90_000),
        ("1:02:03.5", 3_723_500),
        ("0:59.9", 59_900),
        ("75", 75_000),
    ],
)
def test_times_that_parse(text, ms):
    assert _timestamp(text) == ms


@pytest.mark.parametrize(
    "text", ["1:75", "1:60:00", "2:00:60", "1e3", "nan", "1::2", ":30", "1:2:3:4"]
)
def test_times_that_do_not(text):
    with pytest.raises(argparse.ArgumentTypeError):
        _timestamp(text)


def test_one_language_list_the_specs():
    spec = openapi_schema.load()["components"]["schemas"]["TranscriptLanguageCode"]
    assert set(spec["enum"]) == models.LANGUAGE_CODES
    assert params.LANGUAGE_CODES is models.LANGUAGE_CODES
