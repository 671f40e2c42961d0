"""Run history: one record per run, passed or halted, in `<publish.output_dir>/history.sqlite`.

It holds the record (RunRecord), the data fingerprint a run adds to its report's data
summary, the SQLite store (open, append, read the last runs or the last good one) and the
text and markdown tables of the last runs. The checks that compare a run's data with the
last good run's live in tasks/history_checks.py.

The store is SQLite in WAL mode with a busy timeout: two runs finishing at once (the nightly
and a manual deployment share an output directory) wait for each other instead of failing.
"""

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from pandas.api.types import is_datetime64_any_dtype
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import TypeAdapter

from retrain_guard.schemas.params import DataParams
from retrain_guard.schemas.report import DataSummary, Report
from retrain_guard.tasks.locks import exclusive_lock
from retrain_guard.tasks.profile import CODE as LABEL_PROFILE
from retrain_guard.tasks.reporting import Metrics, ReportView
from retrain_guard.tasks.stored_table import Frame, column_chunks, dtype_of

HISTORY_FILE = "history.sqlite"
# Seconds a writer waits for another run's transaction before giving up.
BUSY_TIMEOUT = 30.0
# Fields stored as JSON text; every other field is a plain SQLite column.
_JSON_FIELDS = ("class_counts", "features")


@dataclass(frozen=True)
class RunRecord:
    """What the history keeps of one run: who ran it, on which data, with what outcome."""

    run_id: str
    flow: str
    # The deployment's name when a deployment started the run; None for a local run.
    deployment: str | None
    started_at: str
    finished_at: str
    status: Literal["passed", "failed"]
    failure_code: str | None
    published_version: str | None
    # The data fingerprint (tasks/history.py fingerprint); None where the run halted first.
    rows: int | None
    columns_hash: str | None
    class_counts: dict[str, int]
    label_time_min: str | None
    label_time_max: str | None
    features: tuple[str, ...]
    # Key holdout metrics of a retraining run that reached the evaluation.
    pr_auc: float | None
    roc_auc: float | None
    minority_recall: float | None

    @property
    def minority_share(self) -> float | None:
        """Share of the rarest class among labelled rows; None with fewer than two classes."""
        return minority_share(self.class_counts)


_RECORD = TypeAdapter(RunRecord)
_COLUMNS = tuple(f.name for f in fields(RunRecord))


def minority_share(class_counts: dict[str, int]) -> float | None:
    """Return the rarest class's share of the rows; None with fewer than two classes."""
    total = sum(class_counts.values())
    if len(class_counts) < 2 or not total:
        return None
    return min(class_counts.values()) / total


def history_path(output_dir: str | Path) -> Path:
    """Return where the run history of an output directory is kept."""
    return Path(output_dir) / HISTORY_FILE


# ---------------------------------------------------------------- fingerprint


def columns_hash(frame: Frame) -> str:
    """Return a short SHA-256 of the column names and dtypes, in table order."""
    described = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def fingerprint(frame: Frame, data: DataParams, summary: DataSummary) -> DataSummary:
    """Return the data summary with the fingerprint of the profiled table added.

    The summary already holds the rows read and the class counts; this adds the hash of
    column names and dtypes, the label-time range and the feature columns, so that the
    next runs can be checked against this one.
    """
    start = end = None
    column = data.label_time
    if column and column in frame.columns and is_datetime64_any_dtype(dtype_of(frame, column)):
        # A chunk at a time: the range of a stored table's column without reading it whole.
        ranges = [
            (part.min(), part.max()) for part in column_chunks(frame, column) if part.notna().any()
        ]
        if ranges:
            start = min(low for low, _ in ranges).isoformat()
            end = max(high for _, high in ranges).isoformat()
    return summary.model_copy(
        update={
            "columns_hash": columns_hash(frame),
            "label_time_min": start,
            "label_time_max": end,
            "features": data.feature_columns(frame.columns),
        }
    )


# ---------------------------------------------------------------- the record


class _LabelProfile(ReportView):
    """The label profile's metrics: the positive class is the minority (tasks/profile.py)."""

    positive_class: str | None = None


def run_record(report: Report, run_id: str, deployment: str | None) -> RunRecord:
    """Return the history record of a finished run from its report."""
    metrics = Metrics.of(report)
    holdout = metrics.holdout
    profiled = report.check(LABEL_PROFILE)
    minority = _LabelProfile.model_validate(profiled.metrics if profiled else {}).positive_class
    per_class = holdout.per_class if holdout and holdout.per_class else {}
    recall = per_class[minority].recall if minority in per_class else None
    data = report.data
    return RunRecord(
        run_id=run_id,
        flow=str(report.run.get("flow", "")),
        deployment=deployment,
        started_at=str(report.run.get("started_at", "")),
        finished_at=str(report.run.get("finished_at", "")),
        status=report.status,
        failure_code=report.failure.code if report.failure else None,
        published_version=report.published.version if report.published else None,
        rows=data.rows,
        columns_hash=data.columns_hash,
        class_counts=dict(data.class_counts),
        label_time_min=data.label_time_min,
        label_time_max=data.label_time_max,
        features=tuple(data.features),
        pr_auc=_number(holdout.pr_auc if holdout else None),
        roc_auc=_number(holdout.roc_auc if holdout else None),
        minority_recall=_number(recall),
    )


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------- the store


_SQL_TYPE = {"rows": "INTEGER", "pr_auc": "REAL", "roc_auc": "REAL", "minority_recall": "REAL"}
_CREATE = (
    "CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{c} {_SQL_TYPE.get(c, 'TEXT')}" for c in _COLUMNS)
    + ")"
)


@contextmanager
def open_store(path: str | Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) the history store; waits up to BUSY_TIMEOUT for a writer."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT, isolation_level=None)) as db:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        # SQLite does not wait (no busy handler) when it cannot switch the journal mode, so
        # two runs creating the store at once would fail: the setup is done one at a time.
        with exclusive_lock(target.with_name(target.name + ".lock"), timeout=BUSY_TIMEOUT):
            # WAL lets readers go on while a run appends; the setting stays with the file.
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute(_CREATE)
        yield db


def append(path: str | Path, record: RunRecord) -> None:
    """Append one record in its own transaction."""
    values = asdict(record)
    row = [
        json.dumps(list(v) if k == "features" else v) if k in _JSON_FIELDS else v
        for k, v in values.items()
    ]
    placeholders = ", ".join("?" for _ in _COLUMNS)
    with open_store(path) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})", row)
        db.execute("COMMIT")


def _read(path: str | Path, where: str, arguments: tuple[object, ...], n: int) -> list[RunRecord]:
    """Return the last `n` records matching `where`, oldest first; none without a store."""
    if not Path(path).exists():
        return []
    query = f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE {where} ORDER BY seq DESC LIMIT ?"
    with open_store(path) as db:
        rows = db.execute(query, (*arguments, n)).fetchall()
    records = []
    for row in reversed(rows):
        values = dict(zip(_COLUMNS, row, strict=True))
        for name in _JSON_FIELDS:
            values[name] = json.loads(values[name])
        records.append(_RECORD.validate_python(values))
    return records


def read_last(path: str | Path, n: int, flow: str | None = None) -> list[RunRecord]:
    """Return the last `n` runs (of `flow`, or of every flow), oldest first."""
    if flow is None:
        return _read(path, "1", (), n)
    return _read(path, "flow = ?", (flow,), n)


def read_last_good(path: str | Path, flow: str) -> RunRecord | None:
    """Return the last good run of `flow`: for retrain the last that published a model,
    for validate-data the last that passed."""
    if flow == "retrain":
        found = _read(path, "flow = ? AND published_version IS NOT NULL", (flow,), 1)
    else:
        found = _read(path, "flow = ? AND status = 'passed'", (flow,), 1)
    return found[-1] if found else None


def record_run(path: str | Path, record: RunRecord) -> str | None:
    """Append the record; return why it could not be written, or None when it was.

    A store that cannot be written never costs the run its report: the caller notes the
    reason in the report instead.
    """
    try:
        append(path, record)
    except (sqlite3.Error, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# ---------------------------------------------------------------- outputs

_SPARKS = "▁▂▃▄▅▆▇█"
_HEADER = ("finished (UTC)", "flow", "status", "rows", "minority share", "PR-AUC", "published")


def sparkline(values: list[float | None]) -> str:
    """Return one block character per value, scaled between their min and max; ' ' for none."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    top = len(_SPARKS) - 1
    return "".join(" " if v is None else _SPARKS[round((v - low) / span * top)] for v in values)


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4%}"


def history_rows(records: list[RunRecord]) -> list[tuple[str, ...]]:
    """Return one row of display cells per run, oldest first."""
    return [
        (
            r.finished_at[:19].replace("T", " "),
            r.flow,
            r.status if r.failure_code is None else f"{r.status}: {r.failure_code}",
            "" if r.rows is None else str(r.rows),
            _share(r.minority_share),
            "" if r.pr_auc is None else f"{r.pr_auc:.4f}",
            r.published_version or "",
        )
        for r in records
    ]


def format_history(records: list[RunRecord]) -> str:
    """Return the runs as an aligned text table (the `retrain-guard history` output)."""
    rows = [_HEADER, *history_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def _trend(name: str, values: list[float | None], shown: str) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return f"- {name}: none recorded"
    low, high = shown.format(min(present)), shown.format(max(present))
    return f"- {name}: `{sparkline(values)}` ({low} to {high}, oldest first)"


def render_history(records: list[RunRecord]) -> str:
    """Return the markdown of the history artifact: trend lines, then one row per run."""
    lines = [f"# Last {len(records)} runs in this output directory", ""]
    if not records:
        return "\n".join([*lines, "No run recorded yet."])
    lines += [
        _trend("rows", [None if r.rows is None else float(r.rows) for r in records], "{:.0f}"),
        _trend("minority share", [r.minority_share for r in records], "{:.4%}"),
        _trend("PR-AUC", [r.pr_auc for r in records], "{:.4f}"),
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
    ]
    lines += [
        "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
        for row in history_rows(records)
    ]
    return "\n".join([*lines, ""])


def history_text(output_dir: str | Path, last: int) -> str:
    """Return the `retrain-guard history` output: the last runs of an output directory.

    Raises:
        ValueError: `last` is under 1, there is no history, or it cannot be read.
    """
    store = history_path(output_dir)
    if last < 1:
        raise ValueError(f"--last {last}: give at least 1")
    if not store.is_file():
        raise ValueError(f"--output-dir {output_dir}: no run history ({store} does not exist)")
    try:
        records = read_last(store, last)
    except sqlite3.Error as exc:
        raise ValueError(f"{store}: the run history cannot be read ({exc})") from exc
    return f"{store}: last {len(records)} run(s), oldest first\n" + format_history(records)


@task(name="record-run-history", cache_policy=NO_CACHE, persist_result=False)
def record_run_task(path: str, record: RunRecord) -> str | None:
    """Append the run to the history; log and return the reason when it cannot be written."""
    problem = record_run(path, record)
    if problem is not None:
        get_run_logger().warning("Run history %s not written: %s", path, problem)
    return problem
