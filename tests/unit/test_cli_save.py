"""Where the terminal command saves a transcript, without a process: file stems of links
and local files, and never overwriting (the command itself: tests/system/test_cli_save.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sources import FileSource, UrlSource, file_stem
from bot.transcribe import save_new


@pytest.mark.parametrize(
    ("url", "stem"),
    [
        ("https://example.com/a/b/Weekly%20Sync.m4a", "Weekly Sync"),
        ("https://example.com/a/b/", "transcript"),
        ("https://example.com", "transcript"),
        ("https://example.com/.mp3", "mp3"),
        ("https://example.com/..", "transcript"),
        ("https://example.com/x/a%2F..%2Fb.mp3", "b"),
        ("https://example.com/clip?name=x.mp3", "clip"),
    ],
)
def test_link_stems(url, stem):
    assert file_stem(UrlSource(url)) == stem


def test_file_stem():
    assert file_stem(FileSource(Path("/tmp/rec/standup.final.wav"), 10)) == "standup.final"


def test_save_new_counts_up_and_keeps_what_is_there(tmp_path):
    paths = [save_new(tmp_path, "call", f"take {n}") for n in range(3)]
    assert [p.name for p in paths] == ["call.txt", "call-1.txt", "call-2.txt"]
    assert [p.read_text() for p in paths] == ["take 0", "take 1", "take 2"]
