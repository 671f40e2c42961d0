"""Keeping secrets out of messages, logs and reports: masked URLs and storage options.

A source's secrets (the password of a SQLAlchemy URL, an AWS secret key, secret values of
fsspec storage options) are needed to read it and nowhere else. Everything the project
shows about a source goes through these functions first.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

MASK = "***"

# Option and query names whose values are secrets (matched anywhere in the name, any case):
# s3fs `secret`/`token`, botocore `aws_secret_access_key`/`aws_session_token`, gcsfs
# `token`, adlfs `account_key`/`sas_token`/`connection_string`, HTTP `headers` (an
# Authorization header), `api_key`s, key passphrases, ODBC connection strings, a URL's
# `password`.
_SECRET_NAME = re.compile(
    r"secret|token|password|passwd|pwd|credential|private|account_key|sas|connection_string"
    r"|authorization|headers?$|api_?key|passphrase|odbc_connect"
)
# scheme://user:password@ (SQLAlchemy and fsspec URLs alike). The password may hold '?', '/'
# or '@' unencoded (SQLAlchemy accepts them): it runs to the LAST '@' of the whole text, which
# masks too much rather than too little when a query value holds an '@'.
_USERINFO = re.compile(
    r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@]*:)(?P<password>.*)@(?P<rest>[^@]*)$", re.S
)


_TABLE = re.compile(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$")


def is_table_name(sql: str) -> bool:
    """Return whether data.sql is a table's name (schema.table allowed), not a query."""
    return bool(_TABLE.match(sql.strip()))


def sql_source_name(sql: str, connection: str) -> str:
    """Return how messages name a SQL source: the table, or the query's first line, and the
    connection with its password masked."""
    first = (sql.strip().splitlines() or [""])[0]
    kind = "table" if is_table_name(sql) else "query"
    return f"{kind} {first!r} on {mask_url(connection)}"


def is_secret_name(name: str) -> bool:
    """Return whether an option or query parameter of this name holds a secret."""
    return bool(_SECRET_NAME.search(name.lower()))


def mask_url(url: str) -> str:
    """Return the URL with its password and secret query values replaced by ***.

    A value that is no URL (no '://') but holds an '@' may be a mistyped URL with a password
    (postgresql:/user:pw@host/db): it is masked whole.
    """
    if "://" not in url:
        return MASK if "@" in url else url
    text = url
    found = _USERINFO.match(text)
    if found:
        text = f"{found.group('head')}{MASK}@{found.group('rest')}"
    base, sep, query = text.partition("?")
    if not sep:
        return text
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [(k, MASK if is_secret_name(k) else v) for k, v in pairs]
    return f"{base}?{urlencode(masked, safe='*')}"


def url_secrets(url: str) -> list[str]:
    """Return the secret values written into a URL: its password and secret query values
    (a mistyped URL holding an '@' counts as a secret whole, as mask_url masks it)."""
    if "://" not in url:
        return [url] if "@" in url else []
    found = _USERINFO.match(url)
    values = [found.group("password")] if found and found.group("password") else []
    rest = found.group("rest") if found else url
    _, _, query = rest.partition("?")
    values += [v for k, v in parse_qsl(query, keep_blank_values=True) if is_secret_name(k) and v]
    # ... and as written, percent-encoded, since a message may quote the URL as given.
    raw = (pair.partition("=") for pair in query.split("&"))
    values += [v for k, _, v in raw if is_secret_name(k) and v]
    return values


def mask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return storage options with every secret value (at any depth) replaced by ***."""
    masked: dict[str, Any] = {}
    for key, value in options.items():
        if is_secret_name(str(key)) and value not in (None, ""):
            masked[key] = MASK
        elif isinstance(value, Mapping):
            masked[key] = mask_options(value)
        else:
            masked[key] = value
    return masked


def option_secrets(options: Mapping[str, Any], inside: bool = False) -> list[str]:
    """Return the secret values of storage options (at any depth), as text: what
    mask_options hides."""
    values: list[str] = []
    for key, value in options.items():
        secret = inside or is_secret_name(str(key))
        if isinstance(value, Mapping):
            values += option_secrets(value, secret)
        elif secret and value not in (None, ""):
            values.append(str(value))
    return values


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return the text with every occurrence of the given secret values replaced by ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
