"""Shared builders: small, seeded frames and parameters."""

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.schemas.params import RetrainParams

# Offline: Prefect's telemetry would try DNS. Set before any test imports a server.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parents[1]


def example_sections(path: Path | str, output_dir: Path | str, **overrides: Any) -> dict[str, Any]:
    """The parameters of a run on the example table as plain sections (what a deployment run
    is given); `overrides` are dicts merged into their sections."""
    base: dict[str, Any] = {
        "data": {
            "path": str(path),
            "label": "is_fraud",
            "label_time": "event_time",
            "id_column": "transaction_id",
        },
        "publish": {"output_dir": str(output_dir)},
    }
    for section, values in overrides.items():
        base[section] = {**base.get(section, {}), **values}
    return base


def params_for(path: Path | str, output_dir: Path | str, **overrides: Any) -> RetrainParams:
    """Parameters for the example table; `overrides` are nested dicts per section."""
    return RetrainParams.model_validate(example_sections(path, output_dir, **overrides))


@pytest.fixture(scope="session")
def example_frame() -> pd.DataFrame:
    return make_transactions()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def example_csv(data_dir: Path, example_frame: pd.DataFrame) -> Path:
    return write_table(example_frame, data_dir / "example.csv")


@pytest.fixture(scope="session")
def collapse_csv(data_dir: Path) -> Path:
    """About 0.5% positives and a weak signal: an unweighted model predicts one class."""
    return write_table(
        make_transactions(rows=20_000, positive_rate=0.005, signal=0.3, seed=11),
        data_dir / "collapse.csv",
    )


@pytest.fixture(scope="session")
def leaky_parquet(data_dir: Path) -> Path:
    return write_table(make_transactions(leaky=True), data_dir / "leaky.parquet")
