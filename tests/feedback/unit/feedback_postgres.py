"""A throw-away PostgreSQL server (Debian's ``postgresql`` package) started and stopped by the fixture.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user
(``runuser``) in a temporary folder it owns. Loopback only, a free port, trust authentication,
stopped with ``pg_ctl stop`` (the server it started), the folder removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A running server; yields its SQLAlchemy URL."""
    bindir = _bin()
    if bindir is None:
        pytest.skip(
            "Debian's postgresql is not installed (apt-get install -y postgresql): PostgreSQL test skipped"
        )
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' user: initdb cannot run")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: initdb cannot run")
        prefix = [runuser, "-u", "postgres", "--"]
    # not under pytest's basetemp: pytest keeps /tmp/pytest-of-<user> at mode 0700 (and any pytest
    # running meanwhile resets it), which the postgres user cannot enter
    data = Path(tempfile.mkdtemp(prefix="feedback-pg-")) / "pgdata"
    data.mkdir()
    if prefix:
        os.chown(data.parent, user.pw_uid, user.pw_gid)
        os.chown(data, user.pw_uid, user.pw_gid)
    port = free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
    )
    started = False
    try:
        init = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        assert init.returncode == 0, init.stdout + init.stderr
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(data / "log")
        start = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
        assert start.returncode == 0, start.stdout + start.stderr
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            stop = run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
            assert stop.returncode == 0, stop.stdout + stop.stderr
        shutil.rmtree(data.parent, ignore_errors=True)
