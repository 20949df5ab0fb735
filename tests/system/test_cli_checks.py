"""`threadscribe transcribe` checks before it spends: each problem is one line on stderr,
exit status 2, no traceback, and nothing uploaded or submitted (the emulator's request
log shows it). The real command in a subprocess, with a clean environment."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.helpers.audio import make_tone
from tests.helpers.cli import assert_one_line_error, run_cli, spent
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer


def assert_refused(
    result: subprocess.CompletedProcess[str], server: EmulatorServer, *fragments: str
) -> None:
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2, result.stderr
    assert spent(server) == []


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """argparse's refusal: usage, then one `threadscribe transcribe: error:` line."""
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "error:" in x]
    for fragment in fragments:
        assert fragment in line, line


@pytest.fixture
def dialogue(emulator: EmulatorServer, audio_library: AudioLibrary) -> Path:
    return audio_library.dialogue("wav", emulator.scripts_dir).path


# -- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--speakers", "2", "--no-speaker-labels"], ["--speakers", "--no-speaker-labels"]),
        (["--language", "xx"], ["--language xx is not a language code AssemblyAI knows"]),
        (["--language", "en-US"], ["did you mean en_us?"]),
        (["--start", "10", "--end", "5"], ["--end must be after --start"]),
        (["--start", "1", "--end", "1.1"], ["less than 160 ms apart"]),
        (["--start", "5:00"], ["--start 5:00 is past the end of dialogue.wav"]),
        (["--end", "1:00"], ["--end 1:00 is past the end of dialogue.wav, which lasts 0:"]),
    ],
    ids=["speakers-no-labels", "language", "language-hint", "end<start", "short", "start", "end"],
)
def test_bad_options_are_refused_before_upload(emulator, tmp_path, dialogue, args, fragments):
    result = run_cli("transcribe", dialogue, *args, server=emulator, cwd=tmp_path)
    assert_refused(result, emulator, *fragments)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--start", "1:75"], ["--start", "seconds must be below 60"]),
        (["--end", "1:60:00"], ["--end", "minutes must be below 60"]),
        (["--start", "-5"], ["--start"]),
        (["--speakers", "0"], ["--speakers"]),
        (["--speech-models", "best"], ["--speech-models", "no longer offered"]),
        (["--poll-interval", "0"], ["--poll-interval"]),
    ],
    ids=["1:75", "1:60:00", "negative", "speakers", "rejected-model", "interval"],
)
def test_malformed_arguments(emulator, tmp_path, dialogue, args, fragments):
    result = run_cli("transcribe", dialogue, *args, server=emulator, cwd=tmp_path)
    assert_usage_error(result, *fragments)
    assert spent(emulator) == []


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--speech-models", "universal-3-pro,universal-2"], {}),
        ([], {"ASSEMBLYAI_SPEECH_MODELS": "universal-3-pro,universal-2"}),
    ],
    ids=["option", "setting"],
)
def test_deprecated_model_warns_and_goes_ahead(emulator, tmp_path, dialogue, args, env):
    result = run_cli("transcribe", dialogue, *args, server=emulator, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    warning = (
        "threadscribe: warning: universal-3-pro is deprecated by AssemblyAI: use "
        "assemblyai-stt-3-7 instead"
    )
    assert result.stderr.count(warning) == 1, result.stderr  # once, whichever way it came


# -- the file --------------------------------------------------------------------------


def _wav_header(seconds: float, rate: int = 8000) -> tuple[bytes, int]:
    """A mono 8-bit PCM WAV header for `seconds` of audio, and the data size it claims."""
    size = int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    head = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE"
    head += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size)
    return head, size


def _sparse(path: Path, head: bytes, size: int) -> Path:
    """`head`, then zeros up to `size` bytes, without writing them (a sparse file)."""
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *map(str, args)], check=True)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda d: _text(d / "notes.txt"), ["notes.txt does not appear to contain audio", "text"]),
        (lambda d: _bytes(d / "fake.wav", b"RIFF...."), ["fake.wav does not appear to contain"]),
        (lambda d: _still(d / "photo.png"), ["photo.png does not appear to contain audio"]),
        (lambda d: _silent_video(d / "clip.mp4"), ["clip.mp4 does not appear to contain audio"]),
        (lambda d: make_tone(d / "blip.wav", 0.1), ["blip.wav is too short (100 ms)", "160 ms"]),
        (
            lambda d: _sparse(d / "huge.wav", *_wav_header(10 * 3600 + 60)),
            ["huge.wav lasts 10:01:00; AssemblyAI allows 10 h at most"],
        ),
        (
            lambda d: _sparse(d / "big.mp3", b"ID3", 2_300_000_000),
            ["big.mp3 is 2,300 MB; AssemblyAI allows 2,200 MB at most"],
        ),
    ],
    ids=["text", "corrupt", "image", "video-without-audio", "too-short", "too-long", "too-big"],
)
def test_unusable_files_are_refused_before_upload(emulator, tmp_path, make, fragments):
    result = run_cli("transcribe", make(tmp_path), server=emulator, cwd=tmp_path)
    assert_refused(result, emulator, *fragments)


def _text(path: Path) -> Path:
    path.write_text("These are meeting notes, not a recording.\n" * 20)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _still(path: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=16x16", "-frames:v", "1", path)
    return path


def _silent_video(path: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", "-c:v", "libx264", path)
    return path


def test_max_file_mb_when_set(emulator, tmp_path):
    tone = make_tone(tmp_path / "tone.wav", 40.0)  # 16 kHz 16-bit mono: 1.28 MB
    result = run_cli("transcribe", tone, server=emulator, cwd=tmp_path, env={"MAX_FILE_MB": "1"})
    assert_refused(result, emulator, "tone.wav is 1.3 MB; MAX_FILE_MB allows 1.0 MB at most")
    # Unset, the bot's default (1,000 MB) is not the terminal's limit: the same file goes.
    assert run_cli("transcribe", tone, server=emulator, cwd=tmp_path).returncode == 0


def test_max_duration_minutes_when_set(emulator, tmp_path):
    tone = make_tone(tmp_path / "tone.wav", 70.0)
    env = {"MAX_DURATION_MINUTES": "1"}
    result = run_cli("transcribe", tone, server=emulator, cwd=tmp_path, env=env)
    assert_refused(
        result, emulator, "tone.wav lasts 1:10; MAX_DURATION_MINUTES allows 1 min at most"
    )
    # A part of it within the limit may be transcribed.
    result = run_cli("transcribe", tone, "--end", "0:50", server=emulator, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    emulator.clear_requests()
    result = run_cli(
        "transcribe", tone, "--start", "2", "--end", "1:09", server=emulator, cwd=tmp_path, env=env
    )
    assert_refused(result, emulator, "the part to transcribe lasts 1:07", "--start/--end")


def test_link_of_unknown_length_is_cut_at_max_duration(emulator, tmp_path, media_server, dialogue):
    url = media_server(dialogue)
    out = tmp_path / "t.json"
    env = {"MAX_DURATION_MINUTES": "1"}
    result = run_cli("transcribe", url, "--json", out, server=emulator, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "up to 1:00 at most (MAX_DURATION_MINUTES=1)" in result.stderr
    submitted = out.read_text()
    assert '"audio_end_at": 60000' in submitted
    # Without the setting, AssemblyAI's own limit applies and nothing is cut.
    result = run_cli("transcribe", url, "--json", out, server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MAX_DURATION_MINUTES" not in result.stderr
    assert '"audio_end_at": null' in out.read_text() or "audio_end_at" not in out.read_text()


# -- without ffprobe: mutagen ----------------------------------------------------------


@pytest.fixture
def no_ffprobe(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "bin"
    empty.mkdir()
    return {"PATH": str(empty)}


def test_without_ffprobe_mutagen_measures(emulator, tmp_path, dialogue, no_ffprobe):
    blip = make_tone(tmp_path / "blip.wav", 0.1)
    result = run_cli("transcribe", blip, server=emulator, cwd=tmp_path, env=no_ffprobe)
    assert_refused(result, emulator, "blip.wav is too short (100 ms)")
    notes = _text(tmp_path / "notes.txt")
    result = run_cli("transcribe", notes, server=emulator, cwd=tmp_path, env=no_ffprobe)
    assert_refused(result, emulator, "notes.txt does not appear to contain audio (it holds text)")
    result = run_cli(
        "transcribe", dialogue, "--start", "5:00", server=emulator, cwd=tmp_path, env=no_ffprobe
    )
    assert_refused(result, emulator, "past the end of dialogue.wav")
    result = run_cli("transcribe", dialogue, server=emulator, cwd=tmp_path, env=no_ffprobe)
    assert result.returncode == 0, result.stderr
    assert "cannot tell" not in result.stderr


def test_without_ffprobe_a_format_mutagen_cannot_read_goes_with_a_note(
    emulator, tmp_path, audio_library, no_ffprobe
):
    webm = audio_library.dialogue("webm", emulator.scripts_dir).path
    out = tmp_path / "t.json"
    env = no_ffprobe | {"MAX_DURATION_MINUTES": "1"}
    result = run_cli("transcribe", webm, "--json", out, server=emulator, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "note: cannot tell how long dialogue.webm is (ffprobe" in result.stderr
    assert "up to 1:00 at most" in result.stderr
    assert '"audio_end_at": 60000' in out.read_text()


# -- links -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://alice:s3cret-pw@127.0.0.1:1/a.mp3", "https://s3cret-pw@example.com/a.mp3"],
    ids=["user-password", "token"],
)
def test_link_with_credentials_is_refused_without_showing_them(emulator, tmp_path, url):
    result = run_cli("transcribe", url, server=emulator, cwd=tmp_path)
    assert_refused(result, emulator, "***@", "carries a user name or password")
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "alice" not in result.stderr


# -- where the results go --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--txt", "missing/t.txt"], ["cannot save missing/t.txt: its folder does not exist"]),
        (["--srt", "."], ["--srt . is a folder"]),
        (["--vtt", "dialogue.wav/t.vtt"], ["dialogue.wav is not a folder"]),
        (["--json", "/sys/t.json"], ["cannot write /sys/t.json: Permission denied"]),
        (["--txt", "a.out", "--srt", "a.out"], ["--txt and --srt both name a.out"]),
        (["--txt", "dialogue.wav"], ["--txt dialogue.wav is the audio itself"]),
    ],
    ids=["no-folder", "folder", "under-a-file", "unwritable", "twice", "the-audio"],
)
def test_unusable_output_paths_are_refused_before_upload(
    emulator, tmp_path, dialogue, args, fragments
):
    local = tmp_path / "dialogue.wav"
    local.write_bytes(dialogue.read_bytes())
    result = run_cli("transcribe", local.name, *args, server=emulator, cwd=tmp_path)
    assert_refused(result, emulator, *fragments)
    assert local.read_bytes() == dialogue.read_bytes()


def test_unwritable_working_folder_is_refused_before_upload(emulator, dialogue):
    # /sys takes no new files, for root too (permission bits would not stop root).
    result = run_cli("transcribe", dialogue, server=emulator, cwd=Path("/sys"))
    assert_refused(result, emulator, "cannot save the transcript in /sys", "--txt", "--no-save")
    result = run_cli("transcribe", dialogue, "--no-save", server=emulator, cwd=Path("/sys"))
    assert result.returncode == 0, result.stderr


# -- --id and SOURCE -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--id", "abc", "--speakers", "2"], "--speakers applies to new audio"),
        (["--id", "abc", "--start", "0"], "--start applies to new audio"),
        (["--id", "abc", "--language", "fr"], "--language applies to new audio"),
    ],
)
def test_options_for_new_audio_are_refused_with_id(emulator, tmp_path, args, fragment):
    result = run_cli("transcribe", *args, server=emulator, cwd=tmp_path)
    assert_refused(result, emulator, fragment)
    assert emulator.requests() == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "one of the arguments SOURCE --id is required"),
        (["a.wav", "--id", "abc"], "not allowed with"),
        (["--id", "../upload"], "not a transcript id"),
    ],
    ids=["neither", "both", "bad-id"],
)
def test_exactly_one_of_source_and_id(emulator, tmp_path, args, fragment):
    result = run_cli("transcribe", *args, server=emulator, cwd=tmp_path)
    assert_usage_error(result, fragment)
    assert emulator.requests() == []
