"""Whole rows as hashes: what split_sharing.py and resampling.py compare rows by."""

import numpy as np
import pandas as pd


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return one 64-bit hash per row of the frame (equal rows, equal hashes).

    Values pandas cannot hash (lists, dicts, bytes) are hashed by their text; such
    columns are left out of the features before, this keeps the hash total anyway.
    """
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except (TypeError, UnicodeDecodeError):
        hashed = pd.util.hash_pandas_object(frame.map(_hashable_text), index=False)
    return np.asarray(hashed, dtype="uint64")


def _hashable_text(value: object) -> object:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    if isinstance(value, list | tuple | dict | set | bytes | bytearray):
        return repr(value)
    return value


def take_rows(frame: pd.DataFrame, rows: np.ndarray | slice, columns: list[str]) -> pd.DataFrame:
    """Return `columns` of the frame's `rows`.

    Rows first: selecting the columns first makes pandas consolidate (copy) every value of
    those columns before taking the rows, which costs more than the rows at a million rows.
    """
    return frame.iloc[rows][columns]


def key_column(frame: pd.DataFrame, features: list[str], rows: np.ndarray | None = None) -> str:
    """Return the feature with the most distinct values in a sample: the cheapest filter.

    With `rows`, the sample is taken from those rows of the frame only.
    """
    if rows is None:
        head = take_rows(frame, slice(None, None, max(1, len(frame) // 1000)), features)
    else:
        head = take_rows(frame, rows[:: max(1, len(rows) // 1000)], features)
    return str(max(features, key=lambda c: head[c].nunique(dropna=False)))
