"""One-hot encoding of the leading categorical codes, written straight into the matrix the
estimator fits on.

scikit-learn's ColumnTransformer of a OneHotEncoder with the numbers passed through holds
the one-hot block, a copy of the numbers and their join at once: at 1.13M training rows of
the benchmark's 27-column table, 1.15 GiB above its input for a matrix of 0.70 GiB
(benchmarks/RESULTS.md, issue 13). `OneHotThenNumbers` allocates the matrix once and fills
it, with the same columns in the same order and the same values as that transformer gave:
each categorical column's categories are the sorted distinct codes seen in fit, one column
each, and a code not seen then (the ordinal encoder's -1 for an unknown value) is all zeros;
the numbers follow as they are.
"""

from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class OneHotThenNumbers(TransformerMixin, BaseEstimator):
    """One-hot the first `n_categorical` columns (integer codes); pass the rest through.

    The output is float64, as the estimator after it is fitted on.
    """

    def __init__(self, n_categorical: int = 0) -> None:
        self.n_categorical = n_categorical

    def fit(self, X: Any, y: Any = None) -> Self:
        values = _matrix(X)
        if not 0 <= self.n_categorical <= values.shape[1]:
            raise ValueError(
                f"n_categorical={self.n_categorical} for a matrix of {values.shape[1]} columns"
            )
        self.categories_ = [np.unique(values[:, j]) for j in range(self.n_categorical)]
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "categories_")
        values = _matrix(X)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {values.shape[1]} columns; the encoder was fitted on {self.n_features_in_}"
            )
        start = sum(len(c) for c in self.categories_)
        numbers = values[:, self.n_categorical :]
        out = np.zeros((len(values), start + numbers.shape[1]), dtype=np.float64)
        offset = 0
        for j, categories in enumerate(self.categories_):
            if len(categories):
                codes = values[:, j]
                at = np.searchsorted(categories, codes)
                np.minimum(at, len(categories) - 1, out=at)
                rows = np.flatnonzero(categories[at] == codes)
                out[rows, offset + at[rows]] = 1.0
            offset += len(categories)
        out[:, start:] = numbers
        return out


def _matrix(X: Any) -> np.ndarray:
    values = np.asarray(X)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-dimensional matrix, got {values.ndim} dimension(s)")
    return values
