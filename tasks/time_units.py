"""One datetime unit per column across a table's partitions.

A Parquet dataset whose files were written by different tools may hold one datetime column
in several units (ms in one file, ns in another). pandas joins such partitions in the
finest unit present, and a date past 2262 in a coarser file does not fit nanoseconds: the
stored table (tasks/stored_table.py) and the Dask engine's whole-table collect
(tasks/dask_engine.py) put them in one unit first.
"""

import pandas as pd

# Datetime units from the finest to the coarsest.
_UNITS = ("ns", "us", "ms", "s")


def one_time_unit(parts: list[pd.Series]) -> list[pd.Series]:
    """Return datetime partitions written in different units (a dataset whose files were
    written by different tools) in one unit: the finest that holds every value.

    pandas would join them in the finest unit present, and a date past 2262 in a coarser
    partition does not fit nanoseconds. The coarsest unit present always holds them all; a
    finer value loses only what is below the unit chosen (ms and ns with a date past 2262:
    microseconds, the nanoseconds lost). Other columns are left as they are.
    """
    dtypes = [p.dtype for p in parts]
    if not all(pd.api.types.is_datetime64_any_dtype(d) for d in dtypes):
        return parts
    if len({getattr(d, "tz", None) for d in dtypes}) > 1:
        return parts  # naive and zoned (or two zones): pandas joins them as objects
    present = {p.dt.unit for p in parts}
    if len(present) < 2:
        return parts
    coarsest = max(_UNITS.index(u) for u in present)
    for unit in _UNITS[:coarsest]:  # a unit between those present may hold them all
        try:
            return _in_unit(parts, unit)
        except pd.errors.OutOfBoundsDatetime:
            continue
    return _in_unit(parts, _UNITS[coarsest])  # a finer value always fits a coarser unit


def _in_unit(parts: list[pd.Series], unit: str) -> list[pd.Series]:
    return [p if p.dt.unit == unit else p.dt.as_unit(unit) for p in parts]


def frames_in_one_time_unit(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Return partitions whose datetime columns are in one unit per column (one_time_unit);
    partitions already alike are returned as they are."""
    if len(frames) < 2:
        return frames
    mixed = [c for c in frames[0].columns if len({str(f[c].dtype) for f in frames}) > 1]
    for column in mixed:
        parts = [f[column] for f in frames]
        joined = one_time_unit(parts)
        if joined is not parts:  # not datetimes in several units: left as they are
            frames = [f.assign(**{column: v}) for f, v in zip(frames, joined, strict=True)]
    return frames
