from pathlib import Path

import numpy as np
import pandas as pd

from retrain_guard.flows.example_data import make_transactions, write_table
from retrain_guard.flows.retrain import retrain
from retrain_guard.schemas.report import Report
from tests.conftest import params_for


def test_coarse_label_times_warn_in_the_report_with_the_tied_rows(tmp_path: Path) -> None:
    # A quarter's extract labelled by month: each row's label time is the end of its month
    # (every other date stays before it), so a third of the rows share the last one.
    frame = make_transactions(rows=3000)
    times = frame["event_time"]
    ends = times.quantile([1 / 3, 2 / 3, 1.0], interpolation="higher").to_numpy()
    frame = frame.assign(event_time=ends[np.searchsorted(ends, times.to_numpy())])
    path = write_table(frame, tmp_path / "monthly.parquet")
    report = retrain(params_for(path, tmp_path))
    assert isinstance(report, Report)
    check = next(c for c in report.checks if c.code == "holdout_fraction_off")
    assert check.status == "warn" and check.stage == "split"
    split = report.metrics["split"]
    assert isinstance(split, dict)
    tied = split["rows_tied_at_cut"]
    assert tied == split["holdout_rows"] == int((frame["event_time"] == ends[-1]).sum())
    assert f"{tied} rows share the label time {pd.Timestamp(ends[-1]).isoformat()}" in (
        check.summary
    )
