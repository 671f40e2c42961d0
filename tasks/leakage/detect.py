"""Every leakage check on one table, the on_leakage policy, and the Prefect tasks.

`detect_leakage` runs the whole-table checks, each registered in tasks/registry.py with the
function that runs it (`runs`), in the registry's order, and applies the policy;
`detect_label_free_leakage` runs only those marked `label_free`. split_leakage runs after
the split (split_sharing.py), through `split_leakage_task`.
"""

import contextvars
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas.params import DataParams, LeakageParams
from retrain_guard.schemas.report import CheckResult
from retrain_guard.tasks.heap import release_freed_memory
from retrain_guard.tasks.leakage.findings import Finding, Judged
from retrain_guard.tasks.leakage.policy import apply_policy
from retrain_guard.tasks.leakage.split_sharing import check_split_leakage
from retrain_guard.tasks.leakage.table import LeakageTable, leakage_table
from retrain_guard.tasks.leakage.temporal import CONFIG
from retrain_guard.tasks.registry import LABEL_FREE_LEAKS, WHOLE_TABLE_LEAKS, Check
from retrain_guard.tasks.stored_table import Frame, StoredTable

# The checks that look at dates only, never at the label.
LABEL_FREE_CHECKS = LABEL_FREE_LEAKS


@dataclass(frozen=True)
class LeakageOutcome:
    """The leakage checks after the on_leakage policy, and the feature columns it dropped.

    `findings` holds each check's typed findings by code, as judged before the policy.
    """

    checks: list[CheckResult]
    dropped: list[str] = field(default_factory=list)
    on_leakage: str = "fail"
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def describe(self) -> dict[str, JsonValue]:
        return {"on_leakage": self.on_leakage, "dropped_columns": list(self.dropped)}


@cache
def runner(entry: Check) -> Callable[[LeakageTable], Judged]:
    """Return the function a registry entry names in `runs` ("module:function")."""
    module, _, function = entry.runs.partition(":")
    found: Callable[[LeakageTable], Judged] = getattr(import_module(module), function)
    return found


def _run(table: LeakageTable, label_free: bool) -> LeakageOutcome:
    """Run the registered whole-table checks in order; apply on_leakage unless config broke."""
    entries = [e for e in WHOLE_TABLE_LEAKS if e.label_free or not label_free]
    # The checks only read the table and spend their time in numpy and pyarrow, which
    # release the GIL: on two cores, threads take about 0.6x the time of one after another
    # (benchmarks/RESULTS.md, "Validation at scale"). A table stored on disk (the Dask
    # engine) is checked one check at a time, in this thread, and what each check freed goes
    # back to the system before the next: each holds whole columns and per-row temporaries,
    # and memory, not time, is what that engine bounds. Each thread runs in a copy of the
    # caller's context, so Prefect's run context holds.
    if isinstance(table.frame, StoredTable):
        judged = []
        for entry in entries:
            judged.append(runner(entry)(table))
            release_freed_memory()
    else:
        threads = min(len(entries), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, runner(entry), table)
                for entry in entries
            ]
            judged = [future.result() for future in futures]
    findings = {j.check.code: list(j.findings) for j in judged}
    params = table.params
    if any(j.check.code == CONFIG for j in judged):  # a wrong declaration: nothing was judged
        return LeakageOutcome([j.check for j in judged], [], params.on_leakage, findings)
    checks, dropped = apply_policy(judged, params.on_leakage)
    return LeakageOutcome(checks, dropped, params.on_leakage, findings)


def detect_label_free_leakage(
    frame: Frame,
    data: DataParams,
    params: LeakageParams,
) -> LeakageOutcome:
    """Run only the checks that need no label (LABEL_FREE_CHECKS), with the on_leakage policy.

    For a table whose label cannot be used: its dates are still judged, so one pass shows
    every finding.
    """
    return _run(leakage_table(frame, data, params), label_free=True)


def detect_leakage(
    frame: Frame,
    data: DataParams,
    params: LeakageParams,
    positive_class: object,
) -> LeakageOutcome:
    """Run every whole-table leakage check, then apply the on_leakage policy."""
    return _run(leakage_table(frame, data, params, positive_class), label_free=False)


# The tasks are the functions themselves: parameters, defaults and docstrings stay one.
detect_leakage_task = task(name="detect-leakage", cache_policy=NO_CACHE, persist_result=False)(
    detect_leakage
)
split_leakage_task = task(name="detect-split-leakage", cache_policy=NO_CACHE, persist_result=False)(
    check_split_leakage
)
