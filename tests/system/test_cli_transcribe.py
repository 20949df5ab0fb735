"""`threadscribe transcribe` end to end: the real command in a subprocess, the emulator on a
real socket, real audio made by espeak-ng and encoded by ffmpeg."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest

from bot.render import NO_SPEECH
from emulator.processing import NO_SPOKEN_AUDIO
from tests.helpers.audio import make_tone
from tests.helpers.cli import assert_one_line_error, run_cli, spent
from tests.helpers.emulator_server import EmulatorServer
from tests.helpers.silence import HEADER, UNDETECTED, silent_mp3


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "m4a"])
def test_two_speaker_recording_prints_the_script_with_labels_and_summary(
    emulator, audio_library, tmp_path, fmt
):
    sample = audio_library.dialogue(fmt, scripts_dir=emulator.scripts_dir)
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(
        "transcribe",
        sample.path,
        "--speakers",
        "2",
        "--txt",
        out / "t.txt",
        "--srt",
        out / "t.srt",
        "--vtt",
        out / "t.vtt",
        "--json",
        out / "t.json",
        server=emulator,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    spoken = [line for line in lines if re.match(r"^Speaker [AB] \[\d\d:\d\d\]: ", line)]
    assert [re.sub(r"\[\d\d:\d\d\]", "[]", line) for line in spoken] == [
        f"Speaker {u['speaker']} []: {u['text']}" for u in sample.script["utterances"]
    ]
    # Timestamps follow the audio: increasing, and within its duration.
    stamps = [re.search(r"\[(\d\d):(\d\d)\]", line).groups() for line in spoken]
    seconds = [int(m) * 60 + int(s) for m, s in stamps]
    assert seconds == sorted(seconds) and seconds[-1] <= sample.duration
    # The speaker summary: one line per speaker with talk time, share, words and turns.
    for speaker in ("A", "B"):
        summary = [line for line in lines if line.startswith(f"Speaker {speaker} ") and "%" in line]
        assert len(summary) == 1, result.stdout
        assert re.search(r"\d+:\d\d", summary[0]) and "words" in summary[0]
        assert "2 turns" in summary[0]
    # Progress went to stderr, not stdout.
    assert "Uploading" in result.stderr and "Uploading" not in result.stdout

    txt = (out / "t.txt").read_text()
    for utterance in sample.script["utterances"]:
        assert utterance["text"] in txt
    assert json.loads((out / "t.json").read_text())["status"] == "completed"
    assert (out / "t.srt").read_text().startswith("1\n")
    assert (out / "t.vtt").read_text().startswith("WEBVTT")


def test_url_source_is_passed_through(emulator, audio_library, tmp_path, media_server):
    sample = audio_library.dialogue("mp3", scripts_dir=emulator.scripts_dir)
    url = media_server(sample.path)
    result = run_cli("transcribe", url, server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sample.script["utterances"][1]["text"] in result.stdout
    assert "Uploading" not in result.stderr
    uploads = [r for r in emulator.requests() if r["path"] == "/v2/upload"]
    assert uploads == []


def test_language_and_no_speaker_labels(emulator, audio_library, tmp_path):
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    result = run_cli(
        "transcribe",
        sample.path,
        "--no-speaker-labels",
        "--language",
        "en",
        server=emulator,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Speaker A [" not in result.stdout
    for utterance in sample.script["utterances"]:
        assert utterance["text"] in result.stdout


def test_ai_summary(emulator, audio_library, tmp_path):
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    result = run_cli("transcribe", sample.path, "--ai-summary", server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Summary" in result.stdout


# -- a recording without speech (tests/component/test_silence_delivery.py for the bot) -----


@pytest.fixture(scope="module")
def silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return silent_mp3(tmp_path_factory.mktemp("silence"))


def test_silence_with_a_language_prints_no_speech(
    emulator: EmulatorServer, silence: Path, tmp_path: Path
) -> None:
    result = run_cli("transcribe", silence, "--language", "en", server=emulator, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{HEADER}\n\n{NO_SPEECH}\n"


def test_silence_prints_no_speech(emulator: EmulatorServer, silence: Path, tmp_path: Path) -> None:
    result = run_cli("transcribe", silence, server=emulator, cwd=tmp_path)
    assert NO_SPOKEN_AUDIO not in result.stderr
    assert result.returncode == 0, result.stderr
    # The progress line ends as a transcript of nothing, not a failure.
    assert "Failed" not in result.stderr and "Transcribed" in result.stderr, result.stderr
    assert result.stdout == f"{UNDETECTED}\n\n{NO_SPEECH}\n"


# -- bad input: one clear line, non-zero exit, no traceback ---------------------------


def test_missing_key(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    result = run_cli("transcribe", "a.wav", cwd=tmp_path)
    assert_one_line_error(result, "ASSEMBLYAI_API_KEY")


def test_key_from_dotenv_file(emulator, audio_library, tmp_path):
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    (tmp_path / ".env").write_text(
        f"ASSEMBLYAI_API_KEY={emulator.api_key}\nASSEMBLYAI_BASE_URL={emulator.base_url}\n"
    )
    result = run_cli("transcribe", sample.path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_wrong_key(emulator, audio_library, tmp_path):
    sample = audio_library.dialogue("wav", scripts_dir=emulator.scripts_dir)
    result = run_cli(
        "transcribe",
        sample.path,
        server=emulator,
        cwd=tmp_path,
        env={"ASSEMBLYAI_API_KEY": "not-the-key"},
    )
    assert_one_line_error(result, "API key")
    assert "not-the-key" not in result.stderr


def test_a_wrong_key_is_found_before_a_large_upload(emulator, tmp_path):
    big = make_tone(tmp_path / "long.wav", 300.0)  # 9.6 MB: worth a check first
    emulator.clear_requests()
    result = run_cli(
        "transcribe", big, server=emulator, cwd=tmp_path, env={"ASSEMBLYAI_API_KEY": "not-the-key"}
    )
    assert_one_line_error(result, "API key")
    assert "Uploading" not in result.stderr
    assert [(r["method"], r["path"]) for r in emulator.requests()] == [("GET", "/v2/transcript")]


def _touch(path: Path) -> Path:
    path.touch()
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.wav", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _touch(d / "empty.wav"), "empty"),
    ],
    ids=["missing", "directory", "empty"],
)
def test_bad_local_source(emulator, tmp_path, make, fragment):
    target = make(tmp_path)
    result = run_cli("transcribe", target, server=emulator, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


def test_non_audio_file_is_refused_before_upload(emulator, tmp_path):
    page = tmp_path / "notes.txt"
    page.write_text("These are meeting notes, not a recording.\n" * 20)
    result = run_cli("transcribe", page, server=emulator, cwd=tmp_path)
    assert_one_line_error(result, "notes.txt does not appear to contain audio")
    assert result.returncode == 2
    assert spent(emulator) == []


def test_too_short_audio_is_refused_before_upload(emulator, tmp_path):
    tone = make_tone(tmp_path / "blip.wav", 0.1)
    result = run_cli("transcribe", tone, server=emulator, cwd=tmp_path)
    assert_one_line_error(result, "too short", "160 ms")
    assert result.returncode == 2
    assert spent(emulator) == []


def test_unreachable_url(emulator, tmp_path):
    result = run_cli(
        "transcribe", "http://127.0.0.1:9/nothing-here.mp3", server=emulator, cwd=tmp_path
    )
    assert_one_line_error(result, "Download error", "127.0.0.1:9")


def test_unreachable_assemblyai_names_the_host(tmp_path):
    make_tone(tmp_path / "a.wav", 1.0)
    result = run_cli(
        "transcribe",
        "a.wav",
        cwd=tmp_path,
        env={"ASSEMBLYAI_API_KEY": "k", "ASSEMBLYAI_BASE_URL": "http://127.0.0.1:9"},
    )
    assert_one_line_error(result, "could not connect to 127.0.0.1:9", "Connection refused")
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--start", "abc"], "--start"),
        (["--speakers", "0"], "--speakers"),
        (["--start", "10", "--end", "5"], "--end must be after --start"),
    ],
)
def test_bad_options(emulator, tmp_path, args, fragment):
    (tmp_path / "a.wav").write_bytes(b"RIFF....")
    result = run_cli("transcribe", "a.wav", *args, server=emulator, cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_version_comes_from_the_installed_distribution(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"threadscribe {metadata.version('threadscribe')}"


def test_transcribe_help_says_where_settings_come_from(tmp_path):
    result = run_cli("transcribe", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for fragment in (
        "from the environment and from a .env file in the working directory",
        "ASSEMBLYAI_API_KEY",
        "ASSEMBLYAI_BASE_URL",
        "https://api.eu.assemblyai.com",
        "MAX_FILE_MB",
        "--id ID",
        "--no-save",
    ):
        assert fragment in text, fragment


def test_run_without_a_platform_names_the_variables(tmp_path):
    result = run_cli("run", cwd=tmp_path, env={"ASSEMBLYAI_API_KEY": "k"})
    assert result.returncode == 2
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_TOKEN"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:9/a.mp3", "127.0.0.1 is not a public address"),
        ("http://[::1]/a.mp3", "::1 is not a public address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"),
        ("http://10.0.0.5/c.mp3", "10.0.0.5 is not a public address"),
        ("ftp://media.example/a.mp3", "only http:// and https:// links"),
    ],
)
def test_a_link_the_url_policy_refuses_never_reaches_assemblyai(emulator, tmp_path, url, said):
    """By default (ALLOW_PRIVATE_URLS unset) a private host is refused before anything is
    spent: AssemblyAI could not fetch it either, and the bot's rule is the same."""
    emulator.clear_requests()
    result = run_cli(
        "transcribe", url, server=emulator, cwd=tmp_path, env={"ALLOW_PRIVATE_URLS": ""}
    )
    assert_one_line_error(result, said)
    assert result.returncode == 2
    if "public address" in said:
        assert "ALLOW_PRIVATE_URLS=true allows private hosts" in result.stderr
    assert spent(emulator) == []


@pytest.mark.parametrize(
    ("command", "says"),
    [("run", "answer in the thread"), ("doctor", "it changes nothing")],
)
def test_run_and_doctor_help_say_what_they_do_and_where_settings_come_from(tmp_path, command, says):
    result = run_cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert says in text
    assert "from the environment and from a .env file in the working directory" in text
    assert ".env.example" in text
