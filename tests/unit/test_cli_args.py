from pathlib import Path

import pytest

from retrain_guard.flows.cli import build_parser, main, params_from_args


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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data: {path: x.csv\nlabel: y\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping at the top, got list"),
    ],
)
def test_a_broken_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"retrain-guard: error: --config {config}: {message}")
