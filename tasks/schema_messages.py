"""A failing schema check in one sentence, in words (never a bare True/False).

`describe` words a failure of one of pandera's built-in checks, of a comparison declared in a
YAML schema, of the date and time-zone checks, and of the baseline's `at_most_two_classes`.
"""

import re
from collections.abc import Mapping

from pydantic import JsonValue

from retrain_guard.schemas.date_checks import DATES_CHECK, TIME_ZONE_CHECK

TWO_CLASSES_CHECK = "at_most_two_classes"

# How each built-in pandera check reads in a sentence: "<n> value(s) <phrase>".
_VALUE_PHRASES = {
    "greater_than": "not above {0}",
    "greater_than_or_equal_to": "below {0}",
    "less_than": "not below {0}",
    "less_than_or_equal_to": "above {0}",
    "equal_to": "not equal to {0}",
    "not_equal_to": "equal to {0}",
    "in_range": "outside the range {0} to {1}",
    "isin": "outside the allowed values {0}",
    "notin": "among the forbidden values {0}",
    "str_matches": "not matching the pattern {0}",
    "str_contains": "not containing {0}",
    "str_startswith": "not starting with {0}",
    "str_endswith": "not ending with {0}",
    "str_length": "of a length outside {0} to {1}",
    "unique_values_eq": "differing from the set {0}",
}
_CALL = re.compile(r"^(?P<name>[a-z_]+)\((?P<args>.*)\)$", re.DOTALL)


def _split_args(args: str) -> list[str]:
    """Split a check's argument text at top-level commas (lists keep their commas)."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in args:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def describe(
    column: str | None,
    check: str,
    count: int | None,
    value: JsonValue = None,
    threshold: Mapping[str, JsonValue] | None = None,
) -> str:
    """Return one sentence about a failing check, in words (never a bare True/False)."""
    where = f"column {column!r}" if column else "the table"
    rows = f"{count:,} row(s)" if count is not None else None
    if threshold is not None and {"left", "op", "right"} <= threshold.keys():
        # A comparison between two columns declared in a YAML schema's `checks`.
        offset = f" {threshold['offset']}" if threshold.get("offset") else ""
        rule = f"{threshold['left']} {threshold['op']} {threshold['right']}{offset}"
        if rows is not None:
            return f"{where} breaks {check!r} ({rule}) in {rows}"
        if isinstance(value, str) and value not in ("True", "False"):
            return f"{where}: {check!r} ({rule}) could not be applied ({value})"
    call = _CALL.match(check)
    name, args = (call["name"], _split_args(call["args"])) if call else (check, [])
    if name in ("dtype", "coerce_dtype"):
        wanted = args[0].strip("'\"") if args else "the declared type"
        if rows is not None:
            return f"{where}: {rows} hold values that cannot be read as {wanted}"
        found = f" holds {value}" if isinstance(value, str) and value else ""
        return f"{where}{found}; the schema wants {wanted}"
    if name == "not_nullable":
        return f"{where} has missing values in {rows or 'some rows'}; the schema forbids them"
    if name == "field_uniqueness":
        return f"{where} repeats values in {rows or 'some rows'}; the schema wants them unique"
    if name == TWO_CLASSES_CHECK:
        return f"{where} holds more than two classes; a binary classifier needs at most two"
    if name == DATES_CHECK:
        reason = threshold.get("reason") if threshold is not None else None
        if reason:
            return f"{reason} ({rows or 'some rows'})"
        return (
            f"{where} has {rows or 'values'} that do not read as dates like the other rows; "
            "write them as ISO 8601 (YYYY-MM-DD)"
        )
    if name == TIME_ZONE_CHECK:
        return (
            f"{where} mixes time zones in {rows or 'some rows'}; the schema wants one time "
            "zone per column"
        )
    if rows is None and isinstance(value, str) and value not in ("True", "False"):
        # A check that raised: pandera keeps the error as the failure case.
        return f"{where}: the check {check!r} could not be applied ({value})"
    if name in _VALUE_PHRASES and len(args) >= _VALUE_PHRASES[name].count("{"):
        phrase = _VALUE_PHRASES[name].format(*args)
        return f"{where} has {rows or 'values'} {phrase}"
    if rows is not None:
        return f"{where} fails the check {check!r} in {rows}"
    return f"{where} fails the check {check!r}"
