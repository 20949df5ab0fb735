"""Named speakers, the structured summary, a channel's vocabulary, Rename and Redo, in
the engine: the real store (SQLite), the real client, the emulator on a socket, the core
(bot/intake.py, bot/revisions.py) and the recording platform. Every job is delivered
exactly once; a redo replaces the result it redoes, or, when it fails, leaves it alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot import assemblyai as aai
from bot.chat import ChannelRef, JobRef, Person, RenameForm
from bot.config import Secret
from bot.engine import Engine, EngineConfig
from bot.intake import Intake
from bot.jobs import DeliveryStep, Job, JobState, JobStore, Platform
from bot.urls import UrlPolicy
from tests.fakes.recording import RecordingPlatform, url_intake
from tests.helpers.audio import AudioSample
from tests.helpers.emulator_server import AudioLibrary, EmulatorServer
from tests.helpers.engine import FAST_ENGINE, fast_polls
from tests.helpers.meeting import write_meeting

FAST = aai.RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
WHERE = ChannelRef(Platform.SLACK, "T1", "C1")


def config(**overrides: object) -> EngineConfig:
    """The tests' fast engine (tests/helpers/engine.py), with a longer lease."""
    return replace(FAST_ENGINE, lease=10.0, **overrides)  # type: ignore[arg-type]


class Harness:
    def __init__(
        self,
        engine: Engine,
        core: Intake,
        platform: RecordingPlatform,
        emulator: EmulatorServer,
        client: aai.AssemblyAIClient,
    ) -> None:
        self.engine, self.core, self.platform = engine, core, platform
        self.emulator, self.client = emulator, client
        self.store = engine.store

    async def drain(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            await self.engine.run_until_idle()

    async def job(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        assert job is not None
        return job

    async def submitted(self, transcript_id: str) -> dict[str, Any]:
        """What the emulator has for a transcript (its request echoed)."""
        return dict((await self.client.get(transcript_id)).raw)

    def ref(self, job_id: str) -> JobRef:
        return JobRef(Platform.SLACK, "T1", "C1", job_id)

    def chat_calls(self) -> int:
        return len([r for r in self.emulator.requests() if r["path"] == "/v1/chat/completions"])

    def submissions(self) -> int:
        return len(
            [
                r
                for r in self.emulator.requests()
                if r["path"] == "/v2/transcript" and r["method"] == "POST"
            ]
        )


@contextlib.asynccontextmanager
async def make_harness(
    tmp_path: Path, emulator: EmulatorServer, **overrides: object
) -> AsyncIterator[Harness]:
    store = await JobStore.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    client = aai.AssemblyAIClient(
        Secret(emulator.api_key),
        base_url=emulator.base_url,
        llm_base_url=emulator.base_url,
        retry=FAST,
        timeouts=aai.Timeouts(llm=float(overrides.pop("llm_timeout", 10.0))),  # type: ignore[arg-type]
    )
    platform = RecordingPlatform()
    engine = Engine(
        store, client, {Platform.SLACK: platform}, config(**overrides), schedule=fast_polls()
    )
    core = Intake(engine, store, urls=UrlPolicy(allow_private=True))
    try:
        yield Harness(engine, core, platform, emulator, client)
    finally:
        await engine.stop()
        await core.close()
        await client.close()
        await store.close()


@pytest.fixture
async def harness(tmp_path: Path, emulator: EmulatorServer) -> AsyncIterator[Harness]:
    async with make_harness(tmp_path, emulator) as h:
        yield h


PEOPLE = [Person("U1", "Ada Lovelace", "ada"), Person("U2", "Grace Hopper", "grace")]


async def deliver(h: Harness, url: str, **kw: Any) -> Job:
    outcome = await h.engine.intake(url_intake(url, **kw))
    assert outcome.job is not None and outcome.created
    await h.drain()
    return await h.job(outcome.job.id)


# -- names and summary -----------------------------------------------------------------


async def test_known_people_come_back_as_the_speakers_names(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.platform.known = [Person("U9", "Someone Else"), *PEOPLE]
    job = await deliver(harness, media_server(meeting.path))

    assert job.state is JobState.DELIVERED and job.transcript_id is not None
    sent = (await harness.submitted(job.transcript_id))["speech_understanding"]
    assert sent["request"]["speaker_identification"] == {
        "speaker_type": "name",
        "known_values": ["Someone Else", "Ada Lovelace", "Grace Hopper"],
    }
    assert sent["response"]["speaker_identification"]["mapping"] == {
        "A": "Ada Lovelace",
        "B": "Grace Hopper",
    }
    [result] = harness.platform.results(job.id)
    assert "Ada Lovelace [00:00]: Good morning." in result.text
    assert "Grace Hopper [00:0" in result.text and "Speaker A" not in result.text
    assert job.people == (("U9", "Someone Else"), ("U1", "Ada Lovelace"), ("U2", "Grace Hopper"))
    assert job.speakers == (("Ada Lovelace", "Ada Lovelace"), ("Grace Hopper", "Grace Hopper"))


async def test_the_summary_has_points_decisions_and_action_items_with_timestamps(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.platform.known = PEOPLE
    job = await deliver(harness, media_server(meeting.path))

    [result] = harness.platform.results(job.id)
    summary = result.text.split("Summary\n", 1)[1].split("\n\nSpeakers\n", 1)[0]
    lines = summary.split("\n")
    assert lines[0] == "• Ada Lovelace [00:00]: Good morning."
    decisions = lines[lines.index("Decisions") + 1]
    assert decisions.startswith("• Great news. [00:") or decisions.startswith("• We decided")
    assert "Action items" in lines
    action = lines[lines.index("Action items") + 1]
    assert action.startswith("• Grace Hopper: I will send the figures") and action.endswith("]")
    # One structured request, with max_tokens and the schema.
    assert harness.chat_calls() == 1


async def test_names_and_summary_can_be_switched_off_per_channel(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.platform.known = PEOPLE
    for command in ("names off", "summary off"):
        answer = await harness.core.configure(WHERE, command, by="U1", admin=True)
        assert " off here" in answer
    job = await deliver(harness, media_server(meeting.path))

    assert job.transcript_id is not None
    assert "speech_understanding" not in await harness.submitted(job.transcript_id)
    [result] = harness.platform.results(job.id)
    assert "Speaker A [00:00]" in result.text and "Summary" not in result.text
    assert harness.chat_calls() == 0
    assert job.people == ()
    refused = await harness.core.configure(WHERE, "names on", by="U2", admin=False)
    assert refused.startswith("Only the people who may change")


async def test_more_than_35_people_and_long_names_fit_the_apis_limits(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    crowd = [Person(f"U{i:03}", f"Member {i}") for i in range(40)]
    long = Person("ULONG", "Ada Augusta King, Countess of Lovelace and Analyst", "ada")
    harness.platform.known = [long, *crowd, *PEOPLE]
    job = await deliver(harness, media_server(meeting.path))

    assert job.state is JobState.DELIVERED and job.transcript_id is not None
    sent = (await harness.submitted(job.transcript_id))["speech_understanding"]["request"]
    names = sent["speaker_identification"]["known_values"]
    assert len(names) == 35 and all(len(n) <= 35 for n in names)
    assert names[0] == "Ada Augusta King, Countess of"  # whole words, within 35
    [result] = harness.platform.results(job.id)
    assert "Speaker A [00:00]" in result.text  # neither named speaker made the list


async def test_a_platform_that_cannot_say_who_is_there_still_gets_its_transcript(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    from bot.errors import PlatformUnavailable

    harness.platform.fail("people", PlatformUnavailable("Slack is busy"))
    job = await deliver(harness, media_server(meeting.path))
    [result] = harness.platform.results(job.id)
    assert job.state is JobState.DELIVERED and "Speaker A [00:00]" in result.text


async def test_a_gateway_that_errors_or_times_out_still_delivers_the_transcript(
    tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample, media_server: Any
) -> None:
    async with make_harness(tmp_path, emulator, llm_timeout=0.5) as h:
        h.emulator.inject({"status": 500, "path": "/v1/chat"}, {"status": 500, "path": "/v1/chat"})
        failed = await deliver(h, media_server(meeting.path), message="1.1")
        [result] = h.platform.results(failed.id)
        assert "(Summary unavailable: Internal Server Error)" in result.text
        assert "Good morning." in result.text

        h.emulator.inject({"delay": 1.0, "path": "/v1/chat"}, {"delay": 1.0, "path": "/v1/chat"})
        slow = await deliver(h, media_server(meeting.path), message="1.2")
        [result] = h.platform.results(slow.id)
        assert "(Summary unavailable: the LLM Gateway did not answer in time)" in result.text
        assert slow.state is JobState.DELIVERED
        # The emulator answers the requests the client gave up on: let it, before it stops.
        async with asyncio.timeout(5):
            while h.chat_calls() < 4:  # noqa: ASYNC110 - its log is on another thread
                await asyncio.sleep(0.05)


async def test_an_unsure_language_suggests_the_redo(
    harness: Harness, emulator: EmulatorServer, media_server: Any, audio_library: AudioLibrary
) -> None:
    sample = audio_library.dialogue("mp3")
    write_meeting(emulator.scripts_dir, sample, language_confidence=0.41)
    job = await deliver(harness, media_server(sample.path))
    [result] = harness.platform.results(job.id)
    header, note = result.text.split("\n\n")[:2]
    assert "English (41%)" in header
    assert (
        note
        == "Not sure this is English (41% sure): if it is not, redo it with the right language."
    )


# -- long meetings ---------------------------------------------------------------------


def long_meeting(turns: int) -> list[Any]:
    from bot.conversation import Line

    said = (
        "We looked at the quarterly numbers in some detail. We decided to keep the budget. "
        "Then I will write the report for the board."
    )
    return [Line("Ada" if i % 2 else "Grace", i * 30_000, f"{i}: {said}") for i in range(turns)]


async def test_a_long_meeting_is_summarised_in_parts_then_combined(harness: Harness) -> None:
    from bot import summary

    lines = long_meeting(24)
    outcome = await summary.summarise(harness.client, lines, model="gpt-5", part_chars=1_500)
    assert isinstance(outcome, summary.Summary) and outcome.parts > 2
    assert harness.chat_calls() == outcome.parts + 1  # each part, then the combination
    assert len(outcome.points) <= 6
    assert outcome.decisions and outcome.action_items  # from every part, kept
    assert {d.at for d in outcome.decisions} >= {0, lines[-1].start}


async def test_an_answer_cut_at_max_tokens_is_asked_again_then_given_up(harness: Harness) -> None:
    from bot import summary

    # Each line becomes a point, a decision and an action item: this answer outgrows the
    # first max_tokens (cut, then asked again with more room) ...
    grown = await summary.summarise(harness.client, long_meeting(40), model="gpt-5")
    assert isinstance(grown, summary.Summary)
    assert harness.chat_calls() == 2
    # ... and this one outgrows the second too: no summary rather than a cut one.
    cut = await summary.summarise(harness.client, long_meeting(120), model="gpt-5")
    assert cut == summary.SummaryFailed(
        "the model's answer did not fit in 4,000 tokens, so no summary is shown"
    )
    too_long = await summary.summarise(
        harness.client, long_meeting(120), model="gpt-5", part_chars=500, max_parts=3
    )
    assert too_long == summary.SummaryFailed(
        "the recording is too long to summarise (40 parts; at most 3)"
    )


# -- vocabulary ------------------------------------------------------------------------


async def test_the_channels_vocabulary_is_sent_and_used(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    answer = await harness.core.configure(
        WHERE, "vocab add Kubernetes, Thessaloniki", by="U1", admin=False
    )
    assert (
        answer
        == "Added to this channel's vocabulary: Kubernetes, Thessaloniki. It has 2 keyterms now."
    )
    answer = await harness.core.configure(
        WHERE, "vocab spell figures, the figures as Numbers", by="U1", admin=False
    )
    assert answer == "Transcripts here now always write figures, the figures → Numbers."
    job = await deliver(harness, media_server(meeting.path))

    assert job.transcript_id is not None
    sent = await harness.submitted(job.transcript_id)
    assert sent["keyterms_prompt"] == ["Kubernetes", "Thessaloniki"]
    assert sent["custom_spelling"] == [{"from": ["figures", "the figures"], "to": "Numbers"}]
    [result] = harness.platform.results(job.id)
    assert "the Kubernetes migration?" in result.text and "in Thessaloniki is" in result.text
    assert "send Numbers to the board" in result.text
    listing = await harness.core.configure(WHERE, "vocab list", by="U2", admin=False)
    assert listing == (
        "Keyterms (2): Kubernetes, Thessaloniki\nAlways written: figures, the figures → Numbers"
    )


async def test_a_vocabulary_over_the_limit_is_refused_and_never_sent(
    tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample, media_server: Any
) -> None:
    async with make_harness(
        tmp_path, emulator, speech_models=("assemblyai-stt-3-7", "universal-2")
    ) as h:
        terms = ", ".join(f"term{i}" for i in range(201))
        answer = await h.core.configure(WHERE, f"vocab add {terms}", by="U1", admin=False)
        assert answer == (
            "Not added: the vocabulary would have 201 keyterms: AssemblyAI takes at most 200 "
            "with universal-2 (one of the speech models in use). Remove some first (vocab remove)."
        )
        too_long = await h.core.configure(
            WHERE, "vocab add one two three four five six seven", by="U1", admin=False
        )
        assert too_long.endswith("has 7 words: AssemblyAI takes keyterms of at most 6 words")
        # A vocabulary made for other models (stored while the deployment used STT-3 only)
        # is not sent with universal-2, and the result says so.
        await h.store.preferences.update(
            Platform.SLACK, "T1", "C1", by="U1", keyterms=[f"term{i}" for i in range(250)]
        )
        job = await deliver(h, media_server(meeting.path))
        assert job.transcript_id is not None
        assert "keyterms_prompt" not in await h.submitted(job.transcript_id)
        [result] = h.platform.results(job.id)
        assert (
            "Vocabulary not used: 250 keyterms: AssemblyAI takes at most 200 with universal-2"
            in (result.text)
        )


# -- rename ----------------------------------------------------------------------------


async def test_rename_edits_the_result_in_place_without_a_new_transcription(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.platform.known = PEOPLE
    job = await deliver(harness, media_server(meeting.path))
    form = await harness.core.rename_form(harness.ref(job.id))
    assert isinstance(form, RenameForm)
    assert [(f.key, f.speaker, f.current) for f in form.fields] == [
        ("0", "Ada Lovelace", ""),
        ("1", "Grace Hopper", ""),
    ]
    answer = await harness.core.rename(harness.ref(job.id), {"0": "Ada", "1": ""}, by="U2")
    assert answer.ok and answer.text.startswith("Renaming the speakers")
    again = await harness.core.rename(harness.ref(job.id), {"0": "Ada"}, by="U2")
    assert not again.ok and again.text.startswith("A redo of that transcript is under way")
    await harness.drain()

    [result] = harness.platform.results(job.id)  # the one message, edited
    assert "Ada [00:00]: Good morning." in result.current
    assert "Grace Hopper [00:" in result.current and "Ada Lovelace" not in result.current
    assert result.current.split("\n\n")[1] == "Redone: Speakers renamed."
    assert "• Ada [00:00]: Good morning." in result.current  # the summary follows
    assert harness.submissions() == 1  # the transcript was taken over, not made again
    assert harness.chat_calls() == 2
    [redo] = await harness.store.redos_of(job.id)
    assert redo.state is JobState.DELIVERED and redo.options.renames == {"Ada Lovelace": "Ada"}
    assert redo.step_posted(DeliveryStep.RESULT) == result.id
    assert (await harness.job(job.id)).transcript_id is None  # handed over
    assert harness.platform.statuses(redo.id) == []  # the status message is shared
    [status] = harness.platform.statuses(job.id)
    assert status.current == "✅ Transcribed (redone)"
    # A rename of the rename: its form shows the names given.
    form = await harness.core.rename_form(harness.ref(redo.id))
    assert isinstance(form, RenameForm) and form.fields[0].current == "Ada"
    too_long = await harness.core.rename(harness.ref(redo.id), {"1": "G" * 36}, by="U2")
    assert not too_long.ok and too_long.errors == {"1": "A name can have at most 35 characters."}


async def test_a_rename_is_free_even_with_the_budget_used_up(
    tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample, media_server: Any
) -> None:
    """A rename takes over the transcript it renames: nothing is reserved against the
    monthly budget (issue 12's), and nothing is billed twice in its ledger."""
    from bot.jobs import month_start

    budget = meeting.duration / 3600  # exactly the one recording
    async with make_harness(tmp_path, emulator, budget_hours=budget, budget_min_slice=1.0) as h:
        h.platform.known = PEOPLE
        job = await deliver(h, media_server(meeting.path))
        billed = job.billed_seconds
        assert billed is not None and billed > 0
        answer = await h.core.rename(h.ref(job.id), {"0": "Ada"}, by="U2")
        assert answer.ok, answer.text  # admitted with the budget used up
        await h.drain()
        [redo] = await h.store.redos_of(job.id)
        assert redo.state is JobState.DELIVERED and redo.billed_seconds == 0.0
        since = month_start(h.store.now())
        assert await h.store.usage.billed_since(Platform.SLACK, "T1", since) == billed
        # A redo that transcribes again is a new cost: refused, naming the budget.
        refused = await h.core.redo(h.ref(redo.id), "lang:de", by="U2")
        assert not refused.ok and "budget" in refused.text


async def test_the_sharers_opt_out_holds_for_a_redo_by_someone_else(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    from bot import messages

    job = await deliver(harness, media_server(meeting.path))  # shared by U1
    await harness.store.opt_outs.set(Platform.SLACK, job.sharer, True)
    refused = await harness.core.redo(harness.ref(job.id), "lang:fr", by="U2")
    assert not refused.ok and refused.text == messages.SHARER_OPTED_OUT
    renamed = await harness.core.rename(harness.ref(job.id), {"0": "Ada"}, by="U2")
    assert renamed.ok  # a rename transcribes nothing: it only changes what the thread shows
    await harness.drain()
    mine = await harness.core.redo(harness.ref(job.id), "lang:fr", by=job.sharer)
    assert mine.ok  # their own request still works
    assert harness.submissions() == 1  # nothing transcribed again before that


async def test_rename_is_refused_where_it_cannot_work(
    tmp_path: Path, emulator: EmulatorServer, meeting: AudioSample, media_server: Any
) -> None:
    async with make_harness(tmp_path, emulator, delete_after_delivery=True) as h:
        job = await deliver(h, media_server(meeting.path))
        answer = await h.core.rename_form(h.ref(job.id))
        assert not isinstance(answer, RenameForm)
        assert answer.text.startswith("Transcripts are deleted at AssemblyAI once posted here")
        elsewhere = await h.core.rename_form(JobRef(Platform.SLACK, "T1", "C2", job.id))
        assert not isinstance(elsewhere, RenameForm)
        assert elsewhere.text == "That transcript is not from this channel."
        gone = await h.core.redo(h.ref("00000000-0000-0000-0000-000000000000"), "lang:fr", by="U1")
        assert gone.text.startswith("That transcript is too old")


# -- redo --------------------------------------------------------------------------------


async def test_redo_with_another_language_is_a_new_job_that_replaces_the_result(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    job = await deliver(harness, media_server(meeting.path))
    first = await harness.core.redo(harness.ref(job.id), "lang:fr", by="U2")
    twice = await harness.core.redo(harness.ref(job.id), "lang:fr", by="U2")
    assert first.text.startswith("Redoing it with French") and first.ok
    assert not twice.ok  # a redo under way: the same click twice makes one job
    await harness.drain()

    [redo] = await harness.store.redos_of(job.id)
    assert redo.options.language_code == "fr" and redo.requester == "U2"
    assert harness.submissions() == 2  # transcribed again, in French
    [result] = harness.platform.results(job.id)
    assert (
        result.current.startswith("Transcript · 0:") and "French" in result.current.split("\n")[0]
    )
    assert result.current.split("\n\n")[1] == "Redone: French."
    assert harness.platform.results(redo.id) == []  # no second result in the thread
    same = await harness.core.redo(harness.ref(job.id), "lang:fr", by="U3")
    assert same.text == "That redo was made already: see the thread."


async def test_translation_shows_the_translated_lines_and_attaches_the_original(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.platform.known = PEOPLE
    job = await deliver(harness, media_server(meeting.path))
    answer = await harness.core.redo(harness.ref(job.id), "translate:es", by="U1")
    assert answer.text == (
        "Redoing it with a translation into Spanish: the result in the thread is replaced "
        "when it is done."
    )
    await harness.drain()

    [result] = harness.platform.results(job.id)
    header = result.current.split("\n")[0]
    assert "English (" in header and "→ Spanish" in header
    assert "Ada Lovelace [00:00]: Buenos días. ¿Empezamos?" in result.current
    original = result.files["transcript.txt"].decode()
    assert "Ada Lovelace [00:00]: Good morning. Shall we start" in original
    assert harness.submissions() == 1  # translated from the transcript there was
    understanding = [r for r in harness.emulator.requests() if r["path"] == "/v1/understanding"]
    assert [r["status"] for r in understanding] == [200]


async def test_translation_to_a_language_assemblyai_does_not_offer_is_refused(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    job = await deliver(harness, media_server(meeting.path))
    answer = await harness.core.redo(harness.ref(job.id), "translate:tt", by="U1")
    assert not answer.ok
    assert answer.text.startswith("AssemblyAI does not translate into tt (tt)")
    setting = await harness.core.configure(WHERE, "translate xx", by="U1", admin=True)
    assert setting.startswith("AssemblyAI does not translate into xx")
    assert await harness.store.redos_of(job.id) == []


async def test_a_translation_the_gateway_refuses_leaves_the_transcript_as_spoken(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.emulator.inject(*[{"status": 500, "path": "/v1/understanding"}] * 2)
    job = await deliver(harness, media_server(meeting.path), options=_translated("es"))
    [result] = harness.platform.results(job.id)
    assert "Translation unavailable (Internal Server Error): showing the transcript as spoken." in (
        result.text
    )
    assert "Good morning. Shall we start" in result.text


async def test_a_redo_of_a_failed_job_replaces_its_failure_notice(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    harness.emulator.inject(*[{"status": 400, "path": "/v2/transcript", "method": "POST"}])
    failed = await deliver(harness, media_server(meeting.path))
    [notice] = harness.platform.results(failed.id)
    assert notice.text.startswith("Sorry, I could not transcribe this")
    answer = await harness.core.redo(harness.ref(failed.id), "speakers:2", by="U1")
    assert answer.ok
    await harness.drain()
    [result] = harness.platform.results(failed.id)
    assert result.id == notice.id and result.current.startswith("Transcript · ")
    rename = await harness.core.rename_form(harness.ref(failed.id))
    assert not isinstance(rename, RenameForm)
    assert rename.text == "That transcription failed, so there are no speakers to rename: try Redo."


async def test_a_redo_that_fails_leaves_the_result_as_it_was(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    job = await deliver(harness, media_server(meeting.path))
    [result] = harness.platform.results(job.id)
    before = result.current
    harness.emulator.inject({"status": 400, "path": "/v2/transcript", "method": "POST"})
    await harness.core.redo(harness.ref(job.id), "lang:de", by="U1")
    await harness.drain()

    [redo] = await harness.store.redos_of(job.id)
    [notice] = harness.platform.results(redo.id)  # said in a reply of its own
    assert notice.text.startswith("Sorry, the redo did not work: AssemblyAI refused the request")
    assert notice.text.endswith("The result above is unchanged.")
    assert result.current == before
    [status] = harness.platform.statuses(job.id)
    assert status.current == "❌ The redo did not work: the transcript stands as it was"


async def test_asking_again_with_options_redoes_a_transcribed_message(
    harness: Harness, meeting: AudioSample, media_server: Any
) -> None:
    from bot.chat import Trigger
    from bot.intake import parse_request

    url = media_server(meeting.path)
    trigger = Trigger(Platform.SLACK, "T1", "C1", "U1", message="9.1", text=url, explicit=True)
    taken = await harness.core.take(trigger)
    assert taken.created
    await harness.drain()
    again = await harness.core.take(trigger)
    assert again.existing and not again.answers  # nothing new asked: as before
    asked = replace(trigger, options=parse_request("speakers=3 lang=de", words=True).options)
    redone = await harness.core.take(asked)
    assert redone.answers == (
        "Redoing it with German, 3 speakers: the result in the thread is replaced when it is done.",
    )
    await harness.drain()
    [redo] = await harness.store.redos_of(redone.existing_ids[0])
    assert (redo.options.language_code, redo.options.speakers_expected) == ("de", 3)


def _translated(language: str) -> Any:
    from bot.jobs import JobOptions

    return JobOptions(translate_to=language)
