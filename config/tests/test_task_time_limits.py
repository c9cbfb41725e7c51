"""No task outlives the broker's visibility timeout (issue 13, point 11).

Redis hands a message that has been unacknowledged for ``visibility_timeout`` to another
worker. Tasks acknowledge late, so a message stays unacknowledged while its retry
countdown runs down and while the task runs: a task that can last longer than the timeout
runs twice. ``config.celery.visibility_problems`` checks every registered task; these
tests run it over the real app and make sure it sees every task the code declares.
"""

import ast
import re
from pathlib import Path

import pytest
from celery import Celery

from config.celery import VISIBILITY_MARGIN_SECONDS, app, visibility_problems

ROOT = Path(__file__).resolve().parents[2]


def _declared_task_names() -> set[str]:
    """Every ``@shared_task(...)`` / ``@app.task(...)`` in the project's code, by name
    (module.function when it gives none)."""
    names = set()
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or parts[0] in {"var", "node_modules"}:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        # Module-level functions only: a task made inside a test is not the app's.
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                func = call.func if call else decorator
                is_task = (isinstance(func, ast.Name) and func.id == "shared_task") or (
                    isinstance(func, ast.Attribute) and func.attr == "task"
                )
                if not is_task:
                    continue
                given = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
                if given and isinstance(given[0], ast.Constant):
                    names.add(str(given[0].value))
                else:
                    names.add(f"{module}.{node.name}")
    return names


def test_every_task_the_code_declares_is_registered_and_checked():
    app.loader.import_default_modules()
    declared = _declared_task_names()
    assert len(declared) >= 15, declared  # the scan finds the tasks at all
    assert declared <= set(app.tasks), declared - set(app.tasks)
    assert "shadow.ablation_leg" in declared


@pytest.mark.reliability(
    fault="a task still running when the broker's visibility timeout redelivers it",
    expected="every registered task's hard limit plus its retry wait stays under the visibility timeout",
)
def test_no_registered_task_can_outlive_the_visibility_timeout(reliability):
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout == 900
    assert visibility_problems() == []
    leg = app.tasks["shadow.ablation_leg"]
    assert leg.time_limit + leg.retry_backoff_max + VISIBILITY_MARGIN_SECONDS <= timeout
    reliability.observed("every registered task fits under the timeout", lost=0, duplicated=0)


def test_the_check_reports_a_task_that_would_run_twice():
    probe = Celery("probe", set_as_current=False)
    probe.conf.broker_transport_options = {"visibility_timeout": 900}
    probe.conf.task_time_limit = None

    @probe.task(name="probe.long_leg", time_limit=1800, soft_time_limit=1770)
    def long_leg() -> None: ...

    @probe.task(name="probe.unlimited")
    def unlimited() -> None: ...

    @probe.task(name="probe.soft_after_hard", time_limit=100, soft_time_limit=100)
    def soft_after_hard() -> None: ...

    # 700 s of run + 180 s default retry delay + the margin: over 900 s.
    @probe.task(name="probe.slow_retry", time_limit=700, autoretry_for=(ValueError,))
    def slow_retry() -> None: ...

    @probe.task(name="probe.fine", time_limit=600, soft_time_limit=570)
    def fine() -> None: ...

    problems = "\n".join(visibility_problems(probe))
    assert re.search(r"probe\.long_leg: .*1800 s .*900 s", problems), problems
    assert "probe.unlimited: no hard time limit" in problems
    assert "probe.soft_after_hard: soft time limit 100 s is not below" in problems
    assert re.search(r"probe\.slow_retry: .*880 s", problems), problems
    assert "probe.fine" not in problems


def test_a_stopping_worker_waits_for_its_longest_task():
    """systemd's stop timeout lets the longest task finish (warm shutdown) before SIGKILL;
    a task killed mid-run would come back only after the visibility timeout."""
    app.loader.import_default_modules()
    longest = max(t.time_limit or app.conf.task_time_limit for t in app.tasks.values())
    unit = (ROOT / "deploy/systemd/signal-pipeline-worker@.service").read_text()
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE).group(1))
    assert stop > longest, (stop, longest)
