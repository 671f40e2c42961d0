"""Schemas: pandera models of datasets, the flow's parameters and the report contract."""

import pandera.pandas as pa

from retrain_guard.schemas.example import Transactions

# Named schemas selectable with `schema.name` (CLI: --schema NAME).
SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "example": Transactions,
    "transactions": Transactions,
}
