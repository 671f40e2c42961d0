"""The command line's usage errors (exit 2, with their failure codes) and its data source flags:
--data, --sql, --connection, --credentials-block and --storage-options, and their reading into
data parameters (schemas/params.py DataParams)."""

import argparse
import json
import sys
from typing import Any

from retrain_guard.schemas.report import Stage

# Failure codes of exits 2 and 3, written to --report when it is given (tasks/registry.py).
INVALID_PARAMETERS = "invalid_parameters"
INPUT_UNREADABLE = "input_unreadable"
TABLE_TOO_LARGE = "table_too_large"
OUTPUT_DIR_UNUSABLE = "output_dir_unusable"
ENGINE_UNAVAILABLE = "engine_unavailable"
SCHEMA_INVALID = "schema_invalid"
NO_FEATURES_LEFT = "no_features_left"
INTERNAL_ERROR = "internal_error"
# The stage of a usage error's failure in the --report written; the others are refused at "run".
USAGE_STAGES: dict[str, Stage] = {
    INPUT_UNREADABLE: "load",
    ENGINE_UNAVAILABLE: "load",
    SCHEMA_INVALID: "schema",
}


class UsageError(Exception):
    """A bad invocation or unusable input: reported as one line, exit 2.

    `code` is the failure code of the report written to --report.
    """

    def __init__(self, message: str, code: str = INVALID_PARAMETERS) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError, so a bad flag is reported like any other usage error."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        raise UsageError(_without_values(message))


def _without_values(message: str) -> str:
    """argparse quotes the arguments it did not recognise, values included: a mistyped
    `--conection postgresql://user:pw@...` must not print the password. Keep the flags."""
    head, found, rest = message.partition("unrecognized arguments: ")
    if not found:
        return message
    flags = [word for word in rest.split() if word.startswith("-")]
    shown = " ".join(flag.partition("=")[0] for flag in flags)
    return f"{head}{found}{shown or '(values not shown)'}"


# Parameter -> flag, for naming the flag in a validation error.
SOURCE_FLAGS = {
    "data.path": "--data",
    "data.sql": "--sql",
    "data.connection": "--connection",
    "data.credentials_block": "--credentials-block",
    "data.storage_options": "--storage-options",
}


def _options_arg(text: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        # The text may hold a secret: the error names the position only.
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(loaded, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return loaded


def add_source_options(parser: argparse.ArgumentParser, table: str) -> None:
    """Add the flags naming where the table lives (a file, dataset, URL or SQL query)."""
    parser.add_argument(
        "--data",
        help=f"{table} table: CSV or Parquet file, Parquet dataset directory, or URL "
        "(s3://, gs://, file://)",
    )
    parser.add_argument("--sql", help=f"SQL query or table name of the {table} table")
    parser.add_argument(
        "--connection", help="for --sql: SQLAlchemy URL, or name of a Prefect Secret block"
    )
    parser.add_argument(
        "--credentials-block",
        help="for a URL: prefect-aws block, aws-credentials/NAME or s3-bucket/NAME",
    )
    parser.add_argument(
        "--storage-options",
        type=_options_arg,
        help="for a URL: fsspec storage options as JSON, e.g. "
        '\'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\'',
    )


def source_flags(args: argparse.Namespace) -> dict[str, Any]:
    """Return the source flags as data parameters (None where not given)."""
    return {
        "path": args.data,
        "sql": args.sql,
        "connection": args.connection,
        "credentials_block": args.credentials_block,
        "storage_options": args.storage_options,
    }
