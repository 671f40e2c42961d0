"""infer-schema: a draft from the example accepts it and rejects a corrupted copy."""

from pathlib import Path

import pandas as pd
import pytest

from retrain_guard.flows.cli import main
from retrain_guard.schemas.declaration import load_spec
from retrain_guard.schemas.params import DataParams, SchemaParams
from retrain_guard.tasks.load import read_table
from retrain_guard.tasks.validation import declare_schema, validate_frame

DATA = DataParams(path="x", label="is_fraud", label_time="event_time", id_column="transaction_id")


@pytest.fixture(scope="module")
def drafted(example_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("draft") / "transactions.yaml"
    code = main(["infer-schema", "--data", str(example_csv), "--label", "is_fraud", "--out",
                 str(out)])  # fmt: skip
    assert code == 0
    return out


def _check(frame: pd.DataFrame, schema: Path):  # type: ignore[no-untyped-def]
    params = SchemaParams(name=str(schema))
    declared = declare_schema(params, DATA, [str(c) for c in frame.columns])
    return validate_frame(frame, declared, DATA, params)[1]


def test_draft_guesses_roles_ranges_categories_and_marks_review(drafted: Path) -> None:
    spec = load_spec(drafted)
    roles = spec.parsed_roles()
    assert (roles.label, roles.label_time, roles.id) == ("is_fraud", "event_time", "transaction_id")
    assert roles.declarations()["account_opened_at"] == "account_opened_at"
    assert spec.columns["transaction_id"].unique
    assert spec.columns["distance_from_home_km"].nullable
    assert not spec.columns["amount"].nullable and spec.columns["amount"].ge == 0
    assert spec.columns["channel"].isin == ["atm", "online", "pos"]
    assert spec.columns["is_fraud"].isin == [0, 1]
    assert spec.columns["card_age_days"].dtype == "int64"
    assert [c.label for c in spec.checks] == ["account_opened_at <= event_time"]
    text = drafted.read_text()
    assert "label_time: event_time  # REVIEW: guessed" in text
    assert "amount:  # REVIEW: range seen" in text
    assert "channel:  # REVIEW: the 3 categories" in text


def test_draft_accepts_the_example(drafted: Path, example_csv: Path) -> None:
    check = _check(read_table(example_csv), drafted)
    assert check.status == "pass", check.metrics.get("failures")


def test_draft_rejects_a_corrupted_copy(drafted: Path, example_csv: Path) -> None:
    frame = read_table(example_csv).head(1000).copy()
    frame["card_age_days"] = frame["card_age_days"].astype("float64")  # shuffled dtypes
    frame["amount"] = frame["amount"].astype("str")
    frame.loc[3, "channel"] = "carrier-pigeon"  # a new category
    frame.loc[[4, 5], "txn_count_24h"] = 10_000  # out of range
    check = _check(frame, drafted)
    assert check.status == "fail"
    found = {(f["column"], f["check"].split("(")[0]): f for f in check.metrics["failures"]}
    assert ("card_age_days", "dtype") in found and ("amount", "dtype") in found
    assert found[("channel", "isin")]["rows"][0]["value"] == "carrier-pigeon"
    assert found[("txn_count_24h", "less_than_or_equal_to")]["count"] == 2


def test_infer_schema_names_an_absent_label(example_csv: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["infer-schema", "--data", str(example_csv), "--label", "nope", "--out",
                 str(tmp_path / "s.yaml")])  # fmt: skip
    assert code == 2
    assert "--label 'nope': no such column" in capsys.readouterr().err
