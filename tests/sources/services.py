"""Real services for the source tests, started on 127.0.0.1 and stopped after: moto's S3
server (with request signing checked, so bad credentials are refused) and PostgreSQL from
its Debian binaries (installed with apt-get when missing, as the browser tests install
Chromium)."""

import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import moto.settings
from moto.server import ThreadedMotoServer

from tests.system_packages import apt_install

BUCKET = "training"
PG_USER = "guard"
PG_DB = "postgres"


@dataclass(frozen=True)
class S3Service:
    """A moto S3 endpoint and the keys of a user it accepts."""

    endpoint: str
    key: str
    secret: str

    def options(self, secret: str | None = None) -> dict[str, Any]:
        """fsspec storage options for this endpoint (another secret: bad credentials)."""
        return {
            "key": self.key,
            "secret": secret or self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }


@contextmanager
def moto_s3(files: dict[str, Path]) -> Iterator[S3Service]:
    """Serve a bucket holding `files` (key -> local file) on 127.0.0.1; from then on every
    request must be signed with the keys of the IAM user created here."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    setup = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="trainer")
    iam.put_user_policy(
        UserName="trainer",
        PolicyName="all",
        PolicyDocument='{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
    )
    keys = iam.create_access_key(UserName="trainer")["AccessKey"]
    s3 = boto3.client("s3", **setup)
    s3.create_bucket(Bucket=BUCKET)
    for key, path in files.items():
        s3.upload_file(str(path), BUCKET, key)
    previous = moto.settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    try:
        yield S3Service(endpoint, keys["AccessKeyId"], keys["SecretAccessKey"])
    finally:
        moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_binaries() -> Path:
    """Return the directory of initdb and pg_ctl, installing them when missing.

    Raises:
        RuntimeError: they are missing and cannot be installed (the tests then fail: a
            source the project supports is never left untested silently).
    """
    found = _pg_bin()
    if found is None:
        reason = apt_install("postgresql")
        found = _pg_bin()
        if found is None:
            why = reason or "not found after install"
            raise RuntimeError(f"PostgreSQL is needed by the SQL source tests: {why}")
    return found


@dataclass(frozen=True)
class PostgresService:
    """A running PostgreSQL server and how to reach it."""

    port: int
    password: str

    def url(self, password: str | None = None, port: int | None = None) -> str:
        return (
            f"postgresql+psycopg://{PG_USER}:{password or self.password}"
            f"@127.0.0.1:{port or self.port}/{PG_DB}"
        )


@contextmanager
def postgres(password: str) -> Iterator[PostgresService]:
    """Run PostgreSQL from a fresh data directory on a free 127.0.0.1 port (password auth);
    as root, the server runs as the postgres user, as initdb demands."""
    binaries = postgres_binaries()
    root = Path(tempfile.mkdtemp(prefix="retrain-guard-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    pwfile = root / "pw"
    pwfile.write_text(password)
    if as_user:
        shutil.chown(pwfile, "postgres")
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(
        str(binaries / "initdb"),
        "-D",
        str(data),
        "-U",
        PG_USER,
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "--no-sync",
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(root / "log")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield PostgresService(port, password)
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
