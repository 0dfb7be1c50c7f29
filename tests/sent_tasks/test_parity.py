"""Held vs broker parity: every row of ``_parity.HELD_PARITY`` measured both ways.

"held": the message is sent under ``eager_app`` with ``sent_tasks`` and run by
``sent_tasks.run()``; "broker": the same code on ``live_worker`` (a real worker consuming
a real broker, in-memory unless ``CELERYBASE_BROKER_URL`` names one).  The measured
outcome must equal the table, which the manual renders from the same data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, chain
from celery.exceptions import Reject
from kombu.exceptions import ContentDisallowed

from pytest_celerybase.recorder.parity import HELD_PARITY, HeldScenario

PAGE = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "sent-tasks.md"
WAIT = 5.0  # bound on every wait for a worker
QUIET = 0.3  # how long a worker gets to (not) run a message it will never run


class Mode:
    """Sends and finishes a scenario's messages: held + run(), or broker + worker."""

    def __init__(self, request: pytest.FixtureRequest, held: bool) -> None:
        self.held = held
        if held:
            self.app: Celery = request.getfixturevalue("eager_app")
            self.sent = request.getfixturevalue("sent_tasks")
        else:
            self.app = request.getfixturevalue("live_worker").app

    def finish(self) -> list[Any]:
        """Held: run what was sent, return run()'s results.  Broker: the worker runs it."""
        return self.sent.run() if self.held else []

    def state_when_done(self, result: Any, ran: list[Any], *, runs: bool) -> str:
        if runs:
            result.get(timeout=WAIT, propagate=False)
        elif not self.held:
            time.sleep(QUIET)  # it had its chance to run
        state = str(result.state)
        return state if ran else f"{state}, never ran"


def run_countdown(mode: Mode) -> str:
    ran: list[float] = []

    @mode.app.task(name="parity.stamp")
    def stamp() -> None:
        ran.append(time.time())

    result = stamp.apply_async(countdown=0.5)
    eta = time.time() + 0.5
    mode.finish()
    result.get(timeout=WAIT)
    return "ran after its eta" if ran[0] >= eta - 0.05 else "ran before its eta"


def run_unconsumed_queue(mode: Mode) -> str:
    ran: list[int] = []

    @mode.app.task(name="parity.elsewhere")
    def elsewhere() -> None:
        ran.append(1)

    result = elsewhere.apply_async(queue="elsewhere")
    mode.finish()
    try:
        return mode.state_when_done(result, ran, runs=mode.held)
    finally:
        if not mode.held:  # the broker keeps the message: drop it
            with mode.app.connection_for_write() as conn:
                conn.default_channel.queue_purge("elsewhere")


def run_reject_requeue(mode: Mode) -> str:
    ran: list[int] = []

    @mode.app.task(name="parity.picky", acks_late=True)
    def picky() -> str:
        ran.append(1)
        if len(ran) == 1:
            raise Reject("not now", requeue=True)
        return "ok"

    result = picky.delay()
    outcomes = mode.finish()
    if mode.held:
        state = outcomes[0].state  # nothing is stored for a rejected message
    else:
        result.get(timeout=WAIT)
        state = result.state
    return f"{state}, ran {len(ran)} time{'s' if len(ran) > 1 else ''}"


def run_refused_serializer(mode: Mode) -> str:
    ran: list[int] = []

    @mode.app.task(name="parity.pickled", serializer="pickle")
    def pickled() -> None:
        ran.append(1)

    result = pickled.delay()
    try:
        mode.finish()
    except ContentDisallowed:
        return "`run()` raises ContentDisallowed"
    return mode.state_when_done(result, ran, runs=False)


def run_expired(mode: Mode) -> str:
    ran: list[int] = []

    @mode.app.task(name="parity.late")
    def late() -> None:
        ran.append(1)

    past = datetime.now(timezone.utc) - timedelta(seconds=10)
    result = late.apply_async(expires=past)
    mode.finish()
    deadline = time.monotonic() + WAIT
    while result.state != "REVOKED" and time.monotonic() < deadline:
        time.sleep(0.01)
    return mode.state_when_done(result, ran, runs=False)


def run_chain_and_link(mode: Mode) -> str:
    ran: list[str] = []

    @mode.app.task(name="parity.add")
    def add(x: int, y: int) -> int:
        ran.append("add")
        return x + y

    @mode.app.task(name="parity.done")
    def done(value: int) -> None:
        ran.append("done")

    result = chain(add.s(1, 1), add.s(10), add.s(100)).apply_async(link=done.s())
    mode.finish()
    value = result.get(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while len(ran) < 4 and time.monotonic() < deadline:  # the callback runs after
        time.sleep(0.01)
    return f"{result.state}: {value!r}, {len(ran)} tasks ran"


RUNNERS: dict[str, Callable[[Mode], str]] = {
    "countdown": run_countdown,
    "unconsumed_queue": run_unconsumed_queue,
    "reject_requeue": run_reject_requeue,
    "refused_serializer": run_refused_serializer,
    "expired": run_expired,
    "chain_and_link": run_chain_and_link,
}


@pytest.mark.parametrize("mode", ["held", "broker"])
@pytest.mark.parametrize("scenario", HELD_PARITY, ids=[s.key for s in HELD_PARITY])
def test_held_parity(scenario: HeldScenario, mode: str, request: pytest.FixtureRequest) -> None:
    measured = RUNNERS[scenario.key](Mode(request, held=mode == "held"))
    expected = scenario.held if mode == "held" else scenario.broker
    assert measured == expected, (
        f"{scenario.title!r} ({mode}) measured {measured!r}, but the held parity table "
        f"(pytest_celerybase/_parity.py) says {expected!r}"
    )


def test_every_held_scenario_has_a_runner() -> None:
    assert sorted(RUNNERS) == sorted(s.key for s in HELD_PARITY)
    assert len({s.title for s in HELD_PARITY}) == len(HELD_PARITY)


def test_the_manual_shows_the_measured_table() -> None:
    # The directive renders HELD_PARITY (docs/_ext/celerybase_docs.py) when the manual is
    # built: the page shows exactly what these tests measured.
    assert "```{celerybase-held-parity}\n```" in PAGE.read_text(encoding="utf-8")
