"""What raises alerts, read from the database's state on each run of ``alerts.evaluate``
(every minute), so nothing depends on a process remembering: stuck signals past their
deadline, periodic tasks failing or not running on time, a drawdown / stop-loss / daily
loss guard pausing a live book, a guard's verdict flipping between "saves money" and
"costs money", and a report being ready. (Repeated exchange errors are counted as they
happen: ``alerts.streaks``.)"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from alerts.models import Alert, WatchState
from alerts.services import raise_alert
from analytics.models import Report, TaskHeartbeat
from analytics.selectors import guard_effectiveness, stuck_signals
from signals.domain.guards import GUARDS
from signals.models import Book, GuardDecision


def pausing_guards() -> list[str]:
    """The guard kinds whose block means the book stopped trading (``pauses_trading`` on
    the guard's class)."""
    return [kind for kind, cls in GUARDS.items() if cls.pauses_trading]


FLIPS = {("saves money", "costs money"), ("costs money", "saves money")}


def _state(name: str) -> WatchState:
    state, _ = WatchState.objects.get_or_create(name=name)
    return state


def live_books() -> list[Book]:
    return list(Book.objects.filter(kind=Book.Kind.LIVE).order_by("name"))


def watch_stuck_signals(now: datetime) -> list[Alert]:
    raised = []
    for book in live_books():
        stuck = stuck_signals(book=book, now=now, limit=5)
        if not stuck:
            continue
        lines = [
            f"#{s.id} {s.state} {s.symbol} {s.timeframe} for {int(s.age.total_seconds() // 60)} min"
            for s in stuck
        ]
        raised.append(
            raise_alert(
                "stuck_signals",
                f"book:{book.name}",
                title=f"Stuck signals in book {book.name}",
                message="Signals past their state's deadline (oldest first):\n"
                + "\n".join(lines)
                + "\nThe pipeline-health page (/health/) shows them all and can re-queue them.",
                severity="warning",
            )
        )
    return raised


def next_run_after(task: Any, last_run_at: datetime) -> datetime | None:
    """When the periodic task was due next after ``last_run_at``: interval and crontab
    schedules (one-off, clocked and solar tasks are not watched)."""
    if task.one_off:
        return None
    if task.interval is not None:
        return last_run_at + task.interval.schedule.run_every
    if task.crontab is not None:
        start, delta, _ = task.crontab.schedule.remaining_delta(last_run_at)
        return start + delta
    return None


def late_grace(task: Any) -> timedelta:
    """How long past its due time a task may show no newer run before it is late: beat
    writes last-run times only every ``BEAT_SYNC_EVERY_SECONDS``, plus a margin of
    ``ALERT_TASK_LATE_MARGIN_SECONDS`` or one whole interval, whichever is longer."""
    sync = float(getattr(settings, "BEAT_SYNC_EVERY_SECONDS", 30))
    margin = float(getattr(settings, "ALERT_TASK_LATE_MARGIN_SECONDS", 120))
    every = task.interval.schedule.run_every.total_seconds() if task.interval else 0.0
    return timedelta(seconds=sync + max(margin, every))


def _schedule_text(task: Any) -> str:
    if task.interval is not None:
        return f"every {task.interval.schedule.run_every.total_seconds():.0f} s"
    return f"on crontab {task.crontab}"


def watch_periodic_tasks(now: datetime) -> list[Alert]:
    """A periodic task (interval or crontab) whose next run after its last one is overdue
    by more than ``late_grace``, or whose last run failed (its last failure is newer
    than its last success)."""
    raised = []
    tasks = PeriodicTask.objects.filter(enabled=True).select_related("interval", "crontab")
    for task in tasks:
        if task.last_run_at is None or task.name.startswith("celery."):
            continue
        due = next_run_after(task, task.last_run_at)
        if due is None or now <= due + late_grace(task):
            continue
        ago = int((now - task.last_run_at).total_seconds() // 60)
        raised.append(
            raise_alert(
                "task_late",
                task.name,
                title=f"Periodic task {task.name} is not running on time",
                message=f"{task.task} should run {_schedule_text(task)}; its last run was "
                f"{ago} min ago and the next was due at {due:%Y-%m-%d %H:%M:%S %Z}. Is "
                "celery beat running (exactly one)?",
                severity="critical",
            )
        )
    failing = TaskHeartbeat.objects.filter(last_failure_at__isnull=False).filter(
        Q(last_success_at__isnull=True) | Q(last_failure_at__gt=F("last_success_at"))
    )
    for beat in failing:
        raised.append(
            raise_alert(
                "task_failing",
                beat.task,
                title=f"Task {beat.task} is failing",
                message=f"Last failure {beat.last_failure_at:%Y-%m-%d %H:%M} UTC: "
                f"{beat.last_error or 'no message'} ({beat.failures} failure(s) in all).",
                severity="critical",
            )
        )
    return raised


def watch_trading_pauses() -> list[Alert]:
    """A drawdown, stop-loss or daily-loss guard blocking a live book's signal since the
    last run (one alert per book and guard)."""
    state = _state("trading_pauses")
    after = int(state.value.get("last_decision_id", 0))
    if "last_decision_id" not in state.value:
        # First run: start from now, do not replay the whole history as alerts.
        last = GuardDecision.objects.order_by("-id").values_list("id", flat=True).first() or 0
        state.value = {"last_decision_id": last}
        state.save()
        return []
    rows = (
        GuardDecision.objects.filter(
            id__gt=after,
            verdict=GuardDecision.Verdict.BLOCK,
            signal__book__kind=Book.Kind.LIVE,
            book_guard__kind__in=pausing_guards(),
        )
        .order_by("id")
        .values_list("id", "signal__book__name", "guard", "reason")
    )
    newest = GuardDecision.objects.order_by("-id").values_list("id", flat=True).first() or after
    seen: dict[tuple[str, str], str] = {}
    for _, book, guard, reason in rows:
        seen.setdefault((book, guard), reason)
    raised = [
        raise_alert(
            "trading_paused",
            f"{book}:{guard}",
            title=f"Guard {guard} is pausing trading in book {book}",
            message=f"{guard} blocks new signals: {reason}",
            severity="critical",
        )
        for (book, guard), reason in seen.items()
    ]
    state.value = {"last_decision_id": newest}
    state.save()
    return raised


def watch_guard_verdicts() -> list[Alert]:
    """A guard of a live book whose verdict flipped between "saves money" and "costs
    money" since the last run."""
    raised = []
    for book in live_books():
        state = _state(f"verdicts:{book.pk}")
        before: dict[str, str] = dict(state.value)
        now_verdicts = {
            effect.guard: effect.outcome.verdict for effect in guard_effectiveness(book=book)
        }
        for guard, verdict in now_verdicts.items():
            old = before.get(guard)
            if old is not None and (old, verdict) in FLIPS:
                raised.append(
                    raise_alert(
                        "verdict_changed",
                        f"{book.name}:{guard}:{verdict}",
                        title=f"Guard {guard} now {verdict} (was: {old})",
                        message=f"In book {book.name}, the 95 % interval of guard {guard}'s "
                        f"net impact moved: it {verdict} now. See /guards/?book={book.pk}.",
                        severity="warning",
                    )
                )
        state.value = now_verdicts
        state.save()
    return raised


def watch_reports() -> list[Alert]:
    state = _state("reports")
    after = int(state.value.get("last_report_id", 0))
    reports = list(Report.objects.filter(id__gt=after).select_related("book").order_by("id"))
    raised = []
    for report in reports:
        link = reverse("analytics:report-download", args=[report.pk, "html"])
        raised.append(
            raise_alert(
                "report_ready",
                f"report:{report.pk}",
                title=f"Report ready: {report.book.name}, {report.period}",
                message=f"The {report.period} report of book {report.book.name} "
                f"({report.created_by}) is ready: {link}",
                severity="info",
            )
        )
    if reports:
        state.value = {"last_report_id": reports[-1].pk}
        state.save()
    return raised


def evaluate(now: datetime) -> dict[str, int]:
    """Run every watcher; how many alerts each raised (new or repeated)."""
    return {
        "stuck_signals": len(watch_stuck_signals(now)),
        "periodic_tasks": len(watch_periodic_tasks(now)),
        "trading_pauses": len(watch_trading_pauses()),
        "guard_verdicts": len(watch_guard_verdicts()),
        "reports": len(watch_reports()),
    }
