"""The job engine: intake -> submit -> wait (webhook or poll) -> render -> deliver; resume.

    worker.py    the loop: claim due jobs under a lease, renew it, run each job's next
                 step in a tracked task, two-phase stop, `run_until_idle()` for tests
    steps.py     the steps themselves, as functions of a job: submit (with the upload),
                 poll, deliver
    feedback.py  what the thread sees meanwhile: the ⏳ reaction, the status message

Every step of a job runs under a lease taken from the store, so one replica (and one task)
works on a job at a time, and a job whose holder died is picked up when its lease runs
out. Each step ends in a compare-and-set state change, or raises a `JobOutcome`
(bot/errors.py: Retry, Fail, Lost) that the worker turns into the job's next state, so a
restart at any point continues from the last recorded state. Delivery records every
posted message id before the job becomes `delivered`, so a crash mid-delivery resumes
without posting twice.
"""

from bot.engine.steps import WEBHOOK_HEADER
from bot.engine.worker import Engine, EngineConfig, IntakeOutcome, Lifecycle

__all__ = ["WEBHOOK_HEADER", "Engine", "EngineConfig", "IntakeOutcome", "Lifecycle"]
