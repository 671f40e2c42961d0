"""Leakage detection: features and rows that tell the model what it could not know.

One module per kind of leak; each measures (`measure_*`, typed measurements), then judges
(`judge_*`, against thresholds of `LeakageParams`) into `Finding`s and a `Judged` check.

    table.py          LeakageTable: the frame, roles, settings and what checks derive
    date_leads.py     how many of each date column's values fall after the label time
    column_dates.py   text and numbers read as dates a partition at a time (stored tables)
    temporal.py       temporal_leakage (L3.1): dates and declared known-at times after the
                      label time; leakage_config_invalid; ambiguous_dates
    missingness.py    missingness_leakage (L2): presence of a value reveals the class
    target.py         target_leakage (L2): one feature alone ranks the classes
    order.py          order_leakage (L2): the row order or the id ranks the classes
    auc.py            the single-feature ROC-AUC kernels target.py and order.py share
    rank_counts.py    order.py's pairs counted without ranking the whole column
    time_bins.py      label-time quantile bins (a stored table's a partition at a time)
    resampling.py     resampling_leakage (L1.2): copies and SMOTE traces before the split
    segments.py       SMOTE's geometry (rows on segments between neighbours, rounding grids)
    split_sharing.py  split_leakage (L1.4): rows shared by the training part and the holdout
    rows.py           rows as hashes, for resampling.py and split_sharing.py
    findings.py       Finding, Judged, and how findings make a check's result
    policy.py         on_leakage (fail, drop, warn) applied to judged checks
    detect.py         runs the registered checks (detect_leakage, detect_label_free_leakage),
                      the LeakageOutcome, and the Prefect tasks

A new whole-table leakage check: a module here with its measure and judge functions
(returning `Judged` through `findings.judged_from_findings`) and a `run(table: LeakageTable)
-> Judged`; its entry in tasks/registry.py naming that function (`runs=
"retrain_guard.tasks.leakage.<module>:run"`), which places it in the run and the report; and tests.
Dates and time zones come from tasks/dates.py, offsets from tasks/offsets.py. This file
imports nothing, so importing one module loads only what it needs.
"""
