"""Schema of the bundled example: card transactions with a rare fraud label."""

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

CATEGORIES = ("grocery", "fuel", "restaurants", "travel", "electronics", "online", "pharmacy")
CHANNELS = ("pos", "online", "atm")
LABEL = "is_fraud"
LABEL_TIME = "event_time"
ID = "transaction_id"


class Transactions(pa.DataFrameModel):
    """One card transaction; `is_fraud` is the label, `event_time` the label time."""

    transaction_id: Series[str] = pa.Field(unique=True)
    event_time: Series[pd.Timestamp]
    amount: Series[float] = pa.Field(ge=0)
    merchant_category: Series[str] = pa.Field(isin=list(CATEGORIES))
    channel: Series[str] = pa.Field(isin=list(CHANNELS))
    card_age_days: Series[int] = pa.Field(ge=0)
    txn_count_24h: Series[int] = pa.Field(ge=0)
    distance_from_home_km: Series[float] = pa.Field(ge=0, nullable=True)
    account_opened_at: Series[pd.Timestamp]
    is_fraud: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        name = "transactions"
        strict = False
        # Read by the schema stage (pandera keeps it on the model): same form as YAML roles.
        metadata = {  # noqa: RUF012
            "roles": {
                "label": LABEL,
                "label_time": LABEL_TIME,
                "id": ID,
                "known_at": {
                    "amount": "0d",
                    "merchant_category": "0d",
                    "channel": "0d",
                    "card_age_days": "0d",
                    "txn_count_24h": "0d",
                    "distance_from_home_km": "0d",
                    "account_opened_at": "account_opened_at",
                },
            }
        }

    @pa.dataframe_check(name="account_opened_before_event")
    def account_opened_before_event(cls, df: pd.DataFrame) -> Series[bool]:
        """An account is opened before any of its transactions."""
        return Series(df["account_opened_at"] <= df["event_time"])
