"""Deterministic example data: card transactions with a rare fraud label.

The signal is planted so that a cost-sensitive model finds it, while an unweighted
model on the same data predicts only the majority class: both outcomes of the gate
can be seen on one dataset.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from retrain_guard.schemas.example import CATEGORIES, CHANNELS, ID, LABEL, LABEL_TIME

# Fraud is likelier in some categories; these are log-odds added per category.
CATEGORY_RISK = {
    "grocery": -0.3,
    "fuel": 0.0,
    "restaurants": -0.2,
    "travel": 0.3,
    "electronics": 0.9,
    "online": 0.7,
    "pharmacy": -0.4,
}
START = pd.Timestamp("2025-01-01")


def make_transactions(
    rows: int = 20_000,
    positive_rate: float = 0.008,
    signal: float = 1.5,
    seed: int = 7,
    leaky: bool = False,
) -> pd.DataFrame:
    """Return a seeded table of transactions with label `is_fraud` and time `event_time`.

    Args:
        rows: number of rows.
        positive_rate: exact share of rows labelled 1 (the top of a noisy risk score).
        signal: weight of the features in the risk score relative to the noise;
            1.5 gives a holdout ROC-AUC near 0.82, 0.3 almost none.
        seed: random seed; the same arguments always give the same table.
        leaky: add `chargeback_at`, a date known only weeks after the label time and
            filled only for fraud: the classic date leak.
    """
    if rows < 10:
        raise ValueError("rows must be at least 10")
    if not 0.0 < positive_rate < 0.5:
        raise ValueError("positive_rate must be in (0, 0.5)")
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 365 * 24 * 3600, rows))
    event_time = START + pd.to_timedelta(np.round(seconds), unit="s")

    amount = np.round(rng.lognormal(mean=3.5, sigma=0.6, size=rows), 2)
    category = rng.choice(CATEGORIES, size=rows)
    channel = rng.choice(CHANNELS, size=rows, p=[0.6, 0.3, 0.1])
    card_age_days = rng.integers(1, 3650, size=rows)
    txn_count_24h = rng.poisson(2.0, size=rows)
    distance = np.round(rng.exponential(15.0, size=rows), 1)
    distance_missing = rng.random(rows) < 0.05
    account_opened_at = event_time - pd.to_timedelta(
        card_age_days + rng.integers(0, 400, size=rows), unit="D"
    )

    risk = (
        0.8 * np.clip(np.log(amount) - 3.5, -2.0, 2.0)
        + np.vectorize(CATEGORY_RISK.__getitem__)(category)
        + 0.5 * (channel == "online")
        - 0.5 * np.log1p(card_age_days / 365)
        + 0.35 * np.minimum(txn_count_24h - 2.0, 4.0)
        + 0.02 * np.minimum(distance, 60.0)
    )
    score = signal * risk + rng.logistic(0.0, 1.0, size=rows)
    positives = round(positive_rate * rows)
    label = np.zeros(rows, dtype="int64")
    label[np.argsort(-score, kind="stable")[:positives]] = 1

    frame = pd.DataFrame(
        {
            ID: [f"tx-{i:07d}" for i in range(rows)],
            LABEL_TIME: event_time,
            "amount": amount,
            "merchant_category": category,
            "channel": channel,
            "card_age_days": card_age_days.astype("int64"),
            "txn_count_24h": txn_count_24h.astype("int64"),
            "distance_from_home_km": np.where(distance_missing, np.nan, distance),
            "account_opened_at": account_opened_at.floor("D"),
            LABEL: label,
        }
    )
    if leaky:
        lag = pd.to_timedelta(rng.integers(20, 90, size=rows), unit="D")
        chargeback = (event_time + lag).floor("D")
        frame["chargeback_at"] = pd.Series(chargeback).where(label == 1)
    return frame


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as CSV or Parquet by the file's extension, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if target.suffix.lower() == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif target.suffix.lower() == ".csv":
        frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    else:
        raise ValueError(f"{target}: the extension must be .csv or .parquet")
    tmp.replace(target)
    return target
