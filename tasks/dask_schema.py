"""The schema stage and the label profile of the Dask engine, partition by partition.

`validate_on_cluster` runs on every partition the same pandera schema the pandas engine
runs (tasks/validation.py validate_schema), then merges the partitions' failures: counts per
column and check summed over ALL partitions, listed rows capped as the pandas engine caps
them and named by their global row number (tasks/dask_engine.py numbers the partitions) and
id. pandera's own Dask validation is not used: under lazy validation it reports only the
first failing partition (pandera issue 719). A check about a whole column that a partition
cannot judge alone, the baseline's "at most two classes" of the label, runs once on the
label's distinct values (those the partitions counted); a unique column's repeated values
are counted on the cluster and only their rows judged. The label's class counts are a
reduction on the cluster. A partition is validated 250,000 rows at a time. The result is
the typed SchemaOutcome of the pandas engine, with the table stored on the flow's disk
(tasks/stored_table.py; written by the workers themselves where they see that disk), for
the stages after the schema to read a column at a time.
"""

from dataclasses import dataclass, replace

import dask
import dask.dataframe as dd
import pandas as pd
import pandera.pandas as pa
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
)
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue

from retrain_guard.schemas.date_checks import TIME_ZONE_CHECK
from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.tasks.dask_engine import cluster_address, pulled
from retrain_guard.tasks.dask_label_time import whole_texts
from retrain_guard.tasks.heap import release_freed_memory
from retrain_guard.tasks.label_time import WholeText, read_as_whole
from retrain_guard.tasks.leakage.rows import row_hashes
from retrain_guard.tasks.schema_failures import SchemaFailure, failure_order
from retrain_guard.tasks.schema_messages import TWO_CLASSES_CHECK, describe
from retrain_guard.tasks.stored_table import StoredTable, TableWriter
from retrain_guard.tasks.table_files import PartFile, Store
from retrain_guard.tasks.validation import (
    DeclaredSchema,
    SchemaOutcome,
    failed_rows,
    passed_check,
    validate_schema,
)

Key = tuple[str | None, str]


@dataclass(frozen=True, eq=False)
class ClusterSchema:
    """The schema stage on the cluster: its outcome, the table stored on the flow's disk
    (validated when the schema passed, as read when not) and the label's class counts (None:
    not counted)."""

    outcome: SchemaOutcome
    frame: StoredTable
    label_counts: pd.Series | None


@dataclass(frozen=True, eq=False)
class _Part:
    """One partition's validation: its rows (validated, or as read) as the chunks validated
    (`frames`), failures and extra."""

    frames: tuple[pd.DataFrame, ...]
    passed: bool
    failures: tuple[SchemaFailure, ...]
    extra: tuple[str, ...]
    # The label's class counts in this partition's frame (None: the label is not counted).
    label_counts: pd.Series | None
    # The frames as the worker wrote them to the flow's disk itself (then `frames` is empty).
    files: tuple[PartFile, ...] = ()


# Rows pandera validates at once on a worker: validating a million rows at once took
# about 8 times their size there (2.4 GiB for a 0.3 GiB partition of 27 columns).
CHUNK_ROWS = 250_000


def _validate_part(
    part: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str],
    chunk_rows: int = CHUNK_ROWS,
    texts: dict[str, WholeText] | None = None,
) -> _Part:
    """Validate a partition a chunk of rows at a time (the chunks' failures are merged with
    every partition's, as the partitions' are). The validated chunks are kept apart, not
    joined here (a join would hold the partition twice on the worker): the flow stores each
    as a part of the table, which joins them as Dask joins partitions, categoricals by the
    union of their categories.

    A text column read as dates (the label time, a schema's datetime column) is read as
    the whole column settles (`texts`, dask_label_time.whole_texts). A label time read as
    text is validated with its whole partition all the same: its bad rows' examples are
    the partition's first, as in the pandas engine's words.
    """
    times = part[data.label_time] if data.label_time in part.columns else None
    if times is not None and not is_datetime64_any_dtype(times.dtype):
        chunk_rows = max(len(part), 1)
    chunks = [
        _validate_chunk(
            part.iloc[start : start + chunk_rows], declared, data, params, unusable_roles, texts
        )
        for start in range(0, max(len(part), 1), chunk_rows)
    ]
    if len(chunks) == 1:
        return chunks[0]
    passed = all(c.passed for c in chunks)
    frames = tuple(f for c in chunks for f in c.frames) if passed else (part,)
    counts = [c.label_counts for c in chunks]
    return _Part(
        frames,
        passed,
        tuple(f for c in chunks for f in c.failures),
        chunks[0].extra,
        None if counts[0] is None else _summed(counts),
    )


def _validate_and_store(
    part: pd.DataFrame,
    number: int,
    store: Store,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str],
    texts: dict[str, WholeText],
) -> _Part:
    """Validate partition `number` (`_validate_part`); a worker that sees the flow's disk
    writes the frames there itself and returns only where they are."""
    validated = _validate_part(part, declared, data, params, unusable_roles, texts=texts)
    files = store.write(number, validated.frames)
    return validated if files is None else replace(validated, frames=(), files=files)


def _stored_as_read(part: pd.DataFrame, number: int, store: Store) -> pd.DataFrame | PartFile:
    """Write partition `number` as read where the worker sees (and can write) the flow's
    disk; else return it."""
    files = store.write(number, (part,))
    return part if files is None else files[0]


def _validate_chunk(
    part: pd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str],
    texts: dict[str, WholeText] | None = None,
) -> _Part:
    with read_as_whole(texts or {}):
        outcome = validate_schema(part, declared, data, params, unusable_roles)
    frame = part if outcome.in_memory is None else outcome.in_memory
    counted = data.label in frame.columns and data.label not in unusable_roles
    counts = frame[data.label].value_counts(dropna=True) if counted else None
    return _Part((frame,), outcome.frame is not None, outcome.failures, outcome.extra, counts)


def _label_check(declared: DeclaredSchema, data: DataParams) -> pa.Check | None:
    """Return the label's two-class check when the schema has it (a whole-column check)."""
    column = declared.schema.columns.get(data.label)
    if column is None:
        return None
    return next((c for c in column.checks if c.name == TWO_CLASSES_CHECK), None)


def needs_whole_table(declared: DeclaredSchema) -> bool:
    """Whether the schema has a check no partition can judge alone that is not run on the
    cluster: a uniqueness over several columns (dataframe-level unique). With one, the schema
    runs on the table collected into the flow's process, as the pandas engine runs it, rather
    than pass duplicates unseen. A column's own uniqueness runs on the cluster."""
    return bool(declared.schema.unique)


def _unique_columns(declared: DeclaredSchema) -> list[str]:
    return [name for name, column in declared.schema.columns.items() if column.unique]


def _without_uniqueness(declared: DeclaredSchema) -> DeclaredSchema:
    """The schema each partition runs: a value may repeat in another partition, so the
    columns' uniqueness is left to _unique_failures."""
    schema = declared.schema
    for name in _unique_columns(declared):
        schema = schema.update_column(name, unique=False)
    return replace(declared, schema=schema)


def _unique_failures(
    table: dd.DataFrame,
    column: str,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
) -> tuple[SchemaFailure, ...]:
    """Check a unique column over the whole table: the values' 64-bit hashes seen more than
    once are found on the cluster, then only the rows of those hashes (global row numbers
    kept) are gathered and judged by the same pandera uniqueness check the pandas engine
    runs, so a hash collision is never a failure.

    The hashes are counted spread over the cluster (`split_out`), and only the repeated ones
    come back: counting the values themselves joined every distinct value (20M ids as
    Python strings) in one worker and then in the flow.
    """
    hashes = table[[column]].map_partitions(_value_hashes, meta=pd.Series(dtype="uint64"))
    # A task-graph shuffle: the P2P one needs the scheduler's shuffle plugin, whose messages
    # still in flight when the cluster closes are logged with a traceback.
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        counts = hashes.value_counts(split_out=max(1, table.npartitions // 4))
        repeated = counts[counts > 1].index.compute()
    if len(repeated) == 0:
        return ()
    # As an array: dask's isin of a list of these integers above 2**63 matches nothing.
    keep = hashes.isin(repeated.to_numpy(dtype="uint64"))
    with_id = data.id_column in table.columns and data.id_column != column
    rows = table[keep][[column, *([data.id_column] if with_id else [])]]
    found = rows.compute().sort_index()
    schema = pa.DataFrameSchema(
        {column: pa.Column(nullable=True, unique=True)}, name=declared.schema.name
    )
    only_column = replace(declared, schema=schema, extra_columns="ignore")
    roles = data.model_copy(update={"label_time": None, "drop": []})
    return validate_schema(found, only_column, roles, params).failures


def _value_hashes(part: pd.DataFrame) -> pd.Series:
    """Each row's hash of the one column (equal values, equal hashes; missing values too).

    Partitions may hold one column in different dtypes: a Parquet file whose integers have
    a null reads as float64, the others as int64; datetimes may come in other units or
    zones. Values are hashed in one form per kind (numbers as float64, datetimes as UTC
    microseconds, which hold any year a datetime column can), so 5 and 5.0 share a hash as
    they share a value; a collision this adds (integers above 2**53, nanoseconds) is judged
    by the exact check on the gathered rows.
    """
    (name,) = part.columns
    values = part[name]
    if is_datetime64_any_dtype(values.dtype):
        if getattr(values.dtype, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        values = values.astype("datetime64[us]")
    elif is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype):
        values = values.astype("float64")
    return pd.Series(row_hashes(values.to_frame()), index=part.index, dtype="uint64")


def _without_label_check(declared: DeclaredSchema, data: DataParams) -> DeclaredSchema:
    column = declared.schema.columns[data.label]
    kept = [c for c in column.checks if c.name != TWO_CLASSES_CHECK]
    return replace(declared, schema=declared.schema.update_column(data.label, checks=kept))


def _label_failures(
    table: dd.DataFrame,
    parts: list[_Part],
    check: pa.Check,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
) -> tuple[SchemaFailure, ...]:
    """Run the label's two-class check on its distinct values.

    When every partition passed, they are the classes the partitions counted in their
    validated rows (the values the pandas engine checks). Otherwise they are gathered from
    the cluster, combined in a tree (split_out=1), not by Dask's default shuffle, which moved
    every row's label between the workers."""
    counts = [p.label_counts for p in parts]
    if parts and all(p.passed for p in parts) and all(c is not None for c in counts):
        summed = _summed(counts)
        values = pd.Series(summed.index[summed.to_numpy() > 0], name=data.label)
    else:
        values = table[data.label].drop_duplicates(split_out=1).compute()
    distinct = values.reset_index(drop=True).to_frame()
    schema = pa.DataFrameSchema(
        {data.label: pa.Column(nullable=True, checks=[check])}, name=declared.schema.name
    )
    only_label = replace(declared, schema=schema, extra_columns="ignore", source=declared.source)
    roles = data.model_copy(update={"label_time": None, "id_column": None, "drop": []})
    return validate_schema(distinct, only_label, roles, params).failures


def merge_failures(
    parts: list[tuple[SchemaFailure, ...]],
    max_cases: int,
    texts: dict[str, WholeText] | None = None,
) -> list[SchemaFailure]:
    """Merge the partitions' failures per (column, check): counts summed, rows in global
    order capped at max_cases, the words said again of the whole count. The time zones
    seen of a column in `texts` are the whole column's, those of passing partitions too."""
    grouped: dict[Key, list[SchemaFailure]] = {}
    for failures in parts:
        for failure in failures:
            grouped.setdefault((failure.column, failure.check), []).append(failure)
    merged = [_whole_zones(_merged(group, max_cases), texts or {}) for group in grouped.values()]
    return sorted(merged, key=failure_order)


def _whole_zones(failure: SchemaFailure, texts: dict[str, WholeText]) -> SchemaFailure:
    facts = texts.get(failure.column or "")
    if failure.check != TIME_ZONE_CHECK or facts is None or facts.zones is None:
        return failure
    threshold = {**(failure.threshold or {}), "time_zones_seen": dict[str, JsonValue](facts.zones)}
    message = describe(failure.column, failure.check, failure.count, failure.value, threshold)
    return replace(failure, threshold=threshold, message=message)


def _merged(group: list[SchemaFailure], max_cases: int) -> SchemaFailure:
    first = group[0]
    if len(group) == 1:
        return first
    counts = [f.count for f in group if f.count is not None]
    count = sum(counts) if counts else None
    rows = tuple(row for f in group for row in f.rows)[:max_cases]
    threshold = _merged_threshold(group)
    if first.pandera:
        message = describe(first.column, first.check, count, first.value, threshold)
    elif first.count is not None and count is not None:
        # The label time's own words: its count is said of the first partition.
        message = first.message.replace(f"but {first.count} value(s)", f"but {count} value(s)")
    else:
        message = first.message
    return replace(first, count=count, rows=rows, threshold=threshold, message=message)


def _merged_threshold(group: list[SchemaFailure]) -> dict[str, JsonValue] | None:
    """Sum the time zones seen across partitions; any other threshold is the first's."""
    first = group[0].threshold
    if first is None or "time_zones_seen" not in first:
        return None if first is None else dict(first)
    seen: dict[str, int] = {}
    for failure in group:
        zones = (failure.threshold or {}).get("time_zones_seen")
        for zone, n in dict(zones if isinstance(zones, dict) else {}).items():
            seen[zone] = seen.get(zone, 0) + int(str(n))
    return {**first, "time_zones_seen": dict[str, JsonValue](seen)}


def validate_on_cluster(
    table: dd.DataFrame,
    declared: DeclaredSchema,
    data: DataParams,
    params: SchemaParams,
    unusable_roles: list[str] | None = None,
    spill_dir: str | None = None,
) -> ClusterSchema:
    """Validate every partition on the cluster; merge the failures; count the label's
    classes; store the table on the flow's disk (validated, or as read when the schema failed),
    in `spill_dir` (None: the system's temporary directory)."""
    roles = list(unusable_roles or [])
    label_check = _label_check(declared, data)
    judged = data.label not in [*roles, *data.drop] and label_check is not None
    per_part = _without_label_check(declared, data) if label_check is not None else declared
    per_part = _without_uniqueness(per_part)
    # One pass: each partition is read and validated once on the cluster, and comes back
    # with its failures and class counts; its rows are written to the flow's disk
    # (tasks/stored_table.py) by the worker where it sees that disk, else by the flow as
    # they arrive, a few at a time, and let go of.
    texts = whole_texts(table, declared, data, roles)
    writer = TableWriter(table._meta, spill_dir)
    store = writer.store()

    def written(number: int, part: _Part) -> _Part:
        kept: tuple[pd.DataFrame | PartFile, ...] = (*part.files, *part.frames)  # one is empty
        for piece, stored in enumerate(kept):
            writer.put(number, stored, piece)
        # Only copies are kept: an empty slice of the partition (its index a view) or class
        # counts deserialised from the same message would keep the message's buffer alive.
        counts = None if part.label_counts is None else part.label_counts.copy(deep=True)
        return replace(part, frames=(), files=(), label_counts=counts)

    parts = pulled(
        [
            dask.delayed(_validate_and_store)(p, n, store, per_part, data, params, roles, texts)
            for n, p in enumerate(table.to_delayed())
        ],
        written,
    )
    failures: list[tuple[SchemaFailure, ...]] = [p.failures for p in parts]
    if judged and label_check is not None:
        failures.append(_label_failures(table, parts, label_check, declared, data, params))
    for column in _unique_columns(declared):
        if column not in roles and column in table.columns:
            failures.append(_unique_failures(table, column, declared, data, params))
    extra = list(parts[0].extra) if parts else []
    merged = merge_failures(failures, params.max_failure_cases, texts)
    counted = data.label in table.columns and data.label not in roles
    if merged:
        # The table as read, not the partitions the schema coerced: read again.
        counts = table[data.label].value_counts(dropna=True).compute() if counted else None
        writer = TableWriter(table._meta, spill_dir)
        store = writer.store()
        pulled(
            [dask.delayed(_stored_as_read)(p, n, store) for n, p in enumerate(table.to_delayed())],
            writer.put,
        )
        frame = writer.table(cluster_address())
        outcome = failed_rows(declared, merged, extra)
    else:
        counts = _summed([p.label_counts for p in parts]) if counted else None
        frame = writer.table(cluster_address())
        outcome = SchemaOutcome(
            frame, passed_check(declared, len(frame), extra), extra=tuple(extra)
        )
    release_freed_memory()  # what the pulled partitions took, before the checks read the table
    return ClusterSchema(outcome, frame, counts)


def _summed(counts: list[pd.Series | None]) -> pd.Series:
    """Sum the partitions' class counts (a class missing from a partition counts 0 there)."""
    found = [c for c in counts if c is not None and len(c)]
    if not found:
        return pd.Series(dtype="int64")
    return pd.concat(found).groupby(level=0, sort=False, observed=False).sum()


validate_on_cluster_task = task(
    name="validate-schema-dask", cache_policy=NO_CACHE, persist_result=False
)(validate_on_cluster)
