"""`threadscribe transcribe` saves the transcript like AssemblyAI's tutorial does, without
being asked: `<audio name>.txt` in the current folder, never overwriting a file."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer


@pytest.fixture
def meeting(emulator: EmulatorServer, audio_library: AudioLibrary, tmp_path: Path) -> Path:
    """The dialogue as `meeting.wav` in the test's folder (its script follows its bytes)."""
    sample = audio_library.dialogue("wav", emulator.scripts_dir)
    path = tmp_path / "meeting.wav"
    shutil.copy(sample.path, path)
    return path


def test_saves_audio_name_txt_in_the_current_folder(emulator, tmp_path, meeting):
    result = run_cli("transcribe", meeting.name, server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "meeting.txt"
    assert saved.read_text(encoding="utf-8") == result.stdout
    assert "Speaker A" in result.stdout
    assert "Saved meeting.txt" in result.stderr.splitlines()


def test_never_overwrites_an_existing_file(emulator, tmp_path, meeting):
    (tmp_path / "meeting.txt").write_text("my notes")
    (tmp_path / "meeting-1.txt").write_text("older notes")
    result = run_cli("transcribe", meeting.name, server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "meeting.txt").read_text() == "my notes"
    assert (tmp_path / "meeting-1.txt").read_text() == "older notes"
    assert (tmp_path / "meeting-2.txt").read_text(encoding="utf-8") == result.stdout
    assert "Saved meeting-2.txt" in result.stderr


def test_txt_chooses_the_path_and_may_overwrite_it(emulator, tmp_path, meeting):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "t.txt").write_text("old")
    result = run_cli("transcribe", meeting, "--txt", out / "t.txt", server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "t.txt").read_text(encoding="utf-8") == result.stdout
    assert not (tmp_path / "meeting.txt").exists()
    assert f"Saved {out / 't.txt'}" in result.stderr


def test_no_save_saves_nothing(emulator, tmp_path, meeting):
    before = sorted(tmp_path.iterdir())
    result = run_cli("transcribe", meeting.name, "--no-save", server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Speaker A" in result.stdout
    assert sorted(tmp_path.iterdir()) == before
    assert "Saved" not in result.stderr


def test_no_save_and_txt_exclude_each_other(emulator, tmp_path, meeting):
    result = run_cli(
        "transcribe", meeting, "--no-save", "--txt", "t.txt", server=emulator, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "not allowed with" in result.stderr


@pytest.fixture
def any_path_server(meeting: Path) -> Iterator[str]:
    """Serves `meeting` at every path, so links can have any name (or none)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(meeting.stat().st_size))
            self.end_headers()
            self.wfile.write(meeting.read_bytes())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    ("path", "saved"),
    [("/talks/keynote.mp3", "keynote.txt"), ("/", "transcript.txt"), ("/get?id=7", "get.txt")],
    ids=["named", "no-name", "query"],
)
def test_links_are_saved_under_their_file_name(emulator, tmp_path, any_path_server, path, saved):
    result = run_cli("transcribe", any_path_server + path, server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / saved).read_text(encoding="utf-8") == result.stdout
    assert f"Saved {saved}" in result.stderr
