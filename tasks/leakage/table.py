"""What every whole-table leakage check reads: `LeakageTable`, built once per run.

Each check module has a `run(table) -> Judged` named by its entry in tasks/registry.py
(`runs`); tasks/leakage/detect.py builds the table and calls them in the registry's order.
"""

from dataclasses import dataclass

import numpy as np

from retrain_guard.schemas.params import DataParams, LeakageParams
from retrain_guard.tasks.leakage.time_bins import column_time_bins
from retrain_guard.tasks.quirks import kind_of, usable_columns
from retrain_guard.tasks.stored_table import Frame


@dataclass(frozen=True)
class LeakageTable:
    """The frame, its roles and settings, and what several checks derive from them.

    `positive` is None when the label cannot be used: only the checks marked `label_free`
    in the registry run then.
    """

    frame: Frame
    data: DataParams
    params: LeakageParams
    # Feature columns a check can measure (lists, bytes and mixed objects left out).
    features: list[str]
    positive: np.ndarray | None = None
    # The id column, when its values can be ranked.
    id_column: str | None = None
    # Rows per label-time bin, to compare rows of the same period.
    bins: list[np.ndarray] | None = None

    @property
    def label_positive(self) -> np.ndarray:
        """The rows of the positive class; only checks that need the label ask for it."""
        if self.positive is None:
            raise ValueError("a check that needs the label ran on a table without one")
        return self.positive

    @property
    def smaller_class(self) -> int:
        positive = self.label_positive
        return int(min(np.count_nonzero(positive), np.count_nonzero(~positive)))


def leakage_table(
    frame: Frame,
    data: DataParams,
    params: LeakageParams,
    positive_class: object | None = None,
) -> LeakageTable:
    """Return the table the checks read; without `positive_class`, one for label-free checks."""
    features = usable_columns(frame, data.feature_columns(frame.columns))
    if positive_class is None:
        return LeakageTable(frame, data, params, features)
    id_column = (
        data.id_column if data.id_column and kind_of(frame, data.id_column) is None else None
    )
    return LeakageTable(
        frame,
        data,
        params,
        features,
        positive=(frame[data.label] == positive_class).to_numpy(),
        id_column=id_column,
        bins=column_time_bins(frame, data.label_time) if data.label_time else None,
    )
