"""Sending from the console: ``payrun.run_batch``, the call ``batchpay run`` makes (journal,
locks, stop rules, repeat window, limits, approvals), in a worker thread of its own, since it
runs its own event loop (``asyncio.run``) and must not block the server's. One send per batch
at a time in this process; the journal's batch lock guards against other processes.

What the page shows while it runs (rows done, outcomes so far) is kept here in memory; what
happened is the journal's. A server stopped mid-send leaves the batch ``sending`` or
``stopped`` in the journal with its rows truthful; Send resumes it (``run_batch`` does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Gateway, SendOptions
from ..errors import BatchpayError
from ..gateway.dispatch import Progress
from ..payrun import Confirmation, RunRequest, run_batch
from ..team.audit import Actor

log = logging.getLogger("batchpay.web")

ALREADY_SENDING = "batch {batch} is being sent already (by {who}): watch its progress here"
FAILED = "the send of batch {batch} failed: {error}"
PATHS = ("journal", "source", "result_file")
SHUTDOWN = "the console was stopped: the rows not sent are still pending; Send resumes the batch"


@dataclass
class SendJob:
    batch: str
    by: str
    total: int = 0  # rows this send sends
    done: int = 0
    running: bool = True
    error: str = ""
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None  # the run's summary once it ends

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "running": self.running, "rows": self.total,
                "done": self.done, "error": self.error, "notes": self.notes[-20:],
                "summary": self.summary}  # fmt: skip


@dataclass(frozen=True)
class SendSetup:
    """What every send of this server shares: the journal, the gateway, the settings."""

    journal: Path
    gateway: Gateway
    env: Mapping[str, str]
    mobile_pattern: str
    options: SendOptions = field(default_factory=SendOptions)


class Senders:
    def __init__(self, setup: SendSetup) -> None:
        self.setup = setup
        self._lock = threading.Lock()
        self._jobs: dict[str, SendJob] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stopping = threading.Event()

    def job(self, batch: str) -> SendJob | None:
        with self._lock:
            return self._jobs.get(batch)

    def start(self, batch: str, source: Path, output: Path, sender: Actor) -> str:
        """Start sending ``batch`` (its file ``source``); '' when started, else why not."""
        with self._lock:
            if self._stopping.is_set():
                return SHUTDOWN
            running = self._jobs.get(batch)
            if running is not None and running.running:
                return ALREADY_SENDING.format(batch=batch, who=running.by)
            job = SendJob(batch, sender.name)
            self._jobs[batch] = job
            request = RunRequest(
                file=source, output=output, journal=self.setup.journal,
                options=self.setup.options, config=self.setup.gateway,
                mobile_pattern=self.setup.mobile_pattern, policy_env=self.setup.env,
                sender=sender, stop=self._stop_reason,
            )  # fmt: skip
            thread = threading.Thread(target=self._run, args=(job, request),
                                      name=f"send-{batch[:12]}", daemon=True)  # fmt: skip
            self._threads[batch] = thread
            thread.start()
        return ""

    def _run(self, job: SendJob, request: RunRequest) -> None:
        def confirm(confirmation: Confirmation) -> None:
            # The person confirmed with the Send button, after seeing the count and total.
            job.total = len(confirmation.rows)

        def progress(seen: Progress) -> None:
            job.total, job.done = seen.total, seen.done

        try:
            summary = run_batch(request, confirm, job.notes.append, progress)
            # The server's own paths (journal, saved file, result) are nobody's business here.
            job.summary = {k: v for k, v in summary.as_json().items() if k not in PATHS}
            if summary.error:
                job.error = FAILED.format(batch=job.batch, error=summary.error)
        except BatchpayError as exc:
            job.error = str(exc)
        except Exception as exc:  # a worker thread has no one to raise to: say it, log it
            log.exception("the send of batch %s failed", job.batch)
            job.error = FAILED.format(batch=job.batch, error=type(exc).__name__)
        finally:
            job.running = False

    def _stop_reason(self) -> str | None:
        return SHUTDOWN if self._stopping.is_set() else None

    def stop_all(self, timeout: float = 30.0) -> None:
        """At shutdown: every running send stops before its next row (its batch ``stopped``,
        the rows not sent pending) once its requests in flight are answered."""
        self._stopping.set()
        self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)
