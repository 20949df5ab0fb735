"""Where a recording holds speech, so that audio without a script is as honest as the service.

AssemblyAI transcribes what is said: silence, a tone or steady noise gives no words. The
emulator has no recogniser, so it finds the stretches that sound like speech and lays its
placeholder words there only (see `scripts`). One ffmpeg pass decodes the audio to 16 kHz
mono and cuts it into 32 ms frames (512 samples):

- `silencedetect` (no sample above -50 dBFS for 0.4 s) splits the file into sound regions;
  quiet hiss below that level is silence.
- Each region, in blocks of about 4 s, is speech when its frames look like speech, which
  a steady tone or noise does not. Per frame, `astats` gives the RMS level and the
  zero-crossing rate and `aspectralstats` the spectral flatness (0 for a pure tone, near
  1 for white noise). Over the frames above -50 dBFS a block must show all of:

  - harmonic frames: at least 35 % with flatness in 0.02..0.5 (a voice's harmonics with
    some breath), which rules out pure tones, chords, sweeps, beeps and white/pink noise;
  - syllables: the level (frames under the gate count as -60 dB) varies with a standard
    deviation of at least 3 dB, which rules out a steady buzz or hum;
  - voiced and unvoiced sounds taking turns: the standard deviation of log10(flatness)
    and of log10(zero-crossing rate) each at least 0.12, which rules out noise or a
    buzzer that is only switched on and off.

Measured with this module's code on 16 kHz files made with espeak-ng, sox and ffmpeg.
Speech: five espeak-ng voices (en-us+m3, en-gb+f3, en-us+f2, de, fr), the tests' two-voice
dialogue as WAV, MP3, Ogg/Opus, M4A and WebM, and the same speech 20 dB quieter, with hiss,
with pink noise at 20 and 10 dB SNR, with brown noise and with a 50 Hz hum. Every block
passed, the lowest values being a harmonic share of 0.44, a level deviation of 3.6 dB, a
flatness spread of 0.16 and a crossing spread of 0.18 (the noisiest mixes). Every block
of the non-speech files failed, on these tests:

| non-speech sample                                            | fails               |
| ------------------------------------------------------------ | ------------------- |
| sines at 300/440/1000 Hz, a chord, white noise, pink noise   | all four            |
| a 200-4000 Hz sweep                                          | harmonic, level     |
| a sine with 4 Hz tremolo; DTMF                               | harmonic, crossing  |
| beeps, 0.3 s on and 0.3 s off                                | harmonic (crossing  |
|                                                              | spread 0.12-0.15)   |
| pink noise pulsed at 3-4 Hz                                  | harmonic, flatness  |
| a steady square wave                                         | level, crossing     |
| steady brown noise                                           | level, flatness     |
| the square wave pulsed at 4 Hz                               | crossing (0.03)     |
| brown noise pulsed at 4 Hz                                   | flatness (0.07)     |

The harmonic share of non-speech was at most 0.25 (DTMF) and the level deviation of
steady sounds at most 2.0 dB. Digital silence and hiss peaking under -50 dBFS have no
sound region at all (white noise here peaked at -6 to -34 dBFS).

Analysis costs about 5 s of CPU per hour of audio (ffmpeg's astats and aspectralstats).
A VAD library such as webrtcvad-wheels was not tried: it would be a new dependency, still
needs ffmpeg to decode compressed audio, and these four measures already separate every
sample above.

Without ffmpeg (or if this ffmpeg cannot run the filters, which need ffmpeg 5.1), the
answer is None, "unknown", and the emulator falls back to its old behaviour: placeholder
words over the whole duration. The tests always have ffmpeg.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
GATE_DB = -50.0  # silencedetect threshold, and the level a frame must pass to count
FLOOR_DB = GATE_DB - 10  # frames under the gate count at this level for the deviation
MIN_SILENCE = 0.4  # seconds below the gate that make a pause between regions
BLOCK_SECONDS = 4.0
MIN_ACTIVE_FRAMES = 5  # 160 ms of sound: less is a click, not a word

HARMONIC_FLATNESS = (0.02, 0.5)
MIN_HARMONIC_SHARE = 0.35
MIN_LEVEL_DEVIATION = 3.0  # dB
MIN_FLATNESS_SPREAD = 0.12  # standard deviation of log10(flatness)
MIN_CROSSING_SPREAD = 0.12  # standard deviation of log10(zero-crossing rate)

# aspectralstats prints 13 measures per frame and ffmpeg 5.1 cannot choose them: drop the
# unused ones before printing, which keeps the output to four short lines a frame.
_UNUSED_SPECTRAL = (
    "mean variance centroid spread skewness kurtosis entropy crest flux slope decrease rolloff"
)
_KEY_PREFIX = "lavfi."


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the recording, in milliseconds."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class BlockStats:
    """What one block of a sound region measured (see the module docstring)."""

    active_frames: int
    harmonic_share: float
    level_deviation: float
    flatness_spread: float
    crossing_spread: float

    @property
    def is_speech(self) -> bool:
        return (
            self.active_frames >= MIN_ACTIVE_FRAMES
            and self.harmonic_share >= MIN_HARMONIC_SHARE
            and self.level_deviation >= MIN_LEVEL_DEVIATION
            and self.flatness_spread >= MIN_FLATNESS_SPREAD
            and self.crossing_spread >= MIN_CROSSING_SPREAD
        )


@dataclass(slots=True)
class Analysis:
    """ffmpeg's per-frame measures and silencedetect's marks for one file."""

    times: array[float]  # frame start, seconds
    levels: array[float]  # RMS level, dBFS (-inf for digital silence)
    crossings: array[float]  # zero-crossing rate, crossings per sample
    flatness: array[float]
    silence_starts: list[float]
    silence_ends: list[float]

    @property
    def end(self) -> float:
        return self.times[-1] + FRAME_SECONDS if self.times else 0.0

    def regions(self) -> list[tuple[float, float]]:
        """Sound regions (seconds): everything silencedetect did not call silence."""
        found: list[tuple[float, float]] = []
        cursor = 0.0
        ends = iter(sorted(self.silence_ends))
        for start in sorted(self.silence_starts):
            if start > cursor:
                found.append((cursor, start))
            # Silence that lasts to the end of the file has no end mark.
            cursor = next((e for e in ends if e >= start), math.inf)
        if cursor < self.end:
            found.append((cursor, self.end))
        return found

    def blocks(self) -> Iterable[tuple[range, BlockStats]]:
        """Each sound region cut into blocks of about BLOCK_SECONDS: frames and measures."""
        index = 0
        for start, end in self.regions():
            count = max(1, round((end - start) / BLOCK_SECONDS))
            width = (end - start) / count
            for n in range(count):
                low, high = start + n * width, start + (n + 1) * width
                while index < len(self.times) and self.times[index] < low:
                    index += 1
                first = index
                while index < len(self.times) and self.times[index] < high:
                    index += 1
                frames = range(first, index)
                yield frames, self._measure(frames)

    def _measure(self, frames: range) -> BlockStats:
        levels = [max(self.levels[i], FLOOR_DB) for i in frames]
        active = [i for i in frames if self.levels[i] > GATE_DB]
        if len(active) < 2:
            return BlockStats(len(active), 0.0, 0.0, 0.0, 0.0)
        flat = [self.flatness[i] for i in active]
        low, high = HARMONIC_FLATNESS
        return BlockStats(
            active_frames=len(active),
            harmonic_share=sum(1 for f in flat if low <= f <= high) / len(active),
            level_deviation=statistics.pstdev(levels),
            flatness_spread=_log_spread(flat, 1e-6),
            crossing_spread=_log_spread([self.crossings[i] for i in active], 1e-4),
        )

    def speech(self) -> tuple[Span, ...]:
        """The speech spans, adjacent speech blocks joined, trimmed to frames with sound."""
        spans: list[Span] = []
        for frames, stats in self.blocks():
            if not stats.is_speech:
                continue
            sounding = [i for i in frames if self.levels[i] > GATE_DB]
            start = round(self.times[sounding[0]] * 1000)
            end = round((self.times[sounding[-1]] + FRAME_SECONDS) * 1000)
            if spans and start - spans[-1].end <= MIN_SILENCE * 1000:
                spans[-1] = Span(spans[-1].start, end)
            else:
                spans.append(Span(start, end))
        return tuple(spans)


def _log_spread(values: Sequence[float], floor: float) -> float:
    logs = [math.log10(v if math.isfinite(v) and v > floor else floor) for v in values]
    return statistics.pstdev(logs)


def filter_graph() -> str:
    drop = ",".join(
        f"ametadata=mode=delete:key=lavfi.aspectralstats.1.{name}"
        for name in _UNUSED_SPECTRAL.split()
    )
    return (
        f"aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,"
        f"asetnsamples=n={FRAME_SAMPLES}:p=0,"
        f"silencedetect=noise={GATE_DB:g}dB:d={MIN_SILENCE:g},"
        "astats=metadata=1:reset=1:measure_overall=none"
        ":measure_perchannel=RMS_level+Zero_crossings_rate,"
        f"aspectralstats=win_size={FRAME_SAMPLES}:overlap=0,{drop},"
        "ametadata=mode=print:file=-"
    )


class Parser:
    """Reads the `ametadata=mode=print` output of `filter_graph()`, a line at a time."""

    def __init__(self) -> None:
        self.analysis = Analysis(array("d"), array("d"), array("d"), array("d"), [], [])
        found = self.analysis
        self._columns = {
            "astats.1.RMS_level": found.levels,
            "astats.1.Zero_crossings_rate": found.crossings,
            "aspectralstats.1.flatness": found.flatness,
        }

    def feed(self, line: str) -> None:
        found = self.analysis
        if line.startswith("frame:"):
            found.times.append(_number(line.rsplit("pts_time:", 1)[-1]))
            for column in self._columns.values():
                column.append(math.nan)
            return
        key, sep, value = line.strip().partition("=")
        if not sep or not found.times:
            return
        name = key.removeprefix(_KEY_PREFIX)
        if name in self._columns:
            self._columns[name][-1] = _number(value)
        elif name == "silence_start":
            found.silence_starts.append(max(_number(value), 0.0))
        elif name == "silence_end":
            found.silence_ends.append(_number(value))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


async def analyse(path: Path, ffmpeg: str) -> Analysis | None:
    """Run ffmpeg over `path`; None if it cannot (no audio it can read, an old ffmpeg)."""
    argv = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-map", "0:a:0", "-af", filter_graph(), "-f", "null", "-",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    parser = Parser()
    # stderr is drained alongside stdout: a full pipe would stall ffmpeg.
    errors = asyncio.ensure_future(proc.stderr.read())
    try:
        async for raw in proc.stdout:
            parser.feed(raw.decode("ascii", "replace"))
        error = await errors
        code = await proc.wait()
    finally:
        if proc.returncode is None:  # cancelled: leave no process behind
            proc.kill()
            await proc.wait()
        errors.cancel()
    if code != 0:
        logger.warning(
            "ffmpeg could not analyse the audio; placeholder words cover the whole file",
            extra={"exit_code": code, "ffmpeg_error": error.decode(errors="replace")[-300:]},
        )
        return None
    return parser.analysis


async def find_speech(path: Path, ffmpeg: str | None) -> tuple[Span, ...] | None:
    """Where `path` holds speech (milliseconds); None when that cannot be told."""
    if ffmpeg is None:
        return None
    analysis = await analyse(path, ffmpeg)
    return None if analysis is None else analysis.speech()
