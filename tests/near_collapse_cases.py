"""A lending-like table on which an unweighted model nearly collapses (issue 9, point 1).

The reported case: 10,000 loans, 1.8% bad, numeric features only; logistic regression
without class weights predicted the minority class for 1 holdout row while 49 truly were
bad. This seeded generator reproduces that shape: a real but moderate signal (holdout
ROC-AUC near 0.8), so an unweighted model's scores rank the loans well yet almost none
reaches 0.5; balanced weights or SMOTE predict the minority for many rows.
"""

import numpy as np
import pandas as pd

LABEL = "bad_loan"
LABEL_TIME = "issued_at"


def make_loans(
    rows: int = 10_000, positive_rate: float = 0.018, signal: float = 1.3, seed: int = 0
) -> pd.DataFrame:
    """Return seeded loans with label `bad_loan` (1 = bad) and monthly issue dates.

    Args:
        rows: number of loans.
        positive_rate: exact share of bad loans (the top of a noisy risk score).
        signal: weight of the features in the risk score against logistic noise.
        seed: random seed; the same arguments always give the same table.
    """
    rng = np.random.default_rng(seed)
    # Lending grows over three years, and issue dates are monthly, as lenders publish them.
    month = np.sort(np.floor(36 * np.sqrt(rng.uniform(0.0, 1.0, rows)))).astype("int64")
    issued = pd.to_datetime(
        pd.DataFrame({"year": 2020 + month // 12, "month": month % 12 + 1, "day": 1})
    )
    income = np.round(rng.lognormal(10.8, 0.5, rows), -2)
    amount = np.round(rng.lognormal(9.3, 0.7, rows), -2)
    debt_to_income = np.round(np.clip(rng.normal(0.3, 0.12, rows), 0.0, None), 3)
    credit_score = np.round(np.clip(rng.normal(700.0, 40.0, rows), 300.0, 850.0))
    delinquencies = rng.poisson(0.3, rows)
    employment_years = rng.integers(0, 41, rows)
    risk = (
        -0.5 * np.log(income / 50_000)
        + 0.4 * np.log(amount / 10_000)
        + 3.0 * (debt_to_income - 0.3)
        - (credit_score - 700.0) / 40.0
        + 0.4 * delinquencies
        - 0.02 * employment_years
    )
    score = signal * risk + rng.logistic(0.0, 1.0, rows)
    label = np.zeros(rows, dtype="int64")
    label[np.argsort(-score, kind="stable")[: round(positive_rate * rows)]] = 1
    return pd.DataFrame(
        {
            LABEL_TIME: issued,
            "income": income,
            "loan_amount": amount,
            "debt_to_income": debt_to_income,
            "credit_score": credit_score,
            "delinquencies": delinquencies.astype("int64"),
            "employment_years": employment_years.astype("int64"),
            LABEL: label,
        }
    )
