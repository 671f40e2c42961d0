"""The real flow and command on every source, against the services the tests start: a run
reaches the gate, each unusable source is exit 2 (or a failed run) naming it, and no secret
appears in any message, log, report, artifact or file written."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters

from retrain_guard.flows.cli import main
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.report import Report, RetrainGuardHalt
from tests.conftest import params_for
from tests.sources.conftest import PG_BAD_PASSWORD, PG_PASSWORD, S3_BAD_SECRET, TABLE
from tests.sources.services import BUCKET, PostgresService, S3Service

ROLES = ["--label", "is_fraud", "--label-time", "event_time", "--id", "transaction_id"]
NO_RETRIES = {"config_kwargs": {"retries": {"max_attempts": 1}}}


def _secrets(s3: S3Service) -> list[str]:
    return [s3.secret, S3_BAD_SECRET, PG_PASSWORD, PG_BAD_PASSWORD]


def _written(*places: Path) -> str:
    """Everything under the given files and directories, as text."""
    texts = []
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        texts += [p.read_bytes().decode("utf-8", "replace") for p in files]
    return "\n".join(texts)


def _assert_clean(text: str, s3: S3Service) -> None:
    leaked = [secret for secret in _secrets(s3) if secret in text]
    assert leaked == [], "a secret was written"


def _reached_gate(report: Report) -> None:
    ran = {c.stage for c in report.checks if c.status != "not_run"}
    assert "gate" in ran, report.one_line()


def _report_of(result: Report | RetrainGuardHalt | Any) -> Report:
    if isinstance(result, RetrainGuardHalt):
        return result.report
    assert isinstance(result, Report), result
    return result


def _data(path: str | None = None, **source: Any) -> dict[str, Any]:
    return {"path": path, **source}


def _run(data: dict[str, Any], output_dir: Path) -> Report:
    params = params_for("-", output_dir, data=data)
    state = retrain(params, return_state=True)
    return _report_of(state.result(raise_on_failure=False))


def _aws_credentials(s3: S3Service, secret: str | None = None) -> AwsCredentials:
    return AwsCredentials(
        aws_access_key_id=s3.key,
        aws_secret_access_key=secret or s3.secret,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=s3.endpoint),
    )


@pytest.fixture(scope="module")
def blocks(s3: S3Service, pg: PostgresService) -> None:
    _aws_credentials(s3).save("moto", overwrite=True)
    _aws_credentials(s3, S3_BAD_SECRET).save("moto-bad", overwrite=True)
    S3Bucket(bucket_name=BUCKET, credentials=_aws_credentials(s3)).save("training", overwrite=True)
    Secret(value=pg.url()).save("pg-url", overwrite=True)


def test_flow_on_s3_parquet_with_storage_options(
    s3: S3Service, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = _run(_data(f"s3://{BUCKET}/example.parquet", storage_options=s3.options()), tmp_path)
    _reached_gate(report)
    echoed = report.run["parameters"]["data"]
    assert echoed["storage_options"]["secret"] == "***"
    _assert_clean(_written(tmp_path) + "".join(capfd.readouterr()), s3)


def test_flow_on_s3_partitioned_dataset_with_a_credentials_block(
    s3: S3Service, blocks: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = _data(f"s3://{BUCKET}/partitioned", credentials_block="aws-credentials/moto")
    report = _run(data, tmp_path)
    _reached_gate(report)
    assert {"channel", "txn_count_24h"} <= set(report.data.columns)
    _assert_clean(_written(tmp_path) + "".join(capfd.readouterr()), s3)


def test_cli_on_s3_csv_in_an_s3_bucket_block(
    s3: S3Service, blocks: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    argv = ["run", "--data", "example.csv", "--credentials-block", "s3-bucket/training"]
    code = main([*argv, *ROLES, "--output-dir", str(tmp_path / "out"), "--report", str(report)])
    out, err = capfd.readouterr()
    assert code in (0, 1), err
    _reached_gate(Report.model_validate_json(report.read_text()))
    _assert_clean(_written(tmp_path) + out + err, s3)


def test_flow_on_postgres_through_a_secret_block(
    s3: S3Service, blocks: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = _run(_data(sql=TABLE, connection="pg-url"), tmp_path)
    _reached_gate(report)
    assert report.run["parameters"]["data"]["connection"] == "pg-url"
    _assert_clean(_written(tmp_path) + "".join(capfd.readouterr()), s3)


def test_cli_on_postgres_with_the_password_in_the_url(
    s3: S3Service, pg: PostgresService, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    argv = ["validate", "--sql", f"SELECT *\nFROM {TABLE}", "--connection", pg.url()]
    code = main([*argv, *ROLES, "--output-dir", str(tmp_path / "out"), "--report", str(report)])
    out, err = capfd.readouterr()
    assert code in (0, 1), err
    written = json.loads(report.read_text())
    assert written["run"]["parameters"]["data"]["connection"] == pg.url("***")
    _assert_clean(_written(tmp_path) + out + err, s3)


def test_cli_on_sqlite(
    s3: S3Service, sqlite_db: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    argv = ["run", "--sql", TABLE, "--connection", f"sqlite:///{sqlite_db}"]
    code = main([*argv, *ROLES, "--output-dir", str(tmp_path / "out"), "--report", str(report)])
    assert code in (0, 1), capfd.readouterr().err
    _reached_gate(Report.model_validate_json(report.read_text()))


def _cases(s3: S3Service, pg: PostgresService, sqlite_db: Path) -> list[tuple[list[str], str]]:
    """Unusable sources, as CLI arguments, and what the one error line must name."""
    good, bad = s3.options(), s3.options(S3_BAD_SECRET)
    closed = {**good, **NO_RETRIES, "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}
    s3_key = f"s3://{BUCKET}/example.parquet"
    sqlite = f"sqlite:///{sqlite_db}"
    return [
        (["--data", s3_key, "--storage-options", json.dumps(bad)], f"{s3_key}: access denied"),
        (["--data", s3_key, "--credentials-block", "moto-bad"], f"{s3_key}: access denied"),
        (["--data", s3_key, "--storage-options", json.dumps(closed)], "cannot be reached"),
        (
            ["--data", "s3://no-bucket/x.parquet", "--storage-options", json.dumps(good)],
            "s3://no-bucket/x.parquet: no such file, key or bucket",
        ),
        (
            ["--data", f"s3://{BUCKET}/nope.csv", "--storage-options", json.dumps(good)],
            f"s3://{BUCKET}/nope.csv: no such file, key or bucket",
        ),
        (["--data", s3_key, "--credentials-block", "nowhere"], "'nowhere': no such"),
        (
            ["--sql", TABLE, "--connection", pg.url(PG_BAD_PASSWORD)],
            "password authentication failed",
        ),
        (["--sql", TABLE, "--connection", pg.url(port=9)], "Connection refused"),
        (
            ["--sql", "missing_table", "--connection", pg.url()],
            "table 'missing_table' on postgresql+psycopg://guard:***@",
        ),
        (
            ["--sql", f"SELECT nope\nFROM {TABLE}", "--connection", pg.url()],
            "query 'SELECT nope' on postgresql+psycopg://guard:***@127.0.0.1",
        ),
        (["--sql", "SELEC * FROM x", "--connection", pg.url()], "syntax error"),
        (["--sql", "missing_table", "--connection", sqlite], f"on {sqlite}: no such table"),
        (["--sql", TABLE, "--connection", "no-such-block"], "'no-such-block': no Secret block"),
    ]


def test_unusable_sources_exit_2_naming_the_source(
    s3: S3Service,
    pg: PostgresService,
    sqlite_db: Path,
    blocks: None,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for number, (source, named) in enumerate(_cases(s3, pg, sqlite_db)):
        report = tmp_path / f"report-{number}.json"
        code = main(["validate", *source, *ROLES, "--report", str(report)])
        out, err = capfd.readouterr()
        assert code == 2, (source, err)
        assert named in err, err
        assert "Traceback" not in err
        written = json.loads(report.read_text())
        assert written["failure"]["code"] == "input_unreadable", written
        _assert_clean(out + err + json.dumps(written), s3)
    _assert_clean(caplog.text + _written(tmp_path), s3)


def test_a_flow_on_bad_credentials_fails_naming_the_source(
    s3: S3Service, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    key = f"s3://{BUCKET}/example.parquet"
    report = _run(_data(key, storage_options=s3.options(S3_BAD_SECRET)), tmp_path)
    assert report.failure is not None and report.failure.code == "input_unreadable"
    assert report.failure.summary.startswith(f"{key}: access denied")
    _assert_clean(_written(tmp_path) + "".join(capfd.readouterr()), s3)


async def _server_records() -> str:
    """Every log line, artifact and flow run's parameters the Prefect server holds."""
    async with get_client() as client:
        logs = await client.read_logs()
        artifacts = await client.read_artifacts()
        runs = await client.read_flow_runs()
    return "\n".join(
        [log.message for log in logs]
        + [json.dumps(a.data, default=str) for a in artifacts]
        + [json.dumps(r.parameters, default=str) for r in runs]
    )


def test_no_secret_reaches_the_prefect_server(
    s3: S3Service, pg: PostgresService, tmp_path: Path
) -> None:
    # Runs of their own, so this holds whichever tests ran before.
    _run(_data(sql=TABLE, connection=pg.url()), tmp_path / "pg")
    _run(_data(f"s3://{BUCKET}/x.parquet", storage_options=s3.options(S3_BAD_SECRET)), tmp_path)
    records = asyncio.run(_server_records())
    assert "storage_options" in records and "***" in records
    _assert_clean(records, s3)
