"""The run form the Prefect UI renders from the flow's parameter schema."""

from typing import Any, get_args

import pytest
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from retrain_guard.flows.retrain import retrain, validate_data
from retrain_guard.schemas.params import RetrainParams, Sampler

SECTIONS = [
    "data",
    "schema",
    "history",
    "leakage",
    "split",
    "resample",
    "model",
    "gate",
    "publish",
    "compute",
]


def _form(flow: Any) -> dict[str, Any]:
    return parameter_schema(flow.fn).model_dump_for_openapi()


def _leaves(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (section, name, field)
        for section, definition in schema["definitions"].items()
        for name, field in definition.get("properties", {}).items()
    ]


def _numeric_variant(field: dict[str, Any]) -> dict[str, Any] | None:
    for variant in [field, *field.get("anyOf", [])]:
        if variant.get("type") in ("number", "integer"):
            return variant
    return None


@pytest.mark.parametrize("flow", [retrain, validate_data], ids=["retrain", "validate-data"])
def test_form_sections_follow_the_pipeline_order(flow: Any) -> None:
    form = _form(flow)
    top = form["definitions"]["RetrainParams"]["properties"]
    assert list(top) == SECTIONS
    assert all(top[s].get("description") for s in SECTIONS)
    data = list(form["definitions"]["DataParams"]["properties"])
    assert data[:4] == ["path", "label", "label_time", "id_column"]


def test_every_form_field_is_described() -> None:
    missing = [f"{s}.{n}" for s, n, f in _leaves(_form(retrain)) if not f.get("description")]
    assert missing == []


def test_every_number_in_the_form_is_bounded_both_ways() -> None:
    unbounded = []
    for section, name, field in _leaves(_form(retrain)):
        numeric = _numeric_variant(field)
        if numeric is None:
            continue
        low = "minimum" in numeric or "exclusiveMinimum" in numeric
        high = "maximum" in numeric or "exclusiveMaximum" in numeric
        if not (low and high):
            unbounded.append(f"{section}.{name}")
    assert unbounded == []


def test_choices_are_dropdowns() -> None:
    definitions = _form(retrain)["definitions"]
    assert definitions["ResampleParams"]["properties"]["sampler"]["enum"] == list(get_args(Sampler))
    assert set(definitions["ModelParams"]["properties"]["class_weight"]["enum"]) == {
        "none",
        "balanced",
    }
    assert set(definitions["SplitParams"]["properties"]["strategy"]["enum"]) == {
        "auto",
        "time",
        "random",
    }


BASE: dict[str, Any] = {"data": {"path": "t.csv", "label": "y", "label_time": "t"}}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"data": {"path": "t.csv", "label": "y"}, "split": {"strategy": "time"}},
            ["split.strategy", "data.label_time"],
        ),
        (
            {"split": {"strategy": "random", "gap_days": 7}},
            ["split.gap_days", "split.strategy"],
        ),
        (
            {"data": {"path": "t.csv", "label": "y"}, "split": {"gap_days": 3}},
            ["split.gap_days", "data.label_time"],
        ),
        (
            {"data": {"path": "t.csv", "label": "y", "label_time": "y"}},
            ["data.label", "data.label_time"],
        ),
        (
            {"data": {"path": "t.csv", "label": "y", "drop": ["y", "x"]}},
            ["data.drop"],
        ),
    ],
    ids=["time-split-without-time", "gap-on-random", "gap-without-time", "roles", "drop"],
)
def test_cross_field_rules_name_the_fields(override: dict[str, Any], named: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        RetrainParams.model_validate({**BASE, **override})
    message = str(caught.value)
    for field in named:
        assert field in message


def test_a_gap_with_a_time_split_is_accepted() -> None:
    params = RetrainParams.model_validate({**BASE, "split": {"strategy": "time", "gap_days": 7}})
    assert params.split.gap_days == 7


def test_descriptions_hold_no_angle_brackets_the_ui_would_strip_as_html() -> None:
    bracketed = [
        f"{s}.{n}" for s, n, f in _leaves(_form(retrain)) if "<" in str(f.get("description"))
    ]
    assert bracketed == []
