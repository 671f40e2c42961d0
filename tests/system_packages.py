"""Debian packages the tests need from the machine (Chromium, PostgreSQL), installed when
missing, as root, with apt-get."""

import os
import shutil
import subprocess


def apt_install(package: str) -> str | None:
    """Install a Debian package with apt-get; return why not when that is impossible."""
    if shutil.which("apt-get") is None:
        return f"no apt-get on this machine to install Debian's {package}"
    if os.geteuid() != 0:
        return f"{package} is missing and installing it with apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", package],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1200, check=False
        )
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    return None
