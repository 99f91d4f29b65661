"""`gprune schedule`: regression suites on a cron schedule, with APScheduler.

One job per suite; a run never overlaps the previous one (max_instances=1; a run that comes due while
one is going is skipped, not queued: coalesce), a run that crashes is recorded in MLflow as a run with
verdict "crashed: ..." and the schedule carries on; the next run time is printed after every run.
"""

import time
import traceback

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from .tags import VERDICT


def record_crash(suite, error: BaseException) -> None:
    """A run that could not even finish is still a run of the suite: logged, tagged, FAILED."""
    from .regress import suite_logger

    logger = suite_logger(suite)
    run_id = logger.open("crashed", {VERDICT: f"crashed: {type(error).__name__}: {error}"})
    logger.log_text(run_id, "".join(traceback.format_exception(error)), "traceback.txt")
    logger.close(run_id, "FAILED")


def build_scheduler(job, trigger, printer=print) -> BlockingScheduler:
    """A scheduler running `job()` on `trigger`: never two at once, failures reported, next run printed."""
    scheduler = BlockingScheduler()
    scheduled = scheduler.add_job(job, trigger, max_instances=1, coalesce=True, misfire_grace_time=None,
                                  id="suite")

    def report(event):
        if event.code == EVENT_JOB_MAX_INSTANCES:
            printer("skipped: the previous run is still going")
        elif event.exception is not None:
            printer(f"run failed ({type(event.exception).__name__}: {event.exception}); the schedule carries on")
        printer(f"next run: {scheduled.next_run_time}", flush=True)

    scheduler.add_listener(report, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def schedule_suite(path: str, cron: str, printer=print) -> None:
    from pathlib import Path

    from .regress import load_suite, read_reference, run_suite

    suite = load_suite(path)  # a bad suite, a missing reference or a cron line that never fires fail now, not at 3 am
    read_reference(Path(suite.reference))
    try:
        trigger = CronTrigger.from_crontab(cron)
    except ValueError as error:
        raise ValueError(f"--cron {cron!r}: {error} (five fields: minute hour day month weekday)") from None
    if trigger.get_next_fire_time(None, _now(trigger)) is None:
        raise ValueError(f"--cron {cron!r} never fires (no such date); e.g. \"0 3 * * *\" runs at 03:00 every day")

    def job():
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        printer(f"[{started}] running suite {suite.name}", flush=True)
        try:
            outcome = run_suite(load_suite(path), printer=printer)
        except Exception as error:
            record_crash(suite, error)
            raise
        printer(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {outcome.reason}", flush=True)

    scheduler = build_scheduler(job, trigger, printer)
    printer(f"suite {suite.name} on {cron!r}; first run: {trigger.get_next_fire_time(None, _now(trigger))}",
            flush=True)
    scheduler.start()


def _now(trigger):
    from datetime import datetime

    return datetime.now(trigger.timezone)
