from flows.cli import build_parser, params_from_args


def test_flags_map_onto_the_parameter_model() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--data",
            "t.csv",
            "--label",
            "y",
            "--label-time",
            "t",
            "--drop",
            "a, b",
            "--sampler",
            "smote",
            "--model",
            "random_forest",
            "--on-leakage",
            "drop",
            "--threshold",
            "0.3",
        ]
    )
    params = params_from_args(args)
    assert params.data.drop == ["a", "b"]
    assert params.resample.sampler == "smote"
    assert params.model.name == "random_forest"
    assert params.model.decision_threshold == 0.3
    assert params.leakage.on_leakage == "drop"
    assert params.model.class_weight == "balanced", "unset flags keep the defaults"
