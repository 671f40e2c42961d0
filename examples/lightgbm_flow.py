"""A user's own retraining flow guarded by retrain-guard: the table read from SQL, the data
checks, a LightGBM model trained by the user's own code, the model gate, and publishing.

    python examples/lightgbm_flow.py --workdir out/example        # passes, publishes
    python examples/lightgbm_flow.py --workdir out/example --collapse   # halts at the gate

The SQLite database stands in for the warehouse a team reads its training extract from: the
example creates it from retrain-guard's bundled example data, then reads it back with pandas
and SQLAlchemy as any user query would.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import lightgbm
import pandas as pd
from prefect import flow, task
from sqlalchemy import create_engine

import retrain_guard

LABEL = "is_fraud"
LABEL_TIME = "event_time"
CATEGORICAL = ["merchant_category", "channel"]
NUMERIC = ["amount", "card_age_days", "txn_count_24h", "distance_from_home_km"]
# A model without class weights that learns next to nothing: its scores stay near the 0.8%
# prior, below the decision threshold, so it predicts one class and the gate halts the run.
LIGHTGBM_TYPES = [
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
]
COLLAPSING = {"class_weight": None, "n_estimators": 1, "learning_rate": 0.001}


@task
def create_database(path: Path) -> str:
    """Write the bundled example table into a SQLite database; return its SQLAlchemy URL."""
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    table = retrain_guard.make_transactions()
    table.to_sql("transactions", engine, index=False, if_exists="replace")
    engine.dispose()
    return url


@task
def read_training_table(url: str) -> pd.DataFrame:
    """Read the training extract with a query, as the user's pipeline does."""
    engine = create_engine(url)
    try:
        return pd.read_sql(
            "SELECT * FROM transactions ORDER BY event_time",
            engine,
            parse_dates=[LABEL_TIME, "account_opened_at"],
        )
    finally:
        engine.dispose()


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The user's own feature preparation: LightGBM reads categories natively."""
    prepared = frame[NUMERIC].copy()
    for column in CATEGORICAL:
        prepared[column] = frame[column].astype("category")
    return prepared


@task
def train_lightgbm(X: pd.DataFrame, y: pd.Series, settings: dict[str, Any]) -> Any:
    """Fit the user's LightGBM model."""
    model = lightgbm.LGBMClassifier(random_state=0, verbose=-1, **settings)
    return model.fit(X, y)


@flow(name="user-retrain-lightgbm")
def retrain_lightgbm(
    workdir: str, lightgbm_settings: dict[str, Any] | None = None
) -> retrain_guard.Report:
    """Read, check, train, judge and publish; a failing check raises RetrainGuardHalt."""
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    frame = read_training_table(create_database(root / "warehouse.sqlite"))
    settings = {"class_weight": "balanced", **(lightgbm_settings or {})}
    params = {
        "data": {"label": LABEL, "label_time": LABEL_TIME, "id_column": "transaction_id"},
        # How the model is trained, for the diagnosis of a collapse.
        "model": {"class_weight": "balanced" if settings["class_weight"] else "none"},
        # The exact types a published LightGBM model holds beyond retrain-guard's own: a job
        # loading it trusts these and nothing broader.
        "publish": {"output_dir": str(root / "guard"), "trusted_types": LIGHTGBM_TYPES},
    }
    retrain_guard.check_data(frame, params)

    # The user's own split: the latest 20% of rows by event time are the holdout.
    cut = int(len(frame) * 0.8)
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    model = train_lightgbm(features(train), train[LABEL], settings)
    report = retrain_guard.check_model(
        model,
        features(holdout),
        holdout[LABEL],
        params,
        X_train=features(train),
        y_train=train[LABEL],
    )
    return retrain_guard.publish_model(model, report, params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="out/example", help="database and outputs go here")
    parser.add_argument("--collapse", action="store_true", help="train a model that collapses")
    args = parser.parse_args()
    try:
        report = retrain_lightgbm(args.workdir, COLLAPSING if args.collapse else None)
    except retrain_guard.RetrainGuardHalt as halt:
        print(f"HALTED {halt}", file=sys.stderr)
        for cause in halt.report.diagnosis:
            print(f"  {cause.title}: {cause.remedy}", file=sys.stderr)
        return 1
    assert report.published is not None, "a passing report is published"
    print(f"published {report.published.model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
