"""Contract tests of the training pipeline, parametrised over every sampler and every model."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder

from retrain_guard.flows.example_data import make_transactions
from retrain_guard.schemas.params import ModelName, ModelParams, ResampleParams, Sampler
from retrain_guard.tasks.onehot import OneHotThenNumbers
from retrain_guard.tasks.resampling import (
    MIN_KEPT_MAJORITY_ROWS,
    MIN_TRAINING_MINORITY_ROWS,
    InsufficientMinority,
    RecordingSampler,
    ResamplingOutcome,
    make_sampler,
    minority_rows_needed,
)
from retrain_guard.tasks.training import (
    _as_object_strings,
    build_preparer,
    fit_model,
    positive_scores,
    predict_from_scores,
)

SAMPLERS: tuple[str, ...] = Sampler.__args__  # type: ignore[attr-defined]
MODELS: tuple[str, ...] = ModelName.__args__  # type: ignore[attr-defined]
ROLE_COLUMNS = ("transaction_id", "event_time", "is_fraud")
# Samplers that only add rows of the minority class, and those that only remove majority rows.
ADDS_MINORITY = ("random_over", "smote", "smotenc", "adasyn", "borderline_smote")


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    frame = make_transactions(rows=400, positive_rate=0.06, seed=5)
    features = [c for c in frame.columns if c not in ROLE_COLUMNS]
    y = frame["is_fraud"].to_numpy()
    return frame[features].iloc[:300], y[:300], frame[features].iloc[300:], y[300:]


# model.name custom runs in the contract tests as a scikit-learn class of the user's choosing.
CUSTOM = {"estimator": "sklearn.tree:DecisionTreeClassifier", "params": {"max_depth": 4}}


def _small(name: str, **extra: Any) -> ModelParams:
    custom = CUSTOM if name == "custom" else {}
    return ModelParams.model_validate({"name": name, "n_estimators": 10, **custom, **extra})


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_resampling_touches_the_training_part_only_and_the_model_predicts_new_data(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
    sampler: str,
    model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X_train, y_train, X_holdout, y_holdout = parts
    holdout_before = X_holdout.copy()
    seen: list[int] = []
    original = RecordingSampler.fit_resample

    def counting(self: RecordingSampler, X: Any, y: Any) -> Any:
        seen.append(len(y))
        return original(self, X, y)

    monkeypatch.setattr(RecordingSampler, "fit_resample", counting)
    trained = fit_model(X_train, y_train, _small(model), ResampleParams(sampler=sampler))
    predictions = trained.model.predict(X_holdout)
    scores = positive_scores(trained.model, X_holdout)

    # The sampler ran once, during fit, on exactly the training rows.
    assert seen == [len(y_train)]
    train_counts = {
        str(k): int(v) for k, v in zip(*np.unique(y_train, return_counts=True), strict=True)
    }
    assert trained.counts_before == train_counts
    # The holdout is neither changed nor resampled: one prediction per original row.
    pd.testing.assert_frame_equal(X_holdout, holdout_before)
    assert len(predictions) == len(scores) == len(y_holdout)
    before, after = trained.counts_before, trained.counts_after
    if sampler == "none":
        assert after == before
    elif sampler in ADDS_MINORITY:
        assert after["0"] == before["0"] and after["1"] > before["1"]
    elif sampler == "random_under":
        assert after["1"] == before["1"] and after["0"] < before["0"]
    else:  # smote_tomek, smote_enn: oversample, then clean
        assert after["1"] > before["1"] and after["0"] <= before["0"]

    # New rows with categories never seen in training and missing values still predict.
    new = X_holdout.head(5).copy()
    new["merchant_category"] = ["never-seen", None, "grocery", "another-new", "fuel"]
    new["channel"] = ["teleport", "pos", None, "online", "pos"]
    new.loc[new.index[0], "amount"] = np.nan
    new.loc[new.index[1], "account_opened_at"] = pd.NaT
    new_scores = positive_scores(trained.model, new)
    assert set(np.unique(trained.model.predict(new))) <= {0, 1}
    assert len(new_scores) == 5 and np.all((new_scores >= 0) & (new_scores <= 1))


def test_smotenc_keeps_categorical_codes_categorical(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    X_train, y_train, _, _ = parts
    trained = fit_model(
        X_train, y_train, _small("logistic_regression"), ResampleParams(sampler="smotenc")
    )
    pipeline = trained.model.estimator_
    steps = [name for name, _ in pipeline.steps]
    assert steps == ["prepare", "resample", "encode", "estimator"]
    coded = pipeline.named_steps["prepare"].transform(X_train)
    sampler = pipeline.named_steps["resample"]
    X_res, _ = RecordingSampler(
        sampler.sampler, sampler.target_ratio, sampler.k_neighbors, 0, sampler.n_categorical
    ).fit_resample(coded, y_train)
    # Synthetic rows carry existing whole-number category codes, never interpolations.
    categorical = X_res[:, : sampler.n_categorical]
    assert np.array_equal(categorical, np.round(categorical))
    assert set(np.unique(categorical)) <= set(np.unique(coded[:, : sampler.n_categorical]))


def test_other_samplers_resample_after_one_hot(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    X_train, y_train, _, _ = parts
    trained = fit_model(
        X_train, y_train, _small("logistic_regression"), ResampleParams(sampler="smote")
    )
    assert [n for n, _ in trained.model.estimator_.steps] == [
        "prepare",
        "encode",
        "resample",
        "estimator",
    ]


def test_fits_are_reproducible(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    X_train, y_train, X_holdout, _ = parts
    runs = [
        positive_scores(
            fit_model(
                X_train, y_train, _small("random_forest"), ResampleParams(sampler="smote")
            ).model,
            X_holdout,
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


COUNTS = {0: 100, 1: 4}


@pytest.mark.parametrize(
    "sampler", ["smote", "smotenc", "adasyn", "borderline_smote", "smote_tomek", "smote_enn"]
)
def test_too_few_minority_rows_lower_k_neighbors_and_say_so(sampler: str) -> None:
    built, notes = make_sampler(sampler, 1.0, 5, 0, COUNTS, n_categorical=1, n_columns=3)
    assert built is not None
    assert any("k_neighbors lowered from 5 to 3" in n and "4 minority rows" in n for n in notes)


@pytest.mark.parametrize(
    "sampler", ["smote", "smotenc", "adasyn", "borderline_smote", "smote_tomek", "smote_enn"]
)
def test_a_single_minority_row_halts_with_the_count_and_the_need(sampler: str) -> None:
    with pytest.raises(InsufficientMinority, match=r"at least 2 minority rows.*it has 1") as caught:
        make_sampler(sampler, 1.0, 5, 0, {0: 100, 1: 1}, n_categorical=1, n_columns=3)
    assert (caught.value.have, caught.value.need, caught.value.sampler) == (1, 2, sampler)


@pytest.mark.parametrize("sampler", ["random_over", "random_under", "smote"])
def test_a_ratio_already_reached_resamples_nothing(sampler: str) -> None:
    built, notes = make_sampler(sampler, 0.1, 5, 0, {0: 100, 1: 40})
    assert built is None
    assert "already reaches resample.target_ratio 0.1" in notes[0]


def test_borderline_smote_on_very_few_rows_lowers_its_danger_neighbourhood() -> None:
    X = np.array([[0.0], [0.2], [0.4], [0.6], [0.8], [1.0], [0.5], [0.7]])
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    sampler = RecordingSampler("borderline_smote", 1.0, 5, 0, 0)
    _, y_out = sampler.fit_resample(X, y)
    assert any("m_neighbors lowered from 10 to 7" in n for n in sampler.adaptations_)
    assert sampler.counts_before_ == {0: 6, 1: 2} and len(y_out) >= len(y)


def test_adasyn_falls_back_to_smote_when_no_minority_row_has_a_majority_neighbour() -> None:
    X = np.array([[float(i)] for i in range(20)] + [[100.0 + i] for i in range(6)])
    y = np.array([0] * 20 + [1] * 6)
    sampler = RecordingSampler("adasyn", 1.0, 5, 0, 0)
    _, y_out = sampler.fit_resample(X, y)
    assert any("smote was used instead" in n for n in sampler.adaptations_)
    assert np.bincount(y_out).tolist() == [20, 20]


def test_smotenc_without_categorical_or_numeric_columns_falls_back_and_says_so() -> None:
    built, notes = make_sampler("smotenc", 1.0, 5, 0, COUNTS | {1: 10}, 0, 3)
    assert type(built).__name__ == "SMOTE" and "ran as smote" in notes[0]
    built, notes = make_sampler("smotenc", 1.0, 5, 0, COUNTS | {1: 10}, 3, 3)
    assert type(built).__name__ == "SMOTEN" and "ran as smoten" in notes[0]


def test_target_ratio_sets_the_class_balance_after_resampling(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    X_train, y_train, _, _ = parts
    trained = fit_model(
        X_train,
        y_train,
        _small("logistic_regression"),
        ResampleParams(sampler="random_over", target_ratio=0.5),
    )
    assert trained.counts_after["1"] == round(0.5 * trained.counts_after["0"])


def test_adaptations_reach_the_sampler_check(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
) -> None:
    X_train, y_train, _, _ = parts
    keep = np.flatnonzero(y_train == 0).tolist() + np.flatnonzero(y_train == 1)[:3].tolist()
    params = ResampleParams(sampler="smote")
    trained = fit_model(X_train.iloc[keep], y_train[keep], _small("logistic_regression"), params)
    check = ResamplingOutcome.of(trained, params, ("0", "1")).check()
    assert check.status == "warn" and check.code == "sampler_adapted"
    assert "k_neighbors lowered from 5 to 2" in check.summary
    assert trained.counts_after["1"] == trained.counts_after["0"]


def test_a_sampler_that_empties_a_class_halts_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RemovesClassOne:
        """What an edited-nearest-neighbours cleaning can do to a tiny minority."""

        def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
            keep = np.asarray(y) == 0
            return np.asarray(X)[keep], np.asarray(y)[keep]

    monkeypatch.setattr(
        "retrain_guard.tasks.resampling.make_sampler", lambda *a, **k: (RemovesClassOne(), [])
    )
    X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(InsufficientMinority, match="removed every training row of class 1"):
        RecordingSampler("smote_enn").fit_resample(X, y)


def test_cross_validation_resamples_each_training_fold_only(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from retrain_guard.tasks.training import build_model

    X_train, y_train, _, _ = parts
    seen: list[int] = []
    original = RecordingSampler.fit_resample

    def counting(self: RecordingSampler, X: Any, y: Any) -> Any:
        seen.append(len(y))
        return original(self, X, y)

    monkeypatch.setattr(RecordingSampler, "fit_resample", counting)
    model = build_model(X_train, _small("logistic_regression"), ResampleParams(sampler="smote"))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    predictions = cross_val_predict(model, X_train, y_train, cv=folds)
    # One resampling per fold, each on that fold's training rows; every row predicted once.
    assert sorted(seen) == sorted(len(train) for train, _ in folds.split(X_train, y_train))
    assert len(predictions) == len(y_train)


@pytest.mark.parametrize("threshold", [0.5, 0.1, 0.9])
def test_predictions_from_scores_equal_the_models_own(
    parts: tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray], threshold: float
) -> None:
    X_train, y_train, X_holdout, _ = parts
    params = _small("logistic_regression", decision_threshold=threshold)
    trained = fit_model(X_train, y_train, params, ResampleParams())
    scores = positive_scores(trained.model, X_holdout)
    expected = np.asarray(trained.model.predict(X_holdout))
    assert np.array_equal(predict_from_scores(trained.model, scores), expected)


@pytest.mark.parametrize("sampler", ["none", "random_over", "random_under"])
def test_a_single_minority_row_halts_samplers_without_neighbours_too(sampler: str) -> None:
    need = MIN_KEPT_MAJORITY_ROWS if sampler == "random_under" else 2
    expected = rf"at least {need} minority rows.*it has 1"
    with pytest.raises(InsufficientMinority, match=expected) as e:
        make_sampler(sampler, 1.0, 5, 0, {0: 1598, 1: 1})
    assert (e.value.have, e.value.need, e.value.sampler) == (1, need, sampler)


def test_random_under_needs_enough_minority_rows_to_keep_a_sane_majority() -> None:
    assert minority_rows_needed("random_under", 1.0) == MIN_KEPT_MAJORITY_ROWS
    assert minority_rows_needed("random_under", 0.05) == MIN_TRAINING_MINORITY_ROWS
    assert minority_rows_needed("smote", 1.0) == MIN_TRAINING_MINORITY_ROWS
    with pytest.raises(InsufficientMinority, match="keep 5 of 1000 majority rows") as caught:
        make_sampler("random_under", 1.0, 5, 0, {0: 1000, 1: 5})
    assert (caught.value.have, caught.value.need) == (5, MIN_KEPT_MAJORITY_ROWS)
    built, _ = make_sampler("random_under", 1.0, 5, 0, {0: 1000, 1: MIN_KEPT_MAJORITY_ROWS})
    assert built is not None


def test_scores_of_a_users_frame_keep_its_own_column_labels() -> None:
    """A model fitted on a frame of integer column labels (a user's pd.DataFrame(array)) is
    scored on that frame as it is, a chunk of rows at a time, as predict_proba scores it."""
    from sklearn.linear_model import LogisticRegression

    from retrain_guard.tasks import training

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 3)))
    y = (X[0] + rng.normal(size=500) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    expected = model.predict_proba(X)[:, 1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "SCORE_ROWS", 128)
        np.testing.assert_allclose(positive_scores(model, X), expected)


@pytest.mark.parametrize("n_categorical", [0, 1, 3])
def test_one_hot_matrix_is_the_column_transformers_one(n_categorical: int) -> None:
    """OneHotThenNumbers writes the one-hot columns and the numbers into one matrix: the
    same matrix scikit-learn's ColumnTransformer of a OneHotEncoder gives, unknown codes
    (-1, or a code not seen in fit) all zeros."""
    rng = np.random.default_rng(n_categorical)
    codes = rng.integers(0, [4, 2, 7][:n_categorical] or 1, size=(500, max(n_categorical, 1)))
    numbers = rng.normal(size=(500, 2))
    fit_on = np.hstack([codes[:, :n_categorical], numbers]).astype("float64")
    reference = ColumnTransformer(
        [
            (
                "onehot",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(range(n_categorical)),
            )
        ],
        remainder="passthrough",
    ).fit(fit_on)
    encoder = OneHotThenNumbers(n_categorical).fit(fit_on)
    scored = fit_on.copy()
    scored[:50, :n_categorical] = -1.0
    scored[50:60, :n_categorical] = 9.0
    for X in (fit_on, scored):
        out = encoder.transform(X)
        assert out.dtype == np.float64
        assert np.array_equal(out, reference.transform(X))
    assert encoder.transform(scored[:0]).shape == (0, out.shape[1])
    with pytest.raises(ValueError, match="columns"):
        encoder.transform(fit_on[:, 1:])


def test_a_model_of_categorical_features_only_fits_and_scores() -> None:
    """With no numbers to follow them, the one-hot columns are the whole matrix."""
    frame = pd.DataFrame({"colour": ["red", "blue", "red", None] * 25, "size": list("SMLX") * 25})
    y = np.array([1, 0, 0, 0] * 25)
    trained = fit_model(frame, y, ModelParams(), ResampleParams())
    steps = trained.model.estimator_.named_steps
    encoded = steps["encode"].transform(steps["prepare"].transform(frame))
    assert encoded.shape == (100, 3 + 4)  # red, blue, (missing); S, M, L, X
    assert np.array_equal(encoded.sum(axis=1), np.full(100, 2.0))
    scores = positive_scores(trained.model, frame)
    assert scores.shape == (100,) and ((scores >= 0) & (scores <= 1)).all()


def test_categorical_values_become_object_strings_and_missing_one_category() -> None:
    """Every categorical dtype is coded alike: values by their text, every kind of missing
    value as '(missing)'; the columns stay object (no string dtype to convert once more)."""
    frame = pd.DataFrame(
        {
            "obj": pd.Series(["a", None, "b", np.nan, "a"], dtype=object),
            "mixed": pd.Series([1, "x", True, 2.5, None], dtype=object),
            "cat": pd.Categorical(["u", "v", None, "u", "v"]),
            "str": pd.Series(["p", None, "q", "p", "r"], dtype="str"),
            "arrow": pd.Series(["p", None, "q", pd.NA, "r"], dtype="string[pyarrow]"),
            "boolean": pd.Series([True, False, None, True, False], dtype="boolean"),
        }
    )
    prepare = build_preparer(frame, ModelParams())
    codes = prepare.fit_transform(frame)
    categories = prepare.named_transformers_["categorical"][-1].categories_
    assert [list(c) for c in categories] == [
        ["(missing)", "a", "b"],
        ["(missing)", "1", "2.5", "True", "x"],
        ["(missing)", "u", "v"],
        ["(missing)", "p", "q", "r"],
        ["(missing)", "p", "q", "r"],
        ["(missing)", "False", "True"],
    ]
    assert codes.T.tolist() == [
        [1.0, 0.0, 2.0, 0.0, 1.0],
        [1.0, 4.0, 3.0, 2.0, 0.0],
        [1.0, 2.0, 0.0, 1.0, 2.0],
        [1.0, 0.0, 2.0, 1.0, 3.0],
        [1.0, 0.0, 2.0, 0.0, 3.0],
        [2.0, 1.0, 0.0, 2.0, 1.0],
    ]
    strings = _as_object_strings(frame)
    assert all(strings[c].dtype == object for c in strings.columns)
    # A missing value is coded alike in any rows scored together: alone, or with values.
    alone = prepare.transform(frame.iloc[[1]].assign(str=None, arrow=None).astype(frame.dtypes))
    assert alone[0, 3] == 0.0 and alone[0, 4] == 0.0
