"""The Dask engine's `validate` on a table with a text date column (issue 13).

Run on demand (not in tests):
`.venv/bin/python -m benchmarks.text_dates [--rows 20000000] [--checkouts DIR ...]
[--label-time-text] [--workdir DIR]`.

engine_scale's table (benchmarks/engine_scale.py, generated or taken from its cache) is
copied a file at a time with one more column, `closed_date`: dd/mm/yyyy text (the day/month
order settled by the values), 0 to 90 days before to 4 days after the label time, missing
in 30% of rows. Its values after the label time make the run halt on temporal_leakage, as
it should. With `--label-time-text` the label time, event_time, is dd/mm/yyyy text as well
(a day's resolution): the Dask engine then finds how the whole column reads on the cluster
before the schema runs on the partitions (tasks/dask_label_time.py). Each checkout given
(a directory holding `retrain_guard/`: this one by default, or another commit's worktree)
runs `retrain-guard validate --engine dask` on it in turn, in one invocation, so that their
wall times and peaks compare on the same machine state; the process tree's resident memory
is sampled as engine_scale samples it.
"""

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.engine_scale import GIB, cli_argv, ensure_tables, measure, say, verdict_of

COLUMN = "closed_date"
SEED = 5


def with_text_dates(source: Path, target: Path, label_time_text: bool = False) -> Path:
    """Copy the dataset directory `source` with the text date column (cached in `target`),
    and the label time as text too when asked."""
    if target.is_dir():
        return target
    partial = target.with_name(f".{target.name}.tmp")
    partial.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for file in sorted(source.glob("*.parquet")):
        table = pq.read_table(file)
        when = pd.Series(table.column("event_time").to_pandas())
        closed = when + pd.to_timedelta(rng.integers(-90, 5, len(when)), unit="D")
        text = closed.dt.strftime("%d/%m/%Y").where(rng.random(len(when)) >= 0.3)
        table = table.append_column(COLUMN, pa.array(text, type=pa.string(), from_pandas=True))
        if label_time_text:
            days = pa.array(when.dt.strftime("%d/%m/%Y"), type=pa.string(), from_pandas=True)
            table = table.set_column(table.schema.get_field_index("event_time"), "event_time", days)
        pq.write_table(table, partial / file.name)
    partial.replace(target)
    return target


def table_bytes(data: Path) -> int:
    """The table's bytes in pandas, summed a file at a time."""
    total = 0
    for file in sorted(data.glob("*.parquet")):
        total += int(pd.read_parquet(file).memory_usage(deep=True).sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--checkouts", type=Path, nargs="+", default=[Path.cwd().resolve()])
    parser.add_argument("--limit-gib", type=float, default=16.0)
    parser.add_argument("--label-time-text", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/engine_scale"))
    args = parser.parse_args()
    base = ensure_tables(args.workdir, args.rows, 1_000_000)
    name = f"text_dates_{args.rows}" + ("_label_text" if args.label_time_text else "")
    data = with_text_dates(base.dataset, args.workdir / name, args.label_time_text)
    size = table_bytes(data)
    config = args.workdir / "config.yaml"
    config.write_text("compute:\n  max_memory_fraction: 1.0\n")
    also = " and event_time as text" if args.label_time_text else ""
    say(f"{args.rows:,} rows with {COLUMN}{also}: {size / GIB:.2f} GiB in pandas")
    say("| checkout | wall s | peak tree GiB | peak / table | exit | verdict |")
    say("|---|---|---|---|---|---|")
    for checkout in args.checkouts:
        out = args.workdir / "runs" / f"{name}_{checkout.name}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        # Imports resolve to the checkout: PYTHONPATH, and a working directory without a
        # retrain_guard/ of its own (`python -c` puts it first on the path).
        os.environ["PYTHONPATH"] = str(checkout.resolve())
        os.chdir(args.workdir)
        m = measure(cli_argv("validate", "dask", data, out, config), int(args.limit_gib * GIB),
                    1800, out / "cli.log")  # fmt: skip
        say(
            f"| {checkout} | {m.wall:.1f} | {m.peak / GIB:.2f} | {m.peak / size:.2f} "
            f"| {m.stopped or m.exit_code} | {verdict_of(out / 'report.json')} |"
        )


if __name__ == "__main__":
    main()
