"""Offsets from the label time, one grammar for known-at declarations.

A sign, an amount and a unit: '0d', '-1d', '+30d', '-6h', '-90min', '-2w', '-30s'. A leaf
module, like tasks/dates.py: the parameter and schema models share it without a cycle.
"""

import re

import pandas as pd

# "0d", "-1d", "+30d", "-6h", "-90min", "-2w", "-30s": an optional sign, an amount, a unit.
OFFSET_GRAMMAR = (
    "an optional sign, an amount and a unit w, d, h, min or s: '0d', '-1d', '+30d', '-6h'"
)
_OFFSET = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*(w|d|h|min|s)\s*$")
_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "min": 60, "s": 1}
_FORMAT_UNITS = (("w", pd.Timedelta(weeks=1)), ("d", pd.Timedelta(days=1)),
                 ("h", pd.Timedelta(hours=1)), ("min", pd.Timedelta(minutes=1)),
                 ("s", pd.Timedelta(seconds=1)))  # fmt: skip


def parse_offset(text: str) -> pd.Timedelta | None:
    """Return the offset a text such as '0d', '-1d' or '+30d' denotes, or None if it is not one.

    A positive offset means known after the label time, a negative one before it.
    """
    match = _OFFSET.match(text)
    if match is None:
        return None
    sign, amount, unit = match.groups()
    delta = pd.Timedelta(seconds=float(amount) * _SECONDS[unit])
    return -delta if sign == "-" else delta


def looks_like_offset(text: str) -> bool:
    """Return whether a text is meant as an offset: it reads as one or starts with a sign."""
    stripped = text.strip()
    return parse_offset(stripped) is not None or stripped[:1] in ("+", "-")


def format_offset(offset: pd.Timedelta) -> str:
    """Return the shortest text of the offset in the grammar parse_offset reads back."""
    sign = "-" if offset < pd.Timedelta(0) else "+"
    size = abs(offset)
    if size == pd.Timedelta(0):
        return "0d"
    for unit, step in _FORMAT_UNITS:
        if size % step == pd.Timedelta(0):
            return f"{sign}{size // step}{unit}"
    return f"{sign}{size.total_seconds()}s"
