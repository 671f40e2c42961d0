"""Reading the training table from a database: data.sql (a query or a table) on
data.connection (a SQLAlchemy URL, or the name of a Prefect Secret block holding one).

Errors name the query's first line (or the table) and the URL with its password masked.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from retrain_guard.schemas.params import DataParams
from retrain_guard.tasks.masking import is_table_name, redact, sql_source_name, url_secrets
from retrain_guard.tasks.sources import Header, InputError, first_line, header_of


@dataclass(frozen=True)
class Query:
    """A resolved SQL source: what to run, where, and how messages name it."""

    statement: Any
    url: str
    name: str
    secrets: tuple[str, ...]


def _connection_url(connection: str) -> str:
    """Return the SQLAlchemy URL given, or the one held by the Secret block named."""
    if "://" in connection:
        return connection
    if any(c in connection for c in ":@"):
        # Not a URL and not a block name: a mistyped URL, maybe with a password; not echoed.
        raise InputError(
            "data.connection: neither a SQLAlchemy URL (scheme://...) nor the name of a Secret "
            "block (its value is not shown: it may hold a password)"
        )
    from prefect.blocks.system import Secret

    name = connection.removeprefix("secret/")
    try:
        block = cast(Secret[Any], Secret.load(name))
        value = block.get()
    except Exception as exc:  # a missing block or an unreachable Prefect API
        raise InputError(
            f"data.connection {connection!r}: no Secret block of that name could be loaded "
            "from the Prefect API"
        ) from exc
    if not isinstance(value, str) or "://" not in value:
        raise InputError(f"data.connection {connection!r}: the block holds no SQLAlchemy URL")
    return value


def resolve_query(data: DataParams) -> Query:
    """Return the query of data.sql on data.connection, resolved from its block if named.

    Raises:
        InputError: SQLAlchemy is missing, or the block cannot be loaded.
    """
    try:
        import sqlalchemy as sa
    except ImportError as exc:
        raise InputError("data.sql needs SQLAlchemy (pip install 'retrain-guard[sql]')") from exc
    url = _connection_url(str(data.connection))
    sql = str(data.sql).strip()
    if is_table_name(sql):
        schema, _, table = sql.rpartition(".")
        statement: Any = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema or None))
    else:
        statement = sa.text(sql)
    name = sql_source_name(sql, url)
    return Query(statement, url, name, (*data.secrets(), *url_secrets(url)))


@contextmanager
def _connected(query: Query) -> Iterator[Any]:
    """Yield a connection; any failure to connect or run the query is an InputError naming
    the source (bad credentials, unreachable host, missing table or column, bad SQL)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    try:
        engine = sa.create_engine(query.url, poolclass=NullPool)
    except Exception as exc:  # a malformed URL, an unknown dialect, a missing driver
        raise InputError(redact(f"{query.name}: {first_line(exc)}", query.secrets)) from exc
    try:
        with engine.connect() as connection:
            yield connection
    except sa.exc.DBAPIError as exc:
        cause = exc.orig if exc.orig is not None else exc
        raise InputError(redact(f"{query.name}: {first_line(cause)}", query.secrets)) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise InputError(redact(f"{query.name}: {first_line(exc)}", query.secrets)) from exc
    finally:
        engine.dispose()


def sql_header(data: DataParams) -> Header:
    """Return the query's columns, fetching no rows (a server-side cursor where there is one).

    Raises:
        InputError: as _connected.
    """
    query = resolve_query(data)
    with _connected(query) as connection:
        result = connection.execution_options(stream_results=True).execute(query.statement)
        names = [str(name) for name in result.keys()]  # noqa: SIM118 (a Result)
        result.close()
    return header_of(names, names, query.name)


def read_sql(data: DataParams) -> pd.DataFrame:
    """Read the query's rows into a frame.

    Raises:
        InputError: as _connected.
    """
    query = resolve_query(data)
    with _connected(query) as connection:
        return pd.read_sql_query(query.statement, connection)
