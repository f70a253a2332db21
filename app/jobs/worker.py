"""Running workers: `tenantry worker` (its own process), or one inside `serve` (dev default).

Each worker: a procrastinate App over psycopg 3 (its queue: SKIP LOCKED fetch, LISTEN/NOTIFY
wake-ups, heartbeats, periodic tasks), an SQLAlchemy engine for the tasks' tenant transactions
(the same app role as the API: RLS applies), and a loop that starts again the jobs of workers
that stopped sending heartbeats (killed mid-job): procrastinate detects them, we retry them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import procrastinate
import procrastinate.exceptions
from procrastinate import PsycopgConnector

from app.core.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.jobs import tasks

log = logging.getLogger("tenantry.worker")


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def make_app(settings: Settings, app_url: str) -> procrastinate.App:
    connector = PsycopgConnector(
        conninfo=_psycopg_url(app_url), min_size=1, max_size=settings.worker_concurrency + 2,
        kwargs={"application_name": "tenantry-worker"},
    )
    app = procrastinate.App(connector=connector)
    tasks.register(app)
    return app


async def recover_stalled_jobs(app: procrastinate.App, settings: Settings) -> int:
    """Retry the running jobs of workers silent for WORKER_STALLED_SECONDS (presumed dead).

    A dead worker's transaction rolled back with its connection, so the job's work (an outbox
    row still pending) is intact and running it again is safe.
    """
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.worker_stalled_seconds))
    retried = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except procrastinate.exceptions.ConnectorException:
            continue  # another worker retried it first (it is no longer "doing")
        log.warning("retried job %s (%s): its worker stopped sending heartbeats", job.id, job.task_name)
        retried += 1
    return retried


async def _recovery_loop(app: procrastinate.App, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.worker_stalled_seconds / 2)  # a schedule, not a test's timing
        try:
            await recover_stalled_jobs(app, settings)
        except Exception:  # the database away: the next round tries again
            log.exception("stalled-job recovery failed")


async def run_worker(
    settings: Settings, app_url: str, *, wait: bool = True, install_signal_handlers: bool = True,
    name: str | None = None,
) -> None:
    """Run until stopped (SIGINT/SIGTERM, or cancelled); with wait=False, until the queue is empty."""
    # Every model registered before the first flush: a worker process imports only what its tasks
    # name, and a foreign key to an unregistered table (tenants) fails the unit of work.
    if not settings.smtp_host:
        log.warning("SMTP_HOST is not set: emails are kept in the outbox (`tenantry mail list`), not sent")
    engine = create_engine(settings, app_url)
    runtime = tasks.JobRuntime(settings=settings, sessionmaker=create_sessionmaker(engine))
    jobs = make_app(settings, app_url)
    try:
        async with jobs.open_async():
            await recover_stalled_jobs(jobs, settings)
            recovery = asyncio.create_task(_recovery_loop(jobs, settings)) if wait else None
            try:
                await jobs.run_worker_async(
                    name=name or "tenantry-worker",
                    wait=wait,
                    concurrency=settings.worker_concurrency,
                    additional_context={"runtime": runtime},
                    install_signal_handlers=install_signal_handlers,
                    update_heartbeat_interval=settings.worker_stalled_seconds / 3,
                    stalled_worker_timeout=settings.worker_stalled_seconds,
                    # Finished jobs go (their outcome is on the outbox row); failed ones stay to inspect.
                    delete_jobs="successful",
                )
            finally:
                if recovery is not None:
                    recovery.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await recovery
    finally:
        await engine.dispose()


class InProcessWorker:
    """A worker task on the API's event loop (dev `serve`): started and stopped by the lifespan."""

    def __init__(self, settings: Settings, app_url: str):
        self.settings, self.app_url = settings, app_url
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(
            run_worker(self.settings, self.app_url, install_signal_handlers=False, name="tenantry-in-process")
        )
        self.task.add_done_callback(_log_exit)

    async def stop(self) -> None:
        if self.task is None or self.task.done():
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _log_exit(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("in-process worker stopped: %r", task.exception())
