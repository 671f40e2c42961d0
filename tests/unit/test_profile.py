import pandas as pd

from retrain_guard.tasks.profile import judge_label, measure_label


def test_minority_class_is_the_positive_one_whatever_its_value() -> None:
    profile = measure_label(pd.DataFrame({"y": ["ok"] * 9 + ["fraud"]}), "y")
    assert profile.positive == "fraud" and profile.negative == "ok"
    assert profile.counts == {"fraud": 1, "ok": 9}
    assert judge_label(profile, "y").status == "pass"


def test_one_class_fails_with_single_class_target() -> None:
    check = judge_label(measure_label(pd.DataFrame({"y": [0, 0, 0]}), "y"), "y")
    assert check.code == "single_class_target" and check.status == "fail"
    assert check.columns == ["y"] and "one class" in check.summary


def test_extreme_imbalance_warns() -> None:
    check = judge_label(measure_label(pd.DataFrame({"y": [0] * 999 + [1]}), "y"), "y")
    assert check.status == "warn" and "extreme imbalance" in check.summary
    assert check.metrics["minority_share"] == 0.001


def test_unused_categories_of_a_categorical_label_are_no_class() -> None:
    labels = pd.Categorical(["no"] * 8 + ["yes"] * 2, categories=["maybe", "no", "yes"])
    profile = measure_label(pd.DataFrame({"y": labels}), "y")
    assert profile.positive == "yes" and profile.counts == {"no": 8, "yes": 2}


def test_unlabelled_rows_are_left_out_and_counted() -> None:
    from retrain_guard.tasks.profile import drop_unlabelled

    frame = pd.DataFrame({"y": [0, 1, None, 0, None]})
    kept, check = drop_unlabelled(frame, "y")
    assert len(kept) == 3 and kept["y"].notna().all()
    assert check is not None and check.code == "unlabelled_rows" and check.status == "warn"
    assert check.metrics["rows"] == 2
    again, none = drop_unlabelled(kept, "y")
    assert again is kept and none is None
