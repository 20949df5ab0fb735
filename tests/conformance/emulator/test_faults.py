"""Fault injection: queued faults by path, rates from a seeded generator, drops and
delays, the request log, and the control endpoints themselves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator import FaultConfig
from tests.helpers import openapi_schema
from tests.helpers.emulator_server import FAST, EmulatorServer, start_emulator


def client_for(server: EmulatorServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"authorization": server.api_key}, timeout=10
    )


def test_queued_faults_apply_in_order_to_matching_paths(emulator: EmulatorServer) -> None:
    emulator.inject(
        {"status": 429, "retry_after": 3, "path": "/v2/transcript"},
        {"status": 500},
        {"status": 503, "path": "/v2/upload"},
    )
    with client_for(emulator) as api:
        upload = api.post("/v2/upload", content=b"abc")  # first match for "/": the 500
        listing = api.get("/v2/transcript")  # the 429
        upload_again = api.post("/v2/upload", content=b"abc")  # the 503
        fine = api.get("/v2/transcript")
    assert (upload.status_code, upload.json()) == (500, {"error": "Internal Server Error"})
    assert listing.status_code == 429 and listing.headers["Retry-After"] == "3"
    assert listing.json() == {"error": "Too Many Requests"}
    for body in (upload.json(), listing.json()):
        openapi_schema.validate("Error", body)
    assert upload_again.status_code == 503 and upload_again.content == b""
    assert fine.status_code == 200
    openapi_schema.validate("TranscriptList", fine.json())
    assert emulator.requests() == [
        {"method": "POST", "path": "/v2/upload", "status": 500, "fault": "status"},
        {"method": "GET", "path": "/v2/transcript", "status": 429, "fault": "status"},
        {"method": "POST", "path": "/v2/upload", "status": 503, "fault": "status"},
        {"method": "GET", "path": "/v2/transcript", "status": 200},
    ]


def test_a_drop_closes_the_connection_unanswered(emulator: EmulatorServer) -> None:
    emulator.inject({"drop": True})
    with client_for(emulator) as api:
        with pytest.raises(httpx.RemoteProtocolError):
            api.get("/v2/transcript")
        assert api.get("/v2/transcript").status_code == 200
    assert [r["status"] for r in emulator.requests()] == [None, 200]


def test_a_delay_slows_one_request(emulator: EmulatorServer) -> None:
    emulator.inject({"delay": 0.4, "path": "/v2/transcript"})
    with client_for(emulator) as api:
        started = time.monotonic()
        slow = api.get("/v2/transcript")
        middle = time.monotonic()
        fast = api.get("/v2/transcript")
        ended = time.monotonic()
    assert slow.status_code == fast.status_code == 200
    assert middle - started >= 0.4 > ended - middle


def statuses(server: EmulatorServer, count: int) -> list[int]:
    with client_for(server) as api:
        return [api.get("/v2/transcript").status_code for _ in range(count)]


def test_rates_are_reproducible_with_a_seed(emulator: EmulatorServer) -> None:
    state = emulator.set_faults(rates={"500": 0.3, "429": 0.2}, seed=7)
    assert state["rates"]["500"] == 0.3 and state["seed"] == 7
    first = statuses(emulator, 40)
    emulator.set_faults(seed=7)  # same rates, generator restarted
    second = statuses(emulator, 40)
    assert first == second
    assert {200, 429, 500} == set(first)
    emulator.clear_faults()
    assert set(statuses(emulator, 10)) == {200}


def test_rates_from_the_config(tmp_path: Path) -> None:
    faults = FaultConfig(rate_503=1.0)
    with start_emulator(tmp_path, faults=faults, **FAST) as server:
        assert set(statuses(server, 5)) == {503}
        server.clear_faults()
        assert set(statuses(server, 2)) == {200}


def test_slow_rate_delays_then_serves(tmp_path: Path) -> None:
    faults = FaultConfig(rate_slow=1.0, slow_seconds=0.2)
    with start_emulator(tmp_path, faults=faults, **FAST) as server:
        started = time.monotonic()
        assert statuses(server, 2) == [200, 200]
        assert time.monotonic() - started >= 0.4


def test_control_endpoints_are_not_faulted_nor_logged(emulator: EmulatorServer) -> None:
    emulator.set_faults(rates={"500": 1.0})
    assert emulator.requests() == []  # GET /_emulator/requests itself is not faulted
    emulator.clear_faults()
    emulator.clear_requests()
    assert emulator.requests() == []


@pytest.mark.parametrize(
    "body",
    [
        {"queue": [{"status": 200}]},
        {"queue": [{"status": 500, "drop": True}]},
        {"queue": [{}]},
        {"queue": [{"delay": -1}]},
        {"queue": [{"status": 429, "path": "v2"}]},
        {"queue": [{"status": 429, "colour": "red"}]},
        {"queue": "429"},
        {"rates": {"500": 2}},
        {"rates": {"500": 0.7, "503": 0.7}},
        {"rates": {"418": 0.1}},
        {"seed": "seven"},
    ],
)
def test_bad_fault_requests_get_400(emulator: EmulatorServer, body: dict[str, Any]) -> None:
    with client_for(emulator) as api:
        response = api.post("/_emulator/faults", json=body)
        state = api.get("/_emulator/faults").json()
    assert response.status_code == 400
    openapi_schema.validate("Error", response.json())
    assert state["queue"] == [] and set(state["rates"].values()) == {0.0}
