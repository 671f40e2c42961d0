"""Roles a schema declares: label, label time, id, and when each feature becomes known.

`KnownAt.parse` is the one reader of a known-at declaration (a column name or an offset
from the label time), for YAML schemas and for leakage.known_at alike.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from retrain_guard.tasks.offsets import OFFSET_GRAMMAR, format_offset, parse_offset


class SchemaDeclarationError(ValueError):
    """The schema itself is wrong (before any data is read); the message names each problem."""

    def __init__(self, problems: Iterable[str], source: str = "schema") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class KnownAt:
    """When a feature's value becomes known: at another column's time or the label time + offset."""

    column: str | None = None
    offset: pd.Timedelta | None = None

    def __post_init__(self) -> None:
        if (self.column is None) == (self.offset is None):
            raise ValueError("KnownAt needs exactly one of column or offset")

    @classmethod
    def parse(cls, value: Any, columns: Iterable[str] | None = None) -> "KnownAt":
        """Read a declaration: a column name, an offset text, or {column: ...} / {offset: ...}.

        A text that reads as an offset ('0d', '-1d') is an offset, any other text names a
        column; leakage.known_at is read by this same rule (tasks/leakage/temporal.py). A
        column whose name reads as an offset cannot be a known-at column (leakage.known_at
        could not tell it from the offset): rename it.

        Raises:
            ValueError: the value is neither, or names a column that reads as an offset.
        """
        if isinstance(value, Mapping):
            if set(value) == {"column"} and isinstance(value["column"], str):
                if parse_offset(value["column"]) is not None:
                    raise ValueError(
                        f"column {value['column']!r} reads as an offset from the label time; "
                        "rename the column to declare it as the known-at time"
                    )
                return cls(column=value["column"])
            if set(value) == {"offset"} and isinstance(value["offset"], str):
                offset = parse_offset(value["offset"])
                if offset is None:
                    raise ValueError(f"{value['offset']!r} is not an offset: {OFFSET_GRAMMAR}")
                return cls(offset=offset)
            raise ValueError(f"expected {{column: NAME}} or {{offset: TEXT}}, got {dict(value)}")
        if isinstance(value, pd.Timedelta):
            return cls(offset=value)
        if not isinstance(value, str):
            raise ValueError(f"expected a column name or an offset such as '-1d', got {value!r}")
        offset = parse_offset(value)
        if offset is None:
            return cls(column=value)
        if columns is not None and value in set(columns):
            raise ValueError(
                f"{value!r} reads both as an offset from the label time and as the column "
                f"{value!r}; an offset-like text is always an offset: rename the column to "
                "declare it as the known-at time (in a YAML schema, {offset: "
                f"{value!r}}} says the offset is meant)"
            )
        return cls(offset=offset)

    def as_declaration(self) -> str | pd.Timedelta:
        """Return the column name or the offset (the leakage stage's declaration type)."""
        if self.column is not None:
            return self.column
        assert self.offset is not None
        return self.offset

    def to_yaml_value(self) -> str:
        """Return the text written in a YAML schema."""
        if self.column is not None:
            return self.column
        assert self.offset is not None
        return format_offset(self.offset)


@dataclass(frozen=True)
class SchemaRoles:
    """Columns with a meaning to later stages, and when each feature becomes known."""

    label: str | None = None
    label_time: str | None = None
    id: str | None = None
    known_at: Mapping[str, KnownAt] = field(default_factory=dict)

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any] | None, columns: Iterable[str] | None = None
    ) -> "SchemaRoles":
        """Read roles from a YAML or Config mapping.

        Raises:
            SchemaDeclarationError: unknown keys or unreadable known-at declarations.
        """
        if not raw:
            return cls()
        problems: list[str] = []
        unknown = sorted(set(raw) - {"label", "label_time", "id", "known_at"})
        if unknown:
            problems.append(f"roles: unknown keys {unknown}; use label, label_time, id, known_at")
        names: dict[str, str | None] = {}
        for key in ("label", "label_time", "id"):
            value = raw.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(f"roles.{key}: expected a column name, got {value!r}")
                value = None
            names[key] = value
        known: dict[str, KnownAt] = {}
        declared = raw.get("known_at") or {}
        if not isinstance(declared, Mapping):
            problems.append("roles.known_at: expected a mapping feature -> column or offset")
            declared = {}
        listed = list(columns) if columns is not None else None
        for feature, value in declared.items():
            try:
                known[str(feature)] = KnownAt.parse(value, listed)
            except ValueError as exc:
                problems.append(f"roles.known_at.{feature}: {exc}")
        if problems:
            raise SchemaDeclarationError(problems)
        return cls(names["label"], names["label_time"], names["id"], known)

    def declarations(self) -> dict[str, str | pd.Timedelta]:
        """Return feature -> column name or offset, as the leakage stage takes them."""
        return {feature: known.as_declaration() for feature, known in self.known_at.items()}

    def leakage_known_at(self) -> dict[str, str]:
        """Return the declarations as `leakage.known_at` texts (a column, or a signed offset)."""
        return {feature: known.to_yaml_value() for feature, known in self.known_at.items()}

    def problems(self, columns: Iterable[str] | None) -> list[str]:
        """Return the declaration errors; `columns` are the schema's columns when it lists them."""
        found: list[str] = []
        named = {"label": self.label, "label_time": self.label_time, "id": self.id}
        present = [v for v in named.values() if v]
        if len(set(present)) != len(present):
            found.append(f"roles: label, label_time and id must be different columns, got {named}")
        listed = set(columns) if columns is not None else None
        if listed is not None:
            for key, value in named.items():
                if value and value not in listed:
                    found.append(f"roles.{key}: {value!r} is not a column of the schema")
        for feature, known in self.known_at.items():
            where = f"roles.known_at.{feature}"
            if feature in (self.label, self.label_time, self.id):
                found.append(f"{where}: {feature!r} is a role column, not a feature")
            if listed is not None and feature not in listed:
                found.append(f"{where}: {feature!r} is not a column of the schema")
            if known.column is not None:
                if listed is not None and known.column not in listed:
                    found.append(f"{where}: known-at column {known.column!r} is not in the schema")
                if known.column == self.label:
                    found.append(f"{where}: a feature cannot be known at the label column")
            elif known.offset is not None:
                if self.label_time is None:
                    found.append(f"{where}: an offset needs roles.label_time")
                if known.offset > pd.Timedelta(0):
                    found.append(
                        f"{where}: known at label time {format_offset(known.offset)}, after the "
                        "label time: the feature is not available when the prediction is made"
                    )
        return found

    def to_mapping(self) -> dict[str, Any]:
        """Return the roles as written in a YAML schema (empty keys left out)."""
        out: dict[str, Any] = {}
        for key in ("label", "label_time", "id"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.known_at:
            out["known_at"] = {f: k.to_yaml_value() for f, k in self.known_at.items()}
        return out
